"""One exception tree for modelfab.

Every error a user can cause is a :class:`ModelfabError` with a stable
``code`` (for scripts), an ``http_status`` (for the REST server) and a
message that says what was expected, what was got and what to do.
"""

from __future__ import annotations


class ModelfabError(Exception):
    """Base class. ``str(err)`` is a one-line message fit for a user."""

    code = "error"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class InvalidInput(ModelfabError):
    """The user gave something we cannot use (file, argument, record)."""

    code = "invalid_input"
    http_status = 422
    exit_code = 2


class UnsupportedFormat(InvalidInput):
    code = "unsupported_format"
    http_status = 415


class TooLarge(InvalidInput):
    code = "too_large"
    http_status = 413


class NotFound(ModelfabError):
    code = "not_found"
    http_status = 404
    exit_code = 3


class Conflict(ModelfabError):
    code = "conflict"
    http_status = 409
    exit_code = 4


class WorkspaceError(ModelfabError):
    """The workspace is missing, not a workspace, or needs a migration."""

    code = "workspace"
    http_status = 500
    exit_code = 5


class IntegrityError(ModelfabError):
    """Stored content does not match its recorded hash or format."""

    code = "integrity"
    http_status = 409
    exit_code = 6


class Unauthorized(ModelfabError):
    code = "unauthorized"
    http_status = 401
    exit_code = 7


class Forbidden(ModelfabError):
    code = "forbidden"
    http_status = 403
    exit_code = 7


class TrainingError(ModelfabError):
    """Training could not produce a model (no trial finished, etc.)."""

    code = "training_failed"
    http_status = 500
    exit_code = 8


class Cancelled(ModelfabError):
    code = "cancelled"
    http_status = 409
    exit_code = 130


def describe_value(v) -> str:
    """How a wrong input is named in a message: its type, a short look at a string or path, an array's shape."""
    from pathlib import PurePath

    if v is None:
        return "None"
    if isinstance(v, str):
        return f"a str ({v[:40]!r})"
    if isinstance(v, PurePath):
        return f"a path ({str(v)[:60]!r})"
    if type(v).__name__ == "ndarray" and hasattr(v, "shape"):
        return f"a {v.ndim}-D numpy array of shape {v.shape}"
    name = type(v).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"

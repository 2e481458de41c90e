"""Exceptions from under a route that have a plain meaning for a client (used by the server's guard)."""

from __future__ import annotations

from ..errors import InvalidInput, ModelfabError


def safe_text(exc: BaseException) -> str:
    """An exception as one short line for the log: no SQL statement or parameters (SQLAlchemy appends both;
    a token hash leaked that way), no password."""
    from ..storage.errors import mask_password

    text = str(exc).split("\n[SQL:")[0].split("\n(Background on this error")[0].strip()
    return mask_password(f"{type(exc).__name__}: {text}")[:500]


def known_error(exc: BaseException) -> ModelfabError | None:
    """An exception from under a route that has a plain meaning for the client: the metadata store
    unreachable (503 storage_unavailable), a JSON body nested too deeply or holding an integer too long
    to read (422, as any other unreadable body)."""
    from ..storage.errors import translate

    known = translate(exc)
    if known is not None:
        return known
    if isinstance(exc, RecursionError):
        return InvalidInput("The request body is nested too deeply to read.",
                            hint='Send flat records: {"records": [{"column": value, ...}]}.')
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return InvalidInput("The request body holds an integer with too many digits (more than 4300).",
                            hint="Send numbers as ordinary JSON numbers (e.g. 74.2).")
    return None

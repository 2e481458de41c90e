"""Settings of the browser UI, from ``MODELFAB_UI_*`` environment variables (read when asked)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

MiB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        from ..errors import InvalidInput

        raise InvalidInput(f"Environment variable {name} must be a whole number, got {raw!r}.") from None


@dataclass(frozen=True)
class WebSettings:
    # One uploaded file (a table, a zip of recordings, a file to score).
    max_upload_bytes: int = 1024 * MiB
    # A zip of recordings: total uncompressed size, number of entries, worst compression ratio.
    max_unzipped_bytes: int = 4096 * MiB
    max_zip_entries: int = 100_000
    max_zip_ratio: int = 200
    # Form fields of a request that is not an upload.
    max_form_bytes: int = 1 * MiB
    # Server-side folders offered for import live under this root (None: the option is off).
    import_root: Path | None = None
    session_hours: int = 12
    # Set cookies with the Secure flag (also on automatically for https requests).
    secure_cookies: bool = False
    # Extra origins allowed to post (e.g. the address of a TLS reverse proxy), comma-separated.
    extra_origins: tuple[str, ...] = ()
    # Grace period for a cancelled job to stop by itself before it is killed.
    cancel_grace_s: float = 15.0

    @classmethod
    def from_env(cls, base=None) -> "WebSettings":
        s = cls()
        if base is not None:  # the workspace's import limit caps uploads too
            s = replace(s, max_upload_bytes=min(s.max_upload_bytes, int(base.max_import_bytes)))
        root = os.environ.get("MODELFAB_UI_IMPORT_ROOT") or None
        origins = tuple(o.strip().rstrip("/") for o in os.environ.get("MODELFAB_UI_ORIGINS", "").split(",") if o.strip())
        return replace(
            s,
            max_upload_bytes=_env_int("MODELFAB_UI_MAX_UPLOAD_BYTES", s.max_upload_bytes),
            max_unzipped_bytes=_env_int("MODELFAB_UI_MAX_UNZIPPED_BYTES", s.max_unzipped_bytes),
            max_zip_entries=_env_int("MODELFAB_UI_MAX_ZIP_ENTRIES", s.max_zip_entries),
            session_hours=_env_int("MODELFAB_UI_SESSION_HOURS", s.session_hours),
            import_root=Path(root).expanduser() if root else None,
            secure_cookies=os.environ.get("MODELFAB_UI_SECURE_COOKIES", "") in ("1", "true", "yes"),
            extra_origins=origins,
        )

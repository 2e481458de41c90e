"""Database URLs: the driver for ``postgresql://``, and the password kept out of what is stored or printed."""

from __future__ import annotations

import os

import sqlalchemy as sa


def normalize_db_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` use the psycopg 3 driver (extra ``modelfab[postgres]``)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    if not url.startswith(("sqlite", "postgresql+")):
        from ..errors import InvalidInput

        raise InvalidInput(f"Database URL must start with sqlite:/// or postgresql://; got {public_db_url(url)!r}.")
    return url


def public_db_url(url: str) -> str:
    """The URL without its password (what may be written to workspace.json or printed)."""
    try:
        u = sa.engine.make_url(url)
    except Exception:
        return url.split("@")[-1]
    if not url_password(url):
        return url
    # URL.set(password=None) keeps the password (None means "unchanged" in SQLAlchemy 2): replace the field;
    # libpq also takes it as a query parameter (?password=...)
    u = u._replace(password=None).difference_update_query([k for k in u.query if k.lower() == "password"])
    return u.render_as_string(hide_password=False)


def masked_db_url(url: str) -> str:
    """The URL with its password shown as ``***`` (for messages)."""
    from .errors import mask_password

    return mask_password(url)


def refuse_password(url: str | None, option: str = "--db") -> None:
    """A database URL that will be recorded must not carry a password: workspace.json is readable by others,
    and the next command could not find it anyway. Refused with how to give it instead."""
    if url_password(url):
        from ..errors import InvalidInput

        raise InvalidInput(
            f"{option} contains a password ({masked_db_url(url)}); modelfab never stores a database password "
            "in workspace.json.",
            hint=f"Give the URL without it ({public_db_url(url)}) and put the password in MODELFAB_DB_PASSWORD "
                 "(or PGPASSWORD, or ~/.pgpass) for this and every later command.")


def url_password(url: str | None) -> bool:
    """Whether a database URL carries a password."""
    if not url or url.startswith("sqlite"):
        return False
    try:
        u = sa.engine.make_url(url)
        return bool(u.password) or any(k.lower() == "password" for k in u.query)
    except Exception:
        return "password" in url.lower()


def with_password(url: str) -> str:
    """Add ``MODELFAB_DB_PASSWORD`` to a PostgreSQL URL that has none (libpq's PGPASSWORD/.pgpass also work)."""
    pw = os.environ.get("MODELFAB_DB_PASSWORD")
    if not pw or url.startswith("sqlite"):
        return url
    u = sa.engine.make_url(url)
    return url if u.password else u.set(password=pw).render_as_string(hide_password=False)

"""Errors of the storage underneath (database driver, S3 client, disk) as one-line modelfab errors.

``translate(exc)`` turns what SQLAlchemy/psycopg/sqlite3, botocore and the OS raise when a database is
down, a password is wrong, a bucket name is invalid or a disk is full into a :class:`StorageError` that
says what was expected, what was got and what to do. It never repeats an SQL statement or its
parameters (SQLAlchemy's message carries both; a token hash once leaked that way) nor a password.
The CLI (``modelfab.cli.main``) and the REST server use it; anything it does not know stays an
internal error.
"""

from __future__ import annotations

import errno
import re

from ..errors import ModelfabError


class StorageError(ModelfabError):
    """The metadata database, the blob store or the disk cannot do what was asked right now."""

    code = "storage_unavailable"
    http_status = 503
    exit_code = 5

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, hint=hint)
        if code:
            self.code = code
        if code == "invalid_input":  # the user's argument, not the storage: exit 2 / HTTP 422 as other bad input
            self.exit_code, self.http_status = 2, 422
        elif code == "disk_full":
            self.http_status = 507


_PW = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


_PW_QUERY = re.compile(r"([?&]password=)[^&\s'\"]+", re.IGNORECASE)


def mask_password(text: str) -> str:
    """``postgresql://mf:secret@host`` -> ``postgresql://mf:***@host`` (and ``?password=secret`` ->
    ``?password=***``) anywhere in ``text``."""
    return _PW_QUERY.sub(r"\1***", _PW.sub(r"\1***@", text))


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    line = mask_password(text[0] if text else type(exc).__name__)[:300].rstrip()
    return line if line.endswith((".", "!", "?")) else line + "."


def translate(exc: BaseException) -> ModelfabError | None:
    """A :class:`StorageError` for a known storage failure in ``exc`` (or what caused it); else None."""
    for e in _chain(exc):
        mapped = _one(e)
        if mapped is not None:
            return mapped
    return None


def _one(exc: BaseException) -> ModelfabError | None:  # noqa: C901 - one flat table of cases
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    if module.startswith("sqlalchemy") or module.startswith(("psycopg", "sqlite3")) or name in (
            "DatabaseError", "OperationalError"):
        return _database(exc)
    if module.startswith(("botocore", "boto3", "s3transfer")):
        return _s3(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {exc.filename}" if exc.filename else ""
        return StorageError(f"The disk is full{where}: expected free space for the files, got "
                            f"'{exc.strerror}'. Nothing half-written was kept.",
                            hint="Free space on that disk (or move the workspace/target to a larger one), "
                                 "then run the command again.", code="disk_full")
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and exc.filename:
        why = "is on a read-only file system" if exc.errno == errno.EROFS else "may not be written by this user"
        return StorageError(f"{exc.filename} {why}: expected a folder modelfab can write, got "
                            f"'{exc.strerror}'. Nothing half-written was kept.",
                            hint="Pick a writable place, or fix the folder's permissions (or mount), then run the "
                                 "command again.", code="not_writable")
    return None


def path_error(exc: BaseException) -> ModelfabError | None:
    """For the CLI only (a server must not show its paths): an output or input path that cannot be used (a part of
    it is a file, a folder is missing, it is a folder, ...) said as such instead of an internal error."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.filename and e.errno in (errno.ENOTDIR, errno.EISDIR, errno.ENOENT,
                                                                        errno.ENAMETOOLONG, errno.EEXIST):
            what = {errno.ENOTDIR: "a part of the path is a file, not a folder",
                    errno.EISDIR: "it is a folder, not a file", errno.ENOENT: "a folder of the path does not exist",
                    errno.ENAMETOOLONG: "the name is too long", errno.EEXIST: "a file of that name is in the way"}[e.errno]
            return StorageError(f"Cannot use the path {e.filename}: {what} ('{e.strerror}'). Nothing half-written "
                                "was kept.", hint="Give another path (-o / --out), then run the command again.",
                                code="not_writable")
    return None


def _database(exc: BaseException) -> ModelfabError | None:
    text = _first_line(exc)
    low = text.lower()
    if "no password supplied" in low or "fe_sendauth" in low:
        return StorageError("The PostgreSQL server wants a password; none was given.",
                            hint="Set MODELFAB_DB_PASSWORD (or PGPASSWORD, or a ~/.pgpass entry) for the database "
                                 "user; the workspace never stores the password.", code="storage_auth")
    if "password authentication failed" in low or "authentication failed" in low:
        return StorageError(f"PostgreSQL refused the password: {text}",
                            hint="Check MODELFAB_DB_PASSWORD / PGPASSWORD / ~/.pgpass for this user.",
                            code="storage_auth")
    if "does not exist" in low and "database" in low:
        return StorageError(f"The PostgreSQL database does not exist: {text}",
                            hint="Create it (createdb, or CREATE DATABASE) or fix the name in the URL.",
                            code="storage_unavailable")
    if any(s in low for s in ("connection refused", "could not connect", "connection failed", "timeout expired",
                              "could not translate host name", "server closed the connection",
                              "terminating connection", "connection is closed", "connection to server",
                              "name or service not known", "the database system is shutting down",
                              "the database system is starting up", "no route to host")):
        return StorageError(f"Cannot reach the metadata database: {text}",
                            hint="Check that the PostgreSQL server is running and reachable (host, port, firewall, "
                                 "TLS), then try again.")
    if "database disk image is malformed" in low or "file is not a database" in low:
        return StorageError(f"The workspace database (metadata.db) is damaged: SQLite says '{text.rstrip('.')}'.",
                            hint="Restore the workspace from a backup (modelfab restore BACKUP NEW_FOLDER); "
                                 "keep the damaged folder for inspection.", code="storage_corrupt")
    if "database is locked" in low or "database table is locked" in low:
        return StorageError("The workspace database stayed locked by another writer for more than 30 s.",
                            hint="Wait for the running import/training/backup to finish (or stop a stuck "
                                 "process), then try again; with many writers move to PostgreSQL "
                                 "(docs/scaling.md).", code="storage_busy")
    if "readonly database" in low or "read-only" in low or "attempt to write a readonly" in low:
        return StorageError("The workspace is read-only: this command writes to its database and cannot.",
                            hint="Run it as a user who may write the workspace folder (and metadata.db, "
                                 "metadata.db-wal, metadata.db-shm), or use only read commands here.",
                            code="read_only")
    if "unable to open database file" in low:
        return StorageError("Cannot open the workspace database (metadata.db): SQLite could not open or create "
                            "the file or its -wal/-shm companions.",
                            hint="Check that the folder exists and is writable by this user (SQLite needs to "
                                 "write next to metadata.db even to read it).", code="read_only")
    if "disk is full" in low or "no space left" in low:
        return StorageError(f"The disk is full: the database says '{text.rstrip('.')}'.",
                            hint="Free space on the workspace's disk, then run the command again.",
                            code="disk_full")
    return None


def _s3(exc: BaseException) -> ModelfabError | None:
    name = type(exc).__name__
    text = _first_line(exc)
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"):
        return StorageError(f"Cannot reach the S3 endpoint: {text}",
                            hint="Check MODELFAB_S3_ENDPOINT (or the s3_endpoint in workspace.json) and that the "
                                 "server is running, then try again.")
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return StorageError("No S3 credentials were found (expected an access key and secret).",
                            hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials, an "
                                 "instance role).", code="storage_auth")
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    full = mask_password(" ".join(str(exc).split()))[:300]
    if code == "InvalidBucketName" or (name == "ParamValidationError" and "bucket" in full.lower()):
        detail = full.split("Invalid bucket name", 1)[-1].strip(' :."')
        return StorageError(f"Invalid S3 bucket name: {detail or text}",
                            hint="Bucket names are 3-63 lowercase letters, digits, '-' and '.', starting and "
                                 "ending with a letter or digit: s3://my-bucket/prefix.", code="invalid_input")
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken"):
        return StorageError(f"The S3 server refused the credentials ({code}).",
                            hint="Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the key's permissions on the "
                                 "bucket.", code="storage_auth")
    if code == "NoSuchBucket":
        return StorageError(f"The S3 bucket does not exist: {text}",
                            hint="Check the bucket in workspace.json / --blobs, or create it.")
    return None

"""Content-addressed blob stores (sha256) behind one small protocol.

Backends: :class:`LocalBlobStore` (a folder) and ``S3BlobStore`` (any
S3-compatible server, ``storage/s3.py``, extra ``modelfab[s3]``). Pick one
from a URL with :func:`open_blob_store`.

Write order for every local blob: temp file in the store, fsync, rename
into place; on S3 a PUT (or a completed multipart upload) is atomic. A
reader therefore never sees a partial blob under its final name, and every
read checks the sha256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

from ..errors import IntegrityError, NotFound

CHUNK = 1024 * 1024


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_sha(sha: str) -> str:
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise NotFound(f"Not a blob id: expected 64 hex characters, got {sha[:80]!r}.")
    return sha


# A blob that is stored again (same content) gets its age reset when it is older
# than this, so that `gc --min-age` (default a day) never takes a blob a writer reuses.
REFRESH_AFTER_S = 3600


@dataclass(frozen=True)
class BlobInfo:
    size: int
    modified: float  # unix time of the last write (or reuse)


class BlobStore(Protocol):
    """The narrow protocol every blob backend implements (see tests/storage/test_blob_contract.py)."""

    url: str

    def put_file(self, path: str | os.PathLike) -> str: ...
    def put_bytes(self, data: bytes) -> str: ...
    def open(self, sha: str) -> BinaryIO: ...
    def get_bytes(self, sha: str) -> bytes: ...
    def copy_to(self, sha: str, dest: str | os.PathLike) -> Path: ...
    def local_path(self, sha: str) -> Path: ...
    def exists(self, sha: str) -> bool: ...
    def info(self, sha: str) -> BlobInfo: ...
    def delete(self, sha: str) -> None: ...
    def iter_ids(self) -> Iterator[str]: ...


class VerifyingReader:
    """A read-only stream over a blob that raises IntegrityError at the end if the sha256 differs."""

    def __init__(self, raw: BinaryIO, sha: str) -> None:
        self._raw = raw
        self._sha = sha
        self._h = hashlib.sha256()
        self._done = False

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read() if n is None or n < 0 else self._raw.read(n)
        self._h.update(data)
        if (not data or n is None or n < 0) and not self._done:
            self._done = True
            if self._h.hexdigest() != self._sha:
                raise IntegrityError(f"Blob {self._sha[:12]} does not match its sha256: it was changed in the store.",
                                     hint="Restore it from a backup.")
        return data

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> "VerifyingReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_blob_store(spec: str, root: str | os.PathLike, *, s3_endpoint: str | None = None,
                    cache_dir: str | os.PathLike | None = None) -> "BlobStore":
    """The store named by ``spec``: ``s3://bucket/prefix``, ``file:///abs/path``, or a folder (relative to ``root``)."""
    if spec.startswith("s3://"):
        from .s3 import S3BlobStore

        return S3BlobStore.from_url(spec, endpoint_url=s3_endpoint,
                                    cache_dir=Path(cache_dir) if cache_dir else Path(root) / "cache" / "blobs")
    if "://" in spec and not spec.startswith("file://"):
        from ..errors import InvalidInput

        raise InvalidInput(f"Blob store URL must be s3://BUCKET/PREFIX, file:///PATH or a folder; got {spec!r}.")
    path = Path(spec[len("file://"):] if spec.startswith("file://") else spec).expanduser()
    return LocalBlobStore(path if path.is_absolute() else Path(root) / path)


class LocalBlobStore:
    """Blobs as files ``root/ab/cdef...`` named by their sha256."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._tmp = self.root / ".tmp"
        self.url = self.root.resolve().as_uri()

    def _path(self, sha: str) -> Path:
        _check_sha(sha)
        return self.root / sha[:2] / sha[2:]

    def _commit_tmp(self, tmp: Path, sha: str) -> str:
        final = self._path(sha)
        if final.exists():
            tmp.unlink(missing_ok=True)
            try:  # reused: reset its age so gc's grace period protects it again
                if time.time() - final.stat().st_mtime > REFRESH_AFTER_S:
                    os.utime(final)
            except OSError:
                pass
            return sha
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        try:  # make the rename durable
            fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass
        return sha

    def _new_tmp(self) -> tuple[BinaryIO, Path]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        return os.fdopen(fd, "wb"), Path(name)

    def put_stream(self, src: BinaryIO) -> str:
        fh, tmp = self._new_tmp()
        h = hashlib.sha256()
        try:
            with fh:
                for chunk in iter(lambda: src.read(CHUNK), b""):
                    h.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._commit_tmp(tmp, h.hexdigest())

    def put_file(self, path: str | os.PathLike) -> str:
        with open(path, "rb") as src:
            return self.put_stream(src)

    def put_bytes(self, data: bytes) -> str:
        import io

        return self.put_stream(io.BytesIO(data))

    def exists(self, sha: str) -> bool:
        try:
            return self._path(sha).is_file()
        except NotFound:
            return False

    def info(self, sha: str) -> BlobInfo:
        p = self._path(sha)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise NotFound(f"Blob {sha[:12]} is missing from the store at {self.root}.") from None
        return BlobInfo(size=st.st_size, modified=st.st_mtime)

    def open(self, sha: str) -> BinaryIO:
        """A stream of the blob; reading it to the end checks its sha256."""
        p = self._path(sha)
        try:
            return VerifyingReader(open(p, "rb"), sha)  # type: ignore[return-value]
        except FileNotFoundError:
            raise NotFound(f"Blob {sha[:12]} is missing from the store at {self.root}.") from None

    def get_bytes(self, sha: str) -> bytes:
        p = self._path(sha)
        if not p.is_file():
            raise NotFound(f"Blob {sha[:12]} is missing from the store at {self.root}.")
        data = p.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise IntegrityError(
                f"Blob {sha[:12]} does not match its sha256: the file was changed on disk. "
                "Restore it from a backup."
            )
        return data

    def copy_to(self, sha: str, dest: str | os.PathLike) -> Path:
        """Copy a blob to ``dest`` verifying its hash on the way."""
        p = self._path(sha)
        if not p.is_file():
            raise NotFound(f"Blob {sha[:12]} is missing from the store at {self.root}.")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        h = hashlib.sha256()
        with open(p, "rb") as src, open(tmp, "wb") as out:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha:
            tmp.unlink(missing_ok=True)
            raise IntegrityError(
                f"Blob {sha[:12]} does not match its sha256: the file was changed on disk. "
                "Restore it from a backup."
            )
        os.replace(tmp, dest)
        return dest

    def local_path(self, sha: str) -> Path:
        """Path of the blob for read-only use (local backend only)."""
        p = self._path(sha)
        if not p.is_file():
            raise NotFound(f"Blob {sha[:12]} is missing from the store at {self.root}.")
        return p

    def delete(self, sha: str) -> None:
        self._path(sha).unlink(missing_ok=True)

    def iter_ids(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for f in sorted(sub.iterdir()):
                yield sub.name + f.name

    def clear_tmp(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

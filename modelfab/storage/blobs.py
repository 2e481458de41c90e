"""Content-addressed blob store (sha256).

Write order for every blob: temp file in the store, fsync, rename into
place. A reader therefore never sees a partial blob under its final name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
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


class BlobStore(Protocol):
    """The narrow protocol every blob backend implements."""

    def put_file(self, path: str | os.PathLike) -> str: ...
    def put_bytes(self, data: bytes) -> str: ...
    def get_bytes(self, sha: str) -> bytes: ...
    def copy_to(self, sha: str, dest: str | os.PathLike) -> Path: ...
    def exists(self, sha: str) -> bool: ...
    def delete(self, sha: str) -> None: ...
    def iter_ids(self) -> Iterator[str]: ...


class LocalBlobStore:
    """Blobs as files ``root/ab/cdef...`` named by their sha256."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._tmp = self.root / ".tmp"

    def _path(self, sha: str) -> Path:
        _check_sha(sha)
        return self.root / sha[:2] / sha[2:]

    def _commit_tmp(self, tmp: Path, sha: str) -> str:
        final = self._path(sha)
        if final.exists():
            tmp.unlink(missing_ok=True)
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

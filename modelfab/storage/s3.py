"""S3-compatible blob store (AWS S3, MinIO, Ceph RGW, ...) via boto3 (extra ``modelfab[s3]``).

Objects live at ``s3://BUCKET/PREFIX/ab/cdef...`` named by their sha256. A
PUT, and a multipart upload once completed, is atomic, so a reader never sees
a partial blob. Every read checks the sha256. Code that needs a blob as a
local file gets a verified copy in a local cache folder.

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, instance roles) and are never written
into the workspace. The endpoint of a non-AWS server comes from
``MODELFAB_S3_ENDPOINT`` (or the workspace's recorded endpoint).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Iterator
from urllib.parse import urlsplit

from ..errors import IntegrityError, InvalidInput, NotFound, WorkspaceError
from .blobs import CHUNK, REFRESH_AFTER_S, BlobInfo, VerifyingReader, _check_sha, sha256_file

MiB = 1024 * 1024


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise InvalidInput(f"Environment variable {name} must be a whole number, got {raw!r}.") from None


def parse_s3_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.hostname:
        raise InvalidInput(f"Blob store URL must look like s3://BUCKET/PREFIX; got {url!r}.")
    if parts.username or parts.password or "@" in parts.netloc:
        raise InvalidInput("Do not put credentials into the s3:// URL (they would be written to workspace.json).",
                           hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead.")
    return parts.netloc, parts.path.strip("/")


class S3BlobStore:
    """Blobs as objects ``PREFIX/ab/cdef...`` in one bucket."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, cache_dir: str | os.PathLike, client=None) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError:
            raise WorkspaceError("This workspace keeps its blobs on S3, which needs boto3.",
                                 hint="Install it: pip install 'modelfab[s3]'.") from None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.cache_dir = Path(cache_dir)
        region = region or os.environ.get("MODELFAB_S3_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.client = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16,
                          s3={"addressing_style": "path"} if endpoint_url else None))
        # Files above the threshold go up (and down) in parallel parts.
        self.transfer = TransferConfig(
            multipart_threshold=_int_env("MODELFAB_S3_MULTIPART_THRESHOLD", 64 * MiB),
            multipart_chunksize=_int_env("MODELFAB_S3_MULTIPART_CHUNKSIZE", 16 * MiB),
            max_concurrency=_int_env("MODELFAB_S3_CONCURRENCY", 8), use_threads=True)

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None, cache_dir: str | os.PathLike) -> "S3BlobStore":
        bucket, prefix = parse_s3_url(url)
        endpoint = os.environ.get("MODELFAB_S3_ENDPOINT") or endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        return cls(bucket, prefix, endpoint_url=endpoint, cache_dir=cache_dir)

    # -- helpers ----------------------------------------------------------
    def _key(self, sha: str) -> str:
        _check_sha(sha)
        tail = f"{sha[:2]}/{sha[2:]}"
        return f"{self.prefix}/{tail}" if self.prefix else tail

    def _missing(self, sha: str) -> NotFound:
        return NotFound(f"Blob {sha[:12]} is missing from the store at {self.url}.")

    @staticmethod
    def _is_404(exc) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")

    def _head(self, sha: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(sha))
        except ClientError as exc:
            if self._is_404(exc):
                return None
            raise

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (for ``modelfab init``)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if not self._is_404(exc):
                raise WorkspaceError(f"Cannot use bucket {self.bucket!r} at {self.endpoint_url or 'AWS'}: {exc}.",
                                     hint="Check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) "
                                          "and MODELFAB_S3_ENDPOINT.") from None
            self.client.create_bucket(Bucket=self.bucket)

    def _reuse(self, sha: str, head: dict) -> None:
        """Reset the age of an existing object written long ago (so gc's grace period covers the new writer)."""
        if time.time() - head["LastModified"].timestamp() > REFRESH_AFTER_S:
            self.client.copy({"Bucket": self.bucket, "Key": self._key(sha)}, self.bucket, self._key(sha),
                             ExtraArgs={"MetadataDirective": "REPLACE", "Metadata": {"sha256": sha}},
                             Config=self.transfer)

    # -- protocol ---------------------------------------------------------
    def put_file(self, path: str | os.PathLike) -> str:
        sha = sha256_file(path)
        head = self._head(sha)
        if head is not None:
            self._reuse(sha, head)
            return sha
        self.client.upload_file(str(path), self.bucket, self._key(sha), Config=self.transfer,
                                ExtraArgs={"Metadata": {"sha256": sha}})
        return sha

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        head = self._head(sha)
        if head is not None:
            self._reuse(sha, head)
            return sha
        self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(sha), Config=self.transfer,
                                   ExtraArgs={"Metadata": {"sha256": sha}})
        return sha

    def exists(self, sha: str) -> bool:
        try:
            return self._head(sha) is not None
        except NotFound:
            return False

    def info(self, sha: str) -> BlobInfo:
        head = self._head(sha)
        if head is None:
            raise self._missing(sha)
        return BlobInfo(size=int(head["ContentLength"]), modified=head["LastModified"].timestamp())

    def open(self, sha: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(sha))["Body"]
        except ClientError as exc:
            if self._is_404(exc):
                raise self._missing(sha) from None
            raise
        return VerifyingReader(body, sha)  # type: ignore[return-value]

    def get_bytes(self, sha: str) -> bytes:
        with self.open(sha) as fh:
            return fh.read()

    def copy_to(self, sha: str, dest: str | os.PathLike) -> Path:
        """Download to ``dest`` (parallel ranged GETs for big blobs), checking the sha256 before the rename."""
        from botocore.exceptions import ClientError

        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
        os.close(fd)
        tmp = Path(name)
        try:
            try:
                self.client.download_file(self.bucket, self._key(sha), str(tmp), Config=self.transfer)
            except ClientError as exc:
                if self._is_404(exc):
                    raise self._missing(sha) from None
                raise
            if sha256_file(tmp) != sha:
                raise IntegrityError(f"Blob {sha[:12]} does not match its sha256: it was changed in the store.",
                                     hint="Restore it from a backup.")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def local_path(self, sha: str) -> Path:
        """A verified local copy in the cache folder (downloaded on first use)."""
        p = self.cache_dir / _check_sha(sha)[:2] / sha[2:]
        if p.is_file():
            return p
        return self.copy_to(sha, p)

    def delete(self, sha: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(sha))
        p = self.cache_dir / sha[:2] / sha[2:]
        p.unlink(missing_ok=True)

    def iter_ids(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=(self.prefix + "/") if self.prefix else "")
        hexdigits = set("0123456789abcdef")
        for page in pages:
            for obj in page.get("Contents", []):
                tail = obj["Key"][len(self.prefix) + 1:] if self.prefix else obj["Key"]
                head, _, rest = tail.partition("/")
                sha = head + rest
                if len(head) == 2 and len(sha) == 64 and set(sha) <= hexdigits:
                    yield sha


__all__ = ["S3BlobStore", "parse_s3_url", "CHUNK"]

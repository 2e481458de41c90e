"""The BlobStore contract, run on every backend: a local folder and S3 (a real S3-protocol server,
tests/storage/servers.py)."""

import hashlib
import os
import time

import pytest

from modelfab.errors import IntegrityError, InvalidInput, NotFound
from modelfab.storage.blobs import LocalBlobStore, open_blob_store

BACKENDS = ["local", "s3"]


class Backend:
    """A store plus the test's back door into it (to change stored content behind its back)."""

    def __init__(self, request, tmp_path, kind):
        self.kind = kind
        if kind == "local":
            self.store = open_blob_store("blobs", tmp_path)
        else:
            self.store = open_blob_store(request.getfixturevalue("s3_url"), tmp_path)
            self.raw = request.getfixturevalue("s3_server").client()

    def tamper(self, sha, data: bytes) -> None:
        if self.kind == "local":
            self.store.local_path(sha).write_bytes(data)
        else:
            self.raw.put_object(Bucket=self.store.bucket, Key=self.store._key(sha), Body=data)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    return Backend(request, tmp_path, request.param)


@pytest.fixture
def store(backend):
    return backend.store


def test_put_get_roundtrip_is_content_addressed(store, tmp_path):
    data = b"vibration" * 1000
    sha = store.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.get_bytes(sha) == data
    with store.open(sha) as fh:
        assert fh.read() == data
    f = tmp_path / "x.bin"
    f.write_bytes(data)
    assert store.put_file(f) == sha  # same content, same id, stored once
    assert list(store.iter_ids()) == [sha]
    assert store.info(sha).size == len(data) and abs(store.info(sha).modified - time.time()) < 120
    assert store.copy_to(sha, tmp_path / "out" / "y.bin").read_bytes() == data
    local = store.local_path(sha)
    assert local.read_bytes() == data
    if isinstance(store, LocalBlobStore):
        assert not any((store.root / ".tmp").iterdir())
    else:
        assert local.is_relative_to(tmp_path / "cache" / "blobs")


def test_list_many_and_delete(store):
    shas = {store.put_bytes(f"blob {i}".encode()) for i in range(30)}
    assert set(store.iter_ids()) == shas
    victim = sorted(shas)[0]
    store.delete(victim)
    assert not store.exists(victim)
    assert set(store.iter_ids()) == shas - {victim}
    store.delete(victim)  # deleting a missing blob is not an error
    with pytest.raises(NotFound):
        store.get_bytes(victim)


def test_tampered_blob_is_refused(backend, store, tmp_path):
    sha = store.put_bytes(b"good model")
    backend.tamper(sha, b"evil model")
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        store.get_bytes(sha)
    with pytest.raises(IntegrityError):
        store.copy_to(sha, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists() and not list(tmp_path.glob("out.bin*"))
    with pytest.raises(IntegrityError):
        with store.open(sha) as fh:
            while fh.read(3):
                pass


def test_missing_and_malformed_ids(store, tmp_path):
    for call in (store.get_bytes, store.open, store.info, store.local_path,
                 lambda s: store.copy_to(s, tmp_path / "o")):
        with pytest.raises(NotFound):
            call("0" * 64)
    with pytest.raises(NotFound, match="64 hex"):
        store.get_bytes("../../etc/passwd")
    assert store.exists("../x") is False
    assert store.exists("0" * 64) is False


def test_large_file_roundtrip(backend, store, tmp_path, monkeypatch):
    """12 MiB through the store; on S3 with a 5 MiB multipart threshold it must go up in parts."""
    if backend.kind == "s3":
        monkeypatch.setenv("MODELFAB_S3_MULTIPART_THRESHOLD", str(5 * 2**20))
        monkeypatch.setenv("MODELFAB_S3_MULTIPART_CHUNKSIZE", str(5 * 2**20))
        store = open_blob_store(store.url, tmp_path)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 2**20 + 123))
    sha = store.put_file(big)
    assert store.info(sha).size == big.stat().st_size
    if backend.kind == "s3":
        etag = backend.raw.head_object(Bucket=store.bucket, Key=store._key(sha))["ETag"]
        assert etag.strip('"').endswith("-3"), etag  # three parts: 5 + 5 + 2 MiB
    out = store.copy_to(sha, tmp_path / "back.bin")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha


def test_reuse_of_an_old_blob_resets_its_age(store, monkeypatch):
    """Storing content that is already there (and older than the refresh age) makes it young again, so that
    `gc --min-age` cannot delete a blob a writer is about to reference."""
    sha = store.put_bytes(b"old leftover")
    before = store.info(sha).modified
    time.sleep(1.1)
    store.put_bytes(b"old leftover")
    assert store.info(sha).modified == before  # young blobs are left alone
    monkeypatch.setattr("modelfab.storage.blobs.REFRESH_AFTER_S", -1)
    monkeypatch.setattr("modelfab.storage.s3.REFRESH_AFTER_S", -1)
    store.put_bytes(b"old leftover")
    assert store.info(sha).modified >= before + 1
    assert store.get_bytes(sha) == b"old leftover"


def test_bad_urls_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="s3://BUCKET"):
        open_blob_store("ftp://x/y", tmp_path)
    with pytest.raises(InvalidInput, match="credentials"):
        open_blob_store("s3://key:secret@bucket/p", tmp_path)
    assert isinstance(open_blob_store(f"file://{tmp_path}/b", tmp_path), LocalBlobStore)

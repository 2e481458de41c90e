import hashlib

import pytest

from modelfab.errors import IntegrityError, NotFound
from modelfab.storage.blobs import LocalBlobStore


@pytest.fixture
def store(tmp_path):
    return LocalBlobStore(tmp_path / "blobs")


def test_put_get_roundtrip_is_content_addressed(store, tmp_path):
    data = b"vibration" * 1000
    sha = store.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.get_bytes(sha) == data
    f = tmp_path / "x.bin"
    f.write_bytes(data)
    assert store.put_file(f) == sha  # same content, same id, stored once
    assert list(store.iter_ids()) == [sha]
    assert not any((store.root / ".tmp").iterdir())


def test_tampered_blob_is_refused(store, tmp_path):
    sha = store.put_bytes(b"good model")
    store.local_path(sha).write_bytes(b"evil model")
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        store.get_bytes(sha)
    with pytest.raises(IntegrityError):
        store.copy_to(sha, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_missing_and_malformed_ids(store):
    with pytest.raises(NotFound):
        store.get_bytes("0" * 64)
    with pytest.raises(NotFound, match="64 hex"):
        store.get_bytes("../../etc/passwd")
    assert store.exists("../x") is False


def test_delete(store):
    sha = store.put_bytes(b"a")
    store.delete(sha)
    assert not store.exists(sha)

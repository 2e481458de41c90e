import threading

import pytest
import sqlalchemy as sa

from modelfab.errors import NotFound, WorkspaceError
from modelfab.storage import tables
from modelfab.storage.metadata import MetadataStore, sqlite_url


@pytest.fixture
def meta(tmp_path):
    m = MetadataStore(sqlite_url(tmp_path / "m.db"))
    m.upgrade()
    yield m
    m.close()


def _ds(meta, name="d", content="c" * 64):
    return meta.add_dataset(name=name, kind="table", content_sha=content, data_sha="a" * 64, source_name="f.csv",
                            n_rows=1, n_cols=1, schema={}, stats={}, options={}, created_by="t", refs=[])


def test_migrations_create_exactly_the_declared_schema(meta):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with meta.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode(meta):
    with meta.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_versions_increase_per_name(meta):
    assert _ds(meta)["version"] == 1
    assert _ds(meta, content="d" * 64)["version"] == 2
    assert _ds(meta, name="other")["version"] == 1
    assert meta.get_dataset("d")["version"] == 2
    assert meta.get_dataset("d", 1)["content_sha"] == "c" * 64
    with pytest.raises(NotFound):
        meta.get_dataset("d", 3)


def test_concurrent_writers_get_distinct_versions(meta):
    results, errors = [], []

    def work(i):
        try:
            results.append(_ds(meta, content=f"{i:064d}")["version"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == list(range(1, 13))


def test_blob_refs_recorded_with_the_row(meta):
    row = _ds(meta)
    assert meta.blob_refs(f"datasets:{row['id']}") == {"data": "a" * 64}
    assert meta.referenced_blobs() == {"a" * 64}


def test_schema_older_or_newer_is_refused_with_advice(tmp_path):
    m = MetadataStore(sqlite_url(tmp_path / "x.db"))
    with pytest.raises(WorkspaceError, match="no schema"):
        m.check_schema()
    m.upgrade()
    m.check_schema()
    with m.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num='9999'"))
    with pytest.raises(WorkspaceError, match="newer modelfab"):
        m.check_schema()


def test_tokens_and_jobs(meta):
    tid = meta.add_token("ci", "h" * 64, "predict", None)
    assert meta.get_token("h" * 64)["scope"] == "predict"
    meta.revoke_token(tid)
    assert meta.get_token("h" * 64)["revoked_at"]
    with pytest.raises(NotFound):
        meta.revoke_token(tid)
    jid = meta.create_job("train", {"budget": 5})
    meta.update_job(jid, state="running", progress=0.5)
    job = meta.get_job(jid)
    assert (job["state"], job["progress"], job["params"]) == ("running", 0.5, {"budget": 5})

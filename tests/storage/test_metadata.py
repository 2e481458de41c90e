import threading

import pytest
import sqlalchemy as sa

from modelfab.errors import NotFound, WorkspaceError
from modelfab.storage import tables
from modelfab.storage.metadata import MetadataStore, sqlite_url


# The MetadataStore contract, run on every backend: SQLite (a file) and PostgreSQL (a real server,
# tests/storage/servers.py). Tests that are about one backend say so in their name.
BACKENDS = ["sqlite", "postgresql"]


def _url(request, tmp_path, backend: str) -> str:
    return sqlite_url(tmp_path / "m.db") if backend == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture(params=BACKENDS)
def meta(request, tmp_path):
    m = MetadataStore(_url(request, tmp_path, request.param))
    m.upgrade()
    yield m
    m.close()


@pytest.fixture
def sqlite_meta(tmp_path):
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


def test_sqlite_runs_in_wal_mode(sqlite_meta):
    with sqlite_meta.engine.connect() as conn:
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_schema_older_or_newer_is_refused_with_advice(request, tmp_path, backend):
    from alembic import command

    from modelfab.storage.metadata import _alembic_config

    m = MetadataStore(_url(request, tmp_path, backend))
    with pytest.raises(WorkspaceError, match="no schema"):
        m.check_schema()
    with m.engine.begin() as conn:  # an old workspace: the first schema only
        command.upgrade(_alembic_config(conn), "0001")
    with pytest.raises(WorkspaceError, match="run `modelfab migrate`") as err:
        m.check_schema()
    assert "0001" in str(err.value)
    m.upgrade()
    m.check_schema()
    with m.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num='9999'"))
    with pytest.raises(WorkspaceError, match="newer modelfab"):
        m.check_schema()
    m.close()


def test_json_server_defaults_and_ids_roundtrip(meta):
    row = meta.add_dataset(name="ü-data", kind="table", content_sha="c" * 64, data_sha="a" * 64, source_name="f.csv",
                           n_rows=10**10, n_cols=2, schema={"columns": [{"name": "温度", "kind": "numeric"}]},
                           stats={"x": {"mean": 1.5, "counts": {"a": 1}, "none": None}}, options={"flag": True},
                           created_by="t", refs=[])
    got = meta.get_dataset("ü-data")
    assert got["schema"]["columns"][0]["name"] == "温度" and got["n_rows"] == 10**10
    assert got["stats"]["x"] == {"mean": 1.5, "counts": {"a": 1}, "none": None} and got["options"] == {"flag": True}
    assert meta.get_dataset_by_id(row["id"])["name"] == "ü-data"
    with meta.engine.begin() as conn:  # columns left out take the schema's server defaults
        jid = conn.execute(tables.jobs.insert().values(kind="k", state="queued", params={}, created_at="t",
                                                       updated_at="t")).inserted_primary_key[0]
        mid = conn.execute(tables.models.insert().values(name="m", version=1, task="t", package_sha="p" * 64,
                                                         manifest={}, metrics={}, created_at="t", created_by="u")
                           ).inserted_primary_key[0]
    job = meta.get_job(jid)
    assert (job["progress"], job["message"]) == (0.0, "")
    assert meta.get_model("m")["stage"] == "none" and mid >= 1
    nan = meta.add_model(name="nan", task="t", dataset_id=None, package_sha="q" * 64, manifest={"score": float("inf")},
                         metrics={"primary": {"validation_score": float("nan")}, "ok": 1.0}, created_by="u", refs=[])
    got = meta.get_model("nan")  # PostgreSQL's json refuses NaN: both backends store null
    assert got["metrics"] == {"primary": {"validation_score": None}, "ok": 1.0} and got["manifest"] == {"score": None}
    assert nan["version"] == 1
    ids = [meta.create_job("k", {}) for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3 and ids[0] > jid


def test_concurrent_promotions_leave_one_production_version(meta):
    rows = [meta.add_model(name="m", task="t", dataset_id=None, package_sha=f"{i:064d}", manifest={}, metrics={},
                           created_by="u", refs=[]) for i in range(6)]
    barrier = threading.Barrier(len(rows))
    errors = []

    def promote(row):
        try:
            barrier.wait()
            meta.set_model_stage(row["id"], "production", archive_others_of="m")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(r,)) for r in rows]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(meta.models_in_stage("production")) == 1


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


def _model(meta, name="m", i=0):
    return meta.add_model(name=name, task="t", dataset_id=None, package_sha=f"{i:064d}", manifest={}, metrics={},
                          created_by="t", refs=[])


def test_aliases_set_move_resolve_list_remove(meta):
    from modelfab.errors import NotFound

    v1, v2, other = _model(meta, i=1), _model(meta, i=2), _model(meta, name="o", i=3)
    new = meta.set_alias("m", "champion", v1["id"], set_by="ann")
    assert (new["version"], new["previous_version"], new["set_by"]) == (1, None, "ann")
    assert meta.resolve_alias("m", "champion")["id"] == v1["id"]
    moved = meta.set_alias("m", "champion", v2["id"], set_by="bob")
    assert (moved["version"], moved["previous_version"]) == (2, 1)
    assert meta.resolve_alias("m", "champion")["version"] == 2
    meta.set_alias("m", "line3-current", v1["id"], set_by="ann")
    meta.set_alias("o", "champion", other["id"], set_by="ann")  # the same alias of another name is another alias
    assert [(a["name"], a["alias"], a["version"], a["set_by"]) for a in meta.list_aliases()] == [
        ("m", "champion", 2, "bob"), ("m", "line3-current", 1, "ann"), ("o", "champion", 1, "ann")]
    assert [a["alias"] for a in meta.list_aliases("o")] == ["champion"]
    with pytest.raises(NotFound, match="aliases of 'm': champion, line3-current"):
        meta.resolve_alias("m", "nope")
    with pytest.raises(NotFound):  # an alias points at a version of its own name only
        meta.set_alias("m", "x", other["id"], set_by="ann")
    assert meta.remove_alias("m", "champion")["version"] == 2
    with pytest.raises(NotFound, match="aliases of 'm': line3-current"):
        meta.remove_alias("m", "champion")
    with pytest.raises(NotFound, match="aliases of 'zz': none"):
        meta.resolve_alias("zz", "champion")
    with pytest.raises(sa.exc.IntegrityError):  # the schema itself refuses a second (name, alias) row
        with meta.engine.begin() as conn:
            conn.execute(tables.model_aliases.insert(), [
                {"name": "m", "alias": "line3-current", "model_id": v2["id"], "set_by": "x", "set_at": "now"}])


def test_concurrent_alias_moves_leave_one_row(meta):
    rows = [_model(meta, i=i) for i in range(6)]
    errors = []

    def work(row):
        try:
            meta.set_alias("m", "champion", row["id"], set_by="t")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in rows]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(meta.list_aliases("m")) == 1
    assert meta.resolve_alias("m", "champion")["id"] in {r["id"] for r in rows}


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_of_an_older_schema_load_into_it(request, tmp_path, backend):
    """Restoring an older backup: the database is at the backup's schema, which lacks later tables."""
    from alembic import command

    from modelfab.storage import snapshot as snap
    from modelfab.storage.metadata import _alembic_config

    m = MetadataStore(_url(request, tmp_path, backend))
    with m.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002")
    snap.ensure_empty(m)
    counts = snap.load_rows(m, {"tokens": iter([{"id": 7, "name": "a", "token_hash": "h" * 64, "scope": "predict",
                                                  "created_at": "now"}])})
    assert counts["tokens"] == 1 and "model_aliases" not in counts
    m.upgrade()
    assert m.list_aliases() == []
    m.close()

"""backup / restore / gc / migrate-storage on real workspaces (SQLite + folder, PostgreSQL + S3 servers)."""

import hashlib
import json
import os
import threading
import time

import pandas as pd
import pytest

from modelfab.backup import backup, gc, restore
from modelfab.errors import Conflict, IntegrityError
from modelfab.storage import snapshot as snap
from modelfab.workspace import Workspace
from tests.conftest import cli_json, run_cli


def state(ws):
    """Everything that makes a workspace: every row of every table, and every referenced blob's content hash."""
    with ws.meta.engine.connect() as conn:
        rows = {tb.name: sorted(json.dumps(r, sort_keys=True) for r in snap.iter_rows(conn, tb))
                for tb in snap.table_order()}
        refs = snap.referenced(conn)
    blobs = {sha: hashlib.sha256(ws.blobs.get_bytes(sha)).hexdigest() for sha in refs}
    assert all(k == v for k, v in blobs.items())
    return rows, blobs


@pytest.fixture(scope="module")
def source(flaml_loaded, trained, tmp_path_factory):
    """A private copy of the session's trained workspace (made with backup + restore) plus a token and a job."""
    ws, _model = trained
    tmp = tmp_path_factory.mktemp("ops")
    backup(ws, tmp / "seed-backup")
    restore(tmp / "seed-backup", tmp / "src")
    src = Workspace.open(tmp / "src")
    src.create_token("ops", "predict")
    src.model("factory:1").set_alias("champion")  # aliases are rows of their own table: backed up too
    src.meta.create_job("train", {"budget": 1})
    assert state(src)[0]["models"] == state(ws)[0]["models"] and state(src)[1] == state(ws)[1]
    yield src
    src.close()


def test_restore_gives_an_identical_workspace(source, factory_csv, tmp_path):
    res = cli_json("backup", str(tmp_path / "bk"), "-w", str(source.root))
    assert res["blobs"] >= 3 and res["rows"]["models"] == 1
    cli_json("restore", str(tmp_path / "bk"), str(tmp_path / "copy"))
    with Workspace.open(tmp_path / "copy") as copy:
        assert state(copy) == state(source)
        rows = pd.read_csv(factory_csv).head(50)
        a = source.model("factory").predict(rows)
        b = copy.model("factory@champion").predict(rows)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_backup_while_writing_is_a_consistent_snapshot(source, tmp_path):
    base = pd.DataFrame({"x": range(200), "y": [i % 3 for i in range(200)]})
    stop = threading.Event()
    written = []

    def writer():
        i = 0
        while not stop.is_set() and i < 40:
            f = tmp_path / f"w{i}.csv"
            base.assign(x=base.x + i).to_csv(f, index=False)
            written.append(source.import_table(f, name="busy").dataset.version)
            i += 1

    th = threading.Thread(target=writer)
    th.start()
    try:
        while not written:
            time.sleep(0.05)
        backup(source, tmp_path / "bk")
    finally:
        stop.set()
        th.join()
    assert len(written) >= 2
    restore(tmp_path / "bk", tmp_path / "copy")
    after_rows, after_blobs = state(source)
    with Workspace.open(tmp_path / "copy") as copy:
        rows, blobs = state(copy)
        busy = [d for d in copy.datasets() if d.name == "busy"]
        assert busy and [d.version for d in busy] == list(range(1, len(busy) + 1))  # a prefix, no holes
        for d in busy:
            assert len(copy.load_frame(d)) == 200  # every row's blobs came along and verify
    for table, got in rows.items():  # the snapshot is a subset of what exists now, row for row
        assert set(got) <= set(after_rows[table]), table
    assert blobs.items() <= after_blobs.items()


def test_restore_checks_everything_first(source, tmp_path):
    backup(source, tmp_path / "bk")
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    victim = manifest["blobs"][0]
    (tmp_path / "bk" / "blobs" / victim[:2] / victim[2:]).write_bytes(b"changed")
    proc = run_cli("restore", str(tmp_path / "bk"), str(tmp_path / "copy"), check=False)
    assert proc.returncode == IntegrityError.exit_code and "sha256" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "copy" / "workspace.json").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    backup(source, tmp_path / "bk2")
    with pytest.raises(Conflict, match="not empty"):
        restore(tmp_path / "bk2", tmp_path / "full")
    with pytest.raises(Conflict, match="not an empty folder"):
        backup(source, tmp_path / "full")


def test_gc_removes_only_unreferenced_old_blobs(source):
    old = source.blobs.put_bytes(b"left behind by a crashed import")
    young = source.blobs.put_bytes(b"an import still writing")
    t = time.time() - 2 * 86400
    os.utime(source.blobs.local_path(old), (t, t))
    referenced = source.meta.referenced_blobs()
    dry = cli_json("gc", "--dry-run", "-w", str(source.root))
    assert dry["ids"] == [old] and dry["removed"] == 0 and source.blobs.exists(old)
    res = cli_json("gc", "-w", str(source.root))
    assert res["removed"] == 1 and not source.blobs.exists(old) and source.blobs.exists(young)
    assert all(source.blobs.exists(s) for s in referenced)
    res = gc(source, min_age_s=0)
    assert res["ids"] == [young] and not source.blobs.exists(young)
    assert all(source.blobs.exists(s) for s in referenced)
    source.model("factory").predictor  # still loads and verifies


def test_migrate_storage_to_postgres_and_s3(source, postgres_url, s3_url, tmp_path):
    backup(source, tmp_path / "bk")
    restore(tmp_path / "bk", tmp_path / "ws")
    with Workspace.open(tmp_path / "ws") as ws:
        before = state(ws)
    res = cli_json("migrate-storage", "--db", postgres_url, "--blobs", s3_url, "-w", str(tmp_path / "ws"))
    assert res["blobs_copied"] == len(before[1])
    config = json.loads((tmp_path / "ws" / "workspace.json").read_text())
    assert config["db"].startswith("postgresql://") and config["blobs"] == s3_url
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.meta.dialect == "postgresql" and ws.blobs.url == s3_url
        assert state(ws) == before
        ws.model("factory").predictor
        # new rows continue the id sequences; a second move into the same (now full) database is refused
        old_ids = [j["id"] for j in ws.meta.list_jobs()]
        assert ws.meta.create_job("after", {}) > max(old_ids)  # would collide if the sequence were not moved on
        orphan = ws.blobs.put_bytes(b"orphan on s3")
        assert gc(ws, min_age_s=0)["ids"] == [orphan]
        assert all(ws.blobs.exists(s) for s in before[1])
        after = state(ws)
        backup(ws, tmp_path / "bk-pg")  # a PostgreSQL snapshot + S3 blobs back into SQLite + a folder
    restore(tmp_path / "bk-pg", tmp_path / "back")
    with Workspace.open(tmp_path / "back") as back:
        assert back.meta.dialect == "sqlite" and state(back) == after
    proc = run_cli("migrate-storage", "--db", postgres_url, "-w", str(tmp_path / "ws"), check=False)
    assert proc.returncode != 0 and "not empty" in proc.stderr

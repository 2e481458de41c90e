"""What an IT admin meets: passwords never stored or printed, storage failures said in one line with an exit
code (real PostgreSQL, S3 and SQLite; no mocks), backups of old schemas, no debris after a failed backup/restore."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from modelfab.workspace import Workspace
from tests.conftest import run_cli
from tests.storage.servers import PostgresServer, free_port


@contextlib.contextmanager
def _tmpfs(mnt: Path, size: str, why: str):
    """A small tmpfs at ``mnt`` for the test (a real full or read-only disk), unmounted after; skipped without root
    (``why`` says what root is needed for) or where mounting is not allowed."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to mount {why}")
    mnt.mkdir(exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _fails(*args, env=None, code=None, timeout=180):
    proc = run_cli(*args, env=env, check=False, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    if code is not None:
        assert proc.returncode == code, (proc.returncode, out)
    assert "internal error" not in out and "Traceback" not in out, out
    assert len(proc.stderr.strip().splitlines()) <= 3, out  # one message (rich may wrap it)
    return " ".join(out.split())


# -- 1. passwords ---------------------------------------------------------------------------------------------
def test_public_db_url_drops_the_password():
    from modelfab.storage.metadata import masked_db_url, public_db_url

    assert public_db_url("postgresql://mf:secret@db.local:5432/modelfab") == "postgresql://mf@db.local:5432/modelfab"
    assert "secret" not in masked_db_url("postgresql://mf:secret@db.local/x")
    # libpq's other way: a password query parameter
    q = "postgresql://mf@db.local/x?password=secret&sslmode=disable"
    assert public_db_url(q) == "postgresql://mf@db.local/x?sslmode=disable"
    assert masked_db_url(q) == "postgresql://mf@db.local/x?password=***&sslmode=disable"


def test_a_password_in_the_url_is_refused_and_never_written_or_printed(tmp_path, postgres_url, trained):
    with_pw = postgres_url.replace("postgresql://modelfab@", "postgresql://modelfab:secret@")
    out = _fails("init", str(tmp_path / "ws"), "--db", with_pw, code=2)
    assert "secret" not in out and "MODELFAB_DB_PASSWORD" in out and "***" in out
    assert not (tmp_path / "ws").exists()
    out = _fails("init", str(tmp_path / "ws"), "--db", postgres_url + "?password=secret", code=2)
    assert "secret" not in out and not (tmp_path / "ws").exists()
    # restore and migrate-storage record the URL too
    ws, _ = trained
    run_cli("backup", str(tmp_path / "bk"), "-w", str(ws.root))
    out = _fails("restore", str(tmp_path / "bk"), str(tmp_path / "copy"), "--db", with_pw, "--json", code=2)
    assert "secret" not in out and not (tmp_path / "copy").exists()
    run_cli("init", str(tmp_path / "small"))
    out = _fails("migrate-storage", "--db", with_pw, "-w", str(tmp_path / "small"), code=2)
    assert "secret" not in out
    # the documented way: the URL without it, the password in MODELFAB_DB_PASSWORD
    proc = run_cli("init", str(tmp_path / "ok"), "--db", postgres_url, env={"MODELFAB_DB_PASSWORD": "secret"})
    assert "secret" not in proc.stdout + (tmp_path / "ok" / "workspace.json").read_text()


def test_init_on_an_existing_sqlite_workspace_refuses_another_db(tmp_path, postgres_url):
    run_cli("init", str(tmp_path / "ws"))
    out = _fails("init", str(tmp_path / "ws"), "--db", postgres_url, code=5)
    assert "already a SQLite workspace" in out and "migrate-storage" in out
    assert json.loads((tmp_path / "ws" / "workspace.json").read_text())["db"] == "sqlite:///metadata.db"
    run_cli("init", str(tmp_path / "ws"))  # the same again is fine


# -- 4. storage failures as one-line errors -----------------------------------------------------------------
@pytest.fixture(scope="module")
def pw_server():
    """A PostgreSQL server of its own that asks role 'mf' for a password (scram-sha-256)."""
    import psycopg

    server = PostgresServer().start()
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=modelfab dbname=postgres", autocommit=True) as c:
        c.execute("CREATE ROLE mf LOGIN PASSWORD 'right-one'")
        c.execute("CREATE DATABASE mfdb OWNER mf")
        hba = server.dir / "data" / "pg_hba.conf"
        hba.write_text("host all mf 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        c.execute("SELECT pg_reload_conf()")
    yield server
    server.stop()


def test_postgres_password_missing_wrong_and_unreachable(pw_server, tmp_path):
    url = f"postgresql://mf@127.0.0.1:{pw_server.port}/mfdb"
    env = {"PGPASSWORD": "", "MODELFAB_DB_PASSWORD": "", "PGPASSFILE": str(tmp_path / "none")}
    out = _fails("init", str(tmp_path / "a"), "--db", url, env=env, code=5)
    assert "wants a password" in out and "MODELFAB_DB_PASSWORD" in out
    out = _fails("init", str(tmp_path / "b"), "--db", url, env=dict(env, MODELFAB_DB_PASSWORD="wrong-one"), code=5)
    assert "refused the password" in out and "wrong-one" not in out
    out = _fails("init", str(tmp_path / "c"), "--db", f"postgresql://mf@127.0.0.1:{free_port()}/mfdb", code=5)
    assert "Cannot reach the metadata database" in out
    assert not any((tmp_path / d).exists() for d in "abc")  # nothing half-made left behind
    run_cli("init", str(tmp_path / "d"), "--db", url, env=dict(env, MODELFAB_DB_PASSWORD="right-one"))
    out = _fails("data", "list", "-w", str(tmp_path / "d"), env=env, code=5)  # the password is not stored
    assert "wants a password" in out


def test_s3_endpoint_down_no_credentials_bad_bucket(s3_server, tmp_path):
    env = {"MODELFAB_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}
    out = _fails("init", str(tmp_path / "a"), "--blobs", "s3://mf-bucket/ws", env=env, code=5)
    assert "Cannot reach the S3 endpoint" in out
    nokeys = {"MODELFAB_S3_ENDPOINT": s3_server.endpoint, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
              "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
              "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    out = _fails("init", str(tmp_path / "b"), "--blobs", "s3://mf-bucket/ws", env=nokeys, code=5)
    assert "No S3 credentials" in out and "AWS_ACCESS_KEY_ID" in out
    keys = {"MODELFAB_S3_ENDPOINT": s3_server.endpoint, "AWS_ACCESS_KEY_ID": "modelfab-test",
            "AWS_SECRET_ACCESS_KEY": "modelfab-test-secret", "AWS_DEFAULT_REGION": "us-east-1"}
    for i, bucket in enumerate(("Bad_Bucket!", "ab")):  # refused by the client / by the server (InvalidBucketName)
        out = _fails("init", str(tmp_path / f"c{i}"), "--blobs", f"s3://{bucket}/ws", env=keys, code=2)
        assert "Invalid S3 bucket name" in out and "3-63 lowercase" in out


@pytest.mark.parametrize("damage", ["not-a-database", "malformed"])
def test_corrupted_sqlite_is_said_so(tmp_path, damage):
    run_cli("init", str(tmp_path / "ws"))
    db = tmp_path / "ws" / "metadata.db"
    if damage == "not-a-database":
        db.write_bytes(b"this is not sqlite" * 1000)
    else:
        with sqlite3.connect(db) as c:  # checkpoint the WAL so every page is in the file, then hit the pages
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = bytearray(db.read_bytes())
        for page in range(1, len(data) // 4096):
            data[page * 4096: page * 4096 + 100] = b"\xff" * 100
        db.write_bytes(bytes(data))
    out = _fails("data", "list", "-w", str(tmp_path / "ws"), code=5)
    assert "damaged" in out and "restore" in out


def test_a_locked_database_error_has_no_sql_and_no_parameters(tmp_path):
    """SQLAlchemy puts the statement and its parameters (a token hash) into the message: never shown."""
    import sqlalchemy as sa

    from modelfab.storage.errors import translate

    path = tmp_path / "m.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE tokens (token_hash TEXT)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    with pytest.raises(sa.exc.OperationalError) as err:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO tokens VALUES (:h)"), {"h": "deadbeef" * 8})
    assert "deadbeef" in str(err.value)  # what would have leaked
    known = translate(err.value)
    assert known.code == "storage_busy" and "30 s" in known.message
    assert "deadbeef" not in str(known) and "INSERT" not in str(known)
    holder.rollback()
    holder.close()
    engine.dispose()


def test_disk_full_during_backup_is_said_and_leaves_nothing(tmp_path):
    import numpy as np
    import pandas as pd

    ws = Workspace.init(tmp_path / "ws")
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.random((40_000, 8)), columns=list("abcdefgh")).to_csv(tmp_path / "big.csv", index=False)
    ws.import_table(tmp_path / "big.csv", name="big")
    ws.close()
    with _tmpfs(tmp_path / "small", "256k", "a small tmpfs (a real full disk)") as small:
        out = _fails("backup", str(small / "bk"), "-w", str(tmp_path / "ws"), code=5)
        assert "disk is full" in out and "Free space" in out
        assert list(small.iterdir()) == []  # no bk.partial left to block a retry


# -- 6. backups of an older schema; no debris after a failed restore ------------------------------------------
def test_backup_of_an_older_schema_then_migrate(tmp_path):
    from alembic import command

    from modelfab.storage.metadata import _alembic_config

    run_cli("init", str(tmp_path / "ws"))
    ws = Workspace.open(tmp_path / "ws")
    ws.create_token("old", "predict")
    with ws.meta.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0002")
    ws.close()
    out = _fails("data", "list", "-w", str(tmp_path / "ws"), code=5)
    assert "Back it up, then run `modelfab migrate`" in out
    res = json.loads(run_cli("backup", str(tmp_path / "bk"), "-w", str(tmp_path / "ws"), "--json").stdout)
    assert res["schema"] == "0002" and res["rows"]["tokens"] == 1
    run_cli("restore", str(tmp_path / "bk"), str(tmp_path / "copy"))  # comes up to the current schema
    with Workspace.open(tmp_path / "copy") as copy:
        assert [t["name"] for t in copy.meta.list_tokens()] == ["old"]


def test_a_failed_restore_leaves_the_target_empty_for_a_retry(trained, tmp_path):
    ws, _ = trained
    run_cli("backup", str(tmp_path / "bk"), "-w", str(ws.root))
    (tmp_path / "target").mkdir()
    _fails("restore", str(tmp_path / "bk"), str(tmp_path / "target"), "--db",
           f"postgresql://mf@127.0.0.1:{free_port()}/x", code=5)
    assert list((tmp_path / "target").iterdir()) == []
    run_cli("restore", str(tmp_path / "bk"), str(tmp_path / "target"))
    assert (tmp_path / "target" / "workspace.json").is_file()


def test_settings_must_be_positive(monkeypatch):
    from modelfab.errors import InvalidInput
    from modelfab.settings import Settings

    for name in ("MODELFAB_MAX_REQUEST_BYTES", "MODELFAB_PREDICT_CHUNK_ROWS"):
        monkeypatch.setenv(name, "0" if "CHUNK" in name else "-1")
        with pytest.raises(InvalidInput, match=name):
            Settings.from_env()
        monkeypatch.delenv(name)


def test_tokens_need_a_name_and_can_expire(tmp_path):
    run_cli("init", str(tmp_path / "ws"))
    out = _fails("tokens", "create", "", "-w", str(tmp_path / "ws"), code=2)
    assert "needs a name" in out
    made = json.loads(run_cli("tokens", "create", "mes", "--expires-in", "30d", "-w", str(tmp_path / "ws"),
                              "--json").stdout)
    assert made["expires_at"] > "2026"
    listing = run_cli("tokens", "list", "-w", str(tmp_path / "ws")).stdout
    assert "expires" in listing and made["expires_at"][:10] in listing
    _fails("tokens", "create", "x", "--expires-in", "soon", "-w", str(tmp_path / "ws"), code=2)


def test_serve_checks_port_and_workers_before_anything(tmp_path):
    run_cli("init", str(tmp_path / "ws"))
    out = _fails("serve", "--port", "80000", "-w", str(tmp_path / "ws"), code=2)
    assert "--port must be 1..65535; got 80000" in out and "Serving" not in out
    out = _fails("serve", "--workers", "0", "-w", str(tmp_path / "ws"), code=2)
    assert "--workers" in out


def test_ipv6_urls_are_bracketed():
    from modelfab.cli.serve import http_url

    assert http_url("::1", 8000) == "http://[::1]:8000" and http_url("0.0.0.0", 80) == "http://0.0.0.0:80"


def test_module_sizes_stay_small():
    root = Path(__file__).resolve().parents[2] / "modelfab"
    for rel in ("serving/app.py", "storage/metadata.py", "storage/errors.py", "workspace.py", "backup.py"):
        assert len((root / rel).read_text().splitlines()) <= 520, rel


def test_a_read_only_workspace_reads_and_says_read_only_on_writes(tmp_path):
    with _tmpfs(tmp_path / "mnt", "16m", "a read-only tmpfs (file modes do not bind root)") as mnt:
        run_cli("init", str(mnt / "ws"))
        run_cli("tokens", "create", "kept", "-w", str(mnt / "ws"))
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        assert "kept" in run_cli("tokens", "list", "-w", str(mnt / "ws")).stdout  # reading works
        run_cli("data", "list", "-w", str(mnt / "ws"))
        out = _fails("tokens", "create", "new", "-w", str(mnt / "ws"), code=5)
        assert "read-only" in out and "Cannot read" not in out


def test_a_busy_port_is_said_before_any_banner(tmp_path):
    import socket

    run_cli("init", str(tmp_path / "ws"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        proc = run_cli("serve", "--port", str(s.getsockname()[1]), "-w", str(tmp_path / "ws"), check=False)
    assert proc.returncode == 4 and "Cannot listen" in proc.stderr, proc.stderr
    assert "Serving" not in proc.stdout


def test_disk_full_during_import_is_said(tmp_path):
    import numpy as np
    import pandas as pd

    pd.DataFrame(np.random.default_rng(0).random((40_000, 8)), columns=list("abcdefgh")).to_csv(
        tmp_path / "big.csv", index=False)
    with _tmpfs(tmp_path / "mnt", "600k", "a small tmpfs (a real full disk)") as mnt:
        run_cli("init", str(mnt / "ws"))
        out = _fails("data", "import", str(tmp_path / "big.csv"), "--name", "big", "-w", str(mnt / "ws"), code=5)
        assert "disk is full" in out
        with Workspace.open(mnt / "ws") as ws:
            assert ws.datasets() == []


def test_a_folder_that_cannot_be_written_is_said_in_one_line():
    import errno

    from modelfab.storage.errors import translate

    for code, says in ((errno.EROFS, "is on a read-only file system"), (errno.EACCES, "may not be written")):
        err = translate(OSError(code, os.strerror(code), "ro/new"))
        assert err is not None and err.message.startswith(f"ro/new {says}") and err.exit_code == 5
    assert translate(OSError(errno.ENOENT, "No such file", "x")) is None  # not this kind of failure


def test_an_output_path_under_a_file_is_said_not_an_internal_error(tmp_path):
    """`report -o afile.csv/r.html` and `models export -o afile.csv/x.mfpkg` gave "internal error: FileExistsError ...
    report it"."""
    import errno

    from modelfab.storage.errors import path_error, translate

    (tmp_path / "afile.csv").write_text("x")
    try:
        (tmp_path / "afile.csv" / "sub").mkdir(parents=True)
    except OSError as exc:
        err = path_error(exc)
        assert translate(exc) is None  # the server's translation never shows a path of its own
    assert err is not None and "afile.csv" in err.message and "Give another path" in err.hint
    assert path_error(OSError(errno.EISDIR, "Is a directory", str(tmp_path))).message.startswith("Cannot use the path")
    proc = run_cli("init", str(tmp_path / "afile.csv" / "ws"), check=False)
    assert proc.returncode != 0 and "internal error" not in proc.stderr and "Traceback" not in proc.stderr

"""Real storage servers for tests, started once per test session on localhost.

- PostgreSQL from the Debian server binaries (``apt-get install postgresql``; found under
  /usr/lib/postgresql/*/bin or on PATH): ``initdb`` in a temp dir, ``postgres`` on a free port.
  PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` (else ``nobody``) user.
- An S3-protocol server: moto's server (``python -m moto.server``; pip package ``moto``, installed with
  ``modelfab[s3]``). Chosen because it installs from PyPI with pip alone (MinIO's server is a Go binary
  that is not on PyPI or in Debian), starts in about a second and speaks real S3 over HTTP, multipart
  uploads included.

A server that cannot start FAILS the test with the reason; nothing is skipped silently.

Fixtures (registered for every test through ``pytest_plugins`` in tests/conftest.py):

- ``postgres_url``: a fresh, empty database on the session's server, e.g. ``postgresql://modelfab@127.0.0.1:PORT/t_ab12``
- ``s3_url``: a fresh, empty bucket ``s3://BUCKET/ws``; sets MODELFAB_S3_ENDPOINT and AWS_* in
  ``os.environ`` for the test (CLI subprocesses started with ``run_cli`` inherit them)
- ``pg_server`` / ``s3_server``: the session servers (``.admin_url`` / ``.endpoint``)
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

S3_ENV = {"AWS_ACCESS_KEY_ID": "modelfab-test", "AWS_SECRET_ACCESS_KEY": "modelfab-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


class PostgresServer:
    """``initdb`` + ``postgres`` in a temp dir; ``admin_url`` connects to the ``postgres`` database."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable  # tests run with fsync off (speed); the benchmark with PostgreSQL's defaults
        self.proc: subprocess.Popen | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="modelfab-pg-"))
        self.port = free_port()
        self.admin_url = f"postgresql://modelfab@127.0.0.1:{self.port}/postgres"
        self.bin_dir = ""

    def _as_user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        for name in ("postgres", "nobody"):
            try:
                pw = pwd.getpwnam(name)
                return {"user": pw.pw_uid, "group": pw.pw_gid}
            except KeyError:
                continue
        raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")

    def start(self) -> "PostgresServer":
        initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
        if not initdb or not postgres:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install -y postgresql; "
                               ".ci/run does this)")
        self.bin_dir = str(Path(postgres).parent)
        user = self._as_user()
        if user:
            os.chown(self.dir, user["user"], user["group"])
        data = self.dir / "data"
        log = self.dir / "server.log"
        proc = subprocess.run([initdb, "-D", str(data), "-A", "trust", "-U", "modelfab", "-E", "UTF8", "--no-sync",
                               "--locale=C"], capture_output=True, text=True, timeout=120, **user)
        if proc.returncode != 0:
            raise RuntimeError(f"initdb failed: {proc.stderr.strip()[-500:]}")
        with open(log, "wb") as fh:
            if user:
                os.chown(log, user["user"], user["group"])
            fast = [] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                            "-c", "full_page_writes=off"]
            self.proc = subprocess.Popen(
                [postgres, "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1", "-k", str(self.dir), *fast,
                 "-c", "max_connections=200", "-c", "shared_buffers=64MB"],
                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, **user)
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}): {log.read_text()[-800:]}")
            try:
                psycopg.connect(f"host=127.0.0.1 port={self.port} user=modelfab dbname=postgres",
                                connect_timeout=2).close()
                return self
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not accept connections within 60 s: {exc}") from None
                time.sleep(0.2)

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=modelfab dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://modelfab@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # "smart" shutdown; fast with fsync off
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class S3Server:
    """moto's S3 server in its own process on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="modelfab-s3-", suffix=".log")[1])

    def start(self) -> "S3Server":
        try:
            import moto  # noqa: F401
            import boto3  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(f"{exc.name} is not installed (pip install -e '.[s3]'; make install does it)") from None
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=dict(os.environ, **S3_ENV))
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited ({self.proc.returncode}): {self.log.read_text()[-800:]}")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=2).read()
                return self
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not answer within 60 s: {exc}") from None
                time.sleep(0.2)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - the reason is the test's failure message
        server.stop()
        pytest.fail(f"PostgreSQL test server could not start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    server = S3Server()
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001
        server.stop()
        pytest.fail(f"S3 test server could not start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(pg_server) -> str:
    """A new empty PostgreSQL database for this test."""
    return pg_server.new_database()


@pytest.fixture
def s3_url(s3_server, monkeypatch) -> str:
    """A new empty bucket; the S3 endpoint and test keys are put in the environment for this test."""
    monkeypatch.setenv("MODELFAB_S3_ENDPOINT", s3_server.endpoint)
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    bucket = "mf-" + uuid.uuid4().hex[:16]
    s3_server.client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}/ws"


STORAGE_BACKENDS = ["sqlite-local", "postgresql-s3"]


@pytest.fixture(params=STORAGE_BACKENDS)
def storage_backend(request) -> tuple[str, list[str]]:
    """(name, extra ``modelfab init`` arguments) for each storage backend: reuse it to run a flow on all of them,
    e.g. ``run_cli("init", str(root), *storage_backend[1])``."""
    if request.param == "sqlite-local":
        return request.param, []
    return request.param, ["--db", request.getfixturevalue("postgres_url"),
                           "--blobs", request.getfixturevalue("s3_url")]


@pytest.fixture(scope="session")
def flaml_loaded():
    """Import the AutoML library before a session fixture such as `trained` starts its budget clock: on a
    busy machine the first import alone can take most of 8 s (for tests about storage, not budgets;
    list it before `trained` in the test's arguments)."""
    import flaml.automl  # noqa: F401

"""Readiness and failures an operator sees: a changed model is not promoted and not claimed, /readyz says 503
when nothing can be served or the metadata database is down, every error is JSON (real servers, over HTTP)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from modelfab.errors import IntegrityError

from modelfab.workspace import Workspace
from tests.conftest import run_cli
from tests.serving.test_production import RECORD
from tests.storage.servers import PostgresServer


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def package(trained, tmp_path_factory) -> str:
    _ws, model = trained
    return str(model.export(tmp_path_factory.mktemp("pkg") / "factory.mfpkg"))


class Server:
    def __init__(self, root, port: int, *args: str, log_dir) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.out, self.err = log_dir / f"out-{port}.log", log_dir / f"err-{port}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "modelfab", "serve", *args, "--port", str(port),
                                      "-w", str(root)], env=dict(os.environ, COLUMNS="200"),
                                     stdout=open(self.out, "w"), stderr=open(self.err, "w"), text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.err.read_text()}"
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def _tamper(ws, row) -> None:
    blob = ws.blobs.local_path(ws.meta.blob_refs(f"models:{row['id']}")["file:preprocess.json"])
    blob.write_text(blob.read_text().replace("line", "lime"))
    shutil.rmtree(ws.cache_dir / "models" / row["package_sha"], ignore_errors=True)


def test_a_changed_version_is_not_promoted_nor_claimed_and_readyz_says_why(package, tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    m = ws.import_package(package)
    _tamper(ws, m.row)
    proc = run_cli("models", "promote", m.ref, "--stage", "production", "-w", str(ws.root), check=False)
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert "failed its integrity check" in proc.stderr and "preprocess.json" in proc.stderr
    assert ws.model(m.ref).stage == "none"

    with pytest.raises(IntegrityError):  # the Python call re-reads the files too
        m.promote("production")
    # changed after it was promoted: put it in production behind the checks' back
    ws.meta.set_model_stage(m.row["id"], "production", archive_others_of=m.name)
    server = Server(ws.root, _port(), log_dir=tmp_path)
    try:
        r = httpx.get(server.base + "/readyz")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "not_ready" and body["models"] == []
        assert body["error"]["code"] == "no_model" and "factory:1" in body["error"]["message"]
    finally:
        server.stop()
    banner = server.out.read_text()
    assert "Serving production models (none)" in banner and "Not serving factory:1" in banner
    assert "Serving production models (factory:1)" not in banner


@pytest.fixture
def own_pg():
    server = PostgresServer().start()
    yield server
    server.stop()


def test_postgres_stopped_while_serving_gives_json_503_and_readyz_503(package, own_pg, tmp_path):
    url = own_pg.new_database()
    run_cli("init", str(tmp_path / "ws"), "--db", url)
    ws = Workspace.open(tmp_path / "ws")
    m = ws.import_package(package)
    run_cli("models", "promote", m.ref, "-w", str(ws.root))
    _, token = ws.create_token("t")
    ws.close()
    server = Server(tmp_path / "ws", _port(), log_dir=tmp_path)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        assert httpx.post(server.base + "/v1/models/factory/predict", json={"records": [RECORD]},
                          headers=auth).status_code == 200
        assert httpx.get(server.base + "/readyz").status_code == 200
        own_pg.proc.send_signal(signal.SIGINT)  # "fast" shutdown, as pg_ctl stop does: clients are cut off
        own_pg.proc.wait(20)
        r = httpx.post(server.base + "/v1/models/factory/predict", json={"records": [RECORD]}, headers=auth,
                       timeout=30)
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert err["code"] == "storage_unavailable" and "metadata database" in err["message"] and err["hint"]
        time.sleep(2)  # past the readiness cache
        r = httpx.get(server.base + "/readyz", timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable", r.text
        time.sleep(3)  # the promotion follower fails a few times meanwhile
    finally:
        server.stop()
    lines = [ln for ln in server.out.read_text().splitlines() if ln.startswith("{")]
    errors = [json.loads(ln) for ln in lines if "error" in json.loads(ln)]
    assert errors and all("traceback" not in e for e in errors)
    assert any(e.get("error") == "storage_unavailable" and e.get("status") == 503 for e in errors)
    assert sum(1 for e in errors if e.get("event") == "refresh failed") <= 1  # said once, not every 2 s
    assert "Traceback" not in server.err.read_text() and "Traceback" not in server.out.read_text()


def test_unknown_routes_and_unreadable_json_have_the_error_shape(package, tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    m = ws.import_package(package)
    server = Server(ws.root, _port(), m.ref, "--no-auth", log_dir=tmp_path)
    try:
        r = httpx.get(server.base + "/v1/nothing-here")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found" and r.json()["error"]["hint"]
        r = httpx.get(server.base + "/v1/models/factory/predict")  # wrong method
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        headers = {"Content-Type": "application/json"}
        for body in ("[" * 100_000 + "]" * 100_000, '{"records": [{"x": ' + "7" * 100_000 + "}]}"):
            r = httpx.post(server.base + "/v1/models/factory/predict", content=body, headers=headers)
            assert r.status_code == 422, (r.status_code, r.text[:300])
            assert r.json()["error"]["code"] == "invalid_input"
    finally:
        server.stop()

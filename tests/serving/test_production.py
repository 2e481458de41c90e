"""Serving production models: promotion switches traffic live, a tampered version is refused, /metrics."""

import socket
import threading
import time

import httpx
import pytest

from modelfab.errors import IntegrityError
from modelfab.workspace import Workspace
from tests.conftest import start_server

RECORD = {"part_id": "P1", "timestamp": "2026-03-04 10:00", "line": "L3", "shift": "C", "material_batch": "MB-001",
          "temperature_c": 75.0, "pressure_bar": 5.9, "spindle_rpm": 1450, "humidity_pct": 40.0,
          "vibration_rms": 2.2, "tool_wear_pct": 90.0, "cycle_time_s": 35.0}


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_promotion_switches_without_dropping_requests(tmp_path, factory_csv):
    ws = Workspace.init(tmp_path / "ws")
    ds = ws.import_table(factory_csv, name="factory").dataset
    v1 = ws.train(ds, target="quality", budget=5)
    v2 = ws.train(ds, target="quality", budget=5, seed=1)
    v1.promote("production")
    _, token = ws.create_token("t")
    port = _port()
    proc = start_server(ws.root, port)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    try:
        assert httpx.get(base + "/readyz").json()["models"] == ["factory:1"]
        statuses, versions, stop = [], [], threading.Event()

        def hammer():
            with httpx.Client() as c:
                while not stop.is_set():
                    r = c.post(base + "/v1/models/factory/predict", json={"records": [RECORD]}, headers=auth)
                    statuses.append(r.status_code)
                    versions.append(r.json().get("version"))

        t = threading.Thread(target=hammer)
        t.start()
        time.sleep(1.0)
        v2.promote("production")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not versions or versions[-1] != 2):
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        t.join()
        assert set(statuses) == {200}, set(statuses)
        assert versions[0] == 1 and versions[-1] == 2
        assert ws.model("factory:1").stage == "archived"

        # a tampered version is refused; the previous one keeps serving
        v3 = ws.train(ds, target="quality", budget=5, seed=2)
        blob = ws.blobs.local_path(ws.meta.blob_refs(f"models:{v3.row['id']}")["file:preprocess.json"])
        blob.write_text(blob.read_text().replace("line", "lime"))
        import shutil

        shutil.rmtree(ws.cache_dir / "models" / v3.row["package_sha"], ignore_errors=True)  # force a load from blobs
        with pytest.raises(IntegrityError):  # promotion itself re-reads the files now
            v3.promote("production")
        # changed behind the checks' back after promotion: the server refuses it and keeps serving v2
        ws.meta.set_model_stage(v3.row["id"], "production", archive_others_of="factory")
        time.sleep(4)
        r = httpx.post(base + "/v1/models/factory/predict", json={"records": [RECORD]}, headers=auth)
        assert r.status_code == 200 and r.json()["version"] == 2

        metrics = httpx.get(base + "/metrics").text
        assert 'modelfab_requests_total{model="factory",status="200"}' in metrics
        assert "modelfab_request_seconds_bucket" in metrics
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_no_production_model_is_a_clear_error(tmp_path):
    Workspace.init(tmp_path / "ws")
    from tests.conftest import run_cli

    proc = run_cli("serve", "--workspace", str(tmp_path / "ws"), "--port", str(_port()), check=False)
    assert proc.returncode == 3 and "No model is in production" in proc.stderr

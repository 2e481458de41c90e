"""The REST server, started as a real process and called over HTTP."""

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained):
    ws, model = trained
    _, token = ws.create_token("tests", "predict")
    port = _free_port()
    env = dict(os.environ, MODELFAB_HOME=str(ws.root))
    proc = subprocess.Popen([sys.executable, "-m", "modelfab", "serve", "factory", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()}")
    else:
        proc.kill()
        raise AssertionError("server did not start within 60 s")
    yield base, token, ws
    proc.terminate()
    proc.wait(timeout=20)


RECORD = {"part_id": "P1", "timestamp": "2026-03-04 10:00", "line": "L3", "shift": "C", "material_batch": "MB-001",
          "temperature_c": 75.0, "pressure_bar": 5.9, "spindle_rpm": 1450, "humidity_pct": 40.0,
          "vibration_rms": 2.2, "tool_wear_pct": 90.0, "cycle_time_s": 35.0}


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_health_and_docs(server):
    base, token, _ = server
    assert httpx.get(base + "/healthz").json() == {"status": "ok"}
    assert httpx.get(base + "/docs").status_code == 200  # the API description is public ...
    spec = httpx.get(base + "/openapi.json").json()
    assert "/v1/models/{name}/predict" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert httpx.get(base + "/v1/models").status_code == 401  # ... the models and predictions are not


def test_the_api_page_works_without_internet(server):
    """/docs loads Swagger UI from this server, not from a CDN (a plant's server has no internet): the page names
    no outside address, its script and style are served without a token, and in a real browser that may reach
    nothing but the server the operations are drawn."""
    from pathlib import Path

    base, _, _ = server
    page = httpx.get(base + "/docs").text
    assert "https://" not in page and "http://" not in page.replace(base, "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        r = httpx.get(f"{base}/docs-assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 1000, asset
    assert httpx.get(base + "/docs-assets/..%2F..%2Fcore.py").status_code == 404
    assert httpx.get(base + "/docs-assets/core.py").status_code == 404
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium not installed (apt-get install chromium)")
    outside: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"])
        try:
            tab = browser.new_page()

            def only_the_server(route):
                if route.request.url.startswith(base):
                    return route.continue_()
                outside.append(route.request.url)
                return route.abort()

            tab.route("**/*", only_the_server)
            tab.goto(base + "/docs")
            tab.wait_for_selector(".opblock-summary-path", timeout=30_000)
            paths = tab.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert any("/v1/models/{name}/predict" in t for t in paths), paths
    assert not outside, outside


def test_predict_requires_a_valid_token(server):
    base, token, ws = server
    url = base + "/v1/models/factory/predict"
    assert httpx.post(url, json={"records": [RECORD]}).status_code == 401
    assert httpx.post(url, json={"records": [RECORD]}, headers=_auth("mf_wrong")).status_code == 401
    tid, other = ws.create_token("short-lived", "predict")
    assert httpx.post(url, json={"records": [RECORD]}, headers=_auth(other)).status_code == 200
    ws.meta.revoke_token(tid)
    r = httpx.post(url, json={"records": [RECORD]}, headers=_auth(other))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    bare = httpx.post(url, json={"records": [RECORD]}, headers={"Authorization": token})  # no 'Bearer '
    assert bare.status_code == 401 and "must read 'Bearer <token>'" in bare.json()["error"]["message"]


def test_predict_single_and_batch(server):
    base, token, _ = server
    url = base + "/v1/models/factory/predict"
    r = httpx.post(url, json={"records": [RECORD]}, headers=_auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "factory" and body["version"] == 1
    p = body["predictions"][0]
    assert p["prediction"] in ("ok", "defect")
    assert abs(sum(p["probabilities"].values()) - 1) < 1e-6
    assert p["confidence"] == p["probabilities"][str(p["prediction"])]  # every classifier row says it
    batch = [dict(RECORD, tool_wear_pct=float(i)) for i in range(200)]
    r = httpx.post(url, json={"records": batch}, headers=_auth(token))
    assert r.status_code == 200 and len(r.json()["predictions"]) == 200
    assert r.headers["x-request-id"]


@pytest.mark.parametrize("body,headers,status,pattern", [
    (b"{not json", {"Content-Type": "application/json"}, 422, "not valid JSON"),
    (json.dumps({"records": [RECORD]}).encode(), {"Content-Type": "text/plain"}, 415, "application/json"),
    (json.dumps({"records": []}).encode(), {"Content-Type": "application/json"}, 422, "non-empty"),
    (json.dumps({"records": [{**RECORD, "temperature_c": "hot"}]}).encode(), {"Content-Type": "application/json"}, 422, "temperature_c"),
    (json.dumps({"records": [{k: v for k, v in RECORD.items() if k != "line"}]}).encode(), {"Content-Type": "application/json"}, 422, "'line' is missing"),
    (json.dumps({"records": [{**RECORD, "line": "\ud83d L3"}]}).encode(), {"Content-Type": "application/json"}, 422,
     "broken character"),  # a lone surrogate (an emoji cut in half) was a 500 from deep inside pandas
    (json.dumps({"records": [RECORD] * 20000}).encode(), {"Content-Type": "application/json"}, 413, "limit"),
    (b"[" + b"1," * (5 * 1024 * 1024) + b"1]", {"Content-Type": "application/json"}, 413, "limit"),
    (json.dumps({"rows": [RECORD]}).encode(), {"Content-Type": "application/json"}, 422, "got them under 'rows'"),
    (json.dumps({"records": [[1, 2, 3]]}).encode(), {"Content-Type": "application/json"}, 422, "JSON object"),
])
def test_bad_requests_get_4xx_and_server_keeps_serving(server, body, headers, status, pattern):
    base, token, _ = server
    r = httpx.post(base + "/v1/models/factory/predict", content=body, headers={**headers, **_auth(token)}, timeout=30)
    assert r.status_code == status, r.text
    assert pattern in r.json()["error"]["message"]
    assert r.json()["error"]["hint"]  # what to do, not "hint": null
    assert "Traceback" not in r.text
    ok = httpx.post(base + "/v1/models/factory/predict", json={"records": [RECORD]}, headers=_auth(token))
    assert ok.status_code == 200


def test_the_server_logs_one_json_line_per_request(trained, tmp_path):
    ws, _ = trained
    port = _free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "modelfab", "serve", "factory", "--port", str(port),
                                 "--no-auth", "-w", str(ws.root)], stdout=out, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        r = httpx.post(f"http://127.0.0.1:{port}/v1/models/factory/predict", json={"records": [RECORD]})
        assert r.status_code == 200
        # refused before any route (the body is over the limit): still one line, and a hint what to do
        big = httpx.post(f"http://127.0.0.1:{port}/v1/models/factory/predict", content=b"x" * (9 * 1024 * 1024),
                         headers={"Content-Type": "application/json"})
        assert big.status_code == 413 and "MODELFAB_MAX_REQUEST_BYTES" in big.json()["error"]["hint"]
    finally:
        proc.terminate()
        proc.wait(20)
    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
    mine = [x for x in lines if x["path"] == "/v1/models/factory/predict"]
    assert len(mine) == 2 and mine[0]["status"] == 200 and mine[0]["request_id"] == r.headers["x-request-id"]
    assert mine[0]["method"] == "POST" and mine[0]["ms"] > 0
    assert mine[1]["status"] == 413 and mine[1]["request_id"] == big.headers["x-request-id"]


def test_unknown_model_and_listing(server):
    base, token, _ = server
    r = httpx.post(base + "/v1/models/nope/predict", json={"records": [RECORD]}, headers=_auth(token))
    assert r.status_code == 404 and r.json()["error"]["hint"]  # what to do: the list of served models
    models = httpx.get(base + "/v1/models", headers=_auth(token)).json()["models"]
    assert models[0]["name"] == "factory"
    assert {c["name"] for c in models[0]["inputs"]} >= {"line", "tool_wear_pct"}


def test_no_auth_only_on_loopback(trained):
    ws, _ = trained
    from tests.conftest import run_cli

    proc = run_cli("serve", "factory", "--host", "0.0.0.0", "--no-auth", "--workspace", str(ws.root), check=False)
    assert proc.returncode == 2 and "loopback" in proc.stderr
    assert "Serving" not in proc.stdout  # refused before the banner


def test_port_in_use_is_a_clear_error(trained):
    ws, _ = trained
    from tests.conftest import run_cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_cli("serve", "factory", "--port", str(port), "--workspace", str(ws.root), check=False)
    assert proc.returncode == 4 and "--port" in proc.stderr


def test_python_client(server, factory_csv, tmp_path):
    from modelfab.client import Client, ServerError

    base, token, _ = server
    with Client(base, token) as c:
        assert c.health()
        assert c.models()[0]["name"] == "factory"
        preds = c.predict("factory", [RECORD, RECORD])
        assert len(preds) == 2 and preds[0]["prediction"] in ("ok", "defect")
        import pandas as pd

        pd.read_csv(factory_csv).head(20).to_csv(tmp_path / "rows.csv", index=False)
        out = c.predict_file("factory", tmp_path / "rows.csv")
        assert len(out["predictions"]) == 20
        with pytest.raises(ServerError) as info:
            c.predict("factory", [{"line": "L1"}])
        assert info.value.status == 422 and "missing" in info.value.message
    with Client(base, "mf_bad") as c, pytest.raises(ServerError) as info:
        c.predict("factory", [RECORD])
    assert info.value.status == 401

"""Load benchmark of the REST server against a bare FastAPI app calling the same LightGBM model.

    .venv/bin/python bench/serving.py [--seconds 10]

Trains a LightGBM model on 50 numeric features, serves it with `modelfab serve`
(1 worker) and, for comparison, with a minimal FastAPI app that loads the same
LightGBM text model and predicts directly. An asyncio/httpx open-loop load
generator on 127.0.0.1 sends single-row JSON predictions at 50, 200 and 500
requests/s (bounded in count and time), then batch requests of 100 rows as fast
as it can. Reports achieved throughput and p50/p99 latency. Writes
bench/out/serving.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_FEATURES = 50


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc) -> None:
    import httpx

    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()}")
    raise SystemExit("server did not start")


BARE_APP = textwrap.dedent('''
    import json, sys
    import lightgbm as lgb, numpy as np, uvicorn
    from fastapi import FastAPI, Request
    booster = lgb.Booster(model_file=sys.argv[1])
    cols = json.loads(sys.argv[2])
    extra = {"num_threads": int(sys.argv[4])} if len(sys.argv) > 4 and int(sys.argv[4]) > 0 else {}
    app = FastAPI()
    @app.get("/healthz")
    def health(): return {"status": "ok"}
    @app.post("/v1/models/bench/predict")
    async def predict(request: Request):
        recs = (await request.json())["records"]
        X = np.array([[r.get(c, np.nan) for c in cols] for r in recs], dtype=float)
        p = booster.predict(X, **extra)
        return {"predictions": [{"prediction": int(v > 0.5), "probabilities": {"0": 1 - float(v), "1": float(v)}} for v in p]}
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
''')


async def _request(reader, writer, raw: bytes) -> int:
    """One HTTP/1.1 request on a kept-alive connection; returns the status code."""
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(h.split(":", 1)[1]) for h in lines[1:] if h.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return status


def _raw(url: str, headers: dict, body: dict) -> tuple[str, int, bytes]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    data = json.dumps(body).encode()
    head = [f"POST {u.path} HTTP/1.1", f"Host: {u.hostname}:{u.port}", "Content-Type: application/json",
            f"Content-Length: {len(data)}", *[f"{k}: {v}" for k, v in headers.items()]]
    return u.hostname, u.port, ("\r\n".join(head) + "\r\n\r\n").encode() + data


async def _load(url: str, headers: dict, body: dict, rate: float, seconds: float, connections: int = 64,
                timeout: float = 5.0) -> dict:
    """Open-loop load: request i is due at start + i/rate; its latency counts from when it was due
    (so a slow server cannot hide queueing). A lean asyncio HTTP/1.1 client on kept-alive
    connections, so that the generator itself uses little CPU. Bounded: `rate * seconds` requests,
    each given at most `timeout` s; what is not answered by then counts as an error."""
    host, port, raw = _raw(url, headers, body)
    loop = asyncio.get_running_loop()
    n = int(rate * seconds)
    start = loop.time() + 0.1
    due = asyncio.Queue()
    for i in range(n):
        due.put_nowait(start + i / rate)
    lat: list[float] = []
    errors = 0

    async def conn():
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                try:
                    t = due.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if (d := t - loop.time()) > 0:
                    await asyncio.sleep(d)
                if loop.time() - t > timeout:  # already late beyond the timeout: the server could not keep up
                    errors += 1
                    continue
                try:
                    status = await asyncio.wait_for(_request(reader, writer, raw), timeout)
                except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                lat.append(loop.time() - t)
                errors += status != 200
        finally:
            writer.close()

    await asyncio.gather(*[conn() for _ in range(connections)])
    wall = loop.time() - start
    a = np.array(lat or [float("nan")]) * 1000
    return {"target_rps": rate, "sent": n, "achieved_rps": round(len(lat) / wall, 1), "errors": errors,
            "p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2)}


async def _batch(url: str, headers: dict, body: dict, seconds: float, concurrency: int = 4) -> dict:
    import httpx

    done = 0
    rows = len(body["records"])
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        end = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker():
            nonlocal done
            while time.perf_counter() < end:
                r = await client.post(url, json=body)
                if r.status_code == 200:
                    done += rows

        await asyncio.gather(*[worker() for _ in range(concurrency)])
        wall = time.perf_counter() - start
    return {"batch_rows": rows, "predictions_per_s": round(done / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--bare-threads", type=int, default=0,
                    help="LightGBM threads of the bare app's predictions (0: LightGBM's default, all cores; "
                         "1: as modelfab predicts requests of up to 256 rows, to compare the layers alone)")
    args = ap.parse_args()
    import modelfab as mf

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, N_FEATURES))
    y = (X[:, :5].sum(1) + rng.normal(size=5000) > 0).astype(int)
    cols = [f"f{i}" for i in range(N_FEATURES)]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        df = pd.DataFrame(X, columns=cols)
        df["y"] = y
        df.to_csv(Path(tmp) / "d.csv", index=False)
        ws = mf.Workspace.init(Path(tmp) / "ws")
        ds = ws.import_table(Path(tmp) / "d.csv", name="bench").dataset
        model = ws.train(ds, target="y", budget=15, learners=("lgbm",), ensemble=False)
        _, token = ws.create_token("bench")
        record = {c: float(v) for c, v in zip(cols, X[0])}
        single = {"records": [record]}
        batch = {"records": [{c: float(v) for c, v in zip(cols, row)} for row in X[:100]]}
        servers = {
            "modelfab": ([sys.executable, "-m", "modelfab", "serve", "bench", "--workspace", str(ws.root), "--port"],
                         {"Authorization": f"Bearer {token}"}),
            "bare FastAPI + LightGBM": ([sys.executable, "-c", BARE_APP, str(model.folder / "model.txt"), json.dumps(cols)], {}),
        }
        for name, (cmd, headers) in servers.items():
            port = _port()
            full = cmd + [str(port)] + ([str(args.bare_threads)] if name.startswith("bare") else [])
            proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    env=dict(os.environ, PYTHONWARNINGS="ignore"))
            base = f"http://127.0.0.1:{port}"
            try:
                _wait(base, proc)
                url = base + "/v1/models/bench/predict"
                asyncio.run(_load(url, headers, single, 50, 2))  # warm-up
                rows = [asyncio.run(_load(url, headers, single, rate, args.seconds)) for rate in (50, 200, 500)]
                rows.append(asyncio.run(_batch(url, headers, batch, args.seconds)))
                results[name] = rows
                for r in rows:
                    print(name, json.dumps(r), flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=20)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores (server and load generator share them)",
            "date": time.strftime("%Y-%m-%d"), "seconds_per_step": args.seconds,
            "bare_threads": args.bare_threads or "default",
            "load_average_1m": round(os.getloadavg()[0], 2)}
    Path(__file__).with_name("out").mkdir(exist_ok=True)
    Path(__file__).with_name("out").joinpath("serving.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print("\n| server | target req/s | achieved req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for name, rows in results.items():
        for r in rows[:3]:
            print(f"| {name} | {r['target_rps']} | {r['achieved_rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")
    print("\n| server | batch rows | predictions/s |")
    print("|---|---|---|")
    for name, rows in results.items():
        print(f"| {name} | {rows[3]['batch_rows']} | {rows[3]['predictions_per_s']} |")


if __name__ == "__main__":
    main()

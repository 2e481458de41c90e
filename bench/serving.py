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
    app = FastAPI()
    @app.get("/healthz")
    def health(): return {"status": "ok"}
    @app.post("/v1/models/bench/predict")
    async def predict(request: Request):
        recs = (await request.json())["records"]
        X = np.array([[r.get(c, np.nan) for c in cols] for r in recs], dtype=float)
        p = booster.predict(X)
        return {"predictions": [{"prediction": int(v > 0.5), "probabilities": {"0": 1 - float(v), "1": float(v)}} for v in p]}
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
''')


async def _load(url: str, headers: dict, body: dict, rate: float, seconds: float) -> dict:
    import httpx

    lat: list[float] = []
    errors = 0
    n = int(rate * seconds)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(headers=headers, timeout=10, limits=limits) as client:
        async def one():
            nonlocal errors
            t = time.perf_counter()
            try:
                r = await client.post(url, json=body)
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            lat.append(time.perf_counter() - t)

        start = time.perf_counter()
        tasks = []
        for i in range(n):  # open loop: requests leave on schedule whether or not earlier ones returned
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    a = np.array(lat) * 1000
    return {"target_rps": rate, "sent": n, "achieved_rps": round(n / wall, 1), "errors": errors,
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
            full = cmd + [str(port)]
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
            "date": time.strftime("%Y-%m-%d"), "seconds_per_step": args.seconds}
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

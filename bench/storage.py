"""Storage benchmark: metadata operations/s on SQLite and PostgreSQL, blob MB/s on a local folder and S3.

    .venv/bin/python bench/storage.py [--models 10000] [--blob-mb 64] [--out bench/out/storage.json]

Starts its own PostgreSQL (Debian binaries) and S3-protocol server (moto) on localhost, exactly like the
tests (tests/storage/servers.py). Prints a markdown table; numbers go to bench/results/storage.md.
Per-operation costs, not a load test: one writer, then 4 concurrent writers for dataset versions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelfab.storage.blobs import open_blob_store  # noqa: E402
from modelfab.storage.metadata import MetadataStore, sqlite_url  # noqa: E402
from tests.storage.servers import S3_ENV, PostgresServer, S3Server  # noqa: E402

MANIFEST = {"format": 1, "task": "classification", "files": {f"model/{i}.txt": "a" * 64 for i in range(3)},
            "metrics": {"roc_auc": 0.93, "accuracy": 0.9}, "leaderboard": [{"learner": "lgbm", "score": 0.9}] * 5}


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_metadata(url: str, n_models: int) -> dict:
    meta = MetadataStore(url)
    meta.upgrade()
    out: dict = {}
    n = 300
    t = time.perf_counter()
    for i in range(n):
        meta.add_dataset(name="line", kind="table", content_sha=f"{i:064x}", data_sha=f"{i:064x}", source_name="f.csv",
                         n_rows=1000, n_cols=12, schema={"columns": [{"name": f"c{j}", "kind": "numeric"} for j in range(12)]},
                         stats={}, options={}, created_by="bench", refs=[])
    out["create_dataset_version_per_s"] = _rate(n, time.perf_counter() - t)

    errors: list = []
    per = 100

    def writer(w: int) -> None:
        try:
            for i in range(per):
                meta.add_dataset(name="contended", kind="table", content_sha=f"{w:032x}{i:032x}", data_sha="b" * 64,
                                 source_name="f.csv", n_rows=1, n_cols=1, schema={}, stats={}, options={},
                                 created_by="bench", refs=[])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out["create_dataset_version_4_writers_per_s"] = _rate(4 * per, time.perf_counter() - t)
    versions = [r["version"] for r in meta.list_datasets() if r["name"] == "contended"]
    out["4_writers_versions_ok"] = not errors and sorted(versions) == list(range(1, 4 * per + 1))

    refs = [(f"file:model/{i}.txt", f"{i:064x}") for i in range(3)]
    t = time.perf_counter()
    for i in range(n_models):
        meta.add_model(name=f"model-{i % 100}", task="classification", dataset_id=1, package_sha=f"{i:064x}",
                       manifest=MANIFEST, metrics=MANIFEST["metrics"], created_by="bench", refs=refs)
    out["register_model_per_s"] = _rate(n_models, time.perf_counter() - t)
    t = time.perf_counter()
    rows = meta.list_models()
    out[f"list_{n_models}_models_s"] = time.perf_counter() - t
    assert len(rows) == n_models
    t = time.perf_counter()
    for i in range(200):
        meta.get_model(f"model-{i % 100}")
    out["get_latest_model_per_s"] = _rate(200, time.perf_counter() - t)
    t = time.perf_counter()
    meta.referenced_blobs()
    out[f"referenced_blobs_{n_models}_models_s"] = time.perf_counter() - t
    meta.close()
    return out


def bench_blobs(store, tmp: Path, big_mb: int) -> dict:
    big = tmp / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(big_mb):
            fh.write(os.urandom(1 << 20))
    out: dict = {}
    t = time.perf_counter()
    sha = store.put_file(big)
    out["put_big_MB_per_s"] = big_mb / (time.perf_counter() - t)
    t = time.perf_counter()
    store.copy_to(sha, tmp / "back.bin")
    out["get_big_MB_per_s"] = big_mb / (time.perf_counter() - t)
    small = [os.urandom(256 * 1024) for _ in range(40)]
    t = time.perf_counter()
    shas = [store.put_bytes(b) for b in small]
    dt = time.perf_counter() - t
    out["put_256KiB_per_s"] = _rate(len(small), dt)
    t = time.perf_counter()
    for s in shas:
        store.get_bytes(s)
    out["get_256KiB_per_s"] = _rate(len(shas), time.perf_counter() - t)
    t = time.perf_counter()
    n = sum(1 for _ in store.iter_ids())
    out["list_blobs_per_s"] = _rate(n, time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--blob-mb", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "storage.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mf-bench-storage-"))
    pg, s3 = PostgresServer(durable=True), S3Server()  # PostgreSQL with its default fsync/synchronous_commit
    results: dict = {"load_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")}
    try:
        pg.start()
        s3.start()
        results["metadata"] = {
            "sqlite": bench_metadata(sqlite_url(tmp / "bench.db"), args.models),
            "postgresql": bench_metadata(pg.new_database(), args.models),
        }
        os.environ.update(S3_ENV)
        s3.client().create_bucket(Bucket="bench")
        (tmp / "l").mkdir()
        (tmp / "s").mkdir()
        results["blobs"] = {
            "local": bench_blobs(open_blob_store(str(tmp / "blobs"), tmp), tmp / "l", args.blob_mb),
            "s3 (moto)": bench_blobs(open_blob_store("s3://bench/ws", tmp, s3_endpoint=s3.endpoint), tmp / "s",
                                     args.blob_mb),
        }
    finally:
        pg.stop()
        s3.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"load {results['load_before'][0]:.1f} -> {results['load_after'][0]:.1f}, {results['date']}")
    for section in ("metadata", "blobs"):
        cols = list(results[section])
        print(f"\n| {section} | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols))
        for key in results[section][cols[0]]:
            vals = [results[section][c][key] for c in cols]
            print(f"| {key} | " + " | ".join(f"{v:,.1f}" if isinstance(v, float) else str(v) for v in vals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

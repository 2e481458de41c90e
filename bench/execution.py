"""Execution benchmark: AutoML trials per minute and batch-scoring rows/s, local vs process pool vs Ray.

Same machine, same cores: the Ray runs use a private local Ray with ``num_cpus`` = the cores given.
"Ray cold" counts Ray's start-up inside the search budget (what `modelfab train --executor ray` does);
"Ray warm" reuses the running Ray (a long-lived cluster).

    .venv/bin/python bench/execution.py [--budget 30] [--rows 300000] [--cpus 2]

Writes bench/out/execution.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def search_case(label: str, executor, X, y, budget_s: float) -> dict:
    from modelfab.automl.budget import Budget
    from modelfab.automl.search import run_search

    budget = Budget(budget_s)
    t0 = time.monotonic()
    result = run_search(X, y, task="classification", metric="roc_auc", budget=budget, n_classes=2, seed=0,
                        ensemble=False, executor=executor)
    elapsed = time.monotonic() - t0
    searches = (result.execution or {}).get("searches") or [{"trials": result.trials}]
    return {"case": label, "budget_s": budget_s, "elapsed_s": round(elapsed, 2), "trials": result.trials,
            "trials_per_min": round(result.trials / elapsed * 60, 1), "best_roc_auc": round(result.best_score, 4),
            "learner": result.learner_name, "parallel_searches": len(searches),
            "startup_s": getattr(executor, "startup_s", None) and round(executor.startup_s, 2),
            "notes": result.notes, "load": load()}


def batch_case(label: str, executor, model, src: Path, out: Path, chunk_rows: int) -> dict:
    from modelfab.batch import predict_table_file

    t0 = time.monotonic()
    res = predict_table_file(model, src, out, chunk_rows=chunk_rows, executor=executor)
    elapsed = time.monotonic() - t0
    return {"case": label, "rows": res["rows"], "elapsed_s": round(elapsed, 2),
            "rows_per_s": round(res["rows"] / elapsed), "load": load()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=30.0, help="search budget per case (s)")
    ap.add_argument("--rows", type=int, default=300_000, help="rows of the batch-scoring file")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--chunk-rows", type=int, default=25_000)
    args = ap.parse_args()

    from sklearn.datasets import make_classification

    from modelfab.demo import write_factory_csv
    from modelfab.execution import get_executor
    from modelfab.workspace import Workspace

    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "python": sys.version.split()[0],
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "load_start": load(), "cpus_for_ray": args.cpus}
    try:
        import ray

        info["ray"] = ray.__version__
    except ImportError:
        info["ray"] = None

    X, y = make_classification(n_samples=5000, n_features=20, n_informative=8, flip_y=0.05, random_state=0)
    search = [search_case("local (1 process)", None, X, y, args.budget),
              search_case(f"process pool ({args.cpus})", get_executor("process", workers=args.cpus), X, y,
                          args.budget)]
    ray_ex = get_executor("ray", workers=args.cpus) if info["ray"] else None
    batch = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if ray_ex is not None:
            search.append(search_case(f"Ray cold ({args.cpus} CPUs, start-up in budget)", ray_ex, X, y, args.budget))
            search.append(dict(search_case(f"Ray warm ({args.cpus} CPUs)", ray_ex, X, y, args.budget), startup_s=None))
        src = write_factory_csv(tmp / "big.csv", n_rows=args.rows, seed=3)
        with Workspace.init(tmp / "ws") as ws:
            ws.import_table(write_factory_csv(tmp / "train.csv", n_rows=3000, seed=1), name="factory")
            model = ws.train("factory", target="quality", budget=10, learners=("lgbm",), ensemble=False)
            batch.append(batch_case("local (1 process)", None, model, src, tmp / "local.csv", args.chunk_rows))
            batch.append(batch_case(f"process pool ({args.cpus})", get_executor("process", workers=args.cpus),
                                    model, src, tmp / "pool.csv", args.chunk_rows))
            if ray_ex is not None:
                batch.append(batch_case(f"Ray warm ({args.cpus} CPUs)", ray_ex, model, src, tmp / "ray.csv",
                                        args.chunk_rows))
            same = all((tmp / f).read_bytes() == (tmp / "local.csv").read_bytes()
                       for f in ("pool.csv", "ray.csv") if (tmp / f).exists())
    if ray_ex is not None:
        ray_ex.close()
    info["load_end"] = load()
    OUT.mkdir(exist_ok=True)
    (OUT / "execution.json").write_text(json.dumps({"info": info, "search": search, "batch": batch,
                                                    "batch_outputs_identical": same}, indent=1))
    print(f"date {info['date']}, {info['machine']}, Ray {info['ray']}, load {info['load_start']} -> {info['load_end']}")
    print("\n| search | budget s | elapsed s | trials | trials/min | parallel searches | start-up s (Ray or pool) | best ROC AUC |")
    print("|---|---|---|---|---|---|---|---|")
    for r in search:
        print(f"| {r['case']} | {r['budget_s']:.0f} | {r['elapsed_s']} | {r['trials']} | {r['trials_per_min']} | "
              f"{r['parallel_searches']} | {r['startup_s'] or '-'} | {r['best_roc_auc']} |")
    print(f"\n| batch scoring ({args.rows:,} rows CSV, chunks of {args.chunk_rows:,}) | elapsed s | rows/s |")
    print("|---|---|---|")
    for r in batch:
        print(f"| {r['case']} | {r['elapsed_s']} | {r['rows_per_s']:,} |")
    print(f"\noutputs byte-identical to local: {same}")


if __name__ == "__main__":
    main()

"""CWRU bearing faults: train on one motor load, test on another (never seen in training).

    .venv/bin/python bench/cwru.py [--budget 60]

Uses ../shared/data/cwru_12k_drive_end (see its README). Everything goes
through the public Python API as a user would: import the 0HP folder with
labels from the file names, train, predict the 1HP folder; and the reverse.
Reports window and file accuracy, import speed and training time.
Writes bench/out/cwru.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import modelfab as mf

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cwru_12k_drive_end"
LABELS = r"regex:(B0\d\d|IR0\d\d|OR0\d\d@\d+|normal)"


def truth(name: str) -> str:
    import re

    return re.search(LABELS[6:], name).group(1)


def run(train_load: str, test_load: str, budget: float, tmp: Path) -> dict:
    ws = mf.Workspace.init(tmp / f"ws-{train_load}")
    t0 = time.monotonic()
    ds = ws.import_recordings(DATA / train_load, f"cwru-{train_load}", labels=LABELS, variable="DE_time", sample_rate=12000).dataset
    import_s = time.monotonic() - t0
    t0 = time.monotonic()
    model = ws.train(ds, task="classification", budget=budget)
    train_s = time.monotonic() - t0
    pred = model.predictor
    # window-level accuracy on the unseen load
    win_correct = win_total = 0
    rows = []
    for f in sorted((DATA / test_load).glob("*.mat")):
        rec = pred.read(f, f.name)
        from modelfab.recordings import featurise

        ff = featurise(rec, pred.options)
        proba = pred.window_outputs(ff.features)
        labels = [str(v) for v in pred.labels]
        win_pred = [labels[i] for i in proba.argmax(1)]
        t = truth(f.name)
        win_correct += sum(p == t for p in win_pred)
        win_total += len(win_pred)
        file_pred = labels[int(proba.mean(0).argmax())]
        rows.append({"file": f.name, "truth": t, "predicted": file_pred, "window_acc": float(np.mean([p == t for p in win_pred]))})
    files = pd.DataFrame(rows)
    return {"train": train_load, "test": test_load, "files": len(files), "file_accuracy": float((files.truth == files.predicted).mean()),
            "window_accuracy": win_correct / win_total, "windows": win_total, "import_s": round(import_s, 2),
            "recordings_per_s": round(ds.stats["files"] / import_s, 2), "train_s": round(train_s, 2),
            "learner": model.manifest["learner"]["name"], "errors": files[files.truth != files.predicted].to_dict("records")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60)
    args = ap.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found (real data for benchmarks lives in ../shared/data)")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for a, b in (("0HP", "1HP"), ("1HP", "0HP")):
            r = run(a, b, args.budget, Path(tmp))
            out.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "errors"}), flush=True)
            for e in r["errors"]:
                print("  wrong:", e, flush=True)
    meta = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
            "budget_s": args.budget}
    Path(__file__).with_name("out").mkdir(exist_ok=True)
    Path(__file__).with_name("out").joinpath("cwru.json").write_text(json.dumps({"meta": meta, "runs": out}, indent=2))
    print("\n| train | test | files | file accuracy | window accuracy | import (rec/s) | train s | model |")
    print("|---|---|---|---|---|---|---|---|")
    for r in out:
        print(f"| {r['train']} | {r['test']} | {r['files']} | {r['file_accuracy']:.1%} | {r['window_accuracy']:.2%} | "
              f"{r['recordings_per_s']} | {r['train_s']} | {r['learner']} |")


if __name__ == "__main__":
    main()

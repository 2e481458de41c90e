"""CWRU bearing faults: train on one motor load, test on another (never seen in training).

    .venv/bin/python bench/cwru.py [--budget 60] [--seed 0] [--window-s S --hop-s S] [--features vibration]

Uses ../shared/data/cwru_12k_drive_end (see its README). Everything goes
through the public Python API as a user would: import the 0HP folder with
labels from the file names, train, predict the 1HP folder; and the reverse.
Reports window and file accuracy on all test files and on the fault files
only (1HP has no ``normal`` recording, so a model trained on 1HP cannot name
0HP's normal file: the fault-only numbers are the fair ones for 1HP->0HP),
import speed and training time. ``--window-s``/``--hop-s`` override the
dataset's default window (1 s / 0.5 s hop; 0.25 s / 0.125 s for the
``vibration`` preset). ``--features`` imports with other feature sets or a
preset (``ws.import_recordings(..., features=...)``, ``modelfab data import
--features``). Writes bench/out/cwru.json (``--out`` to name another file).
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


def import_load(ws, load: str, window_s: float | None, hop_s: float | None, features: str | None):
    return ws.import_recordings(DATA / load, f"cwru-{load}", labels=LABELS, variable="DE_time", sample_rate=12000,
                                window_s=window_s, hop_s=hop_s, features=features).dataset


def run(train_load: str, test_load: str, budget: float, tmp: Path, seed: int = 0, window_s: float | None = None,
        hop_s: float | None = None, features: str | None = None) -> dict:
    ws = mf.Workspace.init(tmp / f"ws-{train_load}-{seed}-{features or 'default'}-{window_s}-{hop_s}")
    t0 = time.monotonic()
    ds = import_load(ws, train_load, window_s, hop_s, features)
    import_s = time.monotonic() - t0
    t0 = time.monotonic()
    model = ws.train(ds, task="classification", budget=budget, seed=seed)
    train_s = time.monotonic() - t0
    pred = model.predictor
    # window-level accuracy on the unseen load
    rows = []
    for f in sorted((DATA / test_load).glob("*.mat")):
        rec = pred.read(f, f.name)
        from modelfab.recordings import featurise

        ff = featurise(rec, pred.options)
        proba = pred.window_outputs(ff.features)
        labels = [str(v) for v in pred.labels]
        win_pred = [labels[i] for i in proba.argmax(1)]
        t = truth(f.name)
        file_pred = labels[int(proba.mean(0).argmax())]
        rows.append({"file": f.name, "truth": t, "predicted": file_pred, "windows": len(win_pred),
                     "correct_windows": int(sum(p == t for p in win_pred)),
                     "window_acc": float(np.mean([p == t for p in win_pred]))})
    files = pd.DataFrame(rows)
    fault = files[files.truth != "normal"]
    return {"train": train_load, "test": test_load, "files": len(files), "file_accuracy": float((files.truth == files.predicted).mean()),
            "window_accuracy": float(files.correct_windows.sum() / files.windows.sum()), "windows": int(files.windows.sum()),
            "fault_files": len(fault), "fault_file_accuracy": float((fault.truth == fault.predicted).mean()),
            "fault_window_accuracy": float(fault.correct_windows.sum() / fault.windows.sum()),
            "fault_windows": int(fault.windows.sum()), "train_classes": len(labels), "seed": seed,
            "window_s": ds.options.get("window_s"), "hop_s": ds.options.get("hop_s"), "features": features or "default",
            "n_features": len(ds.schema["feature_names"]), "import_s": round(import_s, 2),
            "recordings_per_s": round(ds.stats["files"] / import_s, 2), "train_s": round(train_s, 2),
            "learner": model.manifest["learner"]["name"], "learner_config": model.manifest["learner"].get("config"),
            "notes": model.manifest.get("training", {}).get("notes", []),
            "holdout_window_accuracy": model.manifest.get("metrics", {}).get("window_accuracy"),
            "errors": files[files.truth != files.predicted].drop(columns=["correct_windows"]).to_dict("records")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="cwru.json", help="file name under bench/out")
    ap.add_argument("--window-s", type=float, default=None, help="window length in s (default: the dataset default)")
    ap.add_argument("--hop-s", type=float, default=None, help="hop in s (default: half the window)")
    ap.add_argument("--features", default=None,
                    help="feature sets or a preset, e.g. vibration (default: the dataset default, via the public API)")
    args = ap.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found (real data for benchmarks lives in ../shared/data)")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for a, b in (("0HP", "1HP"), ("1HP", "0HP")):
            r = run(a, b, args.budget, Path(tmp), seed=args.seed, window_s=args.window_s, hop_s=args.hop_s,
                    features=args.features)
            out.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "errors"}), flush=True)
            for e in r["errors"]:
                print("  wrong:", e, flush=True)
    meta = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
            "budget_s": args.budget, "seed": args.seed, "window_s": args.window_s, "hop_s": args.hop_s,
            "features": args.features or "default"}
    Path(__file__).with_name("out").mkdir(exist_ok=True)
    Path(__file__).with_name("out").joinpath(args.out).write_text(json.dumps({"meta": meta, "runs": out}, indent=2))
    print("\n| train | test | files | file accuracy | window accuracy | fault files | fault-file accuracy "
          "| fault-window accuracy | import (rec/s) | train s | model |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in out:
        print(f"| {r['train']} | {r['test']} | {r['files']} | {r['file_accuracy']:.1%} | {r['window_accuracy']:.2%} | "
              f"{r['fault_files']} | {r['fault_file_accuracy']:.1%} | {r['fault_window_accuracy']:.2%} | "
              f"{r['recordings_per_s']} | {r['train_s']} | {r['learner']} |")


if __name__ == "__main__":
    main()

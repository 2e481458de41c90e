"""UCR/UEA benchmark: modelfab's series trainer against MiniRocket alone, on the official splits.

The data sets are the ``.ts`` files bundled in the aeon package (nothing is downloaded).
The baseline is aeon's own MiniRocket (the reference implementation of the authors'
algorithm, as in aeon's MiniRocketClassifier: MiniRocket + StandardScaler(with_mean=False)
+ RidgeClassifierCV(alphas=logspace(-3, 3, 10))), averaged over three seeds.

aeon 1.6 pins pandas<3.1 and numba<0.64, so it is not a dependency of modelfab; install it
beside the venv without touching our pins and point AEON_PATH at it:

    .venv/bin/python -m pip install --no-deps --target bench/.deps aeon==1.6.0 deprecated wrapt
    AEON_PATH=bench/.deps .venv/bin/python bench/ucr.py --budget 60 --seed 0
    AEON_PATH=bench/.deps .venv/bin/python bench/ucr.py --datasets ACSF1 ArrowHead --seed 1 --out /tmp/u.json

Writes bench/out/ucr.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATASETS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "JapaneseVowels", "OSULeaf", "ACSF1")
ROOT = Path(__file__).resolve().parents[1]


def aeon_data_dir() -> Path:
    if os.environ.get("AEON_PATH"):
        sys.path.insert(0, os.environ["AEON_PATH"])
    import importlib.util

    spec = importlib.util.find_spec("aeon")
    if spec is None:
        raise SystemExit("aeon is not importable: see the install line at the top of bench/ucr.py")
    return Path(spec.origin).parent / "datasets" / "data"


def minirocket_baseline(train, test, seed: int) -> tuple[float, float]:
    """aeon MiniRocket + ridge on the official split; (accuracy, seconds). Unequal lengths: zero-padded to the max."""
    from aeon.transformations.collection.convolution_based import MiniRocket
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def stack(s, length):
        out = np.zeros((len(s.series), s.n_channels, length), dtype=np.float64)
        for i, x in enumerate(s.series):
            out[i, :, :x.shape[1]] = x
        return out

    length = int(max(train.lengths.max(), test.lengths.max()))
    t0 = time.monotonic()
    pipe = make_pipeline(MiniRocket(random_state=seed), StandardScaler(with_mean=False),
                         RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    pipe.fit(stack(train, length), np.array(train.labels, dtype=str))
    pred = pipe.predict(stack(test, length))
    return float(np.mean(pred == np.array(test.labels, dtype=str))), time.monotonic() - t0


def run_modelfab(ws, name: str, train_path: Path, test, test_path: Path, budget: float, seed: int) -> dict:
    t0 = time.monotonic()
    ws.import_series(train_path, name)
    model = ws.train(name, task="classification", budget=budget, seed=seed, name=name)
    train_s = time.monotonic() - t0
    t1 = time.monotonic()
    pred = model.predictor.predict_file(test_path)
    acc = float(np.mean(pred["prediction"].astype(str).to_numpy() == np.array(test.labels, dtype=str)))
    return {"accuracy": acc, "train_s": round(train_s, 2), "predict_s": round(time.monotonic() - t1, 2),
            "chosen": model.manifest["learner"]["name"], "holdout_accuracy": model.metrics.get("accuracy"),
            "refit_on_all": model.manifest["learner"]["config"].get("refit_on_all"),
            "leaderboard": [{k: r.get(k) for k in ("learner", "score", "status", "train_time_s", "config")}
                            for r in model.manifest["leaderboard"]]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS), help="only these sets (default: all seven)")
    ap.add_argument("--baseline-seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="modelfab's seed")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "ucr.json"))
    args = ap.parse_args()
    data_dir = aeon_data_dir()
    from modelfab.modalities.series.io import read_ts
    from modelfab.settings import Settings
    from modelfab.workspace import Workspace

    settings = Settings.from_env()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        for name in args.datasets:
            tr_path, te_path = data_dir / name / f"{name}_TRAIN.ts", data_dir / name / f"{name}_TEST.ts"
            if not tr_path.is_file() or not te_path.is_file():
                rows.append({"dataset": name, "error": "not bundled in this aeon"})
                continue
            train, test = read_ts(tr_path, settings), read_ts(te_path, settings)
            base = [minirocket_baseline(train, test, s) for s in range(args.baseline_seeds)]
            load_before = round(os.getloadavg()[0], 2)
            mf = run_modelfab(ws, name, tr_path, test, te_path, args.budget, seed=args.seed)
            mf["load_avg_1min_before"] = load_before
            row = {"dataset": name, "n_train": len(train.series), "n_test": len(test.series),
                   "channels": train.n_channels, "length": [int(train.lengths.min()), int(train.lengths.max())],
                   "classes": len(set(train.labels)),
                   "minirocket_accuracy": float(np.mean([a for a, _ in base])),
                   "minirocket_accuracy_seeds": [round(a, 4) for a, _ in base],
                   "minirocket_s": round(float(np.mean([s for _, s in base])), 2),
                   "modelfab": mf}
            row["delta_points"] = round(100 * (mf["accuracy"] - row["minirocket_accuracy"]), 2)
            print(json.dumps({k: row[k] for k in ("dataset", "minirocket_accuracy", "delta_points")}
                             | {"modelfab": mf["accuracy"], "chosen": mf["chosen"], "train_s": mf["train_s"]}), flush=True)
            rows.append(row)
        ws.close()
    ok = [r for r in rows if "error" not in r]
    summary = {"mean_minirocket": float(np.mean([r["minirocket_accuracy"] for r in ok])) if ok else None,
               "mean_modelfab": float(np.mean([r["modelfab"]["accuracy"] for r in ok])) if ok else None,
               "worst_delta_points": min((r["delta_points"] for r in ok), default=None)}
    load = os.getloadavg()
    summary["mean_delta_points"] = round(float(np.mean([r["delta_points"] for r in ok])), 2) if ok else None
    out = {"what": "UCR/UEA official splits: modelfab series trainer vs MiniRocket (aeon) + ridge",
           "budget_s": args.budget, "seed": args.seed, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                 "load_avg_at_end": [round(x, 2) for x in load]},
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "summary": summary, "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

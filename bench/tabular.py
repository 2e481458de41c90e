"""Tabular benchmark: modelfab vs plain FLAML vs default LightGBM at the same budget.

Each system runs in its own process (peak RSS is measured per run) on the
same stratified holdout (20%, seed 0). modelfab is timed end to end:
import + train + report.

    .venv/bin/python bench/tabular.py [--budget 60] [--only breast_cancer,wine]

Writes bench/out/tabular.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "out"
TARGET = "target"


def make_dataset(name: str) -> pd.DataFrame:
    from sklearn import datasets

    if name in ("breast_cancer", "wine", "digits"):
        b = getattr(datasets, f"load_{name}")(as_frame=True)
        df = b.frame.copy()
        df.columns = [str(c).replace(" ", "_") for c in df.columns]
        if name != "digits":
            df[TARGET] = [str(b.target_names[i]) for i in b.target]
        return df
    rng = np.random.default_rng(0)
    if name == "synthetic_100k_mixed":
        n, k = 100_000, 40
        X, y = datasets.make_classification(n, k, n_informative=12, n_redundant=8, flip_y=0.05, random_state=0)
        df = pd.DataFrame(X, columns=[f"num_{i}" for i in range(k)])
        for j in range(8):
            codes = np.digitize(X[:, j] + rng.normal(0, 0.5, n), np.quantile(X[:, j], np.linspace(0, 1, 6 + j)[1:-1]))
            df[f"cat_{j}"] = [f"c{j}_{c}" for c in codes]
        df["flag_a"] = rng.random(n) < 0.3
        df["flag_b"] = np.where(X[:, 3] > 0, "yes", "no")
        df[TARGET] = np.where(y == 1, "fail", "pass")
        return df
    if name == "synthetic_10k_missing_imbalanced":
        n, k = 10_000, 25
        X, y = datasets.make_classification(n, k, n_informative=10, weights=[0.98, 0.02], flip_y=0.0, class_sep=0.9,
                                            random_state=1)
        X[rng.random(X.shape) < 0.2] = np.nan
        df = pd.DataFrame(X, columns=[f"s{i}" for i in range(k)])
        df["station"] = rng.choice(["A", "B", "C", "D"], n)
        df[TARGET] = np.where(y == 1, "defect", "ok")
        return df
    raise SystemExit(f"unknown dataset {name}")


DATASETS = ["breast_cancer", "wine", "digits", "synthetic_100k_mixed", "synthetic_10k_missing_imbalanced"]


def holdout(df: pd.DataFrame, seed: int = 0):
    from modelfab.splits import holdout_split

    y = pd.factorize(df[TARGET], sort=True)[0]
    return holdout_split(y, len(df), seed=seed)


def score(y_true_labels, proba, labels) -> dict:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    idx = {str(l): i for i, l in enumerate(labels)}
    y = np.array([idx[str(v)] for v in y_true_labels])
    proba = np.clip(np.asarray(proba, dtype=float), 1e-15, 1)
    proba = proba / proba.sum(axis=1, keepdims=True)
    out = {"accuracy": float(accuracy_score(y, proba.argmax(1))), "log_loss": float(log_loss(y, proba, labels=range(len(labels))))}
    out["roc_auc"] = float(roc_auc_score(y, proba[:, 1])) if len(labels) == 2 else float(
        roc_auc_score(y, proba, multi_class="ovr", labels=range(len(labels))))
    out["primary"] = out["roc_auc"] if len(labels) == 2 else out["log_loss"]
    return out


def run_one(system: str, name: str, budget: float, seed: int = 0) -> dict:
    df = make_dataset(name)
    train_idx, test_idx = holdout(df, seed)
    train, test = df.iloc[train_idx].reset_index(drop=True), df.iloc[test_idx].reset_index(drop=True)
    labels = sorted(df[TARGET].astype(str).unique(), key=lambda v: (len(v), v) if v.isdigit() else (0, v))
    if all(v.isdigit() for v in labels):
        labels = sorted(labels, key=int)
    t0 = time.monotonic()
    if system == "modelfab":
        import modelfab as mf

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.csv"
            train.to_csv(path, index=False)
            t0 = time.monotonic()  # import + train + report, as a user runs them
            ws = mf.Workspace.init(Path(tmp) / "ws")
            ds = ws.import_table(path, name="bench").dataset
            model = ws.train(ds, target=TARGET, budget=budget, seed=seed)
            elapsed = time.monotonic() - t0
            pred = model.predict(test.drop(columns=[TARGET]))
            mlabels = [str(v) for v in model.manifest["labels"]]
            proba = pred[[f"proba_{l}" for l in model.manifest["labels"]]].to_numpy()
            order = [mlabels.index(str(l)) for l in labels]
            proba = proba[:, order]
            extra = {"learner": model.manifest["learner"]["name"], "trials": model.manifest["training"]["trials"]}
    elif system == "flaml":
        from flaml import AutoML

        X = train.drop(columns=[TARGET])
        for c in X.columns:
            if X[c].dtype == object or str(X[c].dtype) in ("str", "string"):
                X[c] = X[c].astype("category")
        Xt = test.drop(columns=[TARGET])
        for c in Xt.columns:
            if c in X and str(X[c].dtype) == "category":
                Xt[c] = pd.Categorical(Xt[c], categories=X[c].cat.categories)
        a = AutoML()
        a.fit(X, train[TARGET].astype(str), task="classification", time_budget=budget, verbose=0, seed=seed)
        elapsed = time.monotonic() - t0
        cls = [str(c) for c in a.classes_]
        proba = a.predict_proba(Xt)[:, [cls.index(str(l)) for l in labels]]
        extra = {"learner": a.best_estimator}
    else:
        import lightgbm as lgb

        X = train.drop(columns=[TARGET])
        for c in X.columns:
            if not pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]):
                X[c] = X[c].astype("category")
        Xt = test.drop(columns=[TARGET])
        for c in Xt.columns:
            if str(X[c].dtype) == "category":
                Xt[c] = pd.Categorical(Xt[c], categories=X[c].cat.categories)
        m = lgb.LGBMClassifier(verbose=-1, random_state=0).fit(X, train[TARGET].astype(str))
        elapsed = time.monotonic() - t0
        cls = [str(c) for c in m.classes_]
        proba = m.predict_proba(Xt)[:, [cls.index(str(l)) for l in labels]]
        extra = {"learner": "lgbm-default"}
    res = score(test[TARGET].astype(str), proba, labels)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(system=system, dataset=name, seed=seed, budget_s=budget, elapsed_s=round(elapsed, 2), peak_rss_mb=round(rss_mb),
                n_train=len(train), n_test=len(test), **res, **extra)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--only", default="")
    ap.add_argument("--systems", default="modelfab,flaml,lightgbm")
    ap.add_argument("--seeds", type=int, default=3, help="holdout splits for the small data sets (< 5,000 rows)")
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], args.child[1], args.budget, int(args.child[2]))))
        return
    names = [n for n in DATASETS if not args.only or n in args.only.split(",")]
    rows = []
    for name in names:
        seeds = range(args.seeds) if len(make_dataset(name)) < 5000 else range(1)
        for seed, system in [(sd, sy) for sd in seeds for sy in args.systems.split(",")]:
            proc = subprocess.run([sys.executable, __file__, "--budget", str(args.budget), "--child", system, name,
                                   str(seed)], capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{system} on {name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{name:34s} s{seed} {system:9s} primary {row['primary']:.4f} acc {row['accuracy']:.4f} "
                  f"auc {row['roc_auc']:.4f} {row['elapsed_s']:6.1f}s {row['peak_rss_mb']:5d} MB {row.get('learner')}",
                  file=sys.stderr)
    OUT.mkdir(exist_ok=True)
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d"), "budget_s": args.budget}
    (OUT / "tabular.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\n{meta}\n")
    print("| dataset | system | splits | ROC AUC | accuracy | log loss | wall s (max) | peak RSS MB | chosen |")
    print("|---|---|---|---|---|---|---|---|---|")
    frame = pd.DataFrame(rows)
    for (dataset, system), g in frame.groupby(["dataset", "system"], sort=False):
        print(f"| {dataset} | {system} | {len(g)} | {g.roc_auc.mean():.4f} | {g.accuracy.mean():.4f} | "
              f"{g.log_loss.mean():.4f} | {g.elapsed_s.max():.1f} | {g.peak_rss_mb.max()} | "
              f"{', '.join(sorted(set(map(str, g.learner))))} |")


if __name__ == "__main__":
    main()

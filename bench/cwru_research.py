"""Research on CWRU cross-load generalisation (train one motor load, test the other).

    .venv/bin/python bench/cwru_research.py shift  [--sets ...] [--win 1.0]
    .venv/bin/python bench/cwru_research.py eval   [--sets ...] [--win 1.0 --hop 0.5] [--learners lgbm,et,rf] [--seeds 3]
    .venv/bin/python bench/cwru_research.py gain   [--sets vibration] [--win 0.25]
    .venv/bin/python bench/cwru_research.py robust [--sets vibration] [--win 0.25] [--configs 16] [--kinds et,rf]
                                                   [--drop REGEX] [--keep REGEX]

Fast experiments on the extracted window features (no AutoML search), so that
feature sets, window lengths and learners can be compared in seconds
(``--sets`` takes sets or presets, e.g. ``sound``, ``vibration``, ``sound,bearing``):

* ``shift``: for every feature, how far it moves between 0HP and 1HP for the
  same class (load shift, in pooled within-class std) versus how well it
  separates the classes (Fisher ratio): the features that make the model fail
  across loads are those with large shift and large class separation.
* ``eval``: train on 0HP, test on 1HP and the reverse with a few fixed
  learners; prints window / file accuracy on all files and on fault files only.
* ``gain``: extra trees trained on one load, tested on the other as if
  recorded by a sensor with 2x / 0.5x the gain or a 0.5 DC offset.
* ``robust``: many random learner configurations from roughly the AutoML's
  space (LightGBM, XGBoost, random forest, extra trees), each trained on 4 of
  5 time blocks of every training recording; prints the mean / worst
  cross-load accuracy, the mean over the quarter of configurations an in-load
  holdout would pick, and the same per learner kind.

Findings are in bench/results/cwru.md.

Not a benchmark of the product (bench/cwru.py is); this is for choosing features.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelfab.modalities.signal import extract_features, frame_windows, read_recording  # noqa: E402
from modelfab.modalities.signal.features import FEATURE_SETS  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "cwru_12k_drive_end"
SR = 12000
PAT = re.compile(r"(B0\d\d|IR0\d\d|OR0\d\d@\d+|normal)")


def load() -> dict[str, list[tuple[str, str, np.ndarray, float]]]:
    out = {}
    for load_dir in ("0HP", "1HP"):
        recs = []
        for f in sorted((DATA / load_dir).glob("*.mat")):
            r = read_recording(f, variable="DE_time", sample_rate=SR)
            recs.append((f.name, PAT.search(f.name).group(1), np.asarray(r.samples, np.float32), r.meta.get("rpm")))
        out[load_dir] = recs
    return out


def featurise(recs, sets, win_s, hop_s, fn=None):
    win, hop = int(round(win_s * SR)), int(round(hop_s * SR))
    X, y, g = [], [], []
    for name, lab, x, _ in recs:
        W = frame_windows(x, win, hop)
        F, names = (fn or extract_features)(W, SR, sets)
        X.append(F)
        y += [lab] * len(F)
        g += [name] * len(F)
    return np.concatenate(X).astype(np.float64), np.array(y), np.array(g), names


def learner(kind: str, seed: int = 0):
    if kind == "lgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=5,
                              subsample=0.8, subsample_freq=1, colsample_bytree=0.5, verbose=-1, random_state=seed,
                              n_jobs=1)
    if kind == "et":
        from sklearn.ensemble import ExtraTreesClassifier

        return ExtraTreesClassifier(n_estimators=300, max_features="sqrt", random_state=seed, n_jobs=1)
    if kind == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=300, max_features="sqrt", random_state=seed, n_jobs=1)
    if kind == "lr":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    if kind == "xgb":
        from xgboost import XGBClassifier

        return XGBClassifier(n_estimators=200, learning_rate=0.1, max_depth=4, subsample=0.8, colsample_bytree=0.5,
                             n_jobs=1, random_state=seed)
    raise ValueError(kind)


def score(model, Xtr, ytr, Xte, yte, gte):
    classes = np.unique(ytr)
    code = {c: i for i, c in enumerate(classes)}
    model.fit(Xtr, np.array([code[c] for c in ytr]))
    P = model.predict_proba(Xte)
    wp = classes[P.argmax(1)]
    df = pd.DataFrame({"g": gte, "y": yte, "ok": wp == yte})
    fp = {f: classes[P[gte == f].mean(0).argmax()] for f in np.unique(gte)}
    ft = df.groupby("g")["y"].first()
    fault = ft.index[ft != "normal"]
    res = {"win": df.ok.mean(), "file": np.mean([fp[f] == ft[f] for f in ft.index]),
           "win_fault": df[df.y != "normal"].ok.mean(), "file_fault": np.mean([fp[f] == ft[f] for f in fault]),
           "n_files": len(ft), "n_fault": len(fault)}
    res["wrong"] = {f"{ft[f]}->{fp[f]}": round(float(df[df.g == f].ok.mean()), 2) for f in ft.index if fp[f] != ft[f]}
    return res


def evaluate(data, sets, win_s, hop_s, learners, fn=None, drop=None, keep=None, quiet=False, seeds=(0,)):
    feats = {k: featurise(v, sets, win_s, hop_s, fn) for k, v in data.items()}
    names = feats["0HP"][3]
    cols = np.arange(len(names))
    if keep is not None:
        cols = np.array([i for i, n in enumerate(names) if keep(n)])
    if drop is not None:
        cols = np.array([i for i in cols if not drop(names[i])])
    rows = []
    for a, b in (("0HP", "1HP"), ("1HP", "0HP")):
        Xa, ya, _, _ = feats[a]
        Xb, yb, gb, _ = feats[b]
        for kind in learners:
            for seed in seeds:
                r = score(learner(kind, seed), Xa[:, cols], ya, Xb[:, cols], yb, gb)
                rows.append({"dir": f"{a}->{b}", "learner": kind, "seed": seed, **r})
    df = pd.DataFrame(rows)
    if not quiet:
        for _, r in df.iterrows():
            print(f"  {r['dir']} {r.learner:5s} s{r.seed} win {r.win:.3f} file {r.file:.3f} | fault-only win "
                  f"{r.win_fault:.3f} file {r.file_fault:.3f}  wrong={r.wrong}")
    return df, len(cols)


KINDS = ["lgbm", "lgbm", "xgb", "rf", "et"]


def sample_config(rng):
    """A learner drawn from roughly the space the AutoML searches (FLAML's lgbm/xgboost/rf/extra_tree)."""
    kind = rng.choice(KINDS)
    if kind == "lgbm":
        from lightgbm import LGBMClassifier

        return kind, LGBMClassifier(n_estimators=int(np.exp(rng.uniform(np.log(10), np.log(400)))),
                                    num_leaves=int(np.exp(rng.uniform(np.log(4), np.log(64)))),
                                    min_child_samples=int(rng.integers(2, 40)),
                                    learning_rate=float(np.exp(rng.uniform(np.log(0.02), np.log(0.5)))),
                                    colsample_bytree=float(rng.uniform(0.1, 1.0)), verbose=-1, n_jobs=1,
                                    random_state=int(rng.integers(1 << 30)))
    if kind == "xgb":
        from xgboost import XGBClassifier

        return kind, XGBClassifier(n_estimators=int(np.exp(rng.uniform(np.log(10), np.log(300)))),
                                   max_depth=int(rng.integers(2, 9)),
                                   learning_rate=float(np.exp(rng.uniform(np.log(0.03), np.log(0.5)))),
                                   colsample_bytree=float(rng.uniform(0.1, 1.0)), n_jobs=1,
                                   random_state=int(rng.integers(1 << 30)))
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    cls = RandomForestClassifier if kind == "rf" else ExtraTreesClassifier
    return kind, cls(n_estimators=int(rng.integers(20, 300)), max_features=float(rng.uniform(0.05, 1.0)),
                     min_samples_leaf=int(rng.integers(1, 8)), n_jobs=1, random_state=int(rng.integers(1 << 30)))


def block_subset(g, n_windows_per_file, rng, n_blocks=5, keep=4):
    """Indices of windows in `keep` of `n_blocks` contiguous time blocks per file (like the product's holdout)."""
    idx = []
    for f in np.unique(g):
        w = np.flatnonzero(g == f)
        blocks = np.array_split(np.arange(len(w)), n_blocks)
        for b in rng.choice(n_blocks, keep, replace=False):
            idx += list(w[blocks[b]])
    return np.array(sorted(idx))


def robust(data, sets, win_s, hop_s, n_configs=16, fn=None, keep=None, drop=None, seed=0, quiet=False, feats=None):
    """Cross-load accuracy over many random learner configs, each trained on 80 % of the time blocks."""
    feats = feats or {k: featurise(v, sets, win_s, hop_s, fn) for k, v in data.items()}
    names = feats["0HP"][3]
    cols = np.array([i for i, n in enumerate(names) if (keep is None or keep(n)) and not (drop and drop(n))])
    rows = []
    for a, b in (("0HP", "1HP"), ("1HP", "0HP")):
        Xa, ya, ga, _ = feats[a]
        Xb, yb, gb, _ = feats[b]
        rng = np.random.default_rng(seed)
        for i in range(n_configs):
            kind, model = sample_config(rng)
            sub = block_subset(ga, None, rng)
            r = score(model, Xa[sub][:, cols], ya[sub], Xb[:, cols], yb, gb)
            # in-load log loss on the held-out block: what the AutoML can see when it picks a config
            rest = np.setdiff1d(np.arange(len(ya)), sub)
            classes = np.unique(ya[sub])
            P = np.clip(model.predict_proba(Xa[rest][:, cols]), 1e-15, 1)
            r["inload_logloss"] = float(-np.mean(np.log(P[np.arange(len(rest)), np.searchsorted(classes, ya[rest])])))
            rows.append({"dir": f"{a}->{b}", "learner": kind, "cfg": i, **r})
    df = pd.DataFrame(rows)
    df["perfect"] = df.file_fault == 1.0
    summary = df.groupby("dir").agg(win_fault=("win_fault", "mean"), win_fault_min=("win_fault", "min"),
                                    file_fault=("file_fault", "mean"), perfect=("perfect", "mean"))
    # the quarter of configs with the best in-load holdout log loss (what a search would keep)
    best = df[df.groupby("dir")["inload_logloss"].rank(method="first") <= max(1, n_configs // 4)]
    summary["win_fault_sel"] = best.groupby("dir")["win_fault"].mean()
    summary["file_fault_sel"] = best.groupby("dir")["file_fault"].mean()
    if not quiet:
        print(summary.round(3).to_string())
        by_kind = df.groupby(["dir", "learner"]).agg(n=("cfg", "size"), win_fault=("win_fault", "mean"),
                                                     win_fault_min=("win_fault", "min"),
                                                     file_fault=("file_fault", "mean"))
        print(by_kind.round(3).to_string())
        wrong = pd.Series([k for w in df.wrong for k in w]).value_counts()
        print("most frequent file errors:", dict(wrong.head(8)))
    return df, summary, len(cols)


def shift(data, sets, win_s, hop_s, fn=None, top=40):
    feats = {k: featurise(v, sets, win_s, hop_s, fn) for k, v in data.items()}
    names = feats["0HP"][3]
    X0, y0, _, _ = feats["0HP"]
    X1, y1, _, _ = feats["1HP"]
    classes = sorted(set(y1))  # fault classes present in both
    rows = []
    for j, n in enumerate(names):
        m0 = np.array([X0[y0 == c, j].mean() for c in classes])
        m1 = np.array([X1[y1 == c, j].mean() for c in classes])
        s = np.sqrt(np.mean([np.r_[X0[y0 == c, j], X1[y1 == c, j]].var() for c in classes])) + 1e-9
        within = np.sqrt(np.mean([X0[y0 == c, j].var() for c in classes] + [X1[y1 == c, j].var() for c in classes]))
        between = np.std(np.r_[m0, m1])
        # load shift relative to the smallest distance between two class means (in the train load)
        d = np.abs(m0[:, None] - m0[None, :]) + np.eye(len(classes)) * 1e9
        rows.append({"feature": n, "shift": np.mean(np.abs(m1 - m0)) / (within + 1e-9),
                     "fisher": between / (within + 1e-9),
                     "shift_vs_gap": np.median(np.abs(m1 - m0) / (d.min(1) + 1e-9)),
                     "pooled_std": s})
    df = pd.DataFrame(rows)
    df["set"] = df.feature.str.split("_").str[0]
    pd.set_option("display.width", 200)
    print(df.groupby("set")[["shift", "fisher", "shift_vs_gap"]].median().round(2))
    print("largest shift (std units):")
    print(df.sort_values("shift", ascending=False).head(top).round(2).to_string(index=False))
    return df


def gain_shift(data, sets, win_s, hop_s, gains=(1.0, 2.0, 0.5), offsets=(0.0, 0.5)):
    """Cross-load accuracy (200 extra trees) when the test load is recorded by a sensor with another gain or offset."""
    from sklearn.ensemble import ExtraTreesClassifier

    train = {k: featurise(v, sets, win_s, hop_s) for k, v in data.items()}
    for gain, offset in [(g, 0.0) for g in gains] + [(1.0, o) for o in offsets if o]:
        test = {k: featurise([(n, lab, x * gain + offset, r) for n, lab, x, r in v], sets, win_s, hop_s)
                for k, v in data.items()}
        out = []
        for a, b in (("0HP", "1HP"), ("1HP", "0HP")):
            Xa, ya, _, _ = train[a]
            Xb, yb, gb, _ = test[b]
            r = score(ExtraTreesClassifier(n_estimators=200, max_features="sqrt", random_state=0, n_jobs=1),
                      Xa, ya, Xb, yb, gb)
            out.append(f"{a}->{b} fault windows {r['win_fault']:.3f} files {r['file_fault']:.3f}")
        print(f"gain {gain:g} offset {offset:g}: " + " | ".join(out), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("shift", "eval", "robust", "gain"))
    ap.add_argument("--configs", type=int, default=16)
    ap.add_argument("--kinds", default=None, help="learner kinds to sample, e.g. lgbm,xgb (default: all)")
    ap.add_argument("--drop", default=None, help="regex of feature names to leave out")
    ap.add_argument("--keep", default=None, help="regex of feature names to use")
    ap.add_argument("--sets", default=",".join(FEATURE_SETS))
    ap.add_argument("--win", type=float, default=1.0)
    ap.add_argument("--hop", type=float, default=None)
    ap.add_argument("--learners", default="lgbm,et,rf")
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args()
    if args.kinds:
        KINDS[:] = args.kinds.split(",")
    data = load()
    sets = tuple(args.sets.split(","))
    hop = args.hop or args.win / 2
    t = time.time()
    if args.cmd == "shift":
        shift(data, sets, args.win, hop)
    elif args.cmd == "gain":
        gain_shift(data, sets, args.win, hop)
    elif args.cmd == "robust":
        keep = (lambda n: re.search(args.keep, n) is not None) if args.keep else None
        drop = (lambda n: re.search(args.drop, n) is not None) if args.drop else None
        _, _, n = robust(data, sets, args.win, hop, n_configs=args.configs, keep=keep, drop=drop)
        print(f"{n} features, {time.time() - t:.1f}s")
    else:
        df, n = evaluate(data, sets, args.win, hop, args.learners.split(","), seeds=tuple(range(args.seeds)))
        print(f"{n} features, {time.time() - t:.1f}s")
        print(df.groupby("dir")[["win", "file", "win_fault", "file_fault"]].mean().round(3))


if __name__ == "__main__":
    main()

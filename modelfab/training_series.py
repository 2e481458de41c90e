"""Training on a collection of time series: classification or regression of whole series.

Candidates, cheapest and strongest first: MiniRocket + ridge, MultiRocket + ridge, summary
features + LightGBM. Each is fitted on the training part of a holdout split and gives
out-of-fold predictions there (exact leave-one-out for the ridge heads, 5-fold for LightGBM);
greedy ensemble selection (Caruana et al., as in automl/ensemble.py) on those picks the
weights. The holdout, never seen by the selection, gives the reported metrics; then the
chosen parts are refit on every series if the budget allows. Every step asks the one Budget.
"""

from __future__ import annotations

import time

import numpy as np

from .errors import InvalidInput, TrainingError
from .series import load_series
from .training import data_lineage, finish, package_folder, training_info

SERIES_TASKS = ("auto", "classification", "regression")
CANDIDATES = ("minirocket", "multirocket", "features")
ROUNDS = 20
MAX_CELLS = 6e7  # series x features kept in memory per transform (float64: ~0.5 GB)


def _features_for(kind: str, n: int) -> tuple[int, int]:
    """(published default feature count capped by memory: series x features, floor)."""
    full = 10_000 if kind == "minirocket" else 50_000
    floor = 840 if kind == "minirocket" else 3_360
    return int(max(floor, min(full, MAX_CELLS // max(n, 1)))), floor


def _flop_rate() -> float:
    """Floating-point operations per second of a small matrix product, as the machine runs now (load included)."""
    a = np.random.default_rng(0).normal(size=(300, 2000))
    t0 = time.perf_counter()
    a @ a.T
    return 3.6e8 / max(time.perf_counter() - t0, 1e-4)


def _ridge_flops(n: int, f: int) -> float:
    small, big = min(n, f), max(n, f)
    return 2 * (2.0 * small * small * big + 4.0 * small ** 3)  # two fits: Gram/covariance + eigen-decomposition


def rocket_features(kind: str, data, offsets, seconds: float, seed: int) -> int:
    """The largest feature count (<= the published default) whose transform + ridge fit should take ``seconds``.

    Timed on the machine as it runs now: the transform on a few series (compiled first), a small matrix product."""
    from .modalities.series.rocket import RocketTransform

    n = len(offsets) - 1
    full, floor = _features_for(kind, n)
    probe = min(n, 8)
    sub_off = offsets[:probe + 1]
    sub = data[:, :sub_off[-1]]
    t = RocketTransform(kind, full, seed).fit(sub, sub_off)
    t.transform(sub, sub_off)  # the first call may compile
    t0 = time.perf_counter()
    t.transform(sub, sub_off)
    per = (time.perf_counter() - t0) / probe / full  # seconds per series and feature
    rate = _flop_rate()
    f = full
    while f > floor and per * f * n + _ridge_flops(n, f) / rate > seconds:
        f = int(f * 0.7)
    return max(f, floor)


def _targets(index, task: str, label_kind: str | None):
    import pandas as pd

    from .automl.engine import _label_sort_key

    if "label" not in index.columns or index["label"].notna().sum() == 0:
        raise InvalidInput("The series have no labels; training needs a label (class or number) per series.",
                           hint="Import with --label-column COLUMN or --labels FILE.csv (id,label).")
    keep = index["label"].notna().to_numpy()
    lab = index["label"][keep]
    if task == "auto":
        task = "regression" if label_kind == "numeric" and lab.nunique() > 20 else "classification"
    if task == "regression":
        y = pd.to_numeric(lab, errors="coerce")
        if y.isna().any():
            raise InvalidInput(f"Regression needs numeric labels; got {str(lab[y.isna()].iloc[0])!r}.",
                               hint="Use --task classification.")
        if y.nunique() < 2:
            raise InvalidInput("All labels are the same number; nothing to learn.")
        return keep, y.to_numpy(float), task, None
    values = lab.map(lambda v: v.item() if hasattr(v, "item") else v)
    if label_kind == "numeric":
        values = values.map(lambda v: int(v) if float(v).is_integer() else v)
    counts = values.value_counts()
    if len(counts) < 2:
        raise InvalidInput(f"All labelled series have the same class ({counts.index[0]!r}); classification needs two.")
    rare = counts[counts < 2]
    if len(rare):
        raise InvalidInput(f"Class(es) {', '.join(repr(c) for c in rare.index[:5])} have a single series; each class "
                           "needs at least two (one to learn from, one to test on).")
    labels = sorted(counts.index.tolist(), key=_label_sort_key)
    code = {v: i for i, v in enumerate(labels)}
    return keep, values.map(code).to_numpy(np.int64), task, labels


def _loss(task: str, y: np.ndarray, p: np.ndarray) -> float:
    if task == "regression":
        return float(np.mean((p - y) ** 2))
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1))))


def _score(task: str, y: np.ndarray, p: np.ndarray) -> float:
    if task == "regression":
        ss = float(np.sum((y - y.mean()) ** 2)) or 1.0
        return 1.0 - float(np.sum((y - p) ** 2)) / ss
    return float(np.mean(p.argmax(axis=1) == y))


def greedy_weights(task: str, y: np.ndarray, oofs: list[np.ndarray]) -> list[float]:
    """Forward selection with replacement on out-of-fold predictions (loss: log loss / squared error)."""
    losses = [_loss(task, y, p) for p in oofs]
    counts = np.zeros(len(oofs))
    counts[int(np.argmin(losses))] = 1
    current = oofs[int(np.argmin(losses))].copy()
    best = min(losses)
    for r in range(2, ROUNDS + 1):
        trial = [_loss(task, y, (current * (r - 1) + p) / r) for p in oofs]
        j = int(np.argmin(trial))
        if trial[j] >= best - 1e-9:
            break
        best, counts[j] = trial[j], counts[j] + 1
        current = (current * (r - 1) + oofs[j]) / r
    return (counts / counts.sum()).tolist()


def _per_example_loss(task: str, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    if task == "regression":
        return (p - y) ** 2
    return -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1))


def choose_weights(task: str, y: np.ndarray, fitted: list) -> tuple[list[float], str]:
    """MultiRocket by default (the strongest single method in published UCR comparisons); another candidate or a
    greedy ensemble (of candidates within one standard error of the best) replaces it only when its out-of-fold
    loss is lower by more than one standard error (paired), so that a handful of lucky out-of-fold series on a
    small data set does not decide, and a clearly weaker candidate never dilutes a blend."""
    names = [m.name for m in fitted]
    default = names.index("multirocket_ridge") if "multirocket_ridge" in names else 0
    oofs = [m.oof for m in fitted]
    # only candidates within one paired standard error of the best single one may join a blend
    losses = [_per_example_loss(task, y, p) for p in oofs]
    best = int(np.argmin([v.mean() for v in losses]))
    close = [j for j, v in enumerate(losses)
             if j == best or (v - losses[best]).mean() <= (v - losses[best]).std(ddof=1) / np.sqrt(len(y))]
    sub = greedy_weights(task, y, [oofs[j] for j in close])
    weights = [0.0] * len(fitted)
    for j, w in zip(close, sub):
        weights[j] = w
    base = [0.0] * len(fitted)
    base[default] = 1.0
    if np.argmax(weights) == default and max(weights) == 1.0:
        return base, f"Chosen: {names[default]} (best out-of-fold loss)."
    blend = sum(p * w for p, w in zip(oofs, weights))
    diff = _per_example_loss(task, y, oofs[default]) - _per_example_loss(task, y, blend)
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.inf
    if diff.mean() > se:
        used = [n for n, w in zip(names, weights) if w > 0]
        what = f"a weighted blend of {', '.join(used)}" if len(used) > 1 else used[0]
        return weights, (f"Chosen: {what}: its out-of-fold loss beat {names[default]} by more than one standard "
                         "error.")
    return base, (f"Chosen: {names[default]}; other candidates and blends were not better out-of-fold by more than "
                  "one standard error.")


def _folds(y, task, seed):
    from sklearn.model_selection import KFold, StratifiedKFold

    idx = np.arange(len(y))
    if task == "classification":
        k = int(min(5, np.bincount(y).min()))
        if k >= 2:
            return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(idx, y))
    return list(KFold(min(5, len(y)), shuffle=True, random_state=seed).split(idx))


def _fit(kind, task, n_classes, data, offsets, series, y, seed, budget, folds, n_features=None):
    from .modalities.series.heads import FeatureBoost, RocketRidge

    if kind == "features":
        model = FeatureBoost(task, n_classes, seed)
    else:
        n_features = n_features or rocket_features(kind, data, offsets, 0.4 * budget.left_for_search(), seed)
        model = RocketRidge(kind, task, n_classes, n_features, seed)
    if kind == "features":
        rounds = 300 if n_classes <= 2 else max(60, 900 // n_classes)  # multiclass: one tree per class per round
        model.fit(data, offsets, series, y, folds=folds, rounds=rounds, deadline=lambda: budget.left_for_search() <= 0)
    else:
        model.fit(data, offsets, series, y)
    return model


def train_series(ws, ds, *, target: str | None = None, task: str, budget, metric: str | None, name: str, seed: int,
                 progress, normal_label: str = "normal", max_false_alarm: float = 0.01):
    """Train on a dataset of series (``target`` is unused: the labels come from the import)."""
    from .automl.engine import reserve_for
    from .modalities.series.heads import SeriesEnsemble
    from .modalities.series.io import unpack
    from .splits import holdout_split

    if task not in SERIES_TASKS:
        raise InvalidInput(f"Task for time series must be one of {', '.join(SERIES_TASKS)}; got {task!r}.")
    if metric not in (None, "accuracy", "r2"):
        raise InvalidInput(f"Series models are chosen on out-of-fold log loss (classification) or squared error "
                           f"(regression) and reported with accuracy or r2; --metric {metric!r} is not used for them.",
                           hint="Leave --metric out.")
    data, offsets, index = load_series(ws, ds)
    keep, y, task, labels = _targets(index, task, ds.schema.get("label_kind"))
    series_all = [s for s, k in zip(unpack(data, offsets), keep) if k]
    if len(series_all) < 10:
        raise InvalidInput(f"Only {len(series_all)} labelled series; at least 10 are needed to train and test a model.")
    n_classes = len(labels) if labels else 0
    budget.reserve(reserve_for(budget.total))
    tr, te = holdout_split(y if task == "classification" else None, len(y), seed=seed)
    tr, te = np.sort(tr), np.sort(te)

    def pack(ix):
        s = [series_all[i] for i in ix]
        off = np.zeros(len(s) + 1, np.int64)
        off[1:] = np.cumsum([x.shape[1] for x in s])
        return np.ascontiguousarray(np.concatenate(s, axis=1)), off, s

    d_tr, o_tr, s_tr = pack(tr)
    d_te, o_te, s_te = pack(te)
    folds = _folds(y[tr], task, seed)
    fitted, board, notes, spent = [], [], [], {}
    for kind in CANDIDATES:
        left = budget.left_for_search()
        guess = spent.get("minirocket", 0.0) * (6.0 if kind == "multirocket" else 0.5)
        if fitted and (left <= 0 or guess > left):
            board.append({"learner": _label(kind), "status": "skipped: not enough budget left", "score": None})
            continue
        t0 = time.monotonic()
        try:
            model = _fit(kind, task, n_classes, d_tr, o_tr, s_tr, y[tr], seed, budget, folds)
        except TimeoutError:
            board.append({"learner": _label(kind), "status": "stopped: budget", "score": None})
            continue
        spent[kind] = time.monotonic() - t0
        fitted.append(model)
        board.append({"learner": _label(kind), "status": "ok", "metric": "out-of-fold " + _metric_name(task),
                      "score": round(_score(task, y[tr], model.oof), 6), "loss": round(_loss(task, y[tr], model.oof), 6),
                      "train_time_s": round(spent[kind], 3),
                      "config": {"features": getattr(getattr(model, "transform", None), "n_outputs", None)}})
        if progress:
            progress(_progress(budget, len(fitted), board))
    if not fitted:
        raise TrainingError("No candidate finished within the budget.", hint="Give a larger --budget.")
    weights, why = choose_weights(task, y[tr], fitted)
    notes.append(why)
    ens = SeriesEnsemble(fitted, weights, task)
    raw = ens.predict_raw(d_te, o_te, s_te)
    metrics = _holdout_metrics(task, y[te], raw, labels)
    metrics["primary"] = {"name": _metric_name(task), "validation_score": _score(task, y[tr], _blend(fitted, weights))}
    if len(te) < 30:
        notes.append(f"The holdout has only {len(te)} series: treat its metrics as rough.")
    chosen = [(m, w) for m, w in zip(fitted, weights) if w > 0]
    final = SeriesEnsemble([m for m, _ in chosen], [w for _, w in chosen], task)
    cost = sum(spent[_kind(m)] for m, _ in chosen)
    need = cost * (len(y) / max(len(tr), 1)) ** 2 * 1.2 + 0.2 * cost  # ridge cost grows faster than n
    refit = need < budget.left_for_search() + 0.3 * budget._reserved
    if refit:
        d_all, o_all, s_all = pack(np.arange(len(y)))
        final = SeriesEnsemble([_fit(_kind(m), task, n_classes, d_all, o_all, s_all, y, seed, budget, None,
                                     getattr(getattr(m, "transform", None), "n_features", None))
                                for m, _ in chosen], [w for _, w in chosen], task)
        notes.append(f"The metrics come from {len(te)} held-out series and a model trained on the other {len(tr)}; the "
                     f"registered model was then refit on all {len(y)} series with the same choices.")
    else:
        notes.append("Not enough budget was left to refit on all series: the registered model is the one trained "
                     f"on {len(tr)} series and tested on the {len(te)} held out.")
    return _package(ws, ds, final, metrics, board, notes, budget, seed, name, task, labels, y[te], raw,
                    (d_te, o_te, s_te), np.asarray(index["id"][keep])[te], refit, len(y))


def _blend(fitted, weights):
    return sum(m.oof * w for m, w in zip(fitted, weights)) / sum(weights)


def _kind(m) -> str:
    return getattr(m, "kind", "features")


def _label(kind: str) -> str:
    return {"minirocket": "minirocket_ridge", "multirocket": "multirocket_ridge"}.get(kind, "features_lgbm")


def _metric_name(task: str) -> str:
    return "r2" if task == "regression" else "accuracy"


def _progress(budget, trials, board):
    from .automl.search import Progress

    done = [r for r in board if r.get("score") is not None]
    best = max(done, key=lambda r: r["score"]) if done else None
    return Progress(elapsed_s=budget.elapsed(), left_s=budget.left(), trials=trials,
                    best_score=best["score"] if best else None, best_learner=best["learner"] if best else None,
                    metric=best["metric"] if best else "")


def _holdout_metrics(task, y, raw, labels):
    from .evaluation.metrics import classification_metrics, regression_metrics

    if task == "regression":
        return regression_metrics(y, raw)
    return classification_metrics(y, raw, [str(v) for v in labels])


MAX_EXAMPLES = 12
MAX_EXAMPLE_POINTS = 4000


def _examples(task, y, raw, held) -> dict:
    """The worst held-out series (misclassified first), kept in the package for the report's plots."""
    data, offsets, series = held
    if task == "regression":
        order = np.argsort(-np.abs(raw - y))
    else:
        wrong = raw.argmax(axis=1) != y
        order = np.lexsort((raw[np.arange(len(y)), y], ~wrong))
    pick = [int(i) for i in order[:MAX_EXAMPLES] if series[i].shape[1] * series[i].shape[0] <= MAX_EXAMPLE_POINTS]
    if not pick:
        return {}
    parts = [series[i] for i in pick]
    off = np.zeros(len(parts) + 1, np.int64)
    off[1:] = np.cumsum([p.shape[1] for p in parts])
    return {"ex_data": np.concatenate(parts, axis=1), "ex_offsets": off, "ex_index": np.array(pick, np.int64)}


def _package(ws, ds, final, metrics, board, notes, budget, seed, name, task, labels, y_te, raw, held, te_ids, refit,
             n_total):
    from .modalities.series.heads import SeriesEnsemble

    with package_folder(ws) as folder:
        specs = final.save(folder)
        arrays = {"y_true": y_te, "ids": np.asarray(te_ids).astype(str)}
        arrays["proba" if task == "classification" else "y_pred"] = raw
        arrays.update(_examples(task, y_te, raw, held))
        np.savez_compressed(folder / "holdout.npz", **arrays)
        schema = ds.schema
        manifest = {
            "modality": "series", "task": task, "labels": labels,
            "input_schema": {"columns": [{"name": "values", "kind": "series"}]},
            "series": {"n_channels": schema["n_channels"], "channel_names": schema.get("channel_names"),
                       "min_length": schema["min_length"], "max_length": schema["max_length"],
                       "options": ds.options, "members": specs},
            "metrics": metrics, "metric": _metric_name(task),
            "learner": {"name": final.describe(), "format": "series-ensemble",
                        "config": {"members": [{"name": s["name"], "weight": s["weight"]} for s in specs],
                                   "refit_on_all": refit}},
            "leaderboard": board,
            "data": data_lineage(ds, n_train=n_total - len(y_te), n_holdout=len(y_te), holdout_ids=[str(i) for i in te_ids]),
            "training": training_info(budget, seed, len([b for b in board if b.get("score") is not None]), notes,
                                      selection="greedy ensemble selection on out-of-fold predictions"),
        }
        manifest["training"]["search_space"] = [_label(k) for k in CANDIDATES]
        few = held[2][:16]  # the reload check: a few held-out series are enough to show equality
        off = np.zeros(len(few) + 1, np.int64)
        off[1:] = np.cumsum([x.shape[1] for x in few])
        few_data = np.ascontiguousarray(np.concatenate(few, axis=1))
        check = final.predict_raw(few_data, off, few)
        reloaded = SeriesEnsemble.load(folder, specs, task, len(labels or []))
        got = reloaded.predict_raw(few_data, off, few)
        if got.shape != check.shape or not np.allclose(got, check, atol=1e-6):
            raise TrainingError("The saved series model does not reproduce the trained model's predictions; "
                                "nothing was registered.", hint="Please report this with --debug output.")
        return finish(ws, folder, manifest, None, name=name, ds=ds)

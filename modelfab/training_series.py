"""Training on a collection of time series: classification or regression of whole series.

Candidates, cheapest and strongest first: MiniRocket + ridge, MultiRocket + ridge, summary
features + LightGBM. Each is fitted on the training part of a holdout split and gives
out-of-fold predictions there (exact leave-one-out for the ridge heads, 5-fold for LightGBM,
repeated up to three times on small data); the default is MiniRocket and MultiRocket averaged,
replaced only when greedy ensemble selection (Caruana et al., as in automl/ensemble.py) on
those predictions finds a blend clearly better out-of-fold. The holdout, never seen by the selection, gives the reported metrics; then the
chosen parts are refit on every series if the budget allows. Every step asks the one Budget.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .errors import InvalidInput, TrainingError
from .series import auto_task, label_spelling_notes, load_series
from .modalities.series_model import series_input
from .training import data_lineage, finish, package_folder, training_info
from .training_series_plan import SLOW_FLOPS, _head_seconds, measured_rate, rocket_plan

SERIES_TASKS = ("auto", "classification", "regression")
CANDIDATES = ("minirocket", "multirocket", "features")
ROUNDS = 20


def _targets(index, task: str, label_kind: str | None, label_source: str | None = None):
    """(labelled mask, targets, task, class labels). ``label_source``: where the import took the labels from
    (a column or a labels file), to say so when it held none."""
    import pandas as pd

    from .automl.engine import order_labels

    if "label" not in index.columns or index["label"].notna().sum() == 0:
        if label_source:
            raise InvalidInput(f"The series have no labels: {label_source} was empty for all {len(index):,} series at "
                               "import; training needs a label (class or number) per series.",
                               hint="Import again with the column (or file) that holds the labels, or label the "
                                    "series in the browser (Label series on the dataset page).")
        raise InvalidInput("The series have no labels; training needs a label (class or number) per series.",
                           hint="Import with --label-column COLUMN or --labels FILE.csv (id,label).")
    keep = index["label"].notna().to_numpy()
    lab = index["label"][keep]
    if task == "auto":
        task = auto_task(label_kind, lab.nunique())
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
        raise InvalidInput(f"All labelled series have the same class ({counts.index.tolist()[0]!r}); classification "
                           "needs two.")
    rare = counts[counts < 2]
    if len(rare):
        raise InvalidInput(f"Class(es) {', '.join(repr(c) for c in rare.index[:5])} have a single series; each class "
                           "needs at least two (one to learn from, one to test on).")
    labels = order_labels(counts)
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


def default_weights(names: list[str]) -> list[float]:
    """The established default: MiniRocket and MultiRocket (+ ridge) averaged, or whichever of them was fitted.

    On the UCR sets measured (bench/results/series.md) the average of the two was never more than 0.7 points
    below either alone and steadier across seeds than MultiRocket alone (ACSF1: 89-91 alone, 91-92 averaged)."""
    rockets = [j for j, n in enumerate(names) if n in ("minirocket_ridge", "multirocket_ridge")]
    w = [0.0] * len(names)
    for j in rockets or [0]:
        w[j] = 1.0 / len(rockets or [0])
    return w


def choose_weights(task: str, y: np.ndarray, fitted: list) -> tuple[list[float], str]:
    """The default (:func:`default_weights`) unless a greedy ensemble (of candidates within one standard error of
    the best single one) has an out-of-fold loss lower by more than one paired standard error: a handful of lucky
    out-of-fold series on a small data set does not decide, and a clearly weaker candidate never dilutes a blend."""
    names = [m.name for m in fitted]
    base = default_weights(names)
    what_base = " + ".join(n for n, w in zip(names, base) if w > 0)
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
    if np.allclose(weights, base):
        return base, f"Chosen: {what_base} (also the best out-of-fold blend)."
    blend = sum(p * w for p, w in zip(oofs, weights))
    default = sum(p * w for p, w in zip(oofs, base))
    diff = _per_example_loss(task, y, default) - _per_example_loss(task, y, blend)
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.inf
    if diff.mean() > se:
        used = [n for n, w in zip(names, weights) if w > 0]
        what = f"a weighted blend of {', '.join(used)}" if len(used) > 1 else used[0]
        return weights, (f"Chosen: {what}: its out-of-fold loss beat the default ({what_base}) by more than one "
                         "standard error.")
    return base, (f"Chosen: the default, {what_base}; other candidates and blends were not better out-of-fold by "
                  "more than one standard error.")


def _folds(y, task, seed, repeats: int = 1):
    """k-fold splits (stratified for classes); ``repeats`` > 1 concatenates that many differently shuffled k-fold
    splits, whose out-of-fold predictions are averaged per series (less noise on a small data set)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    idx = np.arange(len(y))
    out = []
    for r in range(repeats):
        if task == "classification" and int(min(5, np.bincount(y).min())) >= 2:
            k = int(min(5, np.bincount(y).min()))
            out += list(StratifiedKFold(k, shuffle=True, random_state=seed + 1000 * r).split(idx, y))
        else:
            out += list(KFold(min(5, len(y)), shuffle=True, random_state=seed + 1000 * r).split(idx))
    return out


def _fold_repeats(n: int) -> int:
    return 3 if n <= 200 else 2 if n <= 1000 else 1


SUMMARY_PROBE = 200  # series whose summary features are timed before LightGBM starts


def _summary_seconds(series) -> float:
    """Estimated seconds of the summary features of ``series`` (pure Python per series: ~0.4 ms for a length of
    100), from timing them on the first :data:`SUMMARY_PROBE`; 0 when there are no more than those."""
    from .modalities.series.features import summary_features

    if len(series) <= SUMMARY_PROBE:
        return 0.0
    t0 = time.perf_counter()
    summary_features(series[:SUMMARY_PROBE])
    return (time.perf_counter() - t0) * len(series) / SUMMARY_PROBE


class _WontFit(TimeoutError):
    """A candidate not started: even its smallest configuration is estimated to take longer than the time left."""


def _fit(kind, task, n_classes, data, offsets, series, y, seed, budget, folds, n_features=None, deadline=None,
         may_take=None, rate=None):
    """``may_take``: seconds the fit may take (None: fit whatever it costs); a ROCKET fit whose feature count
    does not clearly fit and whose estimate at that count is longer raises :class:`_WontFit` before starting
    (the ridge head cannot be stopped once started). ``rate``: the matrix rate measured on an earlier ridge."""
    from .modalities.series.heads import FeatureBoost, RocketRidge

    deadline = deadline or (lambda: budget.left_for_search() <= 0)
    if kind == "features":
        if may_take is not None and _summary_seconds(series) > may_take:
            raise _WontFit
        model = FeatureBoost(task, n_classes, seed)
    else:
        if not n_features:
            n_features, need, clear = rocket_plan(kind, data, offsets, 0.4 * budget.left_for_search(), seed, rate)
            if may_take is not None and not clear and need > may_take:
                raise _WontFit
        model = RocketRidge(kind, task, n_classes, n_features, seed)
    if kind == "features":
        rounds = 300 if n_classes <= 2 else max(60, 900 // n_classes)  # multiclass: one tree per class per round
        start = budget.left_for_search()  # repeats beyond the first k-fold may use a quarter of the time left
        model.fit(data, offsets, series, y, folds=folds, rounds=rounds, deadline=deadline,
                  enough=lambda: budget.left_for_search() < 0.75 * start)
    else:
        model.fit(data, offsets, series, y, deadline=deadline)
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
    opts = ds.options or {}
    source = (f"the label column {opts['label_column']!r}" if opts.get("label_column") else
              f"the labels file {Path(opts['labels_file']).name!r}" if opts.get("labels_file") else None)
    keep, y, task, labels = _targets(index, task, ds.schema.get("label_kind"), source)
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
    folds = _folds(y[tr], task, seed, _fold_repeats(len(tr)))
    fitted, board, notes, spent = [], [], [], {}
    if labels:  # as the import said it: 'ok', 'OK' and 'ok ' are three classes
        notes += label_spelling_notes(labels, opts.get("label_column"))
    fitted_rows: list[int] = []  # the board row of each fitted candidate
    rate = None  # the matrix rate the first ridge head showed, for the later ones' estimates
    for kind in CANDIDATES:
        left = budget.left_for_search()
        guess = spent.get("minirocket", 0.0) * (3.5 if kind == "multirocket" else 0.5)  # measured: 1.5-4x
        if fitted and (left <= 0 or guess > left):
            board.append({"learner": _label(kind), "status": "skipped: not enough budget left", "score": None})
            continue
        t0 = time.monotonic()
        try:
            model = _fit(kind, task, n_classes, d_tr, o_tr, s_tr, y[tr], seed, budget, folds,
                         may_take=left if fitted else None, rate=rate)
        except _WontFit:
            board.append({"learner": _label(kind), "status": "skipped: not enough budget left", "score": None})
            continue
        except TimeoutError:
            board.append({"learner": _label(kind), "status": "stopped: budget", "score": None})
            continue
        spent[kind] = time.monotonic() - t0
        if rate is None and getattr(model, "fit_seconds", None):
            rate = measured_rate(len(tr), model.transform.n_outputs, model.fit_seconds[1])
        fitted.append(model)
        fitted_rows.append(len(board))
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
    blended = _blend(fitted, weights)
    # what chose the blend (choose_weights): the out-of-fold loss, not the accuracy the leaderboard also shows
    metrics["primary"] = {"name": "mean squared error, out of fold" if task == "regression" else
                          "log loss, out of fold", "validation_score": _loss(task, y[tr], blended)}
    used = [i for i, w in enumerate(weights) if w > 0]
    if len(used) == 1:  # the report highlights what was kept: one candidate, or their blend (its own row)
        board[fitted_rows[used[0]]]["chosen"] = True
    else:
        board.append({"learner": ens.describe(), "status": "ok", "metric": "out-of-fold " + _metric_name(task),
                      "score": round(_score(task, y[tr], blended), 6), "loss": round(_loss(task, y[tr], blended), 6),
                      "train_time_s": round(sum(spent.values()), 3), "chosen": True,
                      "config": {"weights": {board[fitted_rows[i]]["learner"]: round(float(weights[i]), 4)
                                             for i in used}}})
    if len(te) < 30:
        notes.append(f"The holdout has only {len(te)} series: treat its metrics as rough.")
    chosen = [(m, w) for m, w in zip(fitted, weights) if w > 0]
    final = SeriesEnsemble([m for m, _ in chosen], [w for _, w in chosen], task)
    ratio = len(y) / max(len(tr), 1)
    # ROCKET heads keep their transform and add the held-out series' features (heads.RocketRidge.refit_with): the
    # held-out part's transform + a ridge fit; LightGBM is trained again (its time also paid for its k-fold fits)
    cheap = all(_kind(m) == "features" or m.fit_features is not None for m, _ in chosen)
    need = sum(_refit_seconds(m, spent[_kind(m)], len(tr), len(y), cheap, ratio / (len(folds) + 1)) * 1.3
               for m, _ in chosen)
    refit = need < budget.left_for_search() + 0.5 * budget._reserved  # a refit running over is stopped (below)
    for m in fitted:
        if all(m is not c for c, _ in chosen):
            m.fit_features = None  # free the memory of candidates not used
    if refit:
        d_all, o_all, s_all = pack(np.arange(len(y)))
        y_rows = np.concatenate([y[tr], y[te]])
        stop = lambda: budget.left() < 0.5 * budget._reserved  # keep half the reserve for the package
        try:
            final = SeriesEnsemble([m.refit_with(d_te, o_te, y_rows, stop) if _kind(m) != "features" and cheap else
                                    _fit(_kind(m), task, n_classes, d_all, o_all, s_all, y, seed, budget, None,
                                         getattr(getattr(m, "transform", None), "n_features", None), stop)
                                    for m, _ in chosen], [w for _, w in chosen], task)
        except TimeoutError:
            refit = False
    for m in [c for c, _ in chosen] + final.members:
        m.fit_features = None
    if refit:
        notes.append(f"The metrics come from {len(te)} held-out series and a model trained on the other {len(tr)}; the "
                     f"registered model was then refit on all {len(y)} series with the same choices"
                     + (" (ROCKET transforms as fitted on the first part, their heads on all series)." if cheap else "."))
    else:
        notes.append("Not enough budget was left to refit on all series: the registered model is the one trained "
                     f"on {len(tr)} series and tested on the {len(te)} held out.")
    return _package(ws, ds, final, metrics, board, notes, budget, seed, name, task, labels, y[te], raw,
                    (d_te, o_te, s_te), np.asarray(index["id"][keep])[te], refit, len(y), value_range(data))


def _refit_seconds(m, spent: float, n_tr: int, n_all: int, cheap: bool, boost_share: float) -> float:
    """Estimated seconds to refit ``m`` (which took ``spent`` on ``n_tr`` series) on all ``n_all`` series.

    ROCKET heads: the transform part scales with the series transformed (only the held-out ones when ``cheap``:
    heads.RocketRidge.refit_with), the head with its ridge cost on more rows (_head_seconds), both from the
    measured split of the fit (RocketRidge.fit_seconds). LightGBM: ``boost_share`` of its time (its time also
    paid for the k-fold fits)."""
    if _kind(m) == "features":
        return spent * boost_share
    f = m.transform.n_outputs
    trans_s, head_s = m.fit_seconds or (0.5 * spent, 0.5 * spent)
    grow = _head_seconds(n_all, f, SLOW_FLOPS) / max(_head_seconds(n_tr, f, SLOW_FLOPS), 1e-9)
    more = (n_all - n_tr) / max(n_tr, 1) if cheap else n_all / max(n_tr, 1)
    return trans_s * more + head_s * grow


def _blend(fitted, weights):
    return sum(m.oof * w for m, w in zip(fitted, weights)) / sum(weights)


def _kind(m) -> str:
    return getattr(m, "kind", "features")


def _label(kind: str) -> str:
    return {"minirocket": "minirocket_ridge", "multirocket": "multirocket_ridge"}.get(kind, "features_lgbm")


def value_range(data: np.ndarray) -> list[list[float]]:
    """Per channel, the 1st and 99th percentile of the training values (every k-th value of a long set): what
    prediction compares a series with (a channel far outside it was never seen)."""
    step = max(1, data.shape[1] // 2_000_000)
    q = np.nanpercentile(np.asarray(data[:, ::step], np.float64), [1, 99], axis=1)
    return [[float(q[0, c]), float(q[1, c])] for c in range(data.shape[0])]


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
             n_total, ranges):
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
            "input_schema": {"columns": [series_input(schema["n_channels"], schema.get("channel_names"))]},
            "series": {"n_channels": schema["n_channels"], "channel_names": schema.get("channel_names"),
                       "min_length": schema["min_length"], "max_length": schema["max_length"],
                       "value_range": ranges, "options": ds.options, "members": specs},
            "metrics": metrics, "metric": _metric_name(task),
            "learner": {"name": final.describe(), "format": "series-ensemble",
                        "config": {"members": [{"name": s["name"], "weight": s["weight"]} for s in specs],
                                   "refit_on_all": refit}},
            "leaderboard": board,
            "data": data_lineage(ds, n_train=n_total - len(y_te), n_holdout=len(y_te), holdout_ids=[str(i) for i in te_ids]),
            "training": training_info(budget, seed, len(fitted_rows_of(board)), notes,
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


def fitted_rows_of(board: list[dict]) -> list[dict]:
    """The candidates that were fitted (their blend's row aside)."""
    return [b for b in board if b.get("score") is not None and "weights" not in (b.get("config") or {})]

"""Holdout metrics for classification, regression and anomaly detection.

All functions take plain arrays, return JSON-ready dicts of Python floats and
ints, and never crash on degenerate but legal holdouts (a single class, a class
absent from the truth, constant predictions): a metric that is undefined for
the data is ``None``. Bad arguments (wrong shapes, NaN, labels out of range)
raise :class:`~modelfab.errors.InvalidInput`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import InvalidInput

MAX_CURVE_POINTS = 200
MAX_CURVE_CLASSES = 10
CALIBRATION_BINS = 10


# ---------------------------------------------------------------- validation
def _f(x) -> float | None:
    """Python float, or None when not finite; never -0.0 (a perfect log loss, ``-mean(log 1)``, would show as
    "-0.000")."""
    if x is None:
        return None
    x = float(x) + 0.0  # -0.0 + 0.0 == +0.0
    return x if math.isfinite(x) else None


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _as_1d(a, name: str, *, dtype=float) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{name} must be numeric; got values that are not ({e}).") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional; got shape {arr.shape}.")
    if arr.size == 0:
        raise InvalidInput(f"{name} is empty; metrics need at least one holdout row.")
    if dtype is float and not np.all(np.isfinite(arr)):
        raise InvalidInput(f"{name} contains NaN or infinite values ({int((~np.isfinite(arr)).sum())} of {arr.size}).")
    return arr


def _codes(y_true, k: int) -> np.ndarray:
    y = _as_1d(y_true, "y_true")
    if not np.all(y == np.round(y)):
        raise InvalidInput("y_true must hold integer class codes (0..k-1).")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise InvalidInput(f"y_true holds class codes from {y.min()} to {y.max()}, but there are only {k} labels "
                           f"(codes 0..{k - 1}).")
    return y


def _proba(proba, n: int, labels) -> tuple[np.ndarray, list[str]]:
    labels = [str(x) for x in (labels or [])]
    if len(labels) < 2:
        raise InvalidInput(f"Classification needs at least two labels; got {len(labels)}.")
    if len(set(labels)) != len(labels):
        raise InvalidInput("Labels must be unique; got duplicates: "
                           + ", ".join(sorted({x for x in labels if labels.count(x) > 1})[:5]) + ".")
    p = np.asarray(proba, dtype=float)
    if p.ndim == 1 and len(labels) == 2:  # a bare positive-class probability
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape != (n, len(labels)):
        raise InvalidInput(f"proba must have shape (n_rows, n_labels) = ({n}, {len(labels)}); got {p.shape}.")
    if not np.all(np.isfinite(p)):
        raise InvalidInput("proba contains NaN or infinite values.")
    if p.min() < -1e-9 or p.max() > 1 + 1e-9:
        raise InvalidInput(f"proba must hold probabilities in [0, 1]; got values from {p.min():.3g} to {p.max():.3g}.")
    return np.clip(p, 0.0, 1.0), labels


def _confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def _binary_auc(y01: np.ndarray, score: np.ndarray) -> float | None:
    if y01.min() == y01.max():
        return None
    from sklearn.metrics import roc_auc_score
    return _f(roc_auc_score(y01, score))


# ------------------------------------------------------------ classification
def classification_metrics(y_true, proba, labels: list[str], *, threshold: float | None = None) -> dict:
    """Metrics of class probabilities ``proba`` (n, k) against codes ``y_true``.

    Binary: the positive class is index 1 and a row is predicted positive when
    ``proba[:, 1] >= threshold`` (default 0.5); multiclass uses the argmax.
    ``f1_macro`` and ``balanced_accuracy`` average over the classes for which
    the value is defined (a class never present and never predicted is left
    out); multiclass ``roc_auc`` is the one-vs-rest macro average over classes
    present in the truth.
    """
    y = _as_1d(y_true, "y_true")
    p, labels = _proba(proba, len(y), labels)
    k = len(labels)
    y = _codes(y, k)
    n = len(y)
    if threshold is not None:
        if k != 2:
            raise InvalidInput(f"A decision threshold only applies to two classes; this problem has {k}.")
        if not (isinstance(threshold, numbers.Real) and 0.0 <= float(threshold) <= 1.0):
            raise InvalidInput(f"threshold must be a probability in [0, 1]; got {threshold!r}.")
    if k == 2:
        thr = 0.5 if threshold is None else float(threshold)
        pred = (p[:, 1] >= thr).astype(np.int64)
    else:
        thr = None
        pred = p.argmax(axis=1).astype(np.int64)

    cm = _confusion(y, pred, k)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    per_class = {}
    f1s, recalls = [], []
    for c, name in enumerate(labels):
        fp, fn = predicted[c] - tp[c], support[c] - tp[c]
        recall = _ratio(tp[c], support[c])
        f1 = _ratio(2 * tp[c], 2 * tp[c] + fp + fn)
        per_class[name] = {"precision": _ratio(tp[c], predicted[c]), "recall": recall, "f1": f1,
                           "support": int(support[c])}
        if f1 is not None:
            f1s.append(f1)
        if recall is not None:
            recalls.append(recall)

    # Matthews correlation from the confusion matrix (multiclass R_K statistic).
    s, c_ = float(n), float(tp.sum())
    pk, tk = predicted.astype(float), support.astype(float)
    den = math.sqrt(s * s - (pk * pk).sum()) * math.sqrt(s * s - (tk * tk).sum())
    present = np.flatnonzero(support)
    if len(present) < 2:
        mcc = None  # undefined with a single true class
    else:
        mcc = (c_ * s - (tk * pk).sum()) / den if den else 0.0  # constant predictions: no information

    # Log loss with rows renormalised and clipped like sklearn does.
    rows = p.sum(axis=1, keepdims=True)
    pn = np.where(rows > 0, p / np.where(rows > 0, rows, 1.0), 1.0 / k)
    eps = np.finfo(float).eps
    log_loss = float(-np.mean(np.log(np.clip(pn[np.arange(n), y], eps, 1.0))))

    if k == 2:
        y1 = (y == 1).astype(int)
        roc_auc = _binary_auc(y1, p[:, 1])
        if y1.any():
            from sklearn.metrics import average_precision_score
            ap = _f(average_precision_score(y1, p[:, 1]))
        else:
            ap = None
    else:
        aucs = [_binary_auc((y == c).astype(int), p[:, c]) for c in present]
        aucs = [a for a in aucs if a is not None]
        roc_auc = float(np.mean(aucs)) if aucs else None
        ap = None

    return {
        "n": int(n),
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "f1_macro": float(np.mean(f1s)) if f1s else None,
        "log_loss": _f(log_loss),
        "roc_auc": roc_auc,
        "average_precision": ap,
        "mcc": _f(mcc),
        "threshold": thr,
        "confusion_matrix": cm.astype(int).tolist(),
        "labels": labels,
        "per_class": per_class,
    }


# ---------------------------------------------------------------- regression
def regression_metrics(y_true, y_pred) -> dict:
    """R², RMSE, MAE, MAPE (a fraction; rows with a zero target are skipped) and max error."""
    y = _as_1d(y_true, "y_true")
    yp = _as_1d(y_pred, "y_pred")
    if len(y) != len(yp):
        raise InvalidInput(f"y_true has {len(y)} rows but y_pred has {len(yp)}.")
    err = yp - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((err ** 2).sum()) / ss_tot if len(y) >= 2 and ss_tot > 0 else None
    nz = y != 0
    mape = float(np.mean(np.abs(err[nz]) / np.abs(y[nz]))) if nz.any() else None
    return {
        "n": int(len(y)),
        "r2": _f(r2),
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "mae": float(np.mean(np.abs(err))),
        "mape": _f(mape),
        "max_error": float(np.max(np.abs(err))),
    }


# -------------------------------------------------------------------- curves
def _downsample(xs: list[np.ndarray], max_points: int = MAX_CURVE_POINTS) -> list[np.ndarray]:
    """Keep ≤ max_points points spread evenly along the curve (arc length of the
    first two arrays), always including both ends."""
    m = len(xs[0])
    if m <= max_points:
        return xs
    step = np.hypot(np.diff(xs[0]), np.diff(xs[1]))
    dist = np.concatenate([[0.0], np.cumsum(step)])
    if dist[-1] <= 0:
        idx = np.linspace(0, m - 1, max_points).round().astype(int)
    else:
        idx = np.searchsorted(dist, np.linspace(0.0, dist[-1], max_points))
        idx = np.unique(np.clip(np.concatenate([[0], idx, [m - 1]]), 0, m - 1))
        if len(idx) > max_points:  # duplicates removed; still guard the bound
            idx = idx[np.linspace(0, len(idx) - 1, max_points).round().astype(int)]
    return [x[idx] for x in xs]


def _lst(a) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=float)]


def _calibration(y01: np.ndarray, score: np.ndarray, n_bins: int = CALIBRATION_BINS) -> dict:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    keep = count > 0
    mean_p = np.bincount(b, weights=score, minlength=n_bins)[keep] / count[keep]
    frac = np.bincount(b, weights=y01.astype(float), minlength=n_bins)[keep] / count[keep]
    return {"mean_predicted": _lst(mean_p), "fraction_positive": _lst(frac), "count": [int(c) for c in count[keep]]}


def binary_curves(y01, score, *, calibration: bool = True) -> dict:
    """ROC, PR (and calibration, for probabilities) of one score against 0/1 truth.
    ``roc``/``pr`` are None when the truth holds a single class."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    y01 = np.asarray(y01).astype(int)
    score = np.asarray(score, dtype=float)
    out: dict = {"auc": None, "average_precision": None, "prevalence": float(y01.mean()), "roc": None, "pr": None}
    if y01.min() != y01.max():
        fpr, tpr, thr = roc_curve(y01, score)
        thr = np.where(np.isfinite(thr), thr, np.nextafter(score.max(), np.inf))
        fpr, tpr, thr = _downsample([fpr, tpr, thr])
        out["roc"] = {"fpr": _lst(fpr), "tpr": _lst(tpr), "thresholds": _lst(thr)}
        out["auc"] = _binary_auc(y01, score)
        prec, rec, _ = precision_recall_curve(y01, score)
        rec, prec = _downsample([rec, prec])
        out["pr"] = {"precision": _lst(prec), "recall": _lst(rec)}
        out["average_precision"] = _f(average_precision_score(y01, score))
    if calibration:
        out["calibration"] = _calibration(y01, np.clip(score, 0.0, 1.0))
    return out


def curves(y_true, proba, labels) -> dict:
    """Curves for plots and JSON, every list ≤ 200 points.

    Binary: top-level ``roc`` {fpr, tpr, thresholds}, ``pr`` {precision, recall},
    ``calibration`` {mean_predicted, fraction_positive, count} of the positive
    class (index 1), plus ``auc``/``average_precision``. Multiclass: the same per
    class (one-vs-rest) under ``per_class`` for up to 10 classes (the most
    frequent in the truth); the rest are listed in ``omitted_classes``.
    """
    y = _as_1d(y_true, "y_true")
    p, labels = _proba(proba, len(y), labels)
    y = _codes(y, len(labels))
    if len(labels) == 2:
        out = binary_curves(y == 1, p[:, 1])
        out.update(binary=True, positive_label=labels[1], labels=labels, per_class={}, omitted_classes=[])
        return out
    support = np.bincount(y, minlength=len(labels))
    order = sorted(range(len(labels)), key=lambda c: (-support[c], c))
    chosen, omitted = sorted(order[:MAX_CURVE_CLASSES]), order[MAX_CURVE_CLASSES:]
    return {
        "binary": False, "positive_label": None, "labels": labels,
        "per_class": {labels[c]: binary_curves(y == c, p[:, c]) for c in chosen},
        "omitted_classes": [labels[c] for c in sorted(omitted)],
    }


# ------------------------------------------------------------------- anomaly
def threshold_for_false_alarm(normal_scores, max_false_alarm: float) -> float:
    """Smallest threshold, among the observed normal scores and one value just
    above the largest, such that the fraction of normal scores ``>= threshold``
    is at most ``max_false_alarm`` (an item is an anomaly when score >= threshold).

    The rate holds on ``normal_scores``; on new data it is an estimate, the
    better the more normal scores are given.
    """
    s = _as_1d(normal_scores, "normal_scores")
    if not isinstance(max_false_alarm, numbers.Real) or not 0.0 <= float(max_false_alarm) <= 1.0:
        raise InvalidInput(f"max_false_alarm must be a fraction in [0, 1]; got {max_false_alarm!r}.")
    n = len(s)
    allowed = math.floor(float(max_false_alarm) * n + 1e-9)
    values = np.unique(s)  # ascending
    n_at_or_above = n - np.searchsorted(np.sort(s), values, side="left")
    ok = np.flatnonzero(n_at_or_above <= allowed)
    if len(ok):
        return float(values[ok[0]])
    return float(np.nextafter(values[-1], np.inf))


def threshold_above_for_false_alarm(normal_scores, max_false_alarm: float) -> float:
    """The threshold for anomaly scores (an item is flagged when ``score > threshold``, as the model packages
    flag it) that flags at most ``floor(max_false_alarm * n)`` of the ``n`` normal scores: the normal score with
    that many above it (ties aside). Every normal item flagged allowed: just below the smallest score."""
    s = np.sort(_as_1d(normal_scores, "normal_scores"))
    if not isinstance(max_false_alarm, numbers.Real) or not 0.0 <= float(max_false_alarm) <= 1.0:
        raise InvalidInput(f"max_false_alarm must be a fraction in [0, 1]; got {max_false_alarm!r}.")
    k = math.floor(float(max_false_alarm) * len(s) + 1e-9)  # normal items allowed above the threshold
    if k >= len(s):
        return float(np.nextafter(s[0], -np.inf))
    return float(s[len(s) - 1 - k])


def false_alarm_upper_bound(n_above: int, n: int, confidence: float = 0.95) -> float:
    """How high the false-alarm rate on new normal items may be (one-sided Clopper-Pearson bound) when ``n_above``
    of ``n`` held-out normal items scored above the threshold: 0 of 2 says little (up to 78 %), 0 of 100 more (3 %)."""
    from scipy.stats import beta

    if n <= 0:
        return 1.0
    if n_above >= n:
        return 1.0
    return float(beta.ppf(confidence, n_above + 1, n - n_above))


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a rate of k in n (sensible at 0 and n, unlike the normal approximation)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _anomaly_inputs(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = _as_1d(y_true, "y_true")
    s = _as_1d(scores, "scores")
    if len(y) != len(s):
        raise InvalidInput(f"y_true has {len(y)} rows but scores has {len(s)}.")
    if not np.all(np.isin(y, (0, 1))):
        raise InvalidInput("y_true must be 0 (normal) or 1 (anomaly).")
    return y.astype(np.int64), s


def partial_auc(y01, score, max_fpr: float) -> float | None:
    """Standardised partial AUC (DCASE): area under ROC for FPR in [0, max_fpr],
    divided by max_fpr (1 = perfect, max_fpr/2 = random). None for one class."""
    from sklearn.metrics import roc_curve

    y01 = np.asarray(y01).astype(int)
    if y01.min() == y01.max():
        return None
    fpr, tpr, _ = roc_curve(y01, score, drop_intermediate=False)
    stop = np.searchsorted(fpr, max_fpr, side="right")
    x, yv = fpr[:stop], tpr[:stop]
    if stop < len(fpr):
        t_end = np.interp(max_fpr, [fpr[stop - 1], fpr[stop]], [tpr[stop - 1], tpr[stop]])
        x, yv = np.append(x, max_fpr), np.append(yv, t_end)
    area = float(np.sum(np.diff(x) * (yv[1:] + yv[:-1]) / 2.0))
    return area / max_fpr


def anomaly_metrics(y_true, scores, threshold: float, *, max_fpr: float = 0.1) -> dict:
    """Ranking quality (AUC, pAUC) and the operating point at ``threshold``.

    ``pauc`` is the DCASE standardised partial AUC (area / max_fpr);
    ``pauc_mcclish`` is sklearn's McClish-corrected ``roc_auc_score(max_fpr=)``.
    An item is flagged when its score is above ``threshold`` (``score > threshold``, as the model packages,
    the server and the web app flag it). Confusion matrix rows are truth, columns prediction, order (normal, anomaly).
    """
    y, s = _anomaly_inputs(y_true, scores)
    if not isinstance(threshold, numbers.Real) or not math.isfinite(float(threshold)):
        raise InvalidInput(f"threshold must be a finite number; got {threshold!r}.")
    if not 0.0 < float(max_fpr) <= 1.0:
        raise InvalidInput(f"max_fpr must be in (0, 1]; got {max_fpr!r}.")
    threshold = float(threshold)
    flag = (s > threshold).astype(np.int64)
    cm = _confusion(y, flag, 2)
    tn, fp, fn, tp = (int(v) for v in cm.ravel())
    n_normal, n_anomaly = tn + fp, fn + tp
    auc = _binary_auc(y, s)
    pauc_mcclish = None
    if auc is not None:
        from sklearn.metrics import roc_auc_score
        pauc_mcclish = _f(roc_auc_score(y, s, max_fpr=max_fpr)) if max_fpr < 1 else auc
    recall = _ratio(tp, n_anomaly)
    return {
        "n": int(len(y)), "n_normal": n_normal, "n_anomaly": n_anomaly,
        "auc": auc, "pauc": _f(partial_auc(y, s, max_fpr)), "pauc_mcclish": pauc_mcclish, "max_fpr": float(max_fpr),
        "threshold": threshold,
        "false_alarm_rate": _ratio(fp, n_normal),
        "miss_rate": None if recall is None else 1.0 - recall,
        "recall": recall,
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "confusion_matrix": cm.astype(int).tolist(),
        "labels": ["normal", "anomaly"],
    }


def anomaly_operating_points(y_true, scores, n: int = 101) -> list[dict]:
    """Up to ``n`` thresholds (score quantiles, ascending) with their false alarm
    and miss rates on this data (None when that class is absent)."""
    y, s = _anomaly_inputs(y_true, scores)
    if not isinstance(n, int) or n < 2:
        raise InvalidInput(f"n must be an integer >= 2; got {n!r}.")
    thr = np.unique(np.quantile(s, np.linspace(0.0, 1.0, n - 1)))
    thr = np.append(thr, np.nextafter(s.max(), np.inf))  # the "flag nothing" end
    normal, anomaly = np.sort(s[y == 0]), np.sort(s[y == 1])
    out = []
    for t in thr:
        fa = (len(normal) - np.searchsorted(normal, t, side="left")) / len(normal) if len(normal) else None
        miss = np.searchsorted(anomaly, t, side="left") / len(anomaly) if len(anomaly) else None
        out.append({"threshold": float(t), "false_alarm_rate": _f(fa), "miss_rate": _f(miss)})
    return out

"""A model's quality in words a person reads: one headline figure for every kind, and a flag when the model
is close to guessing.

The search's own metric (log loss, ROC AUC ...) is what the learners were ranked by; people want to know how
often the model is right (classification), how many faults it finds and how many false alarms it raises
(anomaly detection), or how much of the variation it explains (regression).
"""

from __future__ import annotations

import math

from .i18n import N_

# a class is "rare" when the largest class is this much bigger than the smallest: accuracy then flatters
IMBALANCE = 1.5
# one-sided binomial test: right answers not above what always answering the largest class gets
ALPHA = 0.05
# balanced accuracy within this share of the way from guessing (1/k) to perfect is "close to guessing"
BALANCED_MARGIN = 0.2
# anomaly detection: separation (AUC) below this is close to a coin toss
AUC_WEAK = 0.65
# regression: less than this share of the variation explained is close to always answering the average
R2_WEAK = 0.1


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _binom_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p) (scipy: a sum of exact terms overflowed a float beyond ~1,000 items)."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, n, p))


def _classification(metrics: dict) -> dict | None:
    acc = _number(metrics.get("accuracy"))
    bal = _number(metrics.get("balanced_accuracy"))
    if acc is None and bal is None:
        return None
    per_class = metrics.get("per_class") or {}
    support = {str(k): int(v.get("support") or 0) for k, v in per_class.items() if isinstance(v, dict)}
    n = sum(support.values()) or int(_number(metrics.get("n")) or 0)
    k = len(support) or len(metrics.get("labels") or []) or 2
    majority = max(support.values()) / n if support and n else None
    smallest = min(support.values()) if support else 0
    imbalanced = bool(support) and (smallest == 0 or max(support.values()) / smallest >= IMBALANCE)
    out: dict = {"metric": "balanced_accuracy" if (imbalanced and bal is not None) or acc is None else "accuracy"}
    out["value"] = bal if out["metric"] == "balanced_accuracy" else acc
    if imbalanced and k == 2 and support:  # two classes, one rare: how many of the rare one are found
        rare = min(support, key=lambda c: support[c])
        recall = _number((per_class.get(rare) or {}).get("recall"))
        if recall is not None and support[rare]:
            out["found"] = {"label": rare, "n": round(recall * support[rare]), "of": support[rare]}
    reasons = []
    if acc is not None and majority is not None and n:
        correct = round(acc * n)
        if _binom_tail(correct, n, majority) >= ALPHA:
            reasons.append(("quality.weak_majority", {"acc": acc, "share": majority}))
    if bal is not None and k >= 2:
        chance = 1 / k
        if bal < chance + BALANCED_MARGIN * (1 - chance):
            reasons.append(("quality.weak_balanced", {"bal": bal, "chance": chance, "k": k}))
    out["weak"] = reasons[0] if reasons else None
    return out


def _anomaly(metrics: dict) -> dict | None:
    recall = _number(metrics.get("recall"))
    fa = _number(metrics.get("false_alarm_rate"))
    auc = _number(metrics.get("auc"))
    if recall is None and fa is None:
        return None
    out: dict = {"metric": "recall" if recall is not None else "false_alarm_rate",
                 "value": recall if recall is not None else fa, "false_alarms": fa if recall is not None else None,
                 "normal_only": recall is None}
    if auc is not None and auc < AUC_WEAK:
        out["weak"] = ("quality.weak_auc", {"auc": auc})
    elif recall is not None and fa is not None and recall - fa < BALANCED_MARGIN:
        out["weak"] = ("quality.weak_anomaly", {"recall": recall, "fa": fa})
    else:
        out["weak"] = None
    return out


def _regression(metrics: dict) -> dict | None:
    for key in ("r2", "rmse", "mae"):
        v = _number(metrics.get(key))
        if v is not None:
            weak = ("quality.weak_r2", {"r2": v}) if key == "r2" and v < R2_WEAK else None
            return {"metric": key, "value": v, "weak": weak}
    return None


def quality(task: str | None, metrics: dict | None) -> dict | None:
    """The headline of a model's held-out metrics: ``metric``, ``value``, optional ``false_alarms`` (anomaly),
    ``found`` (a rare class's hits), ``normal_only`` (an anomaly model checked on normal items only), and
    ``weak``: None or (message key, figures) saying why the model is close to guessing."""
    metrics = metrics or {}
    make = {"classification": _classification, "anomaly": _anomaly, "regression": _regression}.get(task or "")
    out = make(metrics) if make else None
    if out is None:
        return None
    return {"false_alarms": None, "found": None, "normal_only": False, "weak": None, **out}


def weak_text(t, q: dict | None) -> str:
    """The sentence that says why a model is close to guessing (empty when it is not)."""
    if not q or not q.get("weak"):
        return ""
    key, figures = q["weak"]
    pct = {k: f"{v * 100:.0f}%" if k != "k" else v for k, v in figures.items()}
    if key == "quality.weak_r2":
        pct = {"r2": f"{figures['r2']:.2f}"}
    if key == "quality.weak_auc":
        pct = {"auc": f"{figures['auc']:.2f}"}
    return t(key, **pct)


# the keys of weak_text, said at run time
WEAK_KEYS = (N_("quality.weak_majority"), N_("quality.weak_balanced"), N_("quality.weak_auc"),
             N_("quality.weak_anomaly"), N_("quality.weak_r2"))

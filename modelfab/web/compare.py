"""Two model versions side by side: the logic of ``modelfab models compare`` plus what the page shows."""

from __future__ import annotations


def compare(ma, mb) -> dict:
    """The same facts as ``modelfab models compare A B --json`` (metrics, same data/holdout, learners)."""
    da, db = ma.manifest.get("data", {}), mb.manifest.get("data", {})
    same_data = da.get("data_sha") == db.get("data_sha")
    same_task = ma.task == mb.task and ma.manifest.get("target") == mb.manifest.get("target")
    same_holdout = (same_data and same_task
                    and ma.manifest.get("training", {}).get("seed") == mb.manifest.get("training", {}).get("seed")
                    and _holdout_key(ma) == _holdout_key(mb))
    keys = [k for k in dict.fromkeys(list(ma.metrics) + list(mb.metrics))
            if isinstance(ma.metrics.get(k, mb.metrics.get(k)), (int, float)) and not isinstance(ma.metrics.get(k), bool)]
    rows = [{"metric": k, ma.ref: ma.metrics.get(k), mb.ref: mb.metrics.get(k)} for k in keys]
    return {"a": ma.ref, "b": mb.ref, "same_data_version": same_data, "same_task": same_task,
            "same_holdout": same_holdout, "metrics": rows,
            "learners": {ma.ref: ma.manifest.get("learner", {}).get("name"),
                         mb.ref: mb.manifest.get("learner", {}).get("name")}}


def _holdout_key(model) -> tuple:
    """What identifies a model's holdout: its held-out files when recorded, else the size of its stored holdout."""
    files = model.manifest.get("data", {}).get("holdout_files")
    if files:
        return tuple(files)
    hold = model.holdout()
    return ("rows", len(hold["y_true"])) if "y_true" in hold else ()


NEUTRAL = ("threshold", "n", "max_fpr", "support", "files", "n_train", "n_holdout")
LOWER_IS_BETTER = ("rmse", "mae", "mse", "mape", "log_loss", "false_alarm_rate", "miss_rate", "expected_false_alarm",
                   "false_alarm_upper_95", "brier")


def page_view(ma, mb) -> dict:
    """``compare`` plus per-metric winner and the facts of each version, for the compare page."""
    from .views import _model_view

    res = compare(ma, mb)
    rows = []
    for r in res["metrics"]:
        a, b = r[ma.ref], r[mb.ref]
        better = delta = None
        both = isinstance(a, (int, float)) and isinstance(b, (int, float))
        # different tasks: a metric of the same name means different things (a 0.5 probability threshold
        # against an anomaly score threshold), so no difference and no winner
        if both and res["same_task"]:
            delta = b - a
            neutral = r["metric"] in NEUTRAL or r["metric"].startswith("n_")  # counts and settings: no winner
            if not neutral and a != b:
                lower = r["metric"] in LOWER_IS_BETTER or r["metric"].endswith(("_error", "_loss"))
                better = "a" if (a < b) == lower else "b"
        rows.append({"metric": r["metric"], "a": a, "b": b, "better": better, "delta": delta})
    return dict(res, rows=rows, va=_model_view(ma, full=True), vb=_model_view(mb, full=True))

"""The model report: one self-contained HTML page plus a JSON twin.

The HTML is meant for a quality engineer, not a data scientist: a one-sentence
summary in plain words, a few metric cards with explanations, then the plots
for the task, the leaderboard, the chosen configuration and library versions.
Images are embedded as base64 PNG data URIs; there is no JavaScript and no
external URL. Every user-supplied string goes through Jinja2 autoescaping.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import json
import logging
import math
import numbers
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InvalidInput
from . import metrics as M
from .metrics import wilson_interval

log = logging.getLogger(__name__)

TASKS = ("classification", "regression", "anomaly")
SCHEMA = "modelfab.report/1"
NO_METRICS = "Holdout metrics are not available for this model."
MAX_LEADERBOARD_ROWS = 50
MAX_PER_CLASS_ROWS = 60
MAX_WORST_CASES = 8
FALSE_ALARM_TARGETS = (0.01, 0.02, 0.05, 0.1, 0.2)
DEFAULT_LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy", "lightgbm", "xgboost", "xgboost-cpu", "flaml",
                     "modelfab")


@dataclass
class ReportSection:
    """A modality's own part of the report: a title, a paragraph, pictures and/or a small table.

    ``figures`` are ``(png_bytes, caption)`` pairs (already rendered, e.g. an image grid of
    errors with heat maps or plots of misclassified series); ``table`` is a list of rows
    (dicts with the same keys), e.g. top terms per class. Everything is escaped when rendered.
    """

    title: str
    text: str = ""
    figures: list[tuple[bytes, str]] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)


@dataclass
class ReportInput:
    model: str
    version: int
    task: str  # "classification" | "regression" | "anomaly"
    dataset: str
    dataset_version: int
    dataset_hash: str
    budget_s: float
    elapsed_s: float
    metrics: dict
    labels: list[str] | None = None
    y_true: np.ndarray | None = None
    proba: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    scores: np.ndarray | None = None
    threshold: float | None = None
    feature_importance: dict[str, float] | None = None
    leaderboard: list[dict] | None = None
    chosen: dict | None = None
    library_versions: dict | None = None
    worst_cases: list[dict] | None = None
    sections: list["ReportSection"] | None = None  # modality-specific extras (see ReportSection)
    notes: list[str] | None = None
    created_at: str | None = None
    items: str = "rows"  # what one held-out item is called: rows, images, series, windows


# ------------------------------------------------------------------ helpers

def _readable(x):
    """For people: floats to 4 significant digits (0.34642895775339777 -> 0.3464); the JSON file keeps them all."""
    if isinstance(x, dict):
        return {k: _readable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_readable(v) for v in x]
    if isinstance(x, float) and math.isfinite(x) and x != int(x):
        return float(f"{x:.4g}")
    return x


def _when(iso: str) -> str:
    """2026-12-07T09:39:26+00:00 -> 2026-12-07 09:39 UTC (as written when it cannot be read)."""
    try:
        t = _dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if t.tzinfo is not None:
        t = t.astimezone(_dt.timezone.utc)
        return t.strftime("%Y-%m-%d %H:%M UTC")
    return t.strftime("%Y-%m-%d %H:%M")


def _jsonable(x):
    """Plain JSON types only: numpy scalars/arrays converted, NaN/inf -> None."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if x is None or isinstance(x, str):
        return x
    return str(x)


def _pct(x, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def _num(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _sig(x) -> str:
    return "—" if x is None else f"{x:,.4g}" if abs(x) < 1e6 else f"{x:.4g}"


def _duration(s) -> str:
    if s is None:
        return "—"
    s = float(s)
    if s < 90:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 5400:
        return f"{int(s // 60)} min" + (f" {int(s % 60)} s" if int(s % 60) else "")
    return f"{int(s // 3600)} h" + (f" {int((s % 3600) // 60)} min" if int((s % 3600) // 60) else "")


def _library_versions() -> dict:
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in DEFAULT_LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters.update(pct=_pct, num=_num, sig=_sig, dur=_duration)
    return env


class _Figures:
    """Collects plots; a plot that fails becomes a note instead of failing the report."""

    def __init__(self, notes: list[str]):
        self.items: list[dict] = []
        self.notes = notes

    def add(self, fid: str, title: str, caption: str, fn, *args, **kw) -> None:
        try:
            png = fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 - a plot must never sink the whole report
            log.warning("report plot %s failed: %s", fid, e, exc_info=not isinstance(e, InvalidInput))
            self.notes.append(f"The “{title}” plot could not be drawn: {e}")
            return
        src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        self.items.append({"id": fid, "title": title, "caption": caption, "src": src})


# ---------------------------------------------------------------- per task
def _classification(inp: ReportInput, m: dict, figs: _Figures, notes: list[str], extra: dict) -> tuple[str, list]:
    from . import plots as P

    labels = [str(x) for x in (inp.labels or m.get("labels") or [])]
    have_data = inp.y_true is not None and inp.proba is not None and labels
    if have_data and "confusion_matrix" not in m:
        m.update({**M.classification_metrics(inp.y_true, inp.proba, labels), **m})
    per_class = m.get("per_class") or {}
    if m.get("confusion_matrix") is not None and labels:
        figs.add("confusion_matrix", "Confusion matrix",
                 "Each row is the true class, each column what the model predicted. The diagonal is correct; "
                 "everything else is a mistake.", P.confusion_matrix_png, m["confusion_matrix"], labels)
    if per_class:
        figs.add("per_class_errors", "Errors per class",
                 "For each class, the share of its held-out items the model got wrong.",
                 P.per_class_errors_png, per_class)
    if have_data:
        cv = M.curves(inp.y_true, inp.proba, labels)
        extra["curves"] = cv
        binary = cv["binary"]
        figs.add("roc", "ROC curve",
                 "How many real cases are caught (up) for a given rate of false alarms (right), over all thresholds. "
                 "The closer the curve hugs the top-left corner, the better; the dashed line is guessing.",
                 P.roc_png, cv)
        figs.add("pr", "Precision vs recall",
                 "Trade-off between catching more cases (recall) and the alarms being right (precision).",
                 P.pr_png, cv)
        if binary:
            figs.add("calibration", "Calibration",
                     "When the model says “70% sure”, is it right about 70% of the time? Points on the dashed "
                     "line mean yes.", P.calibration_png, cv)
        if (cv["roc"] is None) if binary else not any(c["roc"] for c in cv["per_class"].values()):
            notes.append("The holdout contains only one class, so ROC and precision-recall curves cannot be drawn.")
        if cv["omitted_classes"]:
            notes.append(f"Curves are drawn for the {len(cv['per_class'])} most frequent classes; "
                         f"{len(cv['omitted_classes'])} other classes are left out of the curve plots.")
    n, acc = m.get("n"), m.get("accuracy")
    if n is None or acc is None:
        return NO_METRICS, []
    text = (f"On {n:,} held-out {inp.items} ({inp.items} the model never saw during training) the model is right "
            f"{_pct(acc)} of the time")
    if n < 1000:  # a small holdout: how far the true rate may be from this one (Wilson 95 % interval)
        lo, hi = wilson_interval(round(acc * n), n)
        text += f" (on new {inp.items} likely between {_pct(lo, 0)} and {_pct(hi, 0)}, with {n:,} checked)"
    if len(labels) == 2 and labels[1] in per_class:
        pc = per_class[labels[1]]
        if pc.get("recall") is not None:
            text += f"; it finds {_pct(pc['recall'], 0)} of the actual “{labels[1]}” cases"
        if pc.get("precision") is not None:
            text += f", and when it says “{labels[1]}” it is right {_pct(pc['precision'], 0)} of the time"
    else:
        worst = [(k, v) for k, v in per_class.items() if v.get("recall") is not None and v["recall"] < 1]
        if worst:
            k, v = min(worst, key=lambda kv: (kv[1]["recall"], -kv[1]["support"]))
            text += (f"; the class it gets wrong most often is “{k}” "
                     f"({round((1 - v['recall']) * v['support'])} of {v['support']} wrong)")
    text += "."
    ba = m.get("balanced_accuracy")
    if ba is not None and acc - ba > 0.05:
        text += (f" Because some classes are much rarer than others, the balanced accuracy ({_pct(ba)}), "
                 "the average hit rate per class, is the fairer figure.")
    cards = [
        ("Accuracy", _pct(acc), f"Share of held-out {inp.items} classified correctly."),
        ("Balanced accuracy", _pct(ba), "Average of the hit rate of every class; not fooled by rare classes."),
        ("Macro F1", _num(m.get("f1_macro")), "Balance of misses and false alarms, averaged over classes (1 = perfect)."),
        ("ROC AUC", _num(m.get("roc_auc")), "How well it ranks a class above the others (1 = perfect, 0.5 = guessing)."),
    ]
    if len(labels) == 2:
        cards.append(("Average precision", _num(m.get("average_precision")),
                      f"Precision of alarms for “{labels[1]}” averaged over all thresholds (1 is perfect)."))
    cards += [
        ("MCC", _num(m.get("mcc")), "Agreement of predicted and true classes (1 = perfect, 0 = chance level)."),
        ("Log loss", _num(m.get("log_loss")), "Penalty for confident wrong answers (lower is better)."),
    ]
    if m.get("threshold") is not None and len(labels) == 2:
        cards.append(("Decision threshold", _num(m["threshold"], 2),
                      f"“{labels[1]}” is predicted when its probability is at least this."))
    rows = sorted(per_class.items(), key=lambda kv: -kv[1].get("support", 0))
    if len(rows) > MAX_PER_CLASS_ROWS:
        notes.append(f"The per-class table shows the {MAX_PER_CLASS_ROWS} most frequent of {len(rows)} classes.")
    extra["per_class_rows"] = [{"label": k, **v} for k, v in rows[:MAX_PER_CLASS_ROWS]]
    return text, cards


def _regression(inp: ReportInput, m: dict, figs: _Figures, notes: list[str], extra: dict) -> tuple[str, list]:
    from . import plots as P

    if inp.y_true is not None and inp.y_pred is not None:
        if "rmse" not in m:
            m.update({**M.regression_metrics(inp.y_true, inp.y_pred), **m})
        figs.add("residuals", "Predicted vs actual",
                 "Left: each dot is a held-out row; on the dashed line the prediction is exact. "
                 "Right: how often errors of each size occur.", P.residuals_png, inp.y_true, inp.y_pred)
    n = m.get("n")
    if n is None or m.get("mae") is None:
        return NO_METRICS, []
    text = (f"On {n:,} held-out {inp.items} ({inp.items} the model never saw during training) the predictions are off by "
            f"{_sig(m['mae'])} on average (in the target's units); the largest error is {_sig(m.get('max_error'))}.")
    r2 = m.get("r2")
    if r2 is not None and r2 >= 0:
        text += (f" The model explains {_pct(r2, 0)} of the variation in the target "
                 f"(R² = {r2:.3f}; 1 is perfect, 0 is no better than always predicting the average).")
    elif r2 is not None:
        text += f" The model does worse than always predicting the average (R² = {r2:.3f})."
    cards = [
        ("R²", _num(r2), "Share of the target's variation explained (1 = perfect, 0 = predicting the average)."),
        ("Mean absolute error", _sig(m.get("mae")), "Average size of an error, in the target's units."),
        ("RMSE", _sig(m.get("rmse")), "Typical error size, weighting big errors more (target's units)."),
        ("Mean % error", _pct(m.get("mape")), "Average error relative to the true value (true zeros skipped)."),
        ("Largest error", _sig(m.get("max_error")), "The worst single prediction on the holdout."),
    ]
    return text, cards


def _anomaly(inp: ReportInput, m: dict, figs: _Figures, notes: list[str], extra: dict) -> tuple[str, list]:
    from . import plots as P

    thr = inp.threshold if inp.threshold is not None else m.get("threshold")
    if inp.y_true is not None and inp.scores is not None:
        y, s = np.asarray(inp.y_true).astype(int).ravel(), np.asarray(inp.scores, dtype=float).ravel()
        if "auc" not in m and thr is not None:
            m.update({**M.anomaly_metrics(y, s, thr), **m})
        figs.add("scores", "Scores of normal and anomalous items",
                 "Items to the right of the dashed threshold are flagged. The less the two colours overlap, "
                 "the better the model separates them.", P.score_histogram_png, s[y == 0], s[y == 1], thr)
        roc = M.binary_curves(y, s, calibration=False)
        roc.update(binary=True, positive_label="anomaly", title="ROC curve (anomaly detection)",
                   fpr_label="False alarm rate (normal items flagged)", tpr_label="Share of anomalies caught",
                   max_fpr=m.get("max_fpr", 0.1),
                   operating_point=(m.get("false_alarm_rate"), m.get("recall")))
        if roc["roc"] is not None:
            figs.add("roc", "ROC curve", "Share of anomalies caught (up) for each false alarm rate (right), over "
                     "all thresholds; the dashed line is guessing.", P.roc_png, roc)
        extra["roc"] = {k: roc[k] for k in ("roc", "pr", "auc", "average_precision")}
        extra["operating_points"] = M.anomaly_operating_points(y, s)
        table = []
        if (y == 0).any():
            normal, anomaly = s[y == 0], s[y == 1]
            for r in FALSE_ALARM_TARGETS:  # flagged = score > threshold, as the model flags (and the cards count)
                t = M.threshold_above_for_false_alarm(normal, r)
                table.append({"target": r, "threshold": t, "false_alarm_rate": float((normal > t).mean()),
                              "miss_rate": float((anomaly <= t).mean()) if len(anomaly) else None})
        extra["false_alarm_table"] = table
    if m.get("confusion_matrix") is not None:
        figs.add("confusion_matrix", "Outcomes at the threshold",
                 "Rows: what the item really was; columns: what the model said.",
                 P.confusion_matrix_png, m["confusion_matrix"], ["normal", "anomaly"])
    for i, wc in enumerate((inp.worst_cases or [])[:MAX_WORST_CASES]):
        title = f"{wc.get('file', f'case {i + 1}')} — score {_sig(wc.get('score'))}"
        caption = "Energy over time (x) and frequency (y)" + ("; dashed box: the part that looked most unusual."
                                                               if wc.get("highlight") else ".")
        figs.add(f"case_{i}", title, caption, P.spectrogram_png, wc.get("samples"), wc.get("sample_rate"), title,
                 wc.get("highlight"))
    n = m.get("n")
    if n is None:
        return NO_METRICS, []
    nn, na = m.get("n_normal", 0), m.get("n_anomaly", 0)
    text = (f"On {n:,} items ({nn:,} normal, each scored by a model fitted without it, {na:,} anomalous)"
            if m.get("good_scored_out_of_fold") else f"On {n:,} held-out items ({nn:,} normal, {na:,} anomalous)")
    if thr is not None and m.get("false_alarm_rate") is not None:
        text += f", at the chosen threshold the model raises a false alarm on {_pct(m['false_alarm_rate'])} of normal items"
        text += f" and misses {_pct(m['miss_rate'])} of anomalies." if m.get("miss_rate") is not None else "."
    else:
        text += "."
    if m.get("auc") is not None:
        text += (f" Given one anomalous and one normal item, it scores the anomalous one higher "
                 f"{_pct(m['auc'], 0)} of the time (AUC {m['auc']:.3f}).")
    if not na:
        text += " The holdout contains no anomalies, so missed anomalies cannot be measured."
        notes.append("The holdout has no anomalous items: only the false alarm rate is measured.")
    mf = m.get("max_fpr", 0.1)
    cards = [
        ("AUC", _num(m.get("auc")), "Chance an anomaly scores above a normal item (1 = perfect, 0.5 = guessing)."),
        (f"pAUC (false alarms ≤ {_pct(mf, 0)})", _num(m.get("pauc")),
         "Same, but only counting thresholds with few false alarms, where a factory operates."),
        ("False alarm rate", _pct(m.get("false_alarm_rate")), "Share of normal items flagged at the threshold."),
        ("Miss rate", _pct(m.get("miss_rate")), "Share of anomalies not flagged at the threshold."),
        ("Precision", _pct(m.get("precision")), "Share of flagged items that really are anomalies."),
        ("F1", _num(m.get("f1")), "Balance of misses and false alarms at the threshold (1 is perfect)."),
        ("Threshold", _sig(thr), "Items scoring above this are flagged as anomalies."),
    ]
    return text, cards


# ------------------------------------------------------------------- public
def _validate(inp: ReportInput) -> None:
    if inp.task not in TASKS:
        raise InvalidInput(f"Report task must be one of {', '.join(TASKS)}; got {inp.task!r}.")
    if not isinstance(inp.metrics, dict):
        raise InvalidInput(f"metrics must be a dict; got {type(inp.metrics).__name__}.")
    for name in ("budget_s", "elapsed_s"):
        v = getattr(inp, name)
        if v is not None and (not isinstance(v, numbers.Real) or v < 0 or not math.isfinite(v)):
            raise InvalidInput(f"{name} must be a non-negative number of seconds; got {v!r}.")


def _leaderboard(inp: ReportInput) -> list[dict]:
    chosen = inp.chosen or {}
    rows, marked = [], False
    for r in (inp.leaderboard or [])[:MAX_LEADERBOARD_ROWS]:
        cfg = r.get("config")
        is_chosen = not marked and (r.get("chosen") is True or (
            chosen.get("learner") is not None and r.get("learner") == chosen.get("learner")
            and (chosen.get("config") is None or _jsonable(cfg) == _jsonable(chosen.get("config")))))
        marked = marked or is_chosen
        text = json.dumps(_readable(_jsonable(cfg)), sort_keys=True, ensure_ascii=False) if cfg is not None else ""
        rows.append({"learner": str(r.get("learner", "")), "score": r.get("score"), "metric": r.get("metric"),
                     "loss": r.get("loss"),  # series: the out-of-fold log loss that chose, beside the accuracy
                     "train_time_s": r.get("train_time_s"), "config": text if len(text) <= 140 else text[:139] + "…",
                     "chosen": is_chosen})
    return rows


def build_report(inp: ReportInput) -> tuple[dict, str]:
    """Build the report: (JSON-serialisable dict without big arrays, HTML string)."""
    _validate(inp)
    created = inp.created_at or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    m = dict(inp.metrics)
    notes = [str(x) for x in (inp.notes or [])]
    figs, extra = _Figures(notes), {}
    summary, cards = {"classification": _classification, "regression": _regression,
                      "anomaly": _anomaly}[inp.task](inp, m, figs, notes, extra)
    if inp.feature_importance:
        from . import plots as P
        figs.add("feature_importance", "Most important inputs",
                 "Which inputs the model relies on most (for images, recordings and series: the features computed "
                 "from them). Importance shows influence, not cause.",
                 P.feature_importance_png, inp.feature_importance)
    fi = dict(sorted(((str(k), v) for k, v in (inp.feature_importance or {}).items()),
                     key=lambda kv: -abs(kv[1] if kv[1] is not None and math.isfinite(kv[1]) else 0)))
    libs = {str(k): str(v) for k, v in (inp.library_versions or _library_versions()).items()}
    chosen = _jsonable(inp.chosen) if inp.chosen else None
    budget_share = (inp.elapsed_s / inp.budget_s) if inp.budget_s else None
    data = _jsonable({
        "schema": SCHEMA, "model": inp.model, "version": inp.version, "task": inp.task,
        "dataset": {"name": inp.dataset, "version": inp.dataset_version, "hash": inp.dataset_hash},
        "budget_s": inp.budget_s, "elapsed_s": inp.elapsed_s, "created_at": created,
        "summary": summary, "notes": notes, "metrics": m, "labels": inp.labels,
        "feature_importance": fi or None, "leaderboard": inp.leaderboard, "chosen": chosen,
        "library_versions": libs, "threshold": inp.threshold,
        "worst_cases": [{"file": wc.get("file"), "score": wc.get("score"), "highlight": wc.get("highlight")}
                        for wc in (inp.worst_cases or [])] or None,
        "figures": [f["id"] for f in figs.items],
        "sections": [{"title": sec.title, "text": sec.text, "table": sec.table, "figures": [c for _, c in sec.figures]}
                     for sec in (inp.sections or [])] or None,
        **{k: v for k, v in extra.items() if k != "per_class_rows"},
    })
    html = _env().get_template("report.html").render(
        inp=inp, created=_when(created), summary=summary, notes=notes, m=m,
        figures=[f for f in figs.items if not f["id"].startswith("case_")],
        case_figures=[f for f in figs.items if f["id"].startswith("case_")],
        cards=[{"label": a, "value": b, "hint": c} for a, b, c in cards],
        hash_short=str(inp.dataset_hash or "").split(":", 1)[-1][:12], budget_share=budget_share,
        leaderboard=_leaderboard(inp), leaderboard_total=len(inp.leaderboard or []),
        primary=m.get("primary") if isinstance(m.get("primary"), dict) else None,
        chosen_json=json.dumps(_readable(chosen), indent=2, sort_keys=True, ensure_ascii=False) if chosen else None,
        libs=libs, per_class_rows=extra.get("per_class_rows") or [],
        false_alarm_table=extra.get("false_alarm_table") or [],
        sections=[{"title": sec.title, "text": sec.text, "table": sec.table,
                   "columns": list(sec.table[0].keys()) if sec.table else [],
                   "figures": [{"src": "data:image/png;base64," + base64.b64encode(png).decode("ascii"), "caption": c}
                               for png, c in sec.figures]} for sec in (inp.sections or [])],
    )
    return data, html


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # a report is for reading (mkstemp makes it 0600: a web server or colleague could not)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def report_paths(out: Path) -> tuple[Path, Path]:
    """(HTML, JSON) paths for ``out``: a folder gets ``report.html`` and ``report.json``; a path ending in .html
    (or .htm) is the HTML file itself, with the JSON beside it (``x.html`` -> ``x.json``)."""
    from ..errors import InvalidInput

    out = Path(out)
    if out.suffix.lower() in (".html", ".htm") and not out.is_dir():
        return out, out.with_suffix(".json")
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{out}: expected a folder for report.html and report.json (or a path ending in .html); "
                           "got an existing file.", hint="Give a folder, or a file name ending in .html.")
    return out / "report.html", out / "report.json"


def write_report(inp: ReportInput, out_dir: Path) -> tuple[Path, Path]:
    """Write the HTML and JSON report atomically into ``out_dir`` (a folder: ``report.html`` and ``report.json``;
    a path ending in .html: that file, and the JSON beside it)."""
    html_path, json_path = report_paths(out_dir)
    data, html = build_report(inp)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(json_path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    _atomic_write(html_path, html)
    return html_path, json_path

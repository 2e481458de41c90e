"""Pure helpers of the UI pages: formatting filters and the views (dicts) the templates read."""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request

from ..errors import TooLarge
from .config import WebSettings
from .jobs import TERMINAL
from .quality import quality
from .uploads import safe_suffix

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xls")
SERIES_SUFFIXES = (".ts",)  # UCR/UEA time series, imported from the table form without a column preview
RECORDING_SUFFIXES = (".wav", ".flac", ".ogg", ".mat", ".npy", ".csv")
PAGE = 50

# -- helpers (no app state) -------------------------------------------------------------
BUDGETS = (("30", 30), ("60", 60), ("90", 90), ("120", 120), ("300", 300), ("600", 600), ("1800", 1800))


def _safe_next(nxt: str) -> str:
    """Only local paths: no scheme, no host, no '//' (open redirects)."""
    if not nxt or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return "/"
    parts = urlsplit(nxt)
    if parts.scheme or parts.netloc:
        return "/"
    return nxt


def _same_origin(request: Request, cfg: WebSettings) -> bool:
    origin = request.headers.get("origin")
    if not origin:
        ref = request.headers.get("referer")
        if not ref:
            return True  # not a browser form (browsers send Origin on POST); the CSRF token still applies
        p = urlsplit(ref)
        origin = f"{p.scheme}://{p.netloc}"
    if origin == "null":
        return False
    host = request.headers.get("host", "")
    own = {f"{request.url.scheme}://{host}".rstrip("/")}
    return origin.rstrip("/") in own or origin.rstrip("/") in cfg.extra_origins


def _latest_by_name(items) -> list:
    latest: dict[str, Any] = {}
    for x in items:
        if x.name not in latest or x.version > latest[x.name].version:
            latest[x.name] = x
    return sorted(latest.values(), key=lambda x: x.name.lower())


def _default_name(filename: str) -> str:
    import re

    stem = filename.rsplit(".", 1)[0]
    # letters of any script are fine in names (维修工单.csv -> 维修工单; it gave 'dataset')
    stem = re.sub(r"[^\w.\-]+", "_", stem).strip("_.-") or "dataset"
    return stem[:100]


def _check_ds_name(name: str) -> str:
    from ..registry import check_name

    return check_name(name, "dataset")


def _check_model_name(name: str) -> str:
    from ..registry import check_name

    return check_name(name, "model")


def _num(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        if v != 0 and abs(v) < 10 ** -digits:
            return f"{v:.2e}"
        return f"{v:,.{digits}f}"
    return str(v)


def _sig(v, digits: int = 4) -> str:
    """A measurement with a few significant digits: 1,437, 5.659, 0.0123."""
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return _num(v)
    if abs(v) >= 10 ** digits:
        return f"{v:,.0f}"
    return f"{float(f'{v:.{digits}g}'):,.{max(0, digits - 1 - int(math.floor(math.log10(abs(v))))) if v else 0}f}".rstrip("0").rstrip(".") if v else "0"


def _pct(v, digits: int = 1) -> str:
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "–"
    return f"{v * 100:.{digits}f}%"


# shares (0..1) read as percentages, as the report shows them ("80.8%", not "0.808")
PERCENT_METRICS = frozenset({"accuracy", "balanced_accuracy", "file_accuracy", "window_accuracy", "recall", "precision",
                             "false_alarm_rate", "miss_rate", "expected_false_alarm", "false_alarm_upper_95",
                             "max_fpr"})
# metrics of the searches where a lower score is better (the leaderboard and progress say so)
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mse", "mape", "max_error", "brier"})


def _metric(v, metric: str | None, digits: int = 3) -> str:
    """A metric's value as people read it: shares as percentages, the rest as numbers."""
    if metric in PERCENT_METRICS:
        return _pct(v)
    return _num(v, digits)


def _short(s, n: int = 12) -> str:
    s = str(s or "")
    return s[:n]


HEADLINE = ("auc", "roc_auc", "balanced_accuracy", "accuracy", "f1_macro", "r2", "rmse", "mae")


def _headline(m) -> tuple[str | None, float | None]:
    metrics = m.metrics or {}
    metric = (m.manifest or {}).get("metric")
    if metric in metrics and isinstance(metrics[metric], (int, float)):
        return metric, metrics[metric]
    for k in HEADLINE:
        if isinstance(metrics.get(k), (int, float)):
            return k, metrics[k]
    return None, None


def _model_view(m, full: bool = False) -> dict:
    man = m.manifest or {}
    data = man.get("data") or {}
    metric, value = _headline(m)
    view = {"name": m.name, "version": m.version, "ref": m.ref, "task": m.task, "stage": m.stage,
            "modality": man.get("modality", "tabular"), "metric": metric, "value": value,
            "dataset": data.get("dataset"), "dataset_version": data.get("version"),
            "created_at": m.row.get("created_at"), "created_by": m.row.get("created_by"),
            "learner": (man.get("learner") or {}).get("name"), "derived_from": (man.get("derived_from") or {}).get("model"),
            "threshold": man.get("threshold"), "quality": quality(m.task, m.metrics),
            "takes": _takes(man), "form_inputs": _form_inputs(man)}
    if full:
        training = man.get("training") or {}
        view.update(
            metrics={k: v for k, v in (m.metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            target=man.get("target"), labels=man.get("labels"), notes=training.get("notes") or [],
            budget_s=training.get("budget_s"), elapsed_s=training.get("elapsed_s"), trials=training.get("trials"),
            inputs=[c["name"] for c in (man.get("input_schema") or {}).get("columns", [])][:30],
            change=(man.get("derived_from") or {}).get("change"), package_sha=m.row.get("package_sha"),
            max_false_alarm=man.get("max_false_alarm"))
    return view


def _takes(man: dict) -> str:
    """What "Try it" gives the model: a recording, an image, a file of series or a table."""
    modality = man.get("modality", "tabular")
    return {"signal": "recording", "image": "image", "series": "series"}.get(modality, "table")


def _form_inputs(man: dict) -> list[dict] | None:
    """The input columns of a text model, typed into "Try it" (None for other models): name, kind."""
    if man.get("modality", "tabular") != "tabular":
        return None
    cols = [{"name": str(c["name"]), "kind": c.get("kind")} for c in (man.get("input_schema") or {}).get("columns", [])]
    return cols[:12] if any(c["kind"] == "text" for c in cols) else None


def _job_view(job: dict, t=None) -> dict:
    """A job as the pages show it; with ``t`` (the request's translator) its error's CLI hints read as the
    browser's words."""
    from .hints import for_browser

    params = job.get("params") or {}
    result = job.get("result") or {}
    error = for_browser(job.get("error"), t) if t is not None else job.get("error")
    live = dict(result.get("live") or {})
    if job["state"] in TERMINAL and isinstance(result.get("elapsed_s"), (int, float)):
        live["elapsed_s"] = result["elapsed_s"]  # the run's final figure (a training: the model's "time used")
    if "elapsed_s" not in live and job["state"] in TERMINAL:
        try:  # imports and label applications report files, not seconds: the job's own times tell
            from datetime import datetime

            spent = datetime.fromisoformat(job["updated_at"]) - datetime.fromisoformat(job["created_at"])
            live["elapsed_s"] = round(max(0.0, spent.total_seconds()), 1)
        except (KeyError, TypeError, ValueError):
            pass
    return {"id": job["id"], "kind": job["kind"], "state": job["state"], "progress": float(job.get("progress") or 0),
            "message": job.get("message") or "", "error": error, "params": params,
            "live": live, "result": {k: v for k, v in result.items() if k != "live"},
            "created_at": job.get("created_at"), "updated_at": job.get("updated_at"),
            "subject": params.get("dataset") or params.get("model") or params.get("name") or params.get("filename") or ""}


GOOD_LABEL = re.compile(r"^(good|normal|ok|okay|pass(ed)?|free|defect[-_ ]?free|no[-_ ]?defects?)$", re.I)


def _train_info(ds) -> dict:
    """What the train page needs of a dataset: columns with kinds, suggested task, labels."""
    if ds.kind == "table":
        cols = []
        for c in ds.schema.get("columns", []):
            st = ds.stats.get(c["name"], {})
            cols.append({"name": c["name"], "kind": c["kind"], "unique": st.get("unique"), "missing": st.get("missing")})
        return {"kind": "table", "name": ds.name, "columns": cols}
    labels = sorted((ds.stats.get("labels") or {}).keys())
    if ds.kind == "series":  # the label is the target: as `--task auto` trains (a few numbers are classes)
        from ..series import auto_task

        return {"kind": "series", "name": ds.name, "labels": labels,
                "suggested": auto_task(ds.schema.get("label_kind"), len(labels) if labels else 10**9)}
    # recordings and images share the form: classification, or anomaly detection from normal items
    # one label (good-only images) or none: nothing to tell apart, training makes an anomaly model
    suggested = "anomaly" if (len(labels) <= 1 or set(labels) == {"normal", "abnormal"}) else "classification"
    # the label of the good items: one obviously so, the only one, else empty (the form asks); unlabelled: all good
    normal = next((lab for lab in labels if GOOD_LABEL.match(lab)), labels[0] if len(labels) == 1 else
                  ("" if labels else "normal"))
    return {"kind": "signal", "media": "image" if ds.kind == "image" else "signal", "name": ds.name,
            "labels": labels, "suggested": suggested, "normal": normal}


def _table_view(ws, ds, page: int) -> dict:
    import pyarrow.parquet as pq

    path = ws.blob_path(ds.data_sha)
    pf = pq.ParquetFile(path)
    n = pf.metadata.num_rows
    pages = max(1, math.ceil(n / PAGE))
    page = min(page, pages)
    start = (page - 1) * PAGE
    cols = [c["name"] for c in ds.schema.get("columns", [])][:40]
    rows: list[list] = []
    # read only the row groups that hold this page
    offset = 0
    for g in range(pf.num_row_groups):
        size = pf.metadata.row_group(g).num_rows
        if offset + size > start and offset < start + PAGE:
            tbl = pf.read_row_group(g, columns=cols).to_pandas()
            lo, hi = max(0, start - offset), min(size, start + PAGE - offset)
            for rec in tbl.iloc[lo:hi].itertuples(index=False):
                rows.append([_cell(v) for v in rec])
        offset += size
        if offset >= start + PAGE:
            break
    stats = []
    for c in ds.schema.get("columns", []):
        st = ds.stats.get(c["name"], {})
        top = list((st.get("counts") or {}).items())[:5]
        stats.append({"name": c["name"], "kind": c["kind"], "missing": st.get("missing", 0),
                      "unique": st.get("unique"), "min": st.get("min"), "max": st.get("max"),
                      "mean": st.get("mean"), "top": top, "n_counts": len(st.get("counts") or {})})
    return {"columns": cols, "rows": rows, "stats": stats, "pages": pages, "page": page, "n": n, "first": start}


def _cell(v) -> str:
    """A value as a person reads it: no exponent (a probability 1.43796e-05 reads 0.000014), at most six digits."""
    if v is None:
        return ""
    if getattr(getattr(v, "dtype", None), "kind", "") == "f":  # numpy float32 is not a Python float
        v = float(v)
    if isinstance(v, float):
        if v != v:
            return ""
        if v == 0 or 1e-3 <= abs(v) < 1e7 or not math.isfinite(v):
            return f"{v:.6g}"
        if abs(v) >= 1e7:
            return f"{v:,.0f}"
        small = f"{v:.6f}".rstrip("0").rstrip(".")
        return small if small not in ("0", "-0") else ("<0.000001" if v > 0 else ">-0.000001")
    return str(v)[:200]


def _share_cell(v) -> str:
    """A probability as a percentage: 75.0%, <0.1% (not 0.000001 or 1.43e-05), >99.9% (not 1)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return _cell(v)
    if not math.isfinite(v):
        return ""
    if 0 < v < 0.0005:
        return "<0.1%"
    if 0.9995 < v < 1:
        return ">99.9%"
    return f"{v * 100:.1f}%"


def _label_page(current: list, label: str, page: int, page_size: int = PAGE) -> dict:
    """One page of the items whose label (``current[i]``, None when unlabelled) matches the filter
    (``""`` all, ``"__unlabelled__"``, or a label), with the counts the filter chips show."""
    if label == "__unlabelled__":
        keep = [i for i, v in enumerate(current) if v is None]
    elif label:
        keep = [i for i, v in enumerate(current) if v == label]
    else:
        keep = range(len(current))
    pages = max(1, math.ceil(len(keep) / page_size))
    page = min(max(1, page), pages)
    counts = Counter(v for v in current if v is not None)
    return {"shown": list(keep[(page - 1) * page_size: page * page_size]), "pages": pages, "page": page,
            "n_match": len(keep), "n_all": len(current), "label_counts": dict(sorted(counts.items())),
            "unlabelled": len(current) - sum(counts.values())}


def _signal_view(store, ds, files, page: int, label: str) -> dict:
    layer = store.current_labels(ds.id)
    names = list(files["file"])
    imported = [None if lab is None or lab != lab else str(lab) for lab in files["label"]]
    current = [layer[f] if f in layer else imp for f, imp in zip(names, imported)]
    sel = _label_page(current, label, page)
    durations = files["duration_s"]
    rows = [{"idx": i, "file": names[i], "label": current[i], "changed": names[i] in layer and layer[names[i]] != imported[i],
             "duration": float(durations.iloc[i]), "audio": Path(names[i]).suffix.lower() in (".wav", ".flac", ".ogg")}
            for i in sel.pop("shown")]
    return dict(sel, files=rows, layer_changes=len(layer))


def _predict_file(ws, m, up) -> dict:
    from ..modalities.tabular_io import open_table, read_table

    if m.manifest.get("modality") == "image":
        from .kinds import predict_image_upload

        return predict_image_upload(ws, m, up)
    if m.manifest.get("modality") == "series":
        from .kinds import predict_series_upload

        return predict_series_upload(ws, m, up)
    if m.manifest.get("modality") == "signal":
        safe_suffix(up.raw_name, RECORDING_SUFFIXES)
        data = up.path.read_bytes()
        row = m.predictor.predict_bytes(data, up.filename)
        return {"kind": "signal", "task": m.task, "file": up.filename, "row": row}
    from .uploads import keep_name

    suffix = safe_suffix(up.raw_name, TABLE_SUFFIXES)
    path = keep_name(up, suffix)  # errors name the user's file, not an internal one
    df = read_table(open_table(path, ws.settings), ws.settings)
    _check_records(len(df), ws.settings, "rows")
    inputs = [c for c in df.columns if c != (m.manifest.get("target"))][:6]
    with warnings.catch_warnings(record=True) as caught:  # rows without text, values not readable: shown
        warnings.simplefilter("always", UserWarning)
        pred = m.predict(df)
    out = _prediction_table(m, up, pred, df[inputs])
    out["warnings"] = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)))
    return out


def _predict_record(m, fields: dict[str, str]) -> dict:
    """"Try it" of a text model: one record typed into the page's fields, answered as /predict answers it
    (with its ``warning`` when the text is empty)."""
    cols = _form_inputs(m.manifest or {}) or []
    record: dict[str, Any] = {}
    for c in cols:
        v = str(fields.get(c["name"], ""))
        if c["kind"] == "numeric":
            try:
                record[c["name"]] = float(v) if v.strip() else None
            except ValueError:
                record[c["name"]] = v
        else:
            record[c["name"]] = v if (v.strip() or c["kind"] == "text") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        row = m.predictor.predict_records([record])[0]
    shown = {"label": row.get("prediction"), "confidence": row.get("confidence")}
    shown.update({f"proba_{k}": v for k, v in (row.get("probabilities") or {}).items()})
    return {"kind": "record", "task": m.task, "file": "", "row": shown, "prediction": row.get("prediction"),
            "warning": row.get("warning"), "fields": {c["name"]: fields.get(c["name"], "") for c in cols}}


def _check_records(n: int, settings, what: str) -> None:
    """An uploaded file scored in the browser holds at most ``max_records_per_request`` records."""
    if n > settings.max_records_per_request:
        raise TooLarge(f"{n:,} {what} in one file; the limit here is {settings.max_records_per_request:,}.",
                       hint="Use `modelfab predict` for large files.")


def _prediction_table(m, up, pred, inputs=None) -> dict:
    """The result of "Try it" as a table: the first 200 predictions, then (for tables) input columns."""
    shown = pred.head(200)
    extra = [] if inputs is None else list(inputs.columns)
    share = [c == "confidence" or str(c).startswith("proba_") for c in shown.columns]
    rows = [[_share_cell(shown.iloc[i][c]) if share[j] else _cell(shown.iloc[i][c]) for j, c in enumerate(shown.columns)]
            + [_cell(inputs.iloc[i][c]) for c in extra] for i in range(len(shown))]
    return {"kind": "table", "task": m.task, "file": up.filename, "columns": list(shown.columns) + extra,
            "rows": rows, "n": len(pred), "n_pred_cols": len(shown.columns)}


num, sig, pct, short, metric = _num, _sig, _pct, _short, _metric

"""The evaluate page's confusion matrix and the held-out examples behind each of its cells.

The held-out arrays are the model package's ``holdout.npz``: ``y_true`` (class
codes) and ``proba`` for classifiers. Since this version training also stores
where each held-out example came from: ``row`` (positions in the dataset's
table) for tables, ``file`` (the recording of each window) for recordings,
whose matrix is shown per recording (window probabilities averaged, as the
training report does). Image classifiers name their held-out images in the
manifest (``data.holdout_files``, in the holdout's order). Older models, and
series models, have the matrix but no examples.

Anomaly models store ``y_true`` (0 normal, 1 anomaly) and ``scores`` (out-of-fold
scores, one per recording or image); recordings models also ``file``. Their 2x2
matrix (truth x "score above the threshold") is computed for any threshold, so
the page's slider and the cells it opens agree.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInput, NotFound

MAX_EXAMPLES = 60
ANOMALY_CLASSES = ("normal", "anomaly")  # rows/columns of an anomaly model's matrix


def _per_file(hold: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    files = np.asarray(hold["file"]).astype(str)
    uniq, inv = np.unique(files, return_inverse=True)
    proba = np.asarray(hold["proba"], float)
    sums = np.zeros((len(uniq), proba.shape[1]))
    np.add.at(sums, inv, proba)
    counts = np.bincount(inv, minlength=len(uniq))[:, None]
    truth = np.zeros(len(uniq), int)
    truth[inv] = np.asarray(hold["y_true"], int)
    return uniq, truth, (sums / np.maximum(counts, 1)).argmax(axis=1)


def is_binary_table(model) -> bool:
    """A two-class classifier of a table: its predictor honours a ``decision_threshold``."""
    return (model.task == "classification" and len(model.manifest.get("labels") or []) == 2
            and model.manifest.get("modality", "tabular") == "tabular")


def binary_holdout(model) -> dict | None:
    """The evaluate page's threshold slider data for a two-class table classifier: the held-out
    truth (1 = the second label, the "positive" one) and that label's probability, else None."""
    if not is_binary_table(model):
        return None
    hold = model.holdout()
    if "y_true" not in hold or "proba" not in hold or not len(hold["y_true"]):
        return None
    proba = np.asarray(hold["proba"], float)
    if proba.ndim != 2 or proba.shape[1] != 2:
        return None
    labels = [str(v) for v in model.manifest["labels"]]
    thr = model.manifest.get("decision_threshold")
    return {"binary": True, "negative": labels[0], "positive": labels[1],
            "y_true": [int(v) for v in hold["y_true"]], "scores": [float(v) for v in proba[:, 1]],
            "threshold": 0.5 if thr is None else float(thr)}


def _predicted(model, proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """The held-out predictions as the predictor decides: the most probable class, or for a two-class table
    the second when its probability is at least ``threshold`` (default: the model's decision threshold)."""
    thr = model.manifest.get("decision_threshold") if threshold is None else threshold
    if is_binary_table(model) and proba.shape[1] == 2 and thr is not None:
        return (proba[:, 1] >= float(thr)).astype(int)
    return proba.argmax(axis=1)


def confusion(model, threshold: float | None = None) -> dict | None:
    """{labels, matrix, unit, examples} for a classifier with a stored holdout, else None; a two-class table's
    at ``threshold`` (default: the model's)."""
    if model.task != "classification":
        return None
    hold = model.holdout()
    if "y_true" not in hold or "proba" not in hold or not len(hold["y_true"]):
        return None
    labels = [str(v) for v in (model.manifest.get("labels") or [])]
    proba = np.asarray(hold["proba"], float)
    if proba.ndim != 2 or proba.shape[1] != len(labels):
        return None
    modality = model.manifest.get("modality", "tabular")
    why = None  # why the cells cannot be opened (a message key's end), None when they can
    if modality == "signal" and "file" in hold:
        _, truth, pred = _per_file(hold)
        unit = "files"
    else:
        truth, pred = np.asarray(hold["y_true"], int), _predicted(model, proba, threshold)
        if modality == "image":  # one held-out row per image, named in the manifest in the holdout's order
            unit = "images"
            why = None if _image_holdout_files(model, len(truth)) is not None else "image_old"
        elif modality == "series":
            unit, why = "series", "series"
        else:
            unit = "windows" if modality == "signal" else "rows"
            why = None if modality != "signal" and "row" in hold else "old"
    k = len(labels)
    matrix = np.zeros((k, k), int)
    np.add.at(matrix, (truth, pred), 1)
    return {"labels": labels, "matrix": matrix.tolist(), "unit": unit, "examples": why is None, "no_examples": why,
            "n": int(matrix.sum()), "correct": int(np.trace(matrix))}


def _image_holdout_files(model, n: int) -> np.ndarray | None:
    """The image of each held-out row of an image classifier (``data.holdout_files``), when it has them all."""
    files = (model.manifest.get("data") or {}).get("holdout_files")
    if not isinstance(files, list) or len(files) != n:
        return None
    return np.asarray([str(f) for f in files])


def cell_examples(site, model, i: int, j: int, threshold: float | None = None) -> dict:
    """The held-out examples of cell (true class i, predicted class j); a two-class table's at ``threshold``."""
    cm = confusion(model, threshold)
    if cm is None:
        raise NotFound(f"{model.ref} has no confusion matrix (it is not a classifier, or has no stored holdout).")
    k = len(cm["labels"])
    if not (0 <= i < k and 0 <= j < k):
        raise InvalidInput(f"Cell ({i}, {j}) is outside the {k}x{k} matrix.")
    if not cm["examples"]:
        return {"kind": "none", "count": cm["matrix"][i][j], "true": cm["labels"][i], "pred": cm["labels"][j],
                "reason": cm["no_examples"]}
    hold = model.holdout()
    ds = _dataset_of(site.ws, model)
    base = {"true": cm["labels"][i], "pred": cm["labels"][j], "count": cm["matrix"][i][j]}
    if cm["unit"] == "images":
        truth, pred = np.asarray(hold["y_true"], int), np.asarray(hold["proba"], float).argmax(axis=1)
        files = _image_holdout_files(model, len(truth))
        chosen = files[(truth == i) & (pred == j)][:MAX_EXAMPLES]
        return dict(base, kind="files", items=_file_items(site, ds, chosen))
    if "file" in hold:
        uniq, truth, pred = _per_file(hold)
        chosen = uniq[(truth == i) & (pred == j)][:MAX_EXAMPLES]
        return dict(base, kind="files", items=_file_items(site, ds, chosen))
    truth, pred = np.asarray(hold["y_true"], int), _predicted(model, np.asarray(hold["proba"], float), threshold)
    rows = np.asarray(hold["row"], np.int64)[(truth == i) & (pred == j)][:MAX_EXAMPLES]
    if ds is None:
        return dict(base, kind="rows", columns=[], rows=[], positions=[int(r) for r in rows])
    columns, values = read_rows(site.ws, ds, rows)
    return dict(base, kind="rows", columns=columns, rows=values, positions=[int(r) + 1 for r in rows])


def _file_items(site, ds, chosen) -> list[dict]:
    """Recordings or images as the cells show them: file, position in the dataset, thumbnail and the dataset
    page holding it."""
    if ds is None or ds.kind not in ("signal", "image"):
        return [{"file": str(f), "idx": None, "thumb": None, "item": None} for f in chosen]
    from .kinds import image_files
    from .views import PAGE  # items per page of the dataset page

    files = site.signal_tables(ds) if ds.kind == "signal" else image_files(site, ds)
    anchor = "rec" if ds.kind == "signal" else "img"
    index = {f: n for n, f in enumerate(files["file"])}
    base = f"/datasets/{ds.name}/{ds.version}"
    items = []
    for f in chosen:
        n = index.get(str(f))
        items.append({"file": str(f), "idx": n, "thumb": f"{base}/thumb/{n}.png" if n is not None else None,
                      "item": f"{base}?page={n // PAGE + 1}#{anchor}-{n}" if n is not None else None})
    return items


# -- anomaly models ------------------------------------------------------------------------------
def parse_threshold(value: str | None, t) -> float | None:
    """The ``threshold`` query parameter: empty means the model's own; else a finite number (``t``: the
    request's translator, for the message)."""
    if value is None or not str(value).strip():
        return None
    try:
        thr = float(value)
    except ValueError:
        thr = math.nan
    if not math.isfinite(thr):
        raise InvalidInput(t("model.bad_threshold", got=repr(str(value)[:40])))
    return thr


def anomaly_holdout(model) -> dict | None:
    """{y_true, scores, files (or None), threshold} of an anomaly model with stored held-out scores, else None."""
    if model.task != "anomaly" or model.manifest.get("threshold") is None:
        return None
    hold = model.holdout()
    if "scores" not in hold or "y_true" not in hold or not len(hold["scores"]):
        return None
    scores, truth = np.asarray(hold["scores"], float), np.asarray(hold["y_true"], int)
    if scores.shape != truth.shape or scores.ndim != 1 or not np.isin(truth, (0, 1)).all():
        return None  # not a stored 0/1 truth per score: no matrix rather than an index error
    files = np.asarray(hold["file"]).astype(str) if "file" in hold and len(hold["file"]) == len(scores) else None
    return {"y_true": truth, "scores": scores, "files": files, "threshold": float(model.manifest["threshold"])}


def anomaly_confusion(model, threshold: float | None = None, hold: dict | None = None) -> dict | None:
    """The 2x2 matrix (true normal/anomaly x predicted normal/anomaly) at ``threshold`` (default: the model's);
    predicted anomaly when the score is above the threshold, as the predictor decides. ``hold``: the model's
    ``anomaly_holdout`` when the caller has it already."""
    h = hold if hold is not None else anomaly_holdout(model)
    if h is None:
        return None
    thr = h["threshold"] if threshold is None else float(threshold)
    pred = (h["scores"] > thr).astype(int)
    matrix = np.zeros((2, 2), int)
    np.add.at(matrix, (h["y_true"], pred), 1)
    modality = model.manifest.get("modality", "signal")
    if h["files"] is not None:
        why = None
    else:
        why = "image" if modality == "image" else "old"
    return {"labels": list(ANOMALY_CLASSES), "matrix": matrix.tolist(), "unit": "anomaly", "anomaly": True,
            "examples": why is None, "no_examples": why, "threshold": thr, "model_threshold": h["threshold"],
            "n": int(matrix.sum()), "correct": int(np.trace(matrix))}


def anomaly_cell_examples(site, model, i: int, j: int, threshold: float | None) -> dict:
    """The held-out recordings of cell (truth i, predicted j) at ``threshold``, closest to the threshold first."""
    h = anomaly_holdout(model)
    if h is None:
        raise NotFound(f"{model.ref} has no stored held-out scores to build a confusion matrix from.")
    if not (0 <= i < 2 and 0 <= j < 2):
        raise InvalidInput(f"Cell ({i}, {j}) is outside the 2x2 matrix of an anomaly model (0 normal, 1 anomaly).")
    cm = anomaly_confusion(model, threshold, h)
    base = {"true": ANOMALY_CLASSES[i], "pred": ANOMALY_CLASSES[j], "count": cm["matrix"][i][j],
            "threshold": cm["threshold"]}
    if not cm["examples"]:
        return dict(base, kind="none", reason=cm["no_examples"])
    at = np.flatnonzero((h["y_true"] == i) & ((h["scores"] > cm["threshold"]).astype(int) == j))
    at = at[np.argsort(np.abs(h["scores"][at] - cm["threshold"]), kind="stable")][:MAX_EXAMPLES]
    items = _file_items(site, _dataset_of(site.ws, model), h["files"][at])
    for it, k in zip(items, at):
        it["score"] = float(h["scores"][k])
    return dict(base, kind="files", items=items)


def _dataset_of(ws, model):
    data = model.manifest.get("data") or {}
    try:
        return ws.dataset(f"{data.get('dataset')}:{int(data.get('version'))}")
    except Exception:  # the dataset version was removed: show what the holdout alone knows
        return None


def read_rows(ws, ds, positions, max_cols: int = 12) -> tuple[list[str], list[list[str]]]:
    """Rows at ``positions`` of a table dataset (only the row groups that hold them are read)."""
    import pyarrow.parquet as pq

    from .views import _cell

    pf = pq.ParquetFile(ws.blob_path(ds.data_sha))
    cols = [c["name"] for c in ds.schema.get("columns", [])][:max_cols]
    wanted = sorted({int(p) for p in positions})
    out: dict[int, list[str]] = {}
    offset = 0
    for g in range(pf.num_row_groups):
        size = pf.metadata.row_group(g).num_rows
        inside = [p for p in wanted if offset <= p < offset + size]
        if inside:
            tbl = pf.read_row_group(g, columns=cols).to_pandas()
            for p in inside:
                out[p] = [_cell(v) for v in tbl.iloc[p - offset]]
        offset += size
    return cols, [out[int(p)] for p in positions if int(p) in out]

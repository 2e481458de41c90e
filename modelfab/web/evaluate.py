"""The evaluate page's confusion matrix and the held-out examples behind each of its cells.

The held-out arrays are the model package's ``holdout.npz``: ``y_true`` (class
codes) and ``proba`` for classifiers. Since this version training also stores
where each held-out example came from: ``row`` (positions in the dataset's
table) for tables, ``file`` (the recording of each window) for recordings,
whose matrix is shown per recording (window probabilities averaged, as the
training report does). Older models have the matrix but no examples.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInput, NotFound

MAX_EXAMPLES = 60


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


def confusion(model) -> dict | None:
    """{labels, matrix, unit, examples} for a classifier with a stored holdout, else None."""
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
    if modality == "signal" and "file" in hold:
        _, truth, pred = _per_file(hold)
        unit, examples = "files", True
    else:
        truth, pred = np.asarray(hold["y_true"], int), proba.argmax(axis=1)
        thr = model.manifest.get("decision_threshold")
        if len(labels) == 2 and thr is not None and modality == "tabular":  # as the predictor decides
            pred = (proba[:, 1] >= float(thr)).astype(int)
        unit = "windows" if modality == "signal" else "rows"
        examples = modality != "signal" and "row" in hold
    k = len(labels)
    matrix = np.zeros((k, k), int)
    np.add.at(matrix, (truth, pred), 1)
    return {"labels": labels, "matrix": matrix.tolist(), "unit": unit, "examples": examples,
            "n": int(matrix.sum()), "correct": int(np.trace(matrix))}


def cell_examples(site, model, i: int, j: int) -> dict:
    """The held-out examples of cell (true class i, predicted class j)."""
    cm = confusion(model)
    if cm is None:
        raise NotFound(f"{model.ref} has no confusion matrix (it is not a classifier, or has no stored holdout).")
    k = len(cm["labels"])
    if not (0 <= i < k and 0 <= j < k):
        raise InvalidInput(f"Cell ({i}, {j}) is outside the {k}x{k} matrix.")
    if not cm["examples"]:
        return {"kind": "none", "count": cm["matrix"][i][j], "true": cm["labels"][i], "pred": cm["labels"][j]}
    hold = model.holdout()
    ds = _dataset_of(site.ws, model)
    base = {"true": cm["labels"][i], "pred": cm["labels"][j], "count": cm["matrix"][i][j]}
    if "file" in hold:
        uniq, truth, pred = _per_file(hold)
        chosen = uniq[(truth == i) & (pred == j)][:MAX_EXAMPLES]
        items = []
        if ds is not None and ds.kind == "signal":
            files = site.signal_tables(ds)
            index = {f: n for n, f in enumerate(files["file"])}
            for f in chosen:
                n = index.get(str(f))
                items.append({"file": str(f), "idx": n,
                              "thumb": f"/datasets/{ds.name}/{ds.version}/thumb/{n}.png" if n is not None else None})
        else:
            items = [{"file": str(f), "idx": None, "thumb": None} for f in chosen]
        return dict(base, kind="files", items=items)
    truth, pred = np.asarray(hold["y_true"], int), np.asarray(hold["proba"], float).argmax(axis=1)
    rows = np.asarray(hold["row"], np.int64)[(truth == i) & (pred == j)][:MAX_EXAMPLES]
    if ds is None:
        return dict(base, kind="rows", columns=[], rows=[], positions=[int(r) for r in rows])
    columns, values = read_rows(site.ws, ds, rows)
    return dict(base, kind="rows", columns=columns, rows=values, positions=[int(r) + 1 for r in rows])


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

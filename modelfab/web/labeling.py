"""What the labelling page works on: the items of a dataset, label definitions, the labelling
assistant (suggestions, active-learning order, learning curve) and the latest model's opinion.

Items are recordings or images (id: the file path), series (id: the series id) or rows of a
table (id: ``"<row>:<column>"``, the row's position and the column being labelled). An item's
label is its newest row in the labels layer, else the label it was imported with.

The assistant is a small extra-trees model fitted in the UI process on the labelled items'
features (recordings: the mean of their window features; images: the texture features computed
at import; series: per-channel statistics and the z-normalised shape at 16 points; tables: the
other columns, categories as codes, text columns as character n-gram TF-IDF reduced to 48
dimensions). It gives every item a suggested label with a confidence; the active-learning queue
is the unlabelled items, least confident first (uncertainty sampling). Each fit also measures
3-fold cross-validated accuracy on the labels so far, kept as a learning curve in
``<workspace>/ui/learning/<dataset id>.json``. Results are cached per labels-layer version.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets import text_or_none
from ..errors import InvalidInput, NotFound

MIN_LABELS = 6          # labelled items before the assistant suggests anything
MAX_FIT_ITEMS = 2000    # labelled items the assistant fits on (a sample beyond that)
AUDIO = (".wav", ".flac", ".ogg")
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569")
_COLOR = __import__("re").compile(r"^#[0-9a-fA-F]{6}$")


GOOD = {"ok", "good", "normal", "pass", "passed", "healthy", "合格", "正常"}
BAD = {"bad", "abnormal", "defect", "defective", "fault", "fail", "failed", "ng", "nok", "scrap", "不合格", "异常"}


def _default_color(name: str, i: int) -> str:
    """Green for the usual names of good, red for bad, else a colour from the palette."""
    low = name.strip().lower()
    if low in GOOD:
        return "#16a34a"
    if low in BAD:
        return "#dc2626"
    others = [c for c in PALETTE if c not in ("#16a34a", "#dc2626")]
    return others[i % len(others)]


def check_label(raw) -> str | None:
    label = None if raw in (None, "") else str(raw).strip()
    if label is not None and (len(label) > 100 or not label or any(ord(c) < 32 for c in label)):
        raise InvalidInput("A label is 1-100 characters without control characters.")
    return label


MAX_CELLS = 8            # tables: columns shown beside each row (text columns first)
MAX_TEXT_SHOWN = 2000    # characters of a text cell on the labelling page


@dataclass
class Items:
    kind: str                       # "signal" | "image" | "series" | "table"
    ids: list[str]
    titles: list[str]
    imported: list                  # label at import (None: unlabelled)
    column: str | None = None       # tables: the column being labelled
    cells: list[list[str]] | None = None  # tables: a few other columns to show
    cell_names: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.index = {k: i for i, k in enumerate(self.ids)}

    def current(self, layer: dict) -> list:
        return [layer[k] if k in layer else lab for k, lab in zip(self.ids, self.imported)]


def label_columns(ds) -> list[str]:
    """Columns of a table that can be labelled: categorical or boolean ones (few distinct values), and empty ones
    (a column made to hold the labels)."""
    out = []
    for c in ds.schema.get("columns", []):
        st = ds.stats.get(c["name"], {})
        if c["kind"] in ("categorical", "boolean", "empty") or (c["kind"] == "numeric" and (st.get("unique") or 99) <= 10):
            out.append(c["name"])
    return out


def default_column(ds) -> str | None:
    cols = label_columns(ds)
    for c in cols:
        if c.lower() in ("label", "target", "quality", "grade", "class", "defect", "result", "status", "y", "ok"):
            return c
    return cols[-1] if cols else None


class Labeling:
    """Per-UI caches of items, frames, assistant fits and model predictions."""

    def __init__(self, site) -> None:
        self.site, self.ws = site, site.ws
        self.frames: dict[int, pd.DataFrame] = {}
        self.fits: dict[tuple, dict] = {}
        self.preds: dict[tuple, dict] = {}
        self.item_cache: dict[tuple, Items] = {}
        self.lock = threading.Lock()

    # -- items ---------------------------------------------------------------
    def frame(self, ds) -> pd.DataFrame:
        if ds.id not in self.frames:
            if len(self.frames) > 8:
                self.frames.clear()
            self.frames[ds.id] = self.ws.load_frame(ds)
        return self.frames[ds.id]

    def items(self, ds, column: str | None = None) -> Items:
        """The items of a dataset version (cached: a version never changes)."""
        key = (ds.id, column or None)
        with self.lock:
            if key in self.item_cache:
                return self.item_cache[key]
        items = self._items(ds, column)
        with self.lock:
            if len(self.item_cache) > 16:
                self.item_cache.clear()
            self.item_cache[key] = items
        return items

    def _items(self, ds, column: str | None = None) -> Items:
        if ds.kind == "signal":
            files = self.site.signal_tables(ds)
            return Items("signal", list(files["file"]), list(files["file"]), [text_or_none(v) for v in files["label"]])
        if ds.kind == "image":
            from .kinds import image_files

            files = image_files(self.site, ds)
            return Items("image", list(files["file"]), list(files["file"]), [text_or_none(v) for v in files["label"]])
        if ds.kind == "series":
            from .kinds import series_index  # numeric targets (regression) are refused by the routes first

            index = series_index(self.site, ds)
            ids = [str(v) for v in index["id"]]
            imported = [text_or_none(v) for v in index["label"]] if "label" in index else [None] * len(ids)
            return Items("series", ids, ids, imported)
        if ds.kind != "table":
            raise InvalidInput(f"Dataset {ds.ref} holds {ds.kind} data; labelling here is for recordings, images, "
                               "series and tables.")
        column = column or default_column(ds)
        cols = [c["name"] for c in ds.schema.get("columns", [])]
        if column not in cols:
            raise InvalidInput(f"Column {column!r} is not in {ds.ref}; expected one of {', '.join(cols[:10])}.",
                               hint="Pick the column to label in the list.")
        df = self.frame(ds)
        # free-text columns first (a ticket is labelled by reading it), then the others; texts kept long enough to read
        kinds = {c["name"]: c["kind"] for c in ds.schema.get("columns", [])}
        others = [c for c in cols if c != column]
        shown = ([c for c in others if kinds.get(c) == "text"] + [c for c in others if kinds.get(c) != "text"])[:MAX_CELLS]
        from .views import _cell

        def cell(v, name):
            return _cell(v) if kinds.get(name) != "text" or not isinstance(v, str) else v[:MAX_TEXT_SHOWN]

        cells = ([[cell(v, n) for v, n in zip(row, shown)] for row in df[shown].itertuples(index=False)] if shown
                 else [[]] * len(df))
        ids = [f"{i}:{column}" for i in range(len(df))]
        titles = [f"#{i + 1}" for i in range(len(df))]
        return Items("table", ids, titles, [text_or_none(v) for v in df[column].tolist()], column=column, cells=cells,
                     cell_names=shown)

    # -- label definitions (name, colour), per dataset name ------------------------
    def _defs_path(self, ds) -> Path:
        return self.ws.root / "ui" / "label-defs" / f"{ds.name}.json"

    def definitions(self, ds, items: Items, layer: dict) -> list[dict]:
        try:
            saved = json.loads(self._defs_path(ds).read_text("utf-8"))
        except (OSError, ValueError):
            saved = []
        defs = [d for d in saved if isinstance(d, dict) and isinstance(d.get("name"), str)]
        known = {d["name"] for d in defs}
        seen = sorted({v for v in items.imported if v is not None} | {v for v in layer.values() if v})
        defs += [{"name": v, "color": None} for v in seen if v not in known]
        for i, d in enumerate(defs):
            if not d.get("color") or not _COLOR.match(str(d["color"])):
                d["color"] = _default_color(d["name"], i)
        return defs

    def save_definition(self, ds, items: Items, layer: dict, name: str, color: str | None) -> list[dict]:
        name = check_label(name)
        if name is None:
            raise InvalidInput("A label definition needs a name.")
        if color and not _COLOR.match(color):
            raise InvalidInput(f"A colour is written #rrggbb, e.g. #2563eb; got {color!r}.")
        defs = self.definitions(ds, items, layer)
        for d in defs:
            if d["name"] == name:
                d["color"] = color or d["color"]
                break
        else:
            if len(defs) >= 30:
                raise InvalidInput("At most 30 labels can be defined for one dataset.")
            defs.append({"name": name, "color": color or PALETTE[len(defs) % len(PALETTE)]})
        path = self._defs_path(ds)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(defs, ensure_ascii=False), "utf-8")
        tmp.replace(path)
        return defs

    # -- features for the assistant ------------------------------------------------------
    def features(self, ds, items: Items) -> np.ndarray:
        if items.kind == "signal":
            from ..recordings import load_signal_tables

            feats, _ = load_signal_tables(self.ws, ds)
            names = [n for n in ds.schema.get("feature_names", []) if n in feats.columns]
            means = feats.groupby("file", sort=False)[names].mean()
            return means.reindex(items.ids).to_numpy(dtype=np.float64)
        if items.kind == "image":
            from ..images import load_image_tables

            feats, _ = load_image_tables(self.ws, ds)
            names = [n for n in ds.schema.get("feature_names", []) if n in feats.columns]
            return feats.set_index("file")[names].reindex(items.ids).to_numpy(dtype=np.float64)
        if items.kind == "series":
            from .kinds import series_data

            data, offsets, _ = series_data(self.site, ds)
            return series_summary(data, offsets)
        df = self.frame(ds).drop(columns=[items.column])
        kinds = {c.get("name"): c.get("kind") for c in (ds.schema or {}).get("columns", []) if isinstance(c, dict)}
        parts = []
        for c in df.columns[:200]:
            s = df[c]
            if kinds.get(c) == "text":
                parts.append(_text_features(s))
            elif pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                parts.append(pd.to_numeric(s, errors="coerce").astype(float).to_numpy())
            else:
                codes, uniq = pd.factorize(s.astype("string"))
                if 1 < len(uniq) <= 1000:
                    parts.append(np.where(codes < 0, np.nan, codes).astype(float))
        if not parts:
            return np.zeros((len(df), 1))
        return np.column_stack(parts)

    # -- the assistant ------------------------------------------------------------------
    def assist(self, ds, items: Items, layer: dict, layer_version: int) -> dict:
        """{suggest: [label|None], confidence: [float], cv_accuracy, n_labelled, ready, curve}."""
        key = (ds.id, items.column, layer_version)
        with self.lock:
            if key in self.fits:
                return self.fits[key]
        res = self._fit(ds, items, layer)
        res["curve"] = self._record_curve(ds, items, res)
        with self.lock:
            if len(self.fits) > 32:
                self.fits.clear()
            self.fits[key] = res
        return res

    def _fit(self, ds, items: Items, layer: dict) -> dict:
        current = items.current(layer)
        lab_idx = np.array([i for i, v in enumerate(current) if v is not None], dtype=np.int64)
        n = len(current)
        empty = {"suggest": [None] * n, "confidence": [0.0] * n, "cv_accuracy": None, "n_labelled": int(len(lab_idx)),
                 "ready": False, "need": MIN_LABELS}
        y_all = np.array([str(v) for v in current], dtype=object)
        if len(lab_idx) < MIN_LABELS or len(set(y_all[lab_idx])) < 2:
            return empty
        from sklearn.ensemble import ExtraTreesClassifier
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        X = np.nan_to_num(self.features(ds, items), nan=0.0, posinf=0.0, neginf=0.0)
        rng = np.random.default_rng(0)
        fit_idx = lab_idx if len(lab_idx) <= MAX_FIT_ITEMS else rng.choice(lab_idx, MAX_FIT_ITEMS, replace=False)
        y = y_all[fit_idx]
        model = ExtraTreesClassifier(n_estimators=50, min_samples_leaf=1, random_state=0, n_jobs=1)
        cv = None
        counts = pd.Series(y).value_counts()
        folds = int(min(3, counts.min()))
        if folds >= 2:
            cv = float(cross_val_score(model, X[fit_idx], y, cv=StratifiedKFold(folds, shuffle=True, random_state=0),
                                       scoring="accuracy").mean())
        model.fit(X[fit_idx], y)
        proba = model.predict_proba(X)
        best = proba.argmax(axis=1)
        classes = [str(c) for c in model.classes_]
        return {"suggest": [classes[b] for b in best], "confidence": [round(float(p), 3) for p in proba.max(axis=1)],
                "cv_accuracy": cv, "n_labelled": int(len(lab_idx)), "ready": True, "need": MIN_LABELS}

    def _record_curve(self, ds, items: Items, res: dict) -> list[dict]:
        import hashlib

        tag = hashlib.sha1(str(items.column or "").encode("utf-8")).hexdigest()[:10]  # any column name, safely
        path = self.ws.root / "ui" / "learning" / f"{int(ds.id)}-{tag}.json"
        try:
            curve = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            curve = []
        if res.get("cv_accuracy") is not None:
            point = {"n": res["n_labelled"], "accuracy": round(res["cv_accuracy"], 4)}
            curve = [p for p in curve if p.get("n") != point["n"]] + [point]
            curve.sort(key=lambda p: p["n"])
            curve = curve[-200:]
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(curve), "utf-8")
            tmp.replace(path)
        return curve

    # -- the latest model's opinion ---------------------------------------------------------
    def latest_model(self, ds, items: Items):
        """The newest classification (or anomaly, for recordings and images) model trained on this dataset's name."""
        newest_first = sorted(self.ws.models(), key=lambda m: int(m.row.get("id") or 0), reverse=True)
        for m in newest_first:  # registered last, whatever its name (the list is by name)
            man = m.manifest or {}
            data = man.get("data") or {}
            if data.get("dataset") != ds.name or m.task not in ("classification", "anomaly"):
                continue
            modality = man.get("modality", "tabular")
            if {"tabular": "table"}.get(modality, modality) != ds.kind:
                continue
            if items.kind in ("table", "series") and m.task != "classification":
                continue
            if items.kind == "table" and man.get("target") != items.column:
                continue
            return m
        return None

    def model_predictions(self, ds, items: Items) -> tuple[str | None, list]:
        """(model ref, predicted label per item or None) of the latest model of this dataset."""
        m = self.latest_model(ds, items)
        if m is None:
            return None, [None] * len(items.ids)
        key = (m.ref, m.row.get("package_sha"), ds.id, items.column)
        with self.lock:
            if key in self.preds:
                return m.ref, self.preds[key]
        try:
            preds = self._predict(m, ds, items)
        except Exception as exc:  # a model that cannot score this version (other features): no opinion
            raise NotFound(f"{m.ref} cannot score {ds.ref}: {exc}") from None
        with self.lock:
            if len(self.preds) > 16:
                self.preds.clear()
            self.preds[key] = preds
        return m.ref, preds

    def _predict(self, m, ds, items: Items) -> list:
        if items.kind == "image":
            return self._predict_images(m, ds, items)
        if items.kind == "series":
            from .kinds import series_data

            data, offsets, _ = series_data(self.site, ds)
            series = [np.asarray(data[:, offsets[i]:offsets[i + 1]]) for i in range(len(items.ids))]
            out = m.predictor.predict_series(series, items.ids)
            return [None if v is None or v != v else str(v) for v in out["prediction"]]
        if items.kind == "table":
            df = self.frame(ds)
            out = m.predict(df.drop(columns=[items.column]))
            return [str(v) for v in out["prediction"]]
        from ..recordings import load_signal_tables

        feats, _ = load_signal_tables(self.ws, ds)
        pred = m.predictor
        X = feats[pred.feature_names].to_numpy(dtype=np.float64)
        groups = feats["file"].to_numpy()
        if m.task == "anomaly":
            scores = pred.anomaly.file_scores(X, groups)
            normal = (m.manifest or {}).get("normal_label", "normal")
            return [None if f not in scores else (normal if scores[f] <= pred.threshold else "__abnormal__")
                    for f in items.ids]
        proba = pd.DataFrame(pred.window_outputs(X)).groupby(groups, sort=False).mean()
        labels = [str(v) for v in pred.labels or []]
        best = {f: labels[int(np.argmax(row))] for f, row in zip(proba.index, proba.to_numpy())}
        return [best.get(f) for f in items.ids]


    def _predict_images(self, m, ds, items: Items) -> list:
        """Classifiers: from the texture features stored with the dataset (no image is read). Anomaly models
        score every image with their backbone, so only up to ``MAX_IMAGE_OPINIONS`` images."""
        from ..images import image_blob, load_image_tables

        pred = m.predictor
        if m.task == "anomaly":
            if len(items.ids) > MAX_IMAGE_OPINIONS:
                raise NotFound(f"{m.ref} is an image anomaly model: it reads every image, and {ds.ref} has "
                               f"{len(items.ids)} (this page scores up to {MAX_IMAGE_OPINIONS}). Score them with "
                               f"'modelfab predict {m.ref} FOLDER' and compare there.")
            normal = (m.manifest or {}).get("normal_label", "normal")
            out = []
            for rel in items.ids:
                row = pred.predict_image(pred.read(image_blob(self.ws, ds, rel), rel))
                out.append(normal if row["score"] <= pred.threshold else "__abnormal__")
            return out
        wanted = (m.manifest.get("image") or {}).get("features_version")
        if wanted != ds.schema.get("features_version"):
            raise NotFound(f"{m.ref} reads image features version {wanted}; {ds.ref} stores version "
                           f"{ds.schema.get('features_version')}.")
        feats, _ = load_image_tables(self.ws, ds)
        frame = feats.set_index("file").reindex(items.ids)[pred.feature_names].reset_index(drop=True)
        proba = pred.tabular.predict_raw(frame)
        labels = [str(v) for v in pred.labels or []]
        return [labels[int(np.argmax(p))] for p in proba]


MAX_IMAGE_OPINIONS = 200  # images an image anomaly model scores for the "model disagrees" filter
SHAPE_POINTS = 16  # points of a series' z-normalised shape in the assistant's features


def series_summary(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(n series, features) for the labelling assistant: per channel the mean, spread, range, quartiles, mean
    step, and the shape (z-normalised, resampled to ``SHAPE_POINTS``), plus the log length. Gaps (NaN) are skipped."""
    rows = []
    grid = np.linspace(0.0, 1.0, SHAPE_POINTS)
    for i in range(len(offsets) - 1):
        x = np.asarray(data[:, offsets[i]:offsets[i + 1]], dtype=np.float64)
        feats = [np.log1p(x.shape[1])]
        for ch in x:
            ch = ch[np.isfinite(ch)]
            if ch.size == 0:
                feats += [0.0] * (8 + SHAPE_POINTS)
                continue
            sd = float(ch.std())
            q = np.percentile(ch, [10, 50, 90])
            step = float(np.abs(np.diff(ch)).mean()) if ch.size > 1 else 0.0
            z = (ch - ch.mean()) / (sd if sd > 0 else 1.0)
            shape = np.interp(grid, np.linspace(0.0, 1.0, ch.size), z) if ch.size > 1 else np.zeros(SHAPE_POINTS)
            feats += [float(ch.mean()), sd, float(ch.min()), float(ch.max()), *q.tolist(), step, *shape.tolist()]
        rows.append(feats)
    return np.asarray(rows, dtype=np.float64)


TEXT_DIMS = 48  # latent dimensions of a text column for the assistant


def _text_features(s: pd.Series) -> np.ndarray:
    """(n, <= TEXT_DIMS) dense features of a text column: TF-IDF of character 1-3-grams (any language, Chinese
    without segmentation) reduced by truncated SVD over every item, labelled or not. Codes of whole texts (as
    for categories) meant nothing: the assistant scored below chance on texts whose class is in their words."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = s.fillna("").astype(str).str.slice(0, 2000).tolist()
    if not any(t.strip() for t in texts):
        return np.zeros((len(texts), 1))
    tf = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, max_features=20000,
                         lowercase=True).fit_transform(texts)
    k = min(TEXT_DIMS, tf.shape[1] - 1, len(texts) - 1)
    if k < 1:
        return tf.toarray()
    return TruncatedSVD(k, random_state=0).fit_transform(tf)


def disagrees(given, predicted, normal_label: str = "normal") -> bool:
    if given is None or predicted is None:
        return False
    if predicted == "__abnormal__":  # an anomaly model only says "not normal"
        return given == normal_label
    return given != predicted

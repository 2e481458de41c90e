"""Importing a collection of time series (long/wide CSV or Parquet, UCR/UEA ``.ts``) as a dataset version.

The dataset version stores the series side by side in one ``.npz`` blob
(``data``: channels x all time steps, ``offsets``: where each series starts;
no pickle) and an index table (id, label, length) as Parquet. Blobs first,
metadata row last; identical content + options under the same name = no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InvalidInput
from .registry import check_name

SERIES_FORMAT = 1


@dataclass(frozen=True)
class SeriesOptions:
    """How a file of series is read. Stored with the dataset and every model trained on it."""

    id_column: str | None = None                 # long format: one row per (series, time step)
    time_column: str | None = None               # long format: order of the rows of a series
    value_columns: tuple[str, ...] | None = None  # long format: one column per channel (default: all others)
    label_column: str | None = None              # long/wide: the label (class or number) of each series
    labels_file: str | None = None               # CSV of id,label (instead of a label column)
    # wide format: numbered columns (t0.., p_0.., q_0..) are the steps and channels, others are left out. False
    # for datasets and models made before 2026-12-04, which read every column as one channel's steps.
    wide_steps: bool = False
    # "wide" when a table with an id column had each id on one row (a wide table that keeps its ids); None: long
    # with an id column, wide without (as before 2026-12, when an id column always meant the long format).
    layout: str | None = None

    def __post_init__(self) -> None:
        """Column names checked as given from Python: one name (a str) for value_columns is that one column, not
        its letters; a list where one name is expected is refused with the option's name."""
        for key in ("id_column", "time_column", "label_column"):
            v = getattr(self, key)
            if v is not None and not isinstance(v, str):
                raise InvalidInput(f"{key} names one column; expected a str, got {_what(v)}.",
                                   hint=f"Pass {key}='COLUMN' (the channels go in value_columns).")
        v = self.value_columns
        if isinstance(v, str):
            v = (v,)
        elif v is not None:
            if not isinstance(v, (list, tuple)) or not all(isinstance(c, str) for c in v):
                raise InvalidInput(f"value_columns names the channel columns; expected a list of column names (or "
                                   f"one name), got {_what(v)}.", hint="Pass value_columns=['pressure', 'temp'].")
            v = tuple(v) or None
        object.__setattr__(self, "value_columns", v)
        if self.labels_file is not None and not isinstance(self.labels_file, (str, os.PathLike)):
            raise InvalidInput(f"labels_file is the path of a CSV of id,label; got {_what(self.labels_file)}.")
        if self.labels_file is not None:
            object.__setattr__(self, "labels_file", str(self.labels_file))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["value_columns"] = list(self.value_columns) if self.value_columns else None
        if not self.wide_steps:  # as options were written before the flag (same dataset hashes for .ts and long)
            d.pop("wide_steps")
        if self.layout is None:
            d.pop("layout")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SeriesOptions":
        d = {k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__}
        if d.get("value_columns"):
            d["value_columns"] = tuple(d["value_columns"])
        return cls(**d)

    def reading(self) -> dict:
        """Keyword arguments of :func:`read_series` (what predicting on a new file of the same layout needs)."""
        return {"id_column": self.id_column, "time_column": self.time_column,
                "value_columns": list(self.value_columns) if self.value_columns else None,
                "wide_steps": self.wide_steps, "layout": self.layout}

    def describe(self) -> str:
        """The layout a model reads new files in, in words (for errors at prediction)."""
        if self.id_column and self.layout != "wide":
            vals = f"value column(s) {', '.join(map(repr, self.value_columns))}" if self.value_columns \
                else "value columns"
            time = f", time column {self.time_column!r}" if self.time_column else ""
            return f"a long table: one row per series and time step, id column {self.id_column!r}{time}, {vals}"
        if self.id_column or self.wide_steps or self.label_column:
            ident = f"id column {self.id_column!r} and " if self.id_column else ""
            return f"a wide table: one row per series, {ident}one column per time step (as in the training file)"
        return "a .ts file or a table laid out as the training file"

    def for_prediction(self) -> "SeriesOptions":
        """The options a model reads new files with: the layout its dataset had, never guessed again (an id
        column without a stored layout is the long format)."""
        from dataclasses import replace

        return replace(self, layout="long") if self.id_column and self.layout is None else self


def _what(v) -> str:
    from .errors import describe_value

    shown = f" ({str(list(v))[:60]})" if isinstance(v, (list, tuple, set)) else ""
    return describe_value(v) + shown


def read_file(path, settings, opts: SeriesOptions, *, with_labels: bool = True):
    from .modalities.series.io import read_labels_file, read_series

    ignore = () if with_labels or not opts.label_column else (opts.label_column,)
    sset = read_series(path, settings, label_column=opts.label_column if with_labels else None, ignore=ignore,
                       **opts.reading())
    if with_labels and opts.labels_file:
        if opts.label_column:
            raise InvalidInput("Give either --label-column or a labels file, not both.")
        table = read_labels_file(opts.labels_file, settings)
        missing = [i for i in sset.ids if i not in table]
        if len(missing) == len(sset.ids):
            raise InvalidInput(f"None of the series ids ({sset.ids[0]!r}, ...) are in {Path(opts.labels_file).name}.",
                               hint="The labels file needs the series id in its first column and the label in its second.")
        sset.labels = [table.get(i) for i in sset.ids]
        if missing:
            sset.notes.append(f"{len(missing)} series have no row in the labels file and stay unlabelled.")
    return sset


def label_spelling_notes(labels, column: str | None) -> list[str]:
    """The note tables give on a categorical column (values that differ only in case, spaces or dashes: each
    spelling a class of its own), for the class labels of series; ``column``: the label column (None: a labels
    file's second column)."""
    from .modalities.tabular_values import spelling_notes

    name = column or "label"
    vals = pd.DataFrame({name: pd.Series([None if v is None else str(v) for v in labels or []], dtype=object)})
    notes = spelling_notes(vals, {"columns": [{"name": name, "kind": "categorical"}]})
    if not column:  # say where the labels came from
        notes = [n.replace(f"Column {name!r} has values", "The labels file has labels", 1) for n in notes]
    return [n.replace("is a category of its own", "is a class of its own") for n in notes]


def _label_kind(labels: list | None) -> str | None:
    vals = [v for v in labels or [] if v is not None]
    if not vals:
        return None
    return "numeric" if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals) else "categorical"


CLASSIFY_UP_TO = 20  # numeric labels with at most this many values train a classifier (task auto)


def auto_task(label_kind: str | None, n_values: int) -> str:
    """The task ``--task auto`` trains: regression for numeric labels with many values, else classification."""
    return "regression" if label_kind == "numeric" and n_values > CLASSIFY_UP_TO else "classification"


def import_series(ws, path: str | os.PathLike, name: str | None, opts: SeriesOptions, *, skip_bad: bool = False):
    """Import a file of series as a dataset version. ``skip_bad``: a series that cannot be read (too short, empty,
    channels of different lengths) is left out and listed in the notes, instead of refusing the file."""
    from .datasets import DatasetVersion, ImportResult, _default_name, current_user
    from .modalities.series.io import skipping_bad_series

    p = Path(path)
    if p.is_dir():
        raise InvalidInput(f"{p} is a folder; expected one file of series (.ts, CSV or Parquet).")
    name = check_name(name or _default_name(p), "dataset")
    from dataclasses import replace

    if not opts.id_column and p.suffix.lower() != ".ts":  # wide: new imports read numbered columns as steps
        opts = replace(opts, wide_steps=True)
    if skip_bad:
        with skipping_bad_series():
            sset = read_file(p, ws.settings, opts)
    else:
        sset = read_file(p, ws.settings, opts)
    if opts.id_column and sset.format == "wide":  # each id on one row: a wide table keeping its ids
        opts = replace(opts, layout="wide", wide_steps=True)
    if sset.time_column and not opts.time_column:  # found by its name or steps: new files are read with it too
        opts = replace(opts, time_column=sset.time_column)
    data, offsets = sset.packed()
    ids = np.array(sset.ids, dtype=str)
    labels = sset.labels
    lkind = _label_kind(labels)
    index = pd.DataFrame({"id": sset.ids, "length": sset.lengths})
    if labels is not None:
        index["label"] = pd.Series(labels, dtype="float64" if lkind == "numeric" else "object")
        if lkind == "categorical":
            index["label"] = index["label"].map(lambda v: None if v is None or v != v else str(v))
    content = _content_sha(data, offsets, sset.ids, index["label"].tolist() if "label" in index else None,
                           sset.channel_names, opts.to_dict())
    existing = ws.meta.find_dataset(name, content)
    if existing is not None:
        return ImportResult(DatasetVersion.from_row(existing), created=False)
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        npz, idx = Path(tmp) / "series.npz", Path(tmp) / "index.parquet"
        np.savez_compressed(npz, data=data, offsets=offsets, ids=ids)
        index.to_parquet(idx, index=False)
        refs = [("index", ws.blobs.put_file(idx))]
        data_sha = ws.blobs.put_file(npz)
    lengths = sset.lengths
    schema = {"kind": "series", "n_channels": sset.n_channels, "channel_names": sset.channel_names,
              "label_kind": lkind, "min_length": int(lengths.min()), "max_length": int(lengths.max()),
              "equal_length": bool(lengths.min() == lengths.max()), "format": sset.format,
              "columns": [{"name": "id", "kind": "id"}, {"name": "label", "kind": lkind or "empty"}]}
    stats = {"series": len(sset.series), "format": sset.format, "channels": sset.n_channels,
             "length": {"min": int(lengths.min()), "median": float(np.median(lengths)), "max": int(lengths.max())},
             "unlabelled": int(sum(v is None for v in labels)) if labels is not None else len(sset.series),
             "notes": sset.notes}
    if lkind == "categorical":
        stats["labels"] = dict(Counter(str(v) for v in labels if v is not None).most_common())
        sset.notes += label_spelling_notes(labels, opts.label_column)  # 'ok' / 'OK' / 'ok ': one class or three?
    elif lkind == "numeric":
        vals = np.array([v for v in labels if v is not None], dtype=float)
        stats["target"] = {"min": float(vals.min()), "mean": float(vals.mean()), "max": float(vals.max())}
        if auto_task(lkind, len(np.unique(vals))) == "classification":  # as training will take them: classes
            counts = Counter(_class_name(v) for v in vals)
            stats["labels"] = {k: counts[k] for k in sorted(counts, key=float)}
            sset.notes.append(f"The labels are {len(counts)} different numbers, so training (--task auto) takes "
                              "them as classes; pass --task regression to predict a number instead.")
    row = ws.meta.add_dataset(
        name=name, kind="series", content_sha=content, data_sha=data_sha, source_name=p.name,
        n_rows=len(sset.series), n_cols=sset.n_channels, schema=schema, stats=stats, options=opts.to_dict(),
        created_by=current_user(), refs=refs,
    )
    return ImportResult(DatasetVersion.from_row(row), created=True)


def _class_name(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _content_sha(data, offsets, ids: list, labels: list | None, channel_names, options: dict) -> str:
    h = hashlib.sha256()
    for arr in (data, offsets):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps({"ids": ids, "labels": labels, "channels": channel_names, "options": options,
                         "format": SERIES_FORMAT}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def relabel_series(ws, ds, labels: dict[str, str | None]):
    """A new version of series dataset ``ds`` with other class labels (``labels``: series id -> label, None for
    unlabelled; series not named keep theirs). The values stay the same blob. Refused for numeric targets."""
    from .datasets import DatasetVersion, ImportResult, current_user, text_or_none

    if ds.schema.get("label_kind") == "numeric":
        raise InvalidInput(f"The series of {ds.ref} have numbers as targets (regression); class labels cannot be "
                           "mixed in.", hint="Import the series again with a label column of names.")
    data, offsets, index = load_series(ws, ds)
    ids = [str(v) for v in index["id"]]
    unknown = sorted(set(labels) - set(ids))
    if unknown:
        raise InvalidInput(f"{len(unknown)} of the labelled series are not in {ds.ref}: {', '.join(unknown[:3])}.")

    before = [text_or_none(v) for v in index["label"]] if "label" in index else [None] * len(ids)
    after = [text_or_none(labels[i]) if i in labels else b for i, b in zip(ids, before)]
    if after == before:
        return ImportResult(ds, created=False)
    index = index.copy()
    index["label"] = pd.Series(after, dtype="object")
    options = dict(ds.options or {})
    content = _content_sha(data, offsets, ids, after, ds.schema.get("channel_names"), options)
    existing = ws.meta.find_dataset(ds.name, content)
    if existing is not None:
        return ImportResult(DatasetVersion.from_row(existing), created=False)
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        idx = Path(tmp) / "index.parquet"
        index.to_parquet(idx, index=False)
        refs = [("index", ws.blobs.put_file(idx))]
    lkind = "categorical" if any(v is not None for v in after) else None
    schema = dict(ds.schema, label_kind=lkind,
                  columns=[{"name": "id", "kind": "id"}, {"name": "label", "kind": lkind or "empty"}])
    stats = dict(ds.stats or {}, unlabelled=int(sum(v is None for v in after)), relabelled_from=ds.ref)
    stats.pop("target", None)
    stats["labels"] = dict(Counter(v for v in after if v is not None).most_common())
    row = ws.meta.add_dataset(
        name=ds.name, kind="series", content_sha=content, data_sha=ds.data_sha, source_name=ds.source_name,
        n_rows=ds.n_rows, n_cols=ds.n_cols, schema=schema, stats=stats, options=options,
        created_by=current_user(), refs=refs,
    )
    return ImportResult(DatasetVersion.from_row(row), created=True)


def load_series_index(ws, ds) -> pd.DataFrame:
    """The index table (id, length[, label]) of a series dataset version, without loading the values."""
    if ds.kind != "series":
        raise InvalidInput(f"Dataset {ds.ref} holds {ds.kind} data, not time series.")
    return pd.read_parquet(ws.blob_path(ws.meta.blob_refs(f"datasets:{ds.id}")["index"]))


def load_series(ws, ds) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(data, offsets, index table with id, length[, label]) of a series dataset version."""
    index = load_series_index(ws, ds)
    with np.load(ws.blob_path(ds.data_sha), allow_pickle=False) as z:
        data, offsets = z["data"], z["offsets"]
    return data, offsets, index

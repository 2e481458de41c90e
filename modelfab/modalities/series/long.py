"""Long tables of series: one row per series and time step, one value column per channel."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InvalidInput
from ...settings import Settings
from .clean import _SKIP, Fill, _read_clean, empty_label_note, skipped_note
from .sets import SeriesSet, _check_file, check_limits
from .tables import _need, _numeric, _plain, _read_frame

def _time_gap_notes(df: pd.DataFrame, id_column: str, time_column: str) -> list[str]:
    """A note when some series skip time steps (a step over 1.5x the usual one): the rows are used in order,
    as if equally spaced, so the user should know."""
    t = df["_t"]
    t = t.astype("int64") if np.issubdtype(t.dtype, np.datetime64) else t.astype(float)
    step = t.groupby(df[id_column].to_numpy()).diff()
    usual = float(step.median()) if step.notna().any() else 0.0
    if not usual > 0:
        return []
    gap = step > 1.5 * usual
    if not gap.any():
        return []
    first = df[gap.to_numpy()].iloc[0]
    n_series = int(df.loc[gap.to_numpy(), id_column].nunique())
    n_gaps = int(gap.sum())
    return [f"{n_series:,} series skip time steps ({n_gaps:,} {'gap' if n_gaps == 1 else 'gaps'} longer than the usual "
            f"step in {time_column!r}, e.g. series {str(first[id_column])!r} before {str(first[time_column])!r}); their "
            "rows are used in time order as if equally spaced."]


def _times(df: pd.DataFrame, time_column: str, id_column: str, name: str) -> pd.Series:
    """The time column as numbers, or else as dates: ISO 8601 of any precision (``2024-05-01T12:00:00`` beside
    ``...12:00:00.500000``, as Python's isoformat writes), or one other format pandas recognises. An empty cell
    is named by its row and series."""
    t = df[time_column]
    empty = t.isna() | (t.astype(str).str.strip() == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise InvalidInput(f"{name}: data row {i + 1} (series {_plain(df[id_column].iloc[i])!r}) has no time in "
                           f"{time_column!r}; expected a time on every row.",
                           hint="Fill in the time, or remove the row.")
    tnum = pd.to_numeric(t, errors="coerce")
    if not tnum.isna().any():
        return tnum
    with warnings.catch_warnings():  # pandas warns (with its own file path) when it falls back to dateutil
        warnings.simplefilter("ignore", UserWarning)
        tnum = pd.to_datetime(t, errors="coerce", format="ISO8601")
        if tnum.isna().any():
            tnum = pd.to_datetime(t, errors="coerce")
    if tnum.isna().any():
        i = int(np.flatnonzero(tnum.isna().to_numpy())[0])
        raise InvalidInput(f"{name}: --time-column {time_column!r} holds values that are neither numbers nor dates "
                           f"(e.g. {str(t.iloc[i])[:30]!r} in data row {i + 1}); expected numbers, ISO 8601 dates "
                           "(2024-05-01T12:00:00.5) or dates in one format throughout.",
                           hint="Write the times in one format, e.g. ISO 8601, or as seconds.")
    return tnum


def read_long(path: str | Path, settings: Settings, *, id_column: str, time_column: str | None = None,
              value_columns: list[str] | None = None, label_column: str | None = None,
              ignore: tuple[str, ...] = ()) -> SeriesSet:
    """Long format: one row per (series, time step); one value column per channel."""
    path = Path(path)
    _check_file(path, settings)
    return _long(_read_frame(path, settings, ignore), path.name, settings, id_column=id_column,
                 time_column=time_column, value_columns=value_columns, label_column=label_column)


def _long(df: pd.DataFrame, name: str, settings: Settings, *, id_column: str, time_column: str | None,
          value_columns: list[str] | None, label_column: str | None) -> SeriesSet:
    for col, what in ((id_column, "--id-column"), (time_column, "--time-column"), (label_column, "--label-column")):
        _need(df, col, what, name)
    used = {id_column, time_column, label_column} - {None}
    values = list(value_columns or [c for c in df.columns if c not in used])
    for c in values:
        _need(df, c, "value column", name)
    if not values:
        raise InvalidInput(f"{name}: no value columns left after id/time/label; expected at least one numeric column.")
    if df[id_column].isna().any():
        raise InvalidInput(f"{name}: {int(df[id_column].isna().sum())} row(s) have no series id in {id_column!r}.")
    if time_column is not None:
        df = df.assign(_t=_times(df, time_column, id_column, name))
        if df.duplicated([id_column, "_t"]).any():
            dup = df[df.duplicated([id_column, "_t"])].iloc[0]
            raise InvalidInput(f"{name}: series {str(dup[id_column])!r} has two rows at time {dup[time_column]}; "
                               "expected one row per series and time step.")
        df = df.sort_values([id_column, "_t"], kind="stable")
    vals = _numeric(df, values, name)
    ids_col = df[id_column].astype(str).to_numpy()
    order = pd.unique(ids_col)
    codes = pd.Categorical(ids_col, categories=order).codes
    idx = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[idx], np.arange(len(order) + 1))
    series, kept, labels, fill = [], [], [] if label_column else None, Fill()
    lab_col = df[label_column].to_numpy() if label_column else None
    for k, sid in enumerate(order):
        rows = idx[bounds[k]:bounds[k + 1]]
        arr = _read_clean(vals[rows].T, f"{name} series {sid!r}", fill)
        if arr is None:
            continue
        series.append(arr)
        kept.append(str(sid))
        if lab_col is not None:
            labs = pd.unique(pd.Series(lab_col[rows]).dropna())
            if len(labs) > 1:
                raise InvalidInput(f"{name}: series {sid!r} has {len(labs)} different labels ({_plain(labs[0])!r}, "
                                   f"{_plain(labs[1])!r}); expected one label per series.")
            labels.append(_plain(labs[0]) if len(labs) else None)
    notes = fill.notes() + skipped_note(_SKIP.get() or [])
    if time_column is not None:
        notes += _time_gap_notes(df, id_column, time_column)
    if label_column:
        notes += empty_label_note(labels, label_column)
    sset = SeriesSet(series, kept, labels, [str(c) for c in values], "long", notes)
    return check_limits(sset, name, settings)

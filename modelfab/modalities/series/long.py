"""Long tables of series: one row per series and time step, one value column per channel."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InvalidInput
from ...settings import Settings
from .clean import _LENIENT, _SKIP, MIN_LENGTH, Fill, _read_clean, empty_label_note, skipped_note
from .sets import SeriesSet, _check_file, check_limits
from .tables import (_need, _numeric, _plain, _read_frame, _refused, _row_no, drop_rows_without_id, id_texts,
                     with_frame_notes)

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


def _times(df: pd.DataFrame, time_column: str, id_column: str, name: str,
           refused: dict[str, str] | None = None) -> pd.Series:
    """The time column as numbers, or else as dates: ISO 8601 of any precision (``2024-05-01T12:00:00`` beside
    ``...12:00:00.500000``, as Python's isoformat writes), or one other format pandas recognises. An empty cell
    is named by its row and series; with ``refused`` (prediction) it refuses only its series (``refused[id]``:
    why) and its time stays empty."""
    t = df[time_column]
    empty = (t.isna() | (t.astype(str).str.strip() == "")).to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        if refused is None:
            raise InvalidInput(f"{name}: data row {_row_no(df, i)} (series {_plain(df[id_column].iloc[i])!r}) has no "
                               f"time in {time_column!r}; expected a time on every row.",
                               hint="Fill in the time, or remove the row.")
        for i in np.flatnonzero(empty):
            refused.setdefault(str(df[id_column].iloc[i]), f"data row {_row_no(df, int(i))} has no time in "
                                                           f"{time_column!r}; expected a time on every row (fill it "
                                                           "in, or remove the row)")
        t = t.where(~empty, None)
    tnum = pd.to_numeric(t, errors="coerce")
    if not tnum[~empty].isna().any():
        return tnum
    with warnings.catch_warnings():  # pandas warns (with its own file path) when it falls back to dateutil
        warnings.simplefilter("ignore", UserWarning)
        tnum = pd.to_datetime(t, errors="coerce", format="ISO8601")
        if tnum[~empty].isna().any():
            tnum = pd.to_datetime(t, errors="coerce")
    if tnum[~empty].isna().any():
        i = int(np.flatnonzero(tnum.isna().to_numpy() & ~empty)[0])
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
    frame = _read_frame(path, settings, ignore, ids=(id_column,))
    return with_frame_notes(_long(frame, path.name, settings, id_column=id_column, time_column=time_column,
                                  value_columns=value_columns, label_column=label_column), frame)


_TIME_NAME = re.compile(r"^(t|time|times|date|datetime|timestamp|zeit|datum|elapsed|elapsedtime|timestep|tstep|step)"
                        r"(s|sec|secs|seconds|ms|msec|millis|us|min|mins|h|hr|hrs|index|idx|no)?$"
                        r"|^(sec|secs|seconds|ms|msec|millis)$")


def _looks_like_time(df: pd.DataFrame, col, id_column: str) -> str:
    """Why column ``col`` of a long table looks like the time of its rows ("" when it does not): named like a time
    (``t``, ``t_s``, ``time``, ``timestamp``, ...) with numbers or dates, none repeated within a series; or numbers
    that rise in equal steps within every series (a sample counter or a clock)."""
    named = bool(_TIME_NAME.match(re.sub(r"[^a-z]", "", str(col).lower())))
    t = pd.to_numeric(df[col], errors="coerce")
    if t.isna().any() and named:
        with warnings.catch_warnings():  # pandas warns (with its own file path) when it falls back to dateutil
            warnings.simplefilter("ignore", UserWarning)
            t = pd.to_datetime(df[col], errors="coerce", format="ISO8601")
    if t.isna().any():
        return ""
    tv = t.astype("int64").to_numpy(np.float64) if pd.api.types.is_datetime64_any_dtype(t) else t.to_numpy(np.float64)
    ids = df[id_column].astype(str).to_numpy()
    counts = pd.Series(ids).value_counts()
    if counts.max() < MIN_LENGTH:
        return ""
    if named:
        repeated = pd.DataFrame({"i": ids, "t": tv}).duplicated().any()
        return "" if repeated else "its name, and no time repeats within a series"
    # sorted within each series (rows may come in any order): distinct values in equal steps
    frame = pd.DataFrame({"i": ids, "t": tv}).sort_values(["i", "t"], kind="stable")
    step = frame["t"].groupby(frame["i"]).diff()
    if not (step.dropna() > 0).all():
        return ""
    per = step.groupby(frame["i"]).agg(["min", "max"]).dropna()
    even = bool(((per["max"] - per["min"]) <= 1e-3 * per["max"].abs()).all())
    return "its values rise in equal steps within every series (in whatever order the rows come)" if even else ""


def _guess_time(df: pd.DataFrame, id_column: str, used: set) -> tuple[str | None, str]:
    """(the column of a long table that looks like the time of its rows, why) or (None, "")."""
    for col in [c for c in df.columns if c not in used]:
        why = _looks_like_time(df, col, id_column)
        if why:
            return col, why
    return None, ""


def _per_series_columns(df: pd.DataFrame, values: list, id_column: str) -> list:
    """Value columns that hold one number per series (the same on all its rows, different between series): a
    label or target more than a measurement over time."""
    out, ids = [], df[id_column].astype(str)
    if not ids.duplicated().any():
        return out
    for c in values:
        v = pd.to_numeric(df[c], errors="coerce")
        if v.isna().all():
            continue
        per = v.groupby(ids).nunique(dropna=True)
        if (per <= 1).all() and v.nunique() > 1:
            out.append(c)
    return out


def _one_row_per_id(df: pd.DataFrame, id_column: str, name: str) -> None:
    """Refuses a "long" table whose every id is on its own row: each series would have 1 time step. Many other
    columns: it is a wide table (one column per time step) given the options of a long one."""
    if len(df) < 2 or df[id_column].duplicated().any():
        return
    msg = (f"{name}: every id in {id_column!r} is on its own row ({len(df):,} ids, {len(df):,} rows), so read as a long "
           "table (one row per series and time step) each series would have 1 time step")
    if len(df.columns) - 2 >= MIN_LENGTH:
        raise InvalidInput(f"{msg}; with {len(df.columns):,} columns it looks like a wide table (one row per series, "
                           "one column per time step).",
                           hint="Drop --time-column and --value-column: with --id-column alone (and --label-column), a "
                                "table with each id on one row is read as a wide table.")
    raise InvalidInput(f"{msg}; expected the id repeated on each row of a series.",
                       hint="--id-column names the series (repeated on each of its rows), not the rows.")


def _long(df: pd.DataFrame, name: str, settings: Settings, *, id_column: str, time_column: str | None,
          value_columns: list[str] | None, label_column: str | None, guess_time: bool = False) -> SeriesSet:
    """``guess_time`` (an import that named neither a time column nor value columns): a column that looks like
    time (see :func:`_looks_like_time`) orders the rows and is no channel; the notes say which columns were used."""
    for col, what in ((id_column, "--id-column"), (time_column, "--time-column"), (label_column, "--label-column")):
        _need(df, col, what, name)
    used = {id_column, time_column, label_column} - {None}
    importing = not _LENIENT.get()
    notes: list[str] = []
    df, dropped = drop_rows_without_id(df, id_column, name, importing)
    notes += dropped
    df = df.assign(**{id_column: id_texts(df[id_column])})
    if importing:
        _one_row_per_id(df, id_column, name)
    if guess_time and time_column is None and not value_columns:
        time_column, why = _guess_time(df, id_column, used)
        if time_column is not None:
            used.add(time_column)
            notes.append(f"Column {time_column!r} looks like the time ({why}), so it orders the rows of each series "
                         "and is not a channel: pass --time-column to name another, or --value-column (once per "
                         "channel) to read it as a channel.")
    values = list(value_columns or [c for c in df.columns if c not in used])
    for c in values:
        _need(df, c, "value column", name)
    if not values:
        raise InvalidInput(f"{name}: no value columns left after id/time/label; expected at least one numeric column.")
    if importing and not value_columns:
        notes.append(f"Read {len(values)} channel(s) from the columns not named as id, time or label: "
                     f"{', '.join(repr(str(c)) for c in values[:12])}{' ...' if len(values) > 12 else ''}; pass "
                     "--value-column (once per channel) to choose them.")
        per_series = _per_series_columns(df, values, id_column)
        if per_series:
            one = len(per_series) == 1
            shown = ", ".join(repr(str(c)) for c in per_series[:5])
            notes.append(f"{'Column' if one else 'Columns'} {shown} {'holds' if one else 'hold'} one value per series "
                         "(the same on all its rows), like a label or target rather than a measurement over time; "
                         f"read as {'a channel' if one else 'channels'}, so new files must carry "
                         f"{'it' if one else 'them'} too: to predict it, import with --label-column "
                         f"{str(per_series[0])!r}; to leave {'it' if one else 'them'} out, pass --value-column for each "
                         "channel.")
    if importing and time_column is None:
        notes.append("No time column: the rows of each series are taken in file order (pass --time-column to "
                     "order them by a column).")
    # the columns used, in one block per dtype: a table read column by column is "highly fragmented" and pandas
    # would warn (with its own file path) at the time column added below
    df = df[list(dict.fromkeys(c for c in (id_column, time_column, label_column, *values) if c is not None))].copy()
    refused: dict[str, str] | None = None if importing else {}  # prediction: a bad row refuses its series alone
    if time_column is not None:
        df = df.assign(_t=_times(df, time_column, id_column, name, refused))
        twice = df.duplicated([id_column, "_t"]) & df["_t"].notna()
        if twice.any() and refused is None:
            dup = df[twice].iloc[0]
            raise InvalidInput(f"{name}: series {str(dup[id_column])!r} has two rows at time {dup[time_column]}; "
                               "expected one row per series and time step.",
                               hint="Remove the repeated row (a logger that wrote a row twice?).")
        for k in np.flatnonzero(twice.to_numpy()):
            refused.setdefault(str(df[id_column].iloc[k]), f"data row {_row_no(df, int(k))} repeats the time "
                                                           f"{df[time_column].iloc[k]} of an earlier row; expected one "
                                                           "row per series and time step (remove the repeated row)")
        df = df.sort_values([id_column, "_t"], kind="stable")
    bad: dict[int, str] | None = None if importing else {}  # prediction: a cell not a number refuses its series
    vals = _numeric(df, values, name, bad)
    ids_col = df[id_column].astype(str).to_numpy()
    order = pd.unique(ids_col)
    codes = pd.Categorical(ids_col, categories=order).codes
    idx = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[idx], np.arange(len(order) + 1))
    series, kept, labels, fill = [], [], [] if label_column else None, Fill()
    lab_col = df[label_column].to_numpy() if label_column else None
    for k, sid in enumerate(order):
        rows = idx[bounds[k]:bounds[k + 1]]
        arr = _refused(f"series {sid!r}", rows, bad) if bad else None
        if refused and sid in refused:
            arr = InvalidInput(f"series {sid!r}: {refused[sid]}.")
        if arr is None:
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
    notes += fill.notes() + skipped_note(_SKIP.get() or [])
    if time_column is not None:
        notes += _time_gap_notes(df[~df[id_column].isin(list(refused or ()))], id_column, time_column)
    if label_column:
        notes += empty_label_note(labels, label_column)
    sset = SeriesSet(series, kept, labels, [str(c) for c in values], "long", notes,
                     time_column=time_column if guess_time else None)
    return check_limits(sset, name, settings)

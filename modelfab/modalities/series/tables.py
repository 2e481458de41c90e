"""Tables of series: the wide layout (one row per series, one column per time step), the choice between long
and wide, and what long and wide tables share (columns named, values read as numbers)."""

from __future__ import annotations

import contextvars
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InvalidInput
from ...settings import Settings
from .clean import _LENIENT, _SKIP, MIN_LENGTH, Fill, _read_clean, empty_label_note, skipped_note
from .sets import SeriesSet, _check_file, check_limits


_SHEET = contextvars.ContextVar("modelfab_series_sheet", default=None)


@contextmanager
def reading_sheet(sheet: str | None):
    """Within: an Excel workbook of series is read from ``sheet`` (None: the sheet with the most cells, said in a
    note when the workbook has several)."""
    token = _SHEET.set(sheet)
    try:
        yield
    finally:
        _SHEET.reset(token)


def _read_frame(path: Path, settings: Settings, ignore: tuple[str, ...] = (), ids=()) -> pd.DataFrame:
    """The table of a file; ``ids``: the id column(s) (names, or positions from 0), read as text so that ids such
    as ``007`` are kept as written (a CSV reader would make them the number 7). An Excel workbook: the sheet of
    :func:`reading_sheet`."""
    from ..tabular_io import open_table, read_table

    src = open_table(path, settings)
    sheet = _SHEET.get()
    if sheet is not None and src.format != "excel":
        raise InvalidInput(f"--sheet picks the sheet of an Excel workbook; {path.name} is {src.format}.",
                           hint="Leave out --sheet.")
    src.sheet = sheet
    df = read_table(src, settings, text_columns=tuple(c for c in ids if c is not None))
    if src.notes:  # which sheet of several was read: said first in the set's notes (with_frame_notes)
        df.attrs["notes"] = list(src.notes)
    # the rows numbered as in the file (a Parquet file may carry the index of the frame it was written from)
    df = df.drop(columns=[c for c in ignore if c in df.columns]).reset_index(drop=True)
    df.attrs["delimiter"] = src.delimiter  # ';' between fields: '4,126' is a decimal comma (_numeric)
    return df


def with_frame_notes(sset: SeriesSet, df: pd.DataFrame) -> SeriesSet:
    """``sset`` with what reading its table said (the sheet read of several) before its own notes."""
    sset.notes[:0] = [n for n in df.attrs.get("notes", []) if n not in sset.notes]
    return sset


def drop_rows_without_id(df: pd.DataFrame, id_column: str, name: str, importing: bool) -> tuple[pd.DataFrame, list]:
    """(the rows that have a series id, a note on those left out). At import a row without an id is refused; at
    prediction it belongs to no series and is left out, and the note says how many (the row numbers stay those of
    the file)."""
    none = df[id_column].isna() | (df[id_column].astype(str).str.strip() == "")
    if not none.any():
        return df, []
    first = _row_no(df, int(np.flatnonzero(none.to_numpy())[0]))
    if importing:
        raise InvalidInput(f"{name}: {int(none.sum())} row(s) have no series id in {id_column!r} (the first: data row "
                           f"{first}); expected an id on every row.",
                           hint="Fill in the ids, or remove those rows.")
    return df[~none.to_numpy()], [f"{int(none.sum()):,} row(s) have no series id in {id_column!r} (the first: data "
                                  f"row {first}) and were left out: a row without an id belongs to no series."]


def id_texts(col: pd.Series) -> pd.Series:
    """Series ids as text, as written: a whole number stored as a float (a Parquet column of ints with an empty
    cell) is ``7``, not ``7.0``; empty cells stay empty."""
    if pd.api.types.is_float_dtype(col):
        whole = col.dropna()
        if len(whole) and (whole == np.floor(whole)).all():
            return col.astype("Int64").astype(str).where(col.notna(), None)
    return col.astype(str).where(col.notna(), None)


def _need(df: pd.DataFrame, col: str | None, what: str, name: str) -> None:
    if col is not None and col not in df.columns:
        shown = ", ".join(repr(str(c)) for c in list(df.columns)[:12])
        sheet = " ".join(df.attrs.get("notes", []))  # a workbook: which of its sheets was read
        if _LENIENT.get():  # prediction: the user named no column, the model's layout did
            what = what.lstrip("-").replace("-", " ")
            raise InvalidInput(f"{name}: expected the {what} {col!r} (the layout the model was trained on); the file's "
                               f"columns are {shown}." + (f" ({sheet})" if sheet else ""))
        raise InvalidInput(f"{name}: {what} {col!r} is not a column; columns are {shown}."
                           + (f" ({sheet})" if sheet else ""))


def _row_no(df: pd.DataFrame, i: int) -> int:
    """The data row (from 1, as in the file) of position ``i``: the frame's index is the file's row order (the
    rows of a long table are sorted by time before they are read)."""
    lab = df.index[i]
    return int(lab) + 1 if isinstance(lab, (int, np.integer)) else i + 1


NUMERIC_HINT = ("At import, name the non-value columns with --id-column/--time-column/--label-column; to predict, "
                "give the series in the layout and columns the model was trained on.")


def _numeric(df: pd.DataFrame, cols: list[str], name: str, bad: dict[int, str] | None = None) -> np.ndarray:
    """The columns as float64 (empty cells NaN). A cell that is not a number refuses the file with its row; with
    ``bad`` (lenient reading: prediction) it is NaN and ``bad[position]`` says why, for the caller to refuse its
    series alone, unless most of the column is not numbers (a text column, not a mistyped cell)."""
    from ..tabular_values import detect_number_format, to_numbers

    out = np.empty((len(df), len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        v = pd.to_numeric(df[c], errors="coerce")
        wrong = (v.isna() & df[c].notna()).to_numpy()
        if wrong.any() and not pd.api.types.is_numeric_dtype(df[c]):  # '4,15' (a decimal comma), '1.486,7', '12,0 mm': as tables read them
            fmt = detect_number_format(df[c], df.attrs.get("delimiter"))
            if fmt is not None:
                v = to_numbers(df[c], fmt)
                wrong = (v.isna() & df[c].notna() & df[c].astype(str).str.strip().ne("")).to_numpy()
        if wrong.any():
            at = np.flatnonzero(wrong)
            if bad is None or 2 * len(at) > int(df[c].notna().sum()):
                i = int(at[0])
                raise InvalidInput(f"{name}: column {c!r} holds a non-number ({str(df[c].iloc[i])[:30]!r} in data row "
                                   f"{_row_no(df, i)}); expected numeric values.", hint=NUMERIC_HINT)
            for i in at:
                bad.setdefault(int(i), f"column {c!r} holds a non-number ({str(df[c].iloc[i])[:30]!r} in data row "
                                       f"{_row_no(df, int(i))}); expected numbers (an empty cell for a gap)")
        out[:, j] = v.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _refused(where: str, rows, bad: dict[int, str]) -> InvalidInput | None:
    """Lenient reading: the series at ``rows`` refused for its first cell that is not a number (None: no such cell)."""
    hit = [bad[int(r)] for r in sorted(rows) if int(r) in bad]
    return InvalidInput(f"{where}: {hit[0]}.") if hit else None


def read_wide(path: str | Path, settings: Settings, *, label_column: str | None = None,
              id_column: str | None = None, ignore: tuple[str, ...] = (), wide_steps: bool = True) -> SeriesSet:
    """Wide format: one row per series, one column per time step (shorter series end in empty cells).
    ``wide_steps``: numbered columns are the steps (see :func:`wide_channels`); False: every column, one channel
    (how datasets made before 2026-12-04 were read)."""
    path = Path(path)
    _check_file(path, settings)
    frame = _read_frame(path, settings, ignore, ids=(id_column,))
    return with_frame_notes(_wide(frame, path.name, settings, label_column=label_column, id_column=id_column,
                                  wide_steps=wide_steps), frame)


def _wide(df: pd.DataFrame, name: str, settings: Settings, *, label_column: str | None, id_column: str | None,
          wide_steps: bool) -> SeriesSet:
    _need(df, label_column, "--label-column", name)
    _need(df, id_column, "--id-column", name)
    notes = []
    if id_column:
        df, notes = drop_rows_without_id(df, id_column, name, not _LENIENT.get())
    cols = [c for c in df.columns if c not in (label_column, id_column)]
    if len(cols) < MIN_LENGTH:
        raise InvalidInput(f"{name}: {len(cols)} value column(s); a wide table needs one column per time step "
                           f"(at least {MIN_LENGTH}).", hint="For one row per time step pass --id-column (long format).")
    channels, other = wide_channels([str(c) for c in cols]) if wide_steps else ({"value": list(cols)}, [])
    if other:
        notes.append(f"Column(s) {', '.join(repr(c) for c in other[:8])}{' ...' if len(other) > 8 else ''} do not "
                     "follow the numbered time-step columns and were left out of the series (name a label with "
                     "--label-column, the series ids with --id-column).")
    if len(channels) > 1:
        notes.append(f"Read as {len(channels)} channels by column prefix: "
                     + ", ".join(f"{k!r} ({len(v)} steps)" for k, v in channels.items()) + ".")
    bad: dict[int, str] | None = {} if _LENIENT.get() else None  # prediction: a cell not a number refuses its row
    blocks = [_numeric(df, v, name, bad) for v in channels.values()]
    ids = id_texts(df[id_column]).tolist() if id_column else [f"row_{i + 1}" for i in range(len(df))]
    series, kept, fill = [], [], Fill()
    for i in range(len(df)):
        arr = _refused(f"series {ids[i]!r}", [i], bad) if bad else None
        if arr is None:
            arr = _read_clean(np.stack([b[i] for b in blocks]), f"{name} row {_row_no(df, i)}", fill)
        if arr is not None:
            series.append(arr)
            kept.append(i)
    ids = [ids[i] for i in kept]
    labels = [None if pd.isna(v) else _plain(v) for v in df[label_column].iloc[kept]] if label_column else None
    notes += fill.notes() + skipped_note(_SKIP.get() or [])
    if label_column:
        notes += empty_label_note(labels, label_column)
    names = list(channels) if len(channels) > 1 else ["value"]
    return check_limits(SeriesSet(series, ids, labels, names, "wide", notes), name, settings)


_STEP = re.compile(r"^(.*?)[_\-. ]?(\d+)$")


def wide_channels(cols: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """({channel: its time-step columns in step order}, columns that are not time steps) of a wide table.

    Columns named like ``t0..t59``, ``p_0..p_29`` or ``1..60`` (a word, or nothing, then consecutive whole
    numbers) are time steps; several such words with the same number of steps (``p_0..p_29`` and
    ``q_0..q_29``) are channels. Anything else (dates, ``0.5``-style times, scattered numbers) reads every column
    as one channel's steps, in file order, as before."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for c in cols:
        m = _STEP.match(c.strip())
        if m and (m.group(1) == "" or (m.group(1)[0].isalpha() and m.group(1)[-1].isalpha())):
            groups.setdefault(m.group(1), []).append((int(m.group(2)), c))
    big = {}
    for k, v in groups.items():
        nums = sorted(n for n, _ in v)
        if len(v) >= MIN_LENGTH and nums == list(range(nums[0], nums[0] + len(nums))) and nums[0] in (0, 1):
            big[k] = [c for _, c in sorted(v)]
    if not big or sum(len(v) for v in big.values()) < 0.5 * len(cols):
        return {"value": list(cols)}, []
    sizes = {len(v) for v in big.values()}
    if len(big) > 1 and len(sizes) > 1:  # prefixes of different lengths: not channels of one series; keep the longest
        top = max(big, key=lambda k: len(big[k]))
        big = {top: big[top]}
    used = {c for v in big.values() for c in v}
    return big, [c for c in cols if c not in used]


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def table_layout(df: pd.DataFrame, id_column: str, label_column: str | None, name: str) -> str:
    """The layout, "long" or "wide", of a table with an id column but no time or value columns. Long repeats ids
    (one row per series and time step); wide has each id on one row and at least MIN_LENGTH other columns (the
    steps). A table that is neither (each id once, too few columns) is refused with what each layout would need."""
    _need(df, id_column, "--id-column", name)
    ids = df[id_column]
    if ids.duplicated().any() or ids.isna().any():
        return "long"
    steps = [c for c in df.columns if c not in (id_column, label_column)]
    if len(steps) >= MIN_LENGTH:
        return "wide"
    raise InvalidInput(f"{name}: every id in {id_column!r} is on one row, so read as a long table each series would "
                       f"have 1 time step, and read as a wide table it has {len(steps)} time-step column(s); at least "
                       f"{MIN_LENGTH} time steps are needed.",
                       hint="A long table has one row per series and time step (ids repeated; --time-column orders "
                            "them); a wide table has one row per series and one column per time step.")


def read_labels_file(path: str | Path, settings: Settings) -> dict[str, object]:
    """A CSV of ``id,label`` (first two columns) -> {id: label}."""
    path = Path(path)
    _check_file(path, settings)
    df = _read_frame(path, settings, ids=(0,))
    if df.shape[1] < 2:
        raise InvalidInput(f"{path.name}: expected two columns (series id, label); got {df.shape[1]}.")
    ids = id_texts(df.iloc[:, 0]).astype(str)
    if ids.duplicated().any():
        raise InvalidInput(f"{path.name}: id {ids[ids.duplicated()].iloc[0]!r} is listed twice.")
    return {i: (None if pd.isna(v) else _plain(v)) for i, v in zip(ids, df.iloc[:, 1])}

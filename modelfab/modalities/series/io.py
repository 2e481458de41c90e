"""Reading collections of time series: long or wide CSV/Parquet tables and UCR/UEA ``.ts`` files.

Every reader returns a :class:`SeriesSet`: a list of ``(channels, length)``
float arrays (lengths may differ), one id and one label per series. Bad input
is an :class:`InvalidInput` that names the file and the line or series.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InvalidInput, UnsupportedFormat
from ...settings import Settings
from .ucr import arff_message, read_headerless
from .clean import (_LENIENT, _SKIP, MIN_LENGTH, Fill, _read_clean, clean_series, clean_series_detail,  # noqa: F401
                    empty_label_note, lenient_reading, skipped_note, skipping_bad_series)
from .sets import SERIES_EXTENSIONS, TABLE_EXT, TS_EXT, SeriesSet, _check_file, check_limits, unpack  # noqa: F401
from .tables import (_need, _numeric, _plain, _read_frame, _wide, read_labels_file, read_wide,  # noqa: F401
                     reading_sheet, table_layout, wide_channels, with_frame_notes)
from .long import _long, _times, read_long  # noqa: F401


# ------------------------------------------------------------------ .ts (UCR/UEA)
def read_ts(path: str | Path, settings: Settings) -> SeriesSet:
    """A UCR/UEA ``.ts`` file: ``@`` header lines, then one series per line (channels split by ``:``)."""
    path = Path(path)
    _check_file(path, settings)
    header: dict[str, str] = {}
    class_labels: list[str] | None = None
    has_label = False
    series, labels, numbers, notes = [], [], [], []
    fill, case = Fill(), 0
    in_data = False
    with open(path, "r", encoding="utf-8-sig", errors="strict", newline=None) as fh:  # a BOM (Notepad) is dropped
        try:
            lines = list(fh)
        except UnicodeDecodeError:
            raise UnsupportedFormat(f"{path.name}: not a text file; expected a UCR/UEA .ts file.") from None
    for no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise InvalidInput(f"{path.name} line {no}: expected a '@' header line or @data before the series; "
                                   f"got {line[:40]!r}.", hint="Is this a UCR/UEA .ts file?")
            key, _, rest = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                continue
            header[key] = rest.strip()
            if key == "classlabel":
                parts = rest.split()
                has_label = bool(parts) and parts[0].lower() == "true"
                class_labels = parts[1:] if has_label else None
            elif key == "targetlabel":
                has_label = rest.strip().lower().startswith("true")
            elif key == "timestamps" and rest.strip().lower() == "true":
                raise InvalidInput(f"{path.name}: .ts files with time stamps '(t,v)' are not supported.",
                                   hint="Export the series without time stamps, or use the long CSV format.")
            continue
        fields = line.split(":")
        label = None
        if has_label:
            label, fields = fields[-1].strip(), fields[:-1]
            if not fields:
                raise InvalidInput(f"{path.name} line {no}: expected values then ':label'; got only {line[:40]!r}.")
            if class_labels is not None and class_labels and label not in class_labels:
                raise InvalidInput(f"{path.name} line {no}: label {label!r} is not one of the declared "
                                   f"@classLabel values {class_labels[:10]}.")
        try:
            chans = [np.array([math.nan if v.strip() in ("?", "", "NaN", "nan") else float(v)
                               for v in f.split(",")], dtype=np.float64) for f in fields]
        except ValueError as exc:
            bad = InvalidInput(f"{path.name} line {no}: expected comma-separated numbers ({exc}).")
            if not _LENIENT.get():
                raise bad from None
            series.append(bad)  # prediction: this series alone is refused, with the reason
            numbers.append(case)
            case += 1
            if has_label:
                labels.append(label)
            continue
        where, case = f"{path.name} line {no}", case + 1
        arr = _ts_case(chans, where)
        if isinstance(arr, np.ndarray):
            arr = _read_clean(arr, where, fill)
        if arr is None:
            continue
        series.append(arr)
        numbers.append(case - 1)
        if has_label:
            labels.append(label)
    if not in_data:
        raise InvalidInput(f"{path.name}: no @data line; expected a UCR/UEA .ts file.")
    notes += fill.notes() + skipped_note(_SKIP.get() or [])
    target_label = "targetlabel" in header and has_label
    out_labels = None
    if has_label:
        out_labels = [float(v) for v in labels] if target_label else labels
    ids = [f"{path.stem}_{i}" for i in numbers]  # a series left out keeps its number free (ids follow the lines)
    dims = next((s.shape[0] for s in series if isinstance(s, np.ndarray)), 0)  # lenient: a refused series first
    sset = SeriesSet(series, ids, out_labels, [f"dim_{c}" for c in range(dims)], "ts", notes)
    return check_limits(sset, path.name, settings)


def _ts_case(chans: list[np.ndarray], where: str) -> np.ndarray | None:
    """The channels of one ``.ts`` case as one array; channels with different numbers of values (a channel cut
    short) are refused, never padded (None when bad series are skipped)."""
    lengths = [len(c) for c in chans]
    if len(set(lengths)) == 1:
        return np.stack(chans)
    exc = InvalidInput(f"{where}: channels have different lengths ({', '.join(map(str, lengths))} values); expected "
                       "equal.", hint="Mark a missing value with '?' so every channel of a series has as many values.")
    skipped = _SKIP.get()
    if skipped is not None:
        skipped.append(exc.message.rstrip("."))
        return None
    if _LENIENT.get():  # prediction: this series alone is refused, with the reason
        return exc
    raise exc


def read_series(path: str | Path, settings: Settings, *, id_column: str | None = None, time_column: str | None = None,
                value_columns: list[str] | None = None, label_column: str | None = None,
                ignore: tuple[str, ...] = (), wide_steps: bool = True, layout: str | None = None) -> SeriesSet:
    """Any supported file: ``.ts`` by extension; a table is long or wide. ``layout`` None: long when
    ``time_column``/``value_columns`` are given, or when ``id_column`` repeats ids (one row per time step); wide
    without ``id_column``, or when every id is on one row (see :func:`table_layout`); "long"/"wide": as told
    (how a model reads files laid out as its dataset was). Columns in ``ignore`` are dropped when present (e.g.
    the training label column at prediction)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == TS_EXT:
        return read_ts(path, settings)
    if ext == ".arff":
        raise UnsupportedFormat(arff_message(path))
    if ext not in TABLE_EXT and ext not in (".xlsx", ".xlsm"):
        got = "a folder" if path.is_dir() else f"a {ext} file" if ext else "a file without an extension"
        raise UnsupportedFormat(f"{path.name}: expected a .ts file or a CSV/Parquet/Excel table of series; got {got}.")
    if not id_column and (time_column or value_columns):
        raise InvalidInput("--time-column and --value-column describe the long format, which needs --id-column too.")
    if layout is None and id_column and (time_column or value_columns):
        layout = "long"
    if layout is None and not id_column:
        layout = "wide"
    _check_file(path, settings)
    headerless = None if id_column else read_headerless(path, settings)
    if headerless is not None:  # the UCR archive layout, or series of numbers only: every row a series
        df, found, notes = headerless
        if label_column and label_column not in df.columns:
            raise InvalidInput(f"{path.name}: has no header row (its first row is numbers), so no column is named "
                               f"{label_column!r}.", hint="Leave out --label-column: a class label that is a whole "
                               "number in the first column (the UCR layout) is found by itself; or add a header row.")
        sset = _wide(df, path.name, settings, label_column=label_column or found, id_column=None, wide_steps=True)
        sset.notes[:0] = notes
        return sset
    frame = _read_frame(path, settings, ignore, ids=(id_column,))
    return with_frame_notes(read_frame(frame, path.name, settings, id_column=id_column, time_column=time_column,
                                       value_columns=value_columns, label_column=label_column,
                                       wide_steps=wide_steps, layout=layout), frame)


def read_frame(df: pd.DataFrame, name: str, settings: Settings, *, id_column: str | None = None,
               time_column: str | None = None, value_columns: list[str] | None = None,
               label_column: str | None = None, wide_steps: bool = True, layout: str | None = None) -> SeriesSet:
    """The series of a table already read (a file's, or a DataFrame given to a model), long or wide as in
    :func:`read_series` (whose ``layout`` rules apply). A long table found by its repeated ids (``layout`` None,
    no time or value columns: an import) takes a column that looks like time as its time column (see
    ``SeriesSet.time_column``)."""
    if not id_column and (time_column or value_columns):
        raise InvalidInput("--time-column and --value-column describe the long format, which needs --id-column too.")
    guess_time = False
    if layout is None and id_column and (time_column or value_columns):
        layout = "long"
    if layout is None and id_column:
        layout = table_layout(df, id_column, label_column, name)
        wide_steps = True  # a wide table with ids is new (2026-12): its numbered columns are the steps
        guess_time = layout == "long"
    if layout == "wide" or not id_column:
        return _wide(df, name, settings, label_column=label_column, id_column=id_column, wide_steps=wide_steps)
    return _long(df, name, settings, id_column=id_column, time_column=time_column, value_columns=value_columns,
                 label_column=label_column, guess_time=guess_time)

"""Reading collections of time series: long or wide CSV/Parquet tables and UCR/UEA ``.ts`` files.

Every reader returns a :class:`SeriesSet`: a list of ``(channels, length)``
float arrays (lengths may differ), one id and one label per series. Bad input
is an :class:`InvalidInput` that names the file and the line or series.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InvalidInput, TooLarge, UnsupportedFormat
from ...settings import Settings, human_bytes
from .ucr import arff_message, read_headerless
from .clean import (_LENIENT, _SKIP, MIN_LENGTH, Fill, _read_clean, clean_series, clean_series_detail,  # noqa: F401
                    empty_label_note, lenient_reading, skipped_note, skipping_bad_series)

TS_EXT = ".ts"
TABLE_EXT = {".csv", ".tsv", ".txt", ".tab", ".parquet", ".pq"}
SERIES_EXTENSIONS = TABLE_EXT | {TS_EXT}


@dataclass
class SeriesSet:
    """Series as ``(n_channels, length_i)`` float64 arrays plus ids and labels (None = unlabelled)."""

    series: list[np.ndarray]
    ids: list[str]
    labels: list | None = None
    channel_names: list[str] = field(default_factory=list)
    format: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def n_channels(self) -> int:
        arrays = [s for s in self.series if isinstance(s, np.ndarray)]
        return int(arrays[0].shape[0]) if arrays else 0

    @property
    def lengths(self) -> np.ndarray:
        """Time steps per series (0 for a series refused at lenient reading: an InvalidInput in its place)."""
        return np.array([s.shape[1] if isinstance(s, np.ndarray) else 0 for s in self.series], dtype=np.int64)

    def packed(self) -> tuple[np.ndarray, np.ndarray]:
        """``(data (channels, total), offsets (n+1))``: all series side by side."""
        offsets = np.zeros(len(self.series) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(self.lengths)
        data = np.concatenate(self.series, axis=1) if self.series else np.zeros((0, 0))
        return np.ascontiguousarray(data, dtype=np.float64), offsets


def unpack(data: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [data[:, offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


# ------------------------------------------------------------------ checks
def check_limits(sset: SeriesSet, name: str, settings: Settings) -> SeriesSet:
    if not sset.series:
        raise InvalidInput(f"{name}: no series found.", hint="Check the file and the column options.")
    channels = {s.shape[0] for s in sset.series if isinstance(s, np.ndarray)}
    if len(channels) > 1 and not _LENIENT.get():  # prediction: a series with other channels is refused alone
        raise InvalidInput(f"{name}: series have different numbers of channels ({sorted(channels)}); "
                           "expected the same channels in every series.")
    if sset.n_channels > settings.max_channels:
        raise TooLarge(f"{name}: {sset.n_channels} channels; the limit is {settings.max_channels}.",
                       hint="Set MODELFAB_MAX_CHANNELS to raise it.")
    if len(sset.series) > settings.max_rows:
        raise TooLarge(f"{name}: {len(sset.series):,} series; the limit is {settings.max_rows:,}.")
    sizes = sset.lengths * sset.n_channels
    if _LENIENT.get():  # prediction: a series over the limit is refused alone (SeriesPredictor), the others count
        sizes = sizes[sizes <= settings.max_signal_samples]
    total = int(sizes.sum())
    if total > settings.max_signal_samples:
        raise TooLarge(f"{name}: {total:,} values in all; the limit is {settings.max_signal_samples:,}.",
                       hint="Set MODELFAB_MAX_SIGNAL_SAMPLES to raise it, or import fewer series.")
    if len(set(sset.ids)) != len(sset.ids):
        dup = pd.Series(sset.ids).value_counts()
        raise InvalidInput(f"{name}: series id {dup.index[0]!r} appears {dup.iloc[0]} times; expected unique ids.")
    return sset


def _check_file(path: Path, settings: Settings) -> None:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file.")
    size = path.stat().st_size
    if size > settings.max_import_bytes:
        raise TooLarge(f"{path.name}: {human_bytes(size)} is over the import limit of "
                       f"{human_bytes(settings.max_import_bytes)}.", hint="Set MODELFAB_MAX_IMPORT_BYTES to raise it.")


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
            raise InvalidInput(f"{path.name} line {no}: expected comma-separated numbers ({exc}).") from None
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
    dims = series[0].shape[0] if series else 0
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


# ------------------------------------------------------------------ tables
def _read_frame(path: Path, settings: Settings, ignore: tuple[str, ...] = ()) -> pd.DataFrame:
    from ..tabular_io import open_table, read_table

    df = read_table(open_table(path, settings), settings)
    return df.drop(columns=[c for c in ignore if c in df.columns])


def _need(df: pd.DataFrame, col: str | None, what: str, name: str) -> None:
    if col is not None and col not in df.columns:
        shown = ", ".join(repr(str(c)) for c in list(df.columns)[:12])
        if _LENIENT.get():  # prediction: the user named no column, the model's layout did
            what = what.lstrip("-").replace("-", " ")
            raise InvalidInput(f"{name}: expected the {what} {col!r} (the layout the model was trained on); the file's "
                               f"columns are {shown}.")
        raise InvalidInput(f"{name}: {what} {col!r} is not a column; columns are {shown}.")


def _numeric(df: pd.DataFrame, cols: list[str], name: str) -> np.ndarray:
    out = np.empty((len(df), len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        v = pd.to_numeric(df[c], errors="coerce")
        bad = v.isna() & df[c].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidInput(f"{name}: column {c!r} holds a non-number ({str(df[c].iloc[i])[:30]!r} in data row {i + 1}); "
                               "expected numeric values.", hint="At import, name the non-value columns with --id-column/--time-column/--label-column; to predict, "
                                    "give the series in the layout and columns the model was trained on.")
        out[:, j] = v.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


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


def read_wide(path: str | Path, settings: Settings, *, label_column: str | None = None,
              id_column: str | None = None, ignore: tuple[str, ...] = (), wide_steps: bool = True) -> SeriesSet:
    """Wide format: one row per series, one column per time step (shorter series end in empty cells).
    ``wide_steps``: numbered columns are the steps (see :func:`wide_channels`); False: every column, one channel
    (how datasets made before 2026-12-04 were read)."""
    path = Path(path)
    _check_file(path, settings)
    return _wide(_read_frame(path, settings, ignore), path.name, settings, label_column=label_column,
                 id_column=id_column, wide_steps=wide_steps)


def _wide(df: pd.DataFrame, name: str, settings: Settings, *, label_column: str | None, id_column: str | None,
          wide_steps: bool) -> SeriesSet:
    _need(df, label_column, "--label-column", name)
    _need(df, id_column, "--id-column", name)
    if id_column and df[id_column].isna().any():
        raise InvalidInput(f"{name}: {int(df[id_column].isna().sum())} row(s) have no series id in {id_column!r}.")
    cols = [c for c in df.columns if c not in (label_column, id_column)]
    if len(cols) < MIN_LENGTH:
        raise InvalidInput(f"{name}: {len(cols)} value column(s); a wide table needs one column per time step "
                           f"(at least {MIN_LENGTH}).", hint="For one row per time step pass --id-column (long format).")
    channels, other = wide_channels([str(c) for c in cols]) if wide_steps else ({"value": list(cols)}, [])
    notes = []
    if other:
        notes.append(f"Column(s) {', '.join(repr(c) for c in other[:8])}{' ...' if len(other) > 8 else ''} do not "
                     "follow the numbered time-step columns and were left out of the series (name a label with "
                     "--label-column, the series ids with --id-column).")
    if len(channels) > 1:
        notes.append(f"Read as {len(channels)} channels by column prefix: "
                     + ", ".join(f"{k!r} ({len(v)} steps)" for k, v in channels.items()) + ".")
    blocks = [_numeric(df, v, name) for v in channels.values()]
    ids = df[id_column].astype(str).tolist() if id_column else [f"row_{i + 1}" for i in range(len(df))]
    series, kept, fill = [], [], Fill()
    for i in range(len(df)):
        arr = _read_clean(np.stack([b[i] for b in blocks]), f"{name} row {i + 1}", fill)
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
    df = _read_frame(path, settings, ignore)
    if layout is None:
        layout = table_layout(df, id_column, label_column, path.name)
        wide_steps = True  # a wide table with ids is new (2026-12): its numbered columns are the steps
    if layout == "wide" or not id_column:
        return _wide(df, path.name, settings, label_column=label_column, id_column=id_column, wide_steps=wide_steps)
    return _long(df, path.name, settings, id_column=id_column, time_column=time_column, value_columns=value_columns,
                 label_column=label_column)


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
    df = _read_frame(path, settings)
    if df.shape[1] < 2:
        raise InvalidInput(f"{path.name}: expected two columns (series id, label); got {df.shape[1]}.")
    ids = df.iloc[:, 0].astype(str)
    if ids.duplicated().any():
        raise InvalidInput(f"{path.name}: id {ids[ids.duplicated()].iloc[0]!r} is listed twice.")
    return {i: (None if pd.isna(v) else _plain(v)) for i, v in zip(ids, df.iloc[:, 1])}

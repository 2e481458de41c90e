"""Text tables of series without a header row, as the UCR archive ships them.

The UCR 2018 archive (``NAME_TRAIN.tsv``: tab separated) and its older comma-separated ``.txt``/``.csv`` have
no header: every row is a series, the class label (a whole number) first, the values after. Read with a
header, the first series would become the column names and the label a time step. A text table whose first
row is all numbers (and not step numbers like ``0,1,2,...``) is read here as headerless; its first column is
the label when it holds whole numbers that repeat while the other columns are measurements, or when the file
is named like the archive (``NAME_TRAIN``/``NAME_TEST``).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InvalidInput, TooLarge, UnsupportedFormat
from ...settings import Settings

LABEL = "label"  # the name given to the label column of a headerless table
TEXT_EXT = {".csv", ".tsv", ".txt", ".tab"}
ARCHIVE_NAME = re.compile(r"_(TRAIN|TEST)$", re.IGNORECASE)
_SAMPLE = 256 * 1024


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def _first_row(path: Path) -> tuple[list[str], str, str] | None:
    """(fields of the first non-empty line, delimiter, encoding) of a text table; None when unreadable (the
    table reader then says why)."""
    from ..tabular_io import sniff_delimiter, sniff_encoding

    with open(path, "rb") as fh:
        sample = fh.read(_SAMPLE)
    if not sample.strip():
        return None
    try:
        encoding = sniff_encoding(sample, path.name)
        text = codecs.getincrementaldecoder(encoding)(errors="strict").decode(sample, final=False)
    except (InvalidInput, UnicodeDecodeError, LookupError):
        return None
    text = text.lstrip("\ufeff")
    delimiter = sniff_delimiter(text, path.suffix.lower())
    line = next((ln for ln in io.StringIO(text) if ln.strip()), "")
    return next(csv.reader([line], delimiter=delimiter), []), delimiter, encoding


def is_headerless(fields: list[str]) -> bool:
    """A first row of numbers only (a series), not column names that are numbers: step numbers ``0,1,2,...``
    (as pandas writes a frame with numbered columns), times ``0.0,0.5,1.0,...`` or years, i.e. increasing in
    even steps (with or without a first label column)."""
    vals = [f.strip() for f in fields]
    while vals and vals[-1] == "":  # a shorter first series ends in empty cells
        vals.pop()
    nums = [_number(v) for v in vals]
    if len(nums) < 2 or any(x is None for x in nums):
        return False
    return not any(_even_steps(row) for row in (nums, nums[1:]))


def _even_steps(row: list[float]) -> bool:
    """Increasing, each step within 10% of the median one: names of time steps, not measured values."""
    if len(row) < 3 or not all(math.isfinite(x) for x in row):
        return False
    steps = np.diff(np.asarray(row, dtype=float))
    mid = float(np.median(steps))
    return mid > 0 and bool(np.all(np.abs(steps - mid) <= 0.1 * mid))


def looks_headerless(path: str | Path) -> bool:
    """A text table (.csv/.tsv/.txt/.tab) whose first row is numbers, not column names."""
    path = Path(path)
    if path.suffix.lower() not in TEXT_EXT or not path.is_file():
        return False
    first = _first_row(path)
    return first is not None and is_headerless(first[0])


def series_file_kind(path: str | Path) -> str | None:
    """For ``--kind auto``: "series" for a ``.ts`` file and for a headerless all-numbers text table named like the
    UCR archive (``NAME_TRAIN.tsv``, ``NAME_TEST.txt``); None otherwise (the caller decides). A Weka ``.arff``
    file is refused with what to convert it to."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".arff":
        raise UnsupportedFormat(arff_message(path))
    if ext == ".ts" and path.is_file():
        return "series"
    if ARCHIVE_NAME.search(path.stem) and looks_headerless(path):
        return "series"
    return None


def arff_message(path: Path) -> str:
    return (f"{path.name}: Weka .arff files are not supported; expected a UCR/UEA .ts file or a CSV/TSV/Parquet "
            "table of series. The UCR/UEA archive offers every data set as .ts (and UCR as .tsv) too; or convert it, "
            "e.g. with aeon: load_from_arff_file, then write_to_ts_file.")


def read_headerless(path: Path, settings: Settings) -> tuple[pd.DataFrame, str | None, list[str]] | None:
    """(table, its label column or None, notes) of a text table without a header row; None when the file has a
    header (read it as a table). Columns: ``label`` (when found) and ``t0``, ``t1``, ...; rows may have
    different lengths (a shorter series ends early)."""
    if path.suffix.lower() not in TEXT_EXT:
        return None
    first = _first_row(path)
    if first is None or not is_headerless(first[0]):
        return None
    _, delimiter, encoding = first
    with open(path, "r", encoding=encoding, errors="strict") as fh:
        try:
            width = max((line.count(delimiter) + 1 for line in fh if line.strip()), default=0)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path.name}: the text encoding changes inside the file ({exc.reason}).",
                               hint="Save the file as UTF-8 and import it again.") from None
    if width > settings.max_columns:
        raise TooLarge(f"{path.name}: has {width:,} columns; at most {settings.max_columns:,} are supported.",
                       hint="Raise MODELFAB_MAX_COLUMNS.")
    try:
        df = pd.read_csv(path, sep=delimiter, encoding=encoding, header=None, names=list(range(width)),
                         skip_blank_lines=True, low_memory=False, encoding_errors="strict")
    except (pd.errors.ParserError, ValueError) as exc:
        raise InvalidInput(f"{path.name}: cannot read it as a table without a header row "
                           f"({str(exc).strip()[:200]}).") from None
    if len(df) > settings.max_rows:
        raise TooLarge(f"{path.name}: has {len(df):,} rows; at most {settings.max_rows:,} are supported.")
    label = _label_column(df, path)
    if label is None:
        df.columns = [f"t{j}" for j in range(width)]
        return df, None, [f"{path.name} has no header row (its first row is numbers): every row is a series and "
                          f"each of its {width} columns a time step; no label column was found (the UCR layout has "
                          "the class label, a whole number, in the first column)."]
    labels = pd.to_numeric(df[0]).map(lambda v: str(int(v)))  # class names: 1, not 1.0 (older UCR writes 1.0e+00)
    df = df.drop(columns=[0])
    df.columns = [f"t{j}" for j in range(width - 1)]
    df.insert(0, LABEL, labels)
    classes = sorted(labels.unique(), key=lambda v: int(v))
    shown = ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")
    return df, LABEL, [f"{path.name} has no header row (its first row is numbers): read in the UCR archive layout, "
                       f"every row a series, the first column its class label ({len(classes)} classes: {shown}) and "
                       f"the other {width - 1} columns its time steps."]


def _label_column(df: pd.DataFrame, path: Path) -> int | None:
    """0 when the first column holds class labels (whole numbers) and the others are measurements, or the
    file is named like the UCR archive; else None."""
    if df.shape[1] < 2:
        return None
    first = pd.to_numeric(df[0], errors="coerce")
    if first.isna().any() or not np.all(np.mod(first.to_numpy(float), 1) == 0):
        return None
    if ARCHIVE_NAME.search(path.stem):
        return 0
    rest = df.iloc[:, 1:].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    rest = rest[np.isfinite(rest)]
    measured = rest.size and not np.all(np.mod(rest, 1) == 0)  # values with fractions: not more labels or counts
    # labels repeat (ids and row numbers do not); a few rows could start with whole numbers by chance
    repeats = len(first) >= 4 and first.nunique() <= len(first) // 2
    return 0 if measured and repeats else None

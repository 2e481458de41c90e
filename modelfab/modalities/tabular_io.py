"""Reading tables (CSV/TSV, Parquet, Excel) safely.

Every failure is an :class:`InvalidInput` that names the file, says what
was expected and what was found, and what to do. Size and column limits
are checked before the data is loaded.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import InvalidInput, TooLarge, UnsupportedFormat
from ..settings import Settings, human_bytes

SAMPLE_BYTES = 2 * 1024 * 1024
DELIMITERS = ",;\t|"
CSV_EXT = {".csv", ".tsv", ".txt", ".tab"}
PARQUET_EXT = {".parquet", ".pq"}
EXCEL_EXT = {".xlsx", ".xlsm"}


@dataclass
class TableSource:
    path: Path
    format: str  # csv | parquet | excel
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    sheet: str | None = None  # Excel: the sheet to read (None: the one holding the most cells); set when read
    sheets: list[str] = field(default_factory=list)  # Excel: every sheet of the workbook, set when read


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def detect_format(path: Path) -> str:
    head = _head(path, 8)
    ext = path.suffix.lower()
    if ext in PARQUET_EXT:
        if not head.startswith(b"PAR1"):
            raise UnsupportedFormat(
                f"{path.name}: expected a Parquet file (it starts with 'PAR1'), but got something else "
                f"(first bytes {head[:4]!r}).",
                hint="Check the file; if it is CSV, rename it to .csv.",
            )
        return "parquet"
    if ext in EXCEL_EXT:
        if not head.startswith(b"PK"):
            raise UnsupportedFormat(f"{path.name}: expected an Excel .xlsx file (a zip archive) but got something else.",
                                    hint="Save it again from Excel as .xlsx, or export CSV.")
        return "excel"
    if ext == ".xls":
        raise UnsupportedFormat(f"{path.name}: the old Excel .xls format is not supported.",
                                hint="Open it in Excel or LibreOffice and save as .xlsx or .csv.")
    if ext in CSV_EXT:
        return "csv"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK"):
        return "excel"
    if ext in {".wav", ".flac", ".ogg", ".mat", ".npy", ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".zip", ".gz",
               ".ts"}:
        what = "a .ts file of time series (UCR/UEA format)" if ext == ".ts" else f"a {ext} file"
        raise UnsupportedFormat(f"{path.name}: expected a table (CSV, TSV, Parquet or Excel) but got {what}.",
                                hint="Recordings and images are imported from a folder (`modelfab data import DIR`), "
                                     "series with `--kind series`; a model predicts the kind of data it was trained on.")
    return "csv"


def sniff_encoding(sample: bytes, name: str) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    dec = codecs.getincrementaldecoder("utf-8")()
    try:
        dec.decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # Try the Chinese national encodings before a statistical guess: a GBK
    # file is the common case in the plants modelfab serves.
    try:
        gbdec = codecs.getincrementaldecoder("gb18030")()
        text = gbdec.decode(sample, final=False)
        cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
        high = sum(1 for ch in text if ord(ch) > 127)
        if high and cjk / high > 0.8:
            return "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None or best.encoding is None:
        raise InvalidInput(
            f"{name}: cannot tell the text encoding (not UTF-8, GBK/GB18030 or another common one).",
            hint="Save the file as UTF-8 CSV and import it again.",
        )
    enc = best.encoding.lower()
    return "gb18030" if enc in {"gb2312", "gbk", "gb18030", "hz"} else enc


def sniff_delimiter(text: str, ext: str) -> str:
    if ext == ".tsv" or ext == ".tab":
        return "\t"
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _check_header(header: list[str], name: str, settings: Settings) -> None:
    if len(header) > settings.max_columns:
        raise TooLarge(
            f"{name}: has {len(header):,} columns; at most {settings.max_columns:,} are supported.",
            hint="Select the columns you need, or raise MODELFAB_MAX_COLUMNS.",
        )
    seen: dict[str, int] = {}
    dups = []
    for col in header:
        key = col.strip()
        if key in seen and key not in dups:
            dups.append(key)
        seen[key] = seen.get(key, 0) + 1
    if dups:
        shown = ", ".join(repr(d) for d in dups[:5])
        raise InvalidInput(f"{name}: duplicate column names {shown}; every column needs a unique name.",
                           hint="Rename the duplicates in the header row.")


def inspect_csv(path: Path, settings: Settings) -> TableSource:
    sample = _head(path, SAMPLE_BYTES)
    if not sample.strip():
        raise InvalidInput(f"{path.name}: the file is empty (or only whitespace); expected a header row and data rows.")
    encoding = sniff_encoding(sample, path.name)
    try:
        text = codecs.getincrementaldecoder(encoding)(errors="strict").decode(sample, final=False)
    except (UnicodeDecodeError, LookupError) as exc:
        raise InvalidInput(f"{path.name}: cannot decode the file as {encoding} ({exc}).",
                           hint="Save the file as UTF-8 CSV and import it again.") from None
    text = text.lstrip("\ufeff")
    delimiter = sniff_delimiter(text, path.suffix.lower())
    first_line = next((ln for ln in io.StringIO(text) if ln.strip()), "")
    header = next(csv.reader([first_line], delimiter=delimiter), [])
    _check_header(header, path.name, settings)
    return TableSource(path=path, format="csv", encoding=encoding, delimiter=delimiter)


def _read_csv(src: TableSource, nrows: int | None = None, chunksize: int | None = None):
    return pd.read_csv(
        src.path, sep=src.delimiter, encoding=src.encoding, on_bad_lines="error",
        skip_blank_lines=True, nrows=nrows, chunksize=chunksize, low_memory=False,
        encoding_errors="strict",
    )


def _csv_error(path: Path, exc: Exception) -> InvalidInput:
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r"^.*C error:\s*", "", msg)  # pandas' "Error tokenizing data. C error: ..." prefix
    if "Expected" in msg and "fields" in msg:
        return InvalidInput(f"{path.name}: ragged rows: {msg}.",
                            hint="Every row needs as many fields as the header; fix or remove the row.")
    if isinstance(exc, UnicodeDecodeError):
        return InvalidInput(f"{path.name}: the text encoding changes inside the file ({exc.reason} at byte {exc.start}).",
                            hint="Save the file as UTF-8 CSV and import it again.")
    return InvalidInput(f"{path.name}: cannot parse the CSV: {msg}.")


def open_table(path: str | os.PathLike, settings: Settings) -> TableSource:
    """Check a table file before loading it: existence, size, format, header."""
    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"File not found: {p}.", hint="Check the path.")
    if p.is_dir():
        raise InvalidInput(f"{p} is a folder; expected a table file (CSV, Parquet, Excel).",
                           hint="Folders of recordings or images are imported by their kind.")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInput(f"{p.name}: the file is empty (0 bytes); expected a header row and data rows.")
    if size > settings.max_import_bytes:
        raise TooLarge(
            f"{p.name}: is {human_bytes(size)}; the import limit is {human_bytes(settings.max_import_bytes)}.",
            hint="Split the file, convert it to Parquet, or raise MODELFAB_MAX_IMPORT_BYTES.",
        )
    fmt = detect_format(p)
    if fmt == "csv":
        return inspect_csv(p, settings)
    return TableSource(path=p, format=fmt)


def read_table(src: TableSource, settings: Settings, nrows: int | None = None) -> pd.DataFrame:
    """Load a whole (already inspected) table into a DataFrame."""
    p = src.path
    if src.format == "csv":
        try:
            df = _read_csv(src, nrows=nrows)
        except pd.errors.EmptyDataError:
            raise InvalidInput(f"{p.name}: no columns found; expected a header row and data rows.") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise _csv_error(p, exc) from None
    elif src.format == "parquet":
        import pyarrow.parquet as pq
        from pyarrow import ArrowException

        try:
            meta = pq.read_metadata(p)
            if meta.num_columns > settings.max_columns:
                raise TooLarge(f"{p.name}: has {meta.num_columns:,} columns; at most {settings.max_columns:,} are supported.",
                               hint="Select the columns you need, or raise MODELFAB_MAX_COLUMNS.")
            if meta.num_rows > settings.max_rows:
                raise TooLarge(f"{p.name}: has {meta.num_rows:,} rows; at most {settings.max_rows:,} are supported.")
            names = pq.read_schema(p).names
            _check_header(names, p.name, settings)
            df = pq.read_table(p).to_pandas()
        except ArrowException as exc:
            raise UnsupportedFormat(f"{p.name}: not a valid Parquet file ({str(exc).splitlines()[0]}).",
                                    hint="Check the file, or export it again.") from None
        if nrows is not None:
            df = df.head(nrows)
    elif src.format == "excel":
        try:
            frames = pd.read_excel(p, sheet_name=None, engine="openpyxl", nrows=nrows)
        except Exception as exc:  # openpyxl raises many kinds for broken files
            raise UnsupportedFormat(f"{p.name}: cannot read it as an Excel workbook ({type(exc).__name__}: {exc}).",
                                    hint="Open and save it again in Excel, or export CSV.") from None
        df = _pick_sheet(src, frames)
        _check_header([str(c) for c in df.columns], p.name, settings)
    else:  # pragma: no cover - detect_format returns one of the above
        raise UnsupportedFormat(f"{p.name}: unknown table format {src.format!r}.")
    return normalise_columns(df, p.name, settings)


def _pick_sheet(src: TableSource, frames: dict) -> pd.DataFrame:
    """The sheet ``src.sheet`` names, or else the one holding the most filled cells (a cover or notes sheet often
    comes first); a workbook of several sheets gets a note naming the one read."""
    names = [str(k) for k in frames]
    src.sheets = names
    if not names:
        raise InvalidInput(f"{src.path.name}: the workbook has no sheets.")
    by_name = dict(zip(names, frames.values()))
    if src.sheet is not None:
        if src.sheet not in by_name:
            raise InvalidInput(f"{src.path.name}: has no sheet {src.sheet!r}; its sheets are "
                               + ", ".join(repr(n) for n in names) + ".", hint="Pass one of them with --sheet.")
        return by_name[src.sheet]
    filled = {n: int(f.notna().to_numpy().sum()) for n, f in by_name.items()}
    src.sheet = max(names, key=lambda n: filled[n])  # the first of the largest on a tie
    if len(names) > 1:
        src.notes.append(f"{src.path.name}: read sheet {src.sheet!r}, the one with the most cells of "
                         f"{len(names)} ({', '.join(repr(n) for n in names[:10])}); choose another with --sheet.")
    return by_name[src.sheet]


def normalise_columns(df: pd.DataFrame, name: str, settings: Settings) -> pd.DataFrame:
    cols = []
    for i, c in enumerate(df.columns):
        c = str(c).strip()
        if not c or c.startswith("Unnamed: "):
            c = f"column_{i + 1}"
        cols.append(c)
    _check_header(cols, name, settings)
    df.columns = cols
    if len(df.columns) == 0:
        raise InvalidInput(f"{name}: no columns found; expected a header row and data rows.")
    if len(df) == 0:
        raise InvalidInput(f"{name}: has a header but no data rows.", hint="Export the data rows too.")
    if len(df) > settings.max_rows:
        raise TooLarge(f"{name}: has {len(df):,} rows; at most {settings.max_rows:,} are supported.")
    return df


def iter_table_chunks(src: TableSource, chunk_rows: int):
    """Yield DataFrames of at most ``chunk_rows`` rows (batch prediction)."""
    p = src.path
    if src.format == "csv":
        try:
            for chunk in _read_csv(src, chunksize=chunk_rows):
                chunk.columns = [str(c).strip() for c in chunk.columns]
                yield chunk
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise _csv_error(p, exc) from None
    elif src.format == "parquet":
        import pyarrow.parquet as pq
        from pyarrow import ArrowException

        try:
            # pre_buffer=False: with pyarrow's default the reader buffers column chunks ahead, and
            # memory grew with the file (1.98 GB for 10M rows x 30); without it, it stays flat.
            pf = pq.ParquetFile(p, pre_buffer=False)
            for batch in pf.iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        except ArrowException as exc:
            raise UnsupportedFormat(f"{p.name}: not a valid Parquet file ({str(exc).splitlines()[0]}).") from None
    else:
        yield read_table(src, Settings(max_rows=10**9))

"""Reading tables (CSV/TSV, Parquet, Excel) safely.

Every failure is an :class:`InvalidInput` that names the file, says what
was expected and what was found, and what to do. Size and column limits
are checked before the data is loaded.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidInput, TooLarge, UnsupportedFormat
from ..settings import Settings, human_bytes

SAMPLE_BYTES = 2 * 1024 * 1024
DELIMITERS = ",;\t|"
CSV_EXT = {".csv", ".tsv", ".txt", ".tab"}
PARQUET_EXT = {".parquet", ".pq"}
EXCEL_EXT = {".xlsx", ".xlsm"}
OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")  # a Compound File: an encrypted workbook, or an old .xls


@dataclass
class TableSource:
    path: Path
    format: str  # csv | parquet | excel
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    sheet: str | None = None  # Excel: the sheet to read (None: the one holding the most cells); set when read
    sheets: list[str] = field(default_factory=list)  # Excel: every sheet of the workbook, set when read
    header_row: int | None = None  # 1-based row of the header (None: found by find_header_row); set when read
    skip_lines: int = 0  # CSV: physical lines before the header (title lines)


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
        if head.startswith(OLE_MAGIC):  # an OLE container: Excel's encryption wraps .xlsx in one
            raise UnsupportedFormat(f"{path.name}: the workbook is password-protected (or an old .xls renamed "
                                    ".xlsx); it cannot be read.",
                                    hint="Open it in Excel, remove the password (File > Info > Protect Workbook), "
                                         "save as .xlsx, and import it again.")
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
        key = str(col).strip()
        if not key or key.startswith("Unnamed: "):  # an empty name is named column_N on reading, never a duplicate
            continue
        if key in seen and key not in dups:
            dups.append(key)
        seen[key] = seen.get(key, 0) + 1
    if dups:
        shown = ", ".join(repr(d) for d in dups[:5])
        raise InvalidInput(f"{name}: duplicate column names {shown}; every column needs a unique name.",
                           hint="Rename the duplicates in the header row.")


HEADER_SCAN_ROWS = 20


def find_header_row(rows: list[list]) -> int:
    """0-based index of the header among a table's first rows: the first row that spans the table (at least 60 %
    of the cells most rows fill). A title block above the header ("XX有限公司 设备维修工单汇总表", a date line) fills one or
    two cells of a row; a plain table's header is its first row."""
    def filled(row) -> int:
        return sum(1 for v in row if v is not None and not (isinstance(v, float) and v != v) and str(v).strip())

    counts = [filled(r) for r in rows[:HEADER_SCAN_ROWS]]
    width = float(np.median(counts)) if counts else 0.0  # the table's width: most rows are data rows
    if width < 3:
        return 0
    index = next((i for i, n in enumerate(counts) if n >= max(2, 0.6 * width)), 0)
    # column names are words: a first wide row of numbers is data under a sparse header, not a header
    cells = [str(v).strip() for v in rows[index] if v is not None and str(v).strip() not in ("", "nan")] if index else []
    return index if index and sum(_is_number(v) for v in cells) <= 0.2 * len(cells) else 0


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def _title_note(name: str, number: int, rows: list[list]) -> str:
    first = next((str(v).strip() for v in rows[0] if v is not None and str(v).strip() not in ("", "nan")), "")
    return (f"{name}: the rows above row {number} look like a title ({first[:60]!r}); the header was read from row "
            f"{number}. Choose another with --header-row.")


def _header_index(src: TableSource, rows: list[list], numbers: list[int], header_row: int | None) -> int:
    """Index in ``rows`` (the first non-empty rows, at 1-based row ``numbers`` of the file or sheet) of the header:
    the row asked for (``header_row``) or the one found; a found title block gets a note."""
    if header_row is not None:
        if header_row not in numbers:
            raise InvalidInput(f"{src.path.name}: --header-row {header_row} is empty or not among the first "
                               f"{len(rows)} rows that hold anything (rows {', '.join(map(str, numbers[:8]))}"
                               f"{'...' if len(numbers) > 8 else ''}).",
                               hint="Count the rows as a spreadsheet numbers them, from 1.")
        return numbers.index(header_row)
    index = find_header_row(rows)
    if index:
        src.notes.append(_title_note(src.path.name, numbers[index], rows))
    return index


def inspect_csv(path: Path, settings: Settings, header_row: int | None = None) -> TableSource:
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
    lines = text.splitlines()
    filled = [(i, ln) for i, ln in enumerate(lines[:200]) if ln.strip()][:HEADER_SCAN_ROWS]
    src = TableSource(path=path, format="csv", encoding=encoding)
    # the delimiter from the lines from the header on (a title line has none); the title lines are left out
    delimiter = sniff_delimiter(text, path.suffix.lower())
    rows = list(csv.reader([ln for _, ln in filled], delimiter=delimiter))
    index = _header_index(src, rows, [i + 1 for i, _ in filled], header_row)
    if index:
        delimiter = sniff_delimiter("\n".join(lines[filled[index][0]:]), path.suffix.lower())
        rows = list(csv.reader([ln for _, ln in filled], delimiter=delimiter))
    src.delimiter, src.skip_lines = delimiter, (filled[index][0] if filled else 0)
    src.header_row = src.skip_lines + 1
    _check_header(rows[index] if rows else [], path.name, settings)
    return src


def _read_csv(src: TableSource, nrows: int | None = None, chunksize: int | None = None, text_columns=()):
    """``text_columns``: columns (names as after :func:`normalise_columns`, or positions from 0) read as text, so
    that an identifier such as ``007`` stays ``007``."""
    kw = {"sep": src.delimiter, "encoding": src.encoding, "encoding_errors": "strict",
          "skiprows": src.skip_lines or None}
    dtype = None
    if text_columns:
        header = [str(c).strip() for c in pd.read_csv(src.path, nrows=0, **kw).columns]
        dtype = {i: str for i, c in enumerate(header) if c in text_columns or i in text_columns}
    return pd.read_csv(
        src.path, on_bad_lines="error", skip_blank_lines=True, nrows=nrows, chunksize=chunksize, low_memory=False,
        dtype=dtype, **kw,
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


def open_table(path: str | os.PathLike, settings: Settings, header_row: int | None = None) -> TableSource:
    """Check a table file before loading it: existence, size, format, header (``header_row``: its 1-based row when
    title rows come first; None: found, see :func:`find_header_row`)."""
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
    if header_row is not None and fmt == "parquet":
        raise InvalidInput(f"--header-row is for CSV and Excel files; {p.name} is Parquet, whose columns are named.",
                           hint="Leave out --header-row.")
    if fmt == "csv":
        return inspect_csv(p, settings, header_row)
    return TableSource(path=p, format=fmt, header_row=header_row)


def read_table(src: TableSource, settings: Settings, nrows: int | None = None, text_columns=()) -> pd.DataFrame:
    """Load a whole (already inspected) table into a DataFrame. ``text_columns``: CSV columns read as text (see
    :func:`_read_csv`; Parquet and Excel cells keep the type they were written with)."""
    p = src.path
    if src.format == "csv":
        try:
            df = _read_csv(src, nrows=nrows, text_columns=text_columns)
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
            frames = pd.read_excel(p, sheet_name=None, engine="openpyxl", header=None,
                                   nrows=None if nrows is None else nrows + HEADER_SCAN_ROWS)
        except Exception as exc:  # openpyxl raises many kinds for broken files
            raise UnsupportedFormat(f"{p.name}: cannot read it as an Excel workbook ({type(exc).__name__}: {exc}).",
                                    hint="Open and save it again in Excel, or export CSV.") from None
        raw = _pick_sheet(src, frames)
        _fill_merged_cells(src, raw)
        df = _excel_frame(src, raw, nrows)
        _check_header([str(c) for c in df.columns], p.name, settings)
    else:  # pragma: no cover - detect_format returns one of the above
        raise UnsupportedFormat(f"{p.name}: unknown table format {src.format!r}.")
    df = normalise_columns(df, p.name, settings)
    df.attrs["delimiter"] = src.delimiter  # a comma that reads either way is decimal in a ';' file (infer_schema)
    return df


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


MERGED_MAX_BYTES = 8 * 1024 * 1024  # merged cells are read (a second pass over the workbook) up to this size


def _fill_merged_cells(src: TableSource, raw: pd.DataFrame) -> None:
    """Give every cell of a range merged over rows its top-left value (a "车间" written once for a block of rows is
    every row's), in ``raw`` read with ``header=None`` (row i, column j = the sheet's row i + 1, column j + 1)."""
    if src.path.stat().st_size > MERGED_MAX_BYTES:
        return
    import openpyxl

    try:
        wb = openpyxl.load_workbook(src.path, read_only=False, data_only=True)
        # ranges over several rows (a title merged across the columns stays one cell: it is not a header)
        ranges = [r for r in wb[src.sheet].merged_cells.ranges if r.max_row > r.min_row]
    except Exception:  # the sheet was read already; merged cells are a nicety
        return
    filled = 0
    for rng in ranges:
        r0, c0, r1, c1 = rng.min_row - 1, rng.min_col - 1, min(rng.max_row, len(raw)) - 1, min(rng.max_col, raw.shape[1]) - 1
        if r0 >= len(raw) or c0 >= raw.shape[1] or r1 < r0 or c1 < c0:
            continue
        raw.iloc[r0:r1 + 1, c0:c1 + 1] = raw.iat[r0, c0]
        filled += (r1 - r0 + 1) * (c1 - c0 + 1) - 1
    if filled:
        src.notes.append(f"{src.path.name}: {len(ranges)} merged cell range(s): each of their {filled} other cells "
                         "took the merged value.")


def _excel_frame(src: TableSource, raw: pd.DataFrame, nrows: int | None) -> pd.DataFrame:
    """A sheet read without a header (``header=None``: row i is the sheet's row i + 1) as a table: its header row
    found (or the one asked for), the title rows above it and a footer of one or two cells (a total) below the data
    dropped, each column's type inferred again from its values alone."""
    filled = raw.notna().sum(axis=1).to_numpy()
    nonempty = [i for i in range(len(raw)) if filled[i]]
    if not nonempty:
        return raw.iloc[0:0]
    scan = nonempty[:HEADER_SCAN_ROWS]
    index = scan[_header_index(src, raw.iloc[scan].to_numpy(dtype=object).tolist(), [i + 1 for i in scan],
                               src.header_row)]
    src.header_row = index + 1
    names = ["" if v is None or (isinstance(v, float) and v != v) else
             (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)) for v in raw.iloc[index]]
    body = raw.iloc[index + 1:]
    keep = body.notna().sum(axis=1).to_numpy()
    width = sum(1 for n in names if n.strip())
    end = len(body)
    while index and end and width >= 5 and keep[end - 1] <= 2:  # "合计 400条" under a titled table
        end -= 1
    dropped = [j for j in range(end, len(body)) if keep[j]]
    if dropped and keep[:end].any():
        src.notes.append(f"{src.path.name}: left out {len(dropped)} row(s) under the data that fill at most two "
                         f"cells (a total or a footnote: row {', '.join(str(index + 2 + j) for j in dropped[:3])}).")
        body = body.iloc[:end]
    df = body.dropna(how="all").reset_index(drop=True)
    df.columns = [n if n.strip() else f"Unnamed: {i}" for i, n in enumerate(names)]
    if nrows is not None:
        df = df.head(nrows)
    return df.infer_objects()


def normalise_columns(df: pd.DataFrame, name: str, settings: Settings) -> pd.DataFrame:
    cols = []
    for i, c in enumerate(df.columns):
        c = str(c).strip()
        if not c or c.startswith("Unnamed: "):
            c = f"column_{i + 1}"
        cols.append(c)
    _check_header(cols, name, settings)
    df.columns = cols
    for c in df.columns:  # a cell of spaces (a "blank" Excel cell) is empty, not a class called "  "
        if df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype):
            blank = df[c].map(lambda v: isinstance(v, str) and not v.strip())
            if blank.any():
                df.loc[blank, c] = None
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

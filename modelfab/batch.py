"""Batch prediction of a table file of any size: chunked, bounded memory.

Output goes to a temp file beside the destination and is renamed into
place at the end, so a failed run never leaves a half-written result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .errors import InvalidInput, UnsupportedFormat
from .modalities.tabular import unreadable_notes
from .modalities.tabular_io import iter_table_chunks, open_table
from .settings import Settings

OUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel"}
EXCEL_MAX_ROWS = 1_048_575  # a worksheet's rows, the header aside


def output_path(out: str | os.PathLike) -> Path:
    """The destination of a prediction file, checked: it must end in .csv, .parquet, .pq or .xlsx."""
    out = Path(out)
    if out.suffix.lower() not in OUT_FORMATS:
        raise InvalidInput(f"Output file must end in .csv, .parquet or .xlsx; got {out.name!r}.",
                           hint="Excel users: -o scored.xlsx (a CSV in UTF-8 shows Chinese garbled in some Excels).")
    return out


def csv_encoding(df) -> str:
    """UTF-8 with a byte-order mark when ``df``'s header or values hold non-ASCII text (Chinese class names, ...):
    Excel on Windows reads a CSV without it in the local code page and shows such text garbled. Plain ASCII
    output stays plain UTF-8 (no mark for scripts to trip over)."""
    text = [str(c) for c in df.columns]
    for c in df.columns:
        if df[c].dtype == object:
            text += [str(v) for v in df[c].head(1000) if isinstance(v, str)]
    return "utf-8-sig" if any(not t.isascii() for t in text) else "utf-8"


def _write(df, path: Path, fmt: str) -> None:
    if fmt == "csv":
        df.to_csv(path, index=False, encoding=csv_encoding(df))
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        if len(df) > EXCEL_MAX_ROWS:
            raise InvalidInput(f"{len(df):,} predictions do not fit in an Excel sheet ({EXCEL_MAX_ROWS:,} rows).",
                               hint="Write .csv or .parquet.")
        df.to_excel(path, index=False, engine="openpyxl")


def write_frame(df, out: Path) -> None:
    """Write ``df`` to ``out`` (CSV, Parquet or Excel by its suffix) through a temp file renamed into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    try:
        _write(df, tmp, OUT_FORMATS[out.suffix.lower()])
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def score_files(items: list[tuple[Path, str]], score: Callable[[Path, str], dict], progress=None) -> list[dict]:
    """One result row per ``(path, source name)`` (recordings, images): ``score(path, source)``'s row with an empty
    ``error``, or, for a file that cannot be used, just its name and the reason in ``error``."""
    rows = []
    for i, (path, source) in enumerate(items):
        if progress:
            progress(i, len(items), source)
        try:
            row = score(path, source)
            row["error"] = ""
        except InvalidInput as exc:
            row = {"file": source, "error": exc.message}
        rows.append(row)
    return rows


def file_rows_result(model, df, out: Path) -> dict:
    """What `modelfab predict` reports for one-row-per-file predictions (recordings, images)."""
    import pandas as pd

    err = df.get("error", pd.Series("", index=df.index, dtype=str)).fillna("").astype(str)
    bad = df[err != ""]
    result = {"model": model.ref, "output": str(out), "rows": len(df), "files_with_errors": int(len(bad)),
              "first_errors": list(err[err != ""][:3])}
    if model.predictor.task == "anomaly":
        result["anomalies"] = int(df.get("is_anomaly", pd.Series(dtype=bool)).fillna(False).astype(bool).sum())
    return result


def predict_table_file(model, path: str | os.PathLike, out: str | os.PathLike, *, settings: Settings | None = None,
                       chunk_rows: int | None = None, keep_columns: bool = True,
                       progress: Callable[[int, int], None] | None = None, executor=None,
                       sheet: str | None = None) -> dict:
    """Predict every row of ``path`` into ``out``. ``executor`` (modelfab.execution, e.g. Ray) spreads the
    row chunks over workers; the output is the same file, rows in the same order, at most two chunks per
    worker in flight. ``sheet``: the sheet of an Excel workbook (default: the one with the most cells)."""
    settings = settings or Settings.from_env()
    out = output_path(out)
    fmt = OUT_FORMATS[out.suffix.lower()]
    if out.exists() and out.is_dir():
        raise InvalidInput(f"Output {out} is a folder; expected a file name.")
    big = Settings(max_import_bytes=1 << 62, max_rows=settings.max_rows, max_columns=settings.max_columns)
    try:
        src = open_table(path, big)
    except UnsupportedFormat as exc:  # an image or a recording sent to a table model: said in predict's terms
        if "expected a table" not in exc.message:
            raise
        raise UnsupportedFormat(exc.message, hint=f"{model.ref} is a model of tables (text and numbers in columns): "
                                "give it a CSV, Parquet or Excel file of rows, or predict this file with a model "
                                "trained on its kind of data (`modelfab models list`).") from None
    if sheet is not None:
        if src.format != "excel":
            raise InvalidInput(f"--sheet picks the sheet of an Excel workbook; {Path(path).name} is {src.format}.",
                               hint="Leave out --sheet.")
        src.sheet = sheet
    total_bytes = max(1, Path(path).stat().st_size)
    chunk_rows = chunk_rows or settings.predict_chunk_rows
    tmp = out.with_name(f".{out.name}.part")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    writer = frames = None
    kept: list = []  # Excel: the frames, written at the end (a workbook is not appended to)
    unreadable: dict[str, list] = {}  # column -> [count, examples]: values given but read as missing
    unknown: list = []  # [rows, text column, examples] whose text holds no word the model knows
    try:
        chunks = _tally_unreadable(iter_table_chunks(src, chunk_rows), model.predictor, unreadable)
        if executor is None or executor.name == "local":
            predictor = model.predictor
            frames = (_predict_here(predictor, chunk, keep_columns, unknown) for chunk in chunks)
        else:
            from .execution.batch import package_payload, predict_chunk

            frames = executor.map(predict_chunk, package_payload(model.folder, keep_columns), chunks,
                                  window=2 * executor.slots())
        for frame in frames:
            if fmt == "csv":  # the first chunk decides the byte-order mark (it is written once, at the start)
                encoding = csv_encoding(frame) if not rows else "utf-8"
                frame.to_csv(tmp, mode="a" if rows else "w", header=not rows, index=False, encoding=encoding)
            elif fmt == "excel":
                kept.append(frame)
                if rows + len(frame) > EXCEL_MAX_ROWS:
                    raise InvalidInput(f"More than {EXCEL_MAX_ROWS:,} predictions do not fit in an Excel sheet.",
                                       hint="Write .csv or .parquet.")
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
            rows += len(frame)
            if progress:
                progress(rows, total_bytes)
        if writer is not None:
            writer.close()
            writer = None
        if rows == 0:
            raise InvalidInput(f"{Path(path).name}: expected at least one data row under the header; the file has none.",
                               hint="Check that the right file was given (an export may have failed).")
        if fmt == "excel":
            import pandas as pd

            _write(pd.concat(kept, ignore_index=True), tmp, fmt)
        os.replace(tmp, out)
    except BaseException:
        if writer is not None:
            writer.close()
        if frames is not None:
            frames.close()  # cancels the chunks still in flight on the workers
        tmp.unlink(missing_ok=True)
        raise
    result = {"model": model.ref, "input": str(path), "output": str(out), "rows": rows}
    if src.sheet is not None:
        result["sheet"] = src.sheet
    used = _used_columns(model.predictor)
    notes = list(src.notes) + unreadable_notes({c: (n, ex) for c, (n, ex) in unreadable.items()}, used)
    if unknown and hasattr(model.predictor, "unknown_text_note"):
        notes.append(model.predictor.unknown_text_note(*unknown))
        result["rows_without_known_words"] = {unknown[1]: unknown[0]}
    if notes:
        result["notes"] = notes
    text = {c["name"] for c in used if c["kind"] == "text"}
    if any(col in text for col in unreadable):
        result["rows_without_text"] = {col: n for col, (n, _) in unreadable.items() if col in text}
    if any(col not in text for col in unreadable):
        result["unreadable_values"] = {col: n for col, (n, _) in unreadable.items() if col not in text}
    return result


def _used_columns(predictor) -> list[dict]:
    """The input columns a table model's answer rests on (a text model kept alone uses only its text)."""
    if hasattr(predictor, "used_columns"):
        return predictor.used_columns
    pre = getattr(predictor, "preprocessor", None)
    return pre.input_columns if pre is not None else []


def _tally_unreadable(chunks, predictor, tally: dict):
    """The chunks, unchanged; counts the values of numeric, datetime and boolean inputs that are given but read
    as missing ('abc', '12.0 mm' for a plain number column, a unit the column was not imported with, 'n/a' for a
    date, 'vielleicht' for yes/no) into ``tally`` (tabular.unreadable_values)."""
    from .modalities.tabular import unreadable_values

    columns = _used_columns(predictor)
    for chunk in chunks:
        for name, (n, examples) in unreadable_values(chunk, columns).items():
            entry = tally.setdefault(name, [0, []])
            entry[0] += n
            entry[1] += [v for v in examples if v not in entry[1]][: 3 - len(entry[1])]
        yield chunk


def _predict_here(predictor, chunk, keep_columns: bool, unknown: list | None = None):
    pred = getattr(predictor, "_predict", predictor.predict)(chunk)  # the unreadable values are tallied here
    said = pred.attrs.pop("unknown_text", None)
    if said and unknown is not None:  # rows whose text holds no word the model knows: [count, column, examples]
        if not unknown:
            unknown += [0, said[1], []]
        unknown[0] += said[0]
        unknown[2] = (unknown[2] + list(said[2]))[:3]
    return chunk.join(pred, rsuffix="_pred") if keep_columns else pred

"""Dataset import: immutable, hashed versions.

Import order: parse and validate everything in memory or a temp file,
write the canonical data blob, then add the metadata row in one
transaction. Re-importing identical content under the same name returns
the existing version and writes nothing.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import InvalidInput
from .modalities.tabular import column_stats, infer_schema
from .modalities.tabular_io import open_table, read_table
from .modalities.tabular_values import apply_number_formats, spelling_notes
from .registry import check_name
from .storage.blobs import sha256_file


@dataclass(frozen=True)
class DatasetVersion:
    id: int
    name: str
    version: int
    kind: str
    n_rows: int
    n_cols: int
    schema: dict
    stats: dict
    options: dict
    content_sha: str
    data_sha: str
    source_name: str
    created_at: str
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @classmethod
    def from_row(cls, row: dict) -> "DatasetVersion":
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    def column_kinds(self) -> dict[str, str]:
        return {c["name"]: c["kind"] for c in self.schema.get("columns", [])}


@dataclass(frozen=True)
class ImportResult:
    dataset: DatasetVersion
    created: bool
    notes: list[str] = field(default_factory=list)  # what the import chose for you (e.g. the Excel sheet read)


def text_or_none(v) -> str | None:
    """A cell of a label, path or hash column as text, or None when it is missing: None, NaN (how Parquet gives
    back a missing value of a text column: a float, and truthy) or an empty string."""
    return None if v is None or (isinstance(v, float) and v != v) or str(v) == "" else str(v)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in containers
        return os.environ.get("USER", "unknown")


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa

    try:
        df.to_parquet(path, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        fixed = df.copy()
        for c in fixed.columns:
            if fixed[c].dtype == object:
                fixed[c] = fixed[c].map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))
        fixed.to_parquet(path, index=False)


def import_table(ws, path: str | os.PathLike, name: str | None = None,
                 kinds: dict[str, str] | None = None, sheet: str | None = None,
                 header_row: int | None = None) -> ImportResult:
    """``kinds``: column -> kind for columns whose inferred kind a person corrected (the UI's preview).
    ``sheet``: the Excel sheet to read (default: the one holding the most cells). ``header_row``: the 1-based row
    of the column names (default: found; title rows above it are left out with a note)."""
    import hashlib
    import json

    p = Path(path)
    name = check_name(name or _default_name(p), "dataset")
    src = open_table(p, ws.settings, header_row)
    if sheet is not None and src.format != "excel":
        raise InvalidInput(f"--sheet is for Excel workbooks; {p.name} is {src.format}.", hint="Leave out --sheet.")
    src.sheet = sheet
    content_sha = sha256_file(src.path)
    df = None
    if src.format == "excel":  # which sheet was read is part of the version
        df = read_table(src, ws.settings)
        if len(src.sheets) > 1 and src.sheet != src.sheets[0]:  # the first sheet: the file's hash, as before
            content_sha = hashlib.sha256(f"{content_sha}:sheet:{src.sheet}".encode()).hexdigest()
    if header_row is not None:  # another header row reads another table from the same file
        content_sha = hashlib.sha256(f"{content_sha}:header_row:{header_row}".encode()).hexdigest()
    if kinds:  # corrected kinds make another version of the same file
        content_sha = hashlib.sha256(f"{content_sha}:{json.dumps(sorted(kinds.items()))}".encode()).hexdigest()
    existing = ws.meta.find_dataset(name, content_sha)
    if existing is not None:
        return ImportResult(DatasetVersion.from_row(existing), created=False, notes=list(src.notes))
    if df is None:
        df = read_table(src, ws.settings)
    schema = infer_schema(df, src.delimiter)
    if kinds:
        from .modalities.tabular import KINDS

        by_name = {c["name"]: c for c in schema["columns"]}
        for col, kind in kinds.items():
            if col not in by_name or kind not in KINDS:
                raise InvalidInput(f"Cannot set column {col!r} to kind {kind!r}: expected a column of the file and "
                                   f"one of {', '.join(KINDS)}.")
            by_name[col]["kind"] = kind
    notes = list(src.notes) + apply_number_formats(df, schema, p.name)  # '70,2', '12.039 mm' -> numbers
    notes += spelling_notes(df, schema)  # 'L1' / 'l1' / 'L1 ': one line written three ways?
    schema.update(format=src.format, encoding=src.encoding, delimiter=src.delimiter, header_row=src.header_row)
    if notes:  # kept with the version: the web's dataset page says what the import did
        schema["import_notes"] = notes
    if src.format == "excel":
        schema.update(sheet=src.sheet, sheets=src.sheets)
    stats = column_stats(df, schema)
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        data_path = Path(tmp) / "data.parquet"
        _to_parquet(df, data_path)
        data_sha = ws.blobs.put_file(data_path)
    row = ws.meta.add_dataset(
        name=name, kind="table", content_sha=content_sha, data_sha=data_sha, source_name=p.name,
        n_rows=len(df), n_cols=len(df.columns), schema=schema, stats=stats, options={},
        created_by=current_user(), refs=[],
    )
    return ImportResult(DatasetVersion.from_row(row), created=True, notes=notes)


def _default_name(p: Path, folder: bool = False) -> str:
    """The dataset name a file (its stem) or a folder (its whole name) gets when none is given: characters a name
    cannot hold become '_' ('my parts' -> 'my_parts', 维修工单2024.csv -> 维修工单2024)."""
    import re

    stem = re.sub(r"[^\w.\-]+", "_", p.name if folder else p.stem).strip("_.-") or "dataset"
    return stem[:100]


def load_frame(ws, ds: DatasetVersion) -> pd.DataFrame:
    if ds.kind != "table":
        raise InvalidInput(f"Dataset {ds.ref} holds {ds.kind} data, not a table.")
    path = ws.blob_path(ds.data_sha)
    return pd.read_parquet(path)

"""Consistent snapshots of the metadata, and loading rows into an empty store.

Used by backup, restore and migrate-storage (``modelfab/backup.py``). A
snapshot is taken while the workspace is in use:

- SQLite: the SQLite online backup API copies the database page by page
  into a temp file (readers and the writer go on); rows are read from that copy.
- PostgreSQL: one ``REPEATABLE READ, READ ONLY`` transaction (the same
  snapshot pg_dump uses), so every table is read as of one instant.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa

from ..errors import Conflict
from . import tables as t

# Columns that name a blob. New tables should record their blobs in blob_refs;
# gc additionally protects any column called "sha" or ending in "_sha".
BLOB_COLUMNS = ((t.blob_refs, "sha"), (t.datasets, "data_sha"), (t.models, "package_sha"))


def table_order() -> list[sa.Table]:
    """Every table of the schema, parents before children (foreign keys)."""
    return list(t.metadata.sorted_tables)


@contextlib.contextmanager
def snapshot(meta, tmp_dir: str | os.PathLike | None = None) -> Iterator[sa.Connection]:
    """A connection that sees the whole database as of one instant (see the module doc)."""
    if meta.dialect == "sqlite":
        fd, name = tempfile.mkstemp(prefix="snapshot-", suffix=".db", dir=tmp_dir)
        os.close(fd)
        raw = meta.engine.raw_connection()
        try:
            dst = sqlite3.connect(name)
            try:
                raw.driver_connection.backup(dst)
            finally:
                dst.close()
        finally:
            raw.close()
        engine = sa.create_engine("sqlite:///" + name)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(name + suffix).unlink(missing_ok=True)
        return
    with meta.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        yield conn
        conn.rollback()


def revision(conn: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def iter_rows(conn: sa.Connection, table: sa.Table) -> Iterator[dict[str, Any]]:
    q = sa.select(table).order_by(*table.primary_key.columns)
    for r in conn.execute(q):
        yield dict(r._mapping)


def referenced(conn: sa.Connection, *, broad: bool = False) -> set[str]:
    """Blob ids the rows reference. ``broad`` (for gc) also counts every *_sha column of every table."""
    cols = [table.c[name] for table, name in BLOB_COLUMNS]
    if broad:
        seen = {(c.table.name, c.name) for c in cols}
        cols += [c for table in table_order() for c in table.columns
                 if (c.name == "sha" or c.name.endswith("_sha")) and (table.name, c.name) not in seen]
    out: set[str] = set()
    for c in cols:
        out.update(r[0] for r in conn.execute(sa.select(c).where(c.is_not(None)).distinct()))
    return out


def present_tables(conn: sa.Connection) -> list[sa.Table]:
    """The schema's tables that exist in this database (an older schema, e.g. while restoring an
    older backup, lacks the tables of later migrations)."""
    names = set(sa.inspect(conn).get_table_names())
    return [table for table in table_order() if table.name in names]


def count_rows(conn: sa.Connection) -> dict[str, int]:
    return {table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in present_tables(conn)}


def ensure_empty(meta) -> None:
    with meta.engine.connect() as conn:
        counts = count_rows(conn)
    full = {k: v for k, v in counts.items() if v}
    if full:
        raise Conflict(f"The target database {meta.url} is not empty ({', '.join(f'{k}: {v}' for k, v in full.items())} rows).",
                       hint="Give an empty database (or drop and re-create it).")


def load_rows(meta, rows: dict[str, Iterator[dict]], batch: int = 1000) -> dict[str, int]:
    """Insert rows (with their ids) into an empty store in one transaction; PostgreSQL sequences continue after them."""
    counts: dict[str, int] = {}
    with meta.engine.begin() as conn:
        tables = present_tables(conn)
        for table in tables:
            n = 0
            chunk: list[dict] = []
            for row in rows.get(table.name, ()):
                chunk.append(row)
                if len(chunk) >= batch:
                    conn.execute(table.insert(), chunk)
                    n += len(chunk)
                    chunk = []
            if chunk:
                conn.execute(table.insert(), chunk)
                n += len(chunk)
            counts[table.name] = n
        if meta.dialect == "postgresql":
            for table in tables:
                col = table.autoincrement_column
                if col is not None and col.name == "id":
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)")
    return counts

"""MetadataStore: records of datasets, models, jobs and tokens (SQLAlchemy).

One schema (``tables.py``) and one chain of Alembic migrations serve
SQLite (default, WAL) and PostgreSQL. Every write is one transaction;
callers write blobs first and the row last.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from ..errors import Conflict, NotFound, WorkspaceError
from . import tables as t

MIGRATIONS = Path(__file__).with_name("migrations")


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


from .urls import (  # noqa: E402,F401  (re-exported: callers import them from here)
    masked_db_url, normalize_db_url, public_db_url, refuse_password, url_password, with_password)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_dumps(obj: Any) -> str:
    """JSON columns store NaN/Infinity as null on every backend (PostgreSQL's json type refuses them)."""
    try:
        return json.dumps(obj, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(obj), allow_nan=False)


_TOKEN_BY_HASH = sa.select(t.tokens).where(t.tokens.c.token_hash == sa.bindparam("token_hash"))
_TOKEN_COLUMNS = tuple(c.name for c in t.tokens.columns)
_TOKEN_SQL = f"SELECT {', '.join(_TOKEN_COLUMNS)} FROM tokens WHERE token_hash = ?"


def _sqlite_read_only_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def sqlite_read_only_url(path: str | os.PathLike) -> str:
    """A URL opening ``path`` read-only (a workspace on a read-only mount or folder): ``immutable`` when no
    write-ahead log is pending (SQLite can then read without creating -shm/-wal next to the file)."""
    p = Path(path).resolve()
    wal = Path(str(p) + "-wal")
    immutable = "&immutable=1" if not wal.exists() or wal.stat().st_size == 0 else ""
    return f"sqlite:///file:{p}?mode=ro{immutable}&uri=true"


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite") and "mode=ro" in url:
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                  json_serializer=json_dumps)
        event.listen(engine, "connect", _sqlite_read_only_pragmas)
        return engine
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                  json_serializer=json_dumps)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise WorkspaceError("This workspace keeps its metadata in PostgreSQL, which needs psycopg.",
                             hint="Install it: pip install 'modelfab[postgres]'.") from None
    return sa.create_engine(normalize_db_url(with_password(url)), pool_pre_ping=True, pool_size=5,
                            max_overflow=10, connect_args={"connect_timeout": 10}, json_serializer=json_dumps)


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)
    return ScriptDirectory.from_config(cfg).get_current_head()


def _row(r) -> dict[str, Any] | None:
    return None if r is None else dict(r._mapping)


class MetadataStore:
    """The narrow metadata protocol. One instance per workspace."""

    def __init__(self, url: str) -> None:
        self.url = public_db_url(url)
        self.engine = make_engine(url)
        self._token_conn = None  # SQLite: one connection kept for the token lookup of every REST request
        self._token_lock = threading.Lock()
        self._ping_engine = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name  # "sqlite" | "postgresql"

    # -- schema -----------------------------------------------------------
    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self) -> None:
        from alembic import command

        with self.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")

    def check_schema(self, allow_older: bool = False) -> None:
        """Refuse to work on a schema older or newer than this code (``allow_older``: an older one is fine,
        for ``backup``, which copies rows whatever their schema)."""
        try:
            current = self.current_revision()
        except sa.exc.DBAPIError as exc:
            from .errors import translate

            raise (translate(exc) or WorkspaceError(
                f"Cannot read the workspace database ({str(exc.orig).strip().splitlines()[0][:200]}).",
                hint="Check that the database is reachable and readable; restore from a backup if it is "
                     "damaged.")) from None
        head = head_revision()
        if current == head:
            return
        if current is None:
            raise WorkspaceError(
                "The workspace database has no schema yet.",
                hint="Run `modelfab init` on it (or `modelfab migrate`).",
            )
        from alembic.script import ScriptDirectory

        known = {r.revision for r in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}
        if current not in known:
            raise WorkspaceError(
                f"The workspace was written by a newer modelfab (schema {current}; this one knows up to {head}).",
                hint="Upgrade modelfab (pip install -U modelfab) to open it.",
            )
        if allow_older:
            return
        raise WorkspaceError(
            f"The workspace schema is {current}, this modelfab needs {head}.",
            hint="Back it up, then run `modelfab migrate`.",
        )

    def ping(self, timeout: float = 2.0) -> None:
        """A cheap check that the database answers (``SELECT 1``, at most ``timeout`` s to connect); raises
        the driver's error when it does not (``/readyz``). PostgreSQL: a connection of its own, so a pool
        full of dead connections does not hide a server that is back, nor a hung one stall the check."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
            return
        if self._ping_engine is None:
            from sqlalchemy.pool import NullPool

            self._ping_engine = sa.create_engine(
                self.engine.url, poolclass=NullPool,
                connect_args={"connect_timeout": max(1, int(timeout)),
                              "options": f"-c statement_timeout={int(timeout * 1000)}"})
        with self._ping_engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    def close(self) -> None:
        if self._ping_engine is not None:
            self._ping_engine.dispose()
        with self._token_lock:
            if self._token_conn is not None:
                self._token_conn.close()
                self._token_conn = None
        self.engine.dispose()

    # -- versions ---------------------------------------------------------
    def _insert_versioned(self, table: sa.Table, values: dict, refs: list[tuple[str, str]]) -> dict:
        """Insert a row with the next version of ``values['name']``, plus its blob refs."""
        for _attempt in range(20):
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":  # writers of one name queue here instead of retrying
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                     {"k": f"{table.name}:{values['name']}"})
                    current = conn.execute(
                        sa.select(sa.func.max(table.c.version)).where(table.c.name == values["name"])
                    ).scalar()
                    row = dict(values, version=(current or 0) + 1)
                    new_id = conn.execute(table.insert().values(**row)).inserted_primary_key[0]
                    owner = f"{table.name}:{new_id}"
                    if refs:
                        conn.execute(
                            t.blob_refs.insert(),
                            [{"owner": owner, "sha": sha, "role": role} for role, sha in dict(refs).items()],
                        )
                    return dict(row, id=new_id)
            except SAIntegrityError:
                continue  # another writer took this version number: retry
        raise Conflict(f"Could not allocate a new version of {values['name']!r}: too many concurrent writers.")

    # -- datasets ---------------------------------------------------------
    def add_dataset(self, *, name: str, kind: str, content_sha: str, data_sha: str, source_name: str,
                    n_rows: int, n_cols: int, schema: dict, stats: dict, options: dict,
                    created_by: str, refs: list[tuple[str, str]]) -> dict:
        values = dict(name=name, kind=kind, content_sha=content_sha, data_sha=data_sha,
                      source_name=source_name, n_rows=n_rows, n_cols=n_cols, schema=schema,
                      stats=stats, options=options, created_at=utcnow(), created_by=created_by)
        return self._insert_versioned(t.datasets, values, refs + [("data", data_sha)])

    def find_dataset(self, name: str, content_sha: str) -> dict | None:
        q = (sa.select(t.datasets).where(t.datasets.c.name == name, t.datasets.c.content_sha == content_sha)
             .order_by(t.datasets.c.version.desc()).limit(1))
        with self.engine.connect() as conn:
            return _row(conn.execute(q).first())

    def get_dataset(self, name: str, version: int | None = None) -> dict:
        q = sa.select(t.datasets).where(t.datasets.c.name == name)
        q = q.where(t.datasets.c.version == version) if version else q.order_by(t.datasets.c.version.desc()).limit(1)
        with self.engine.connect() as conn:
            row = _row(conn.execute(q).first())
        if row is None:
            what = f"{name}:{version}" if version else name
            raise NotFound(f"No dataset {what!r} in this workspace.", hint="See `modelfab data list`.")
        return row

    def get_dataset_by_id(self, dataset_id: int) -> dict:
        with self.engine.connect() as conn:
            row = _row(conn.execute(sa.select(t.datasets).where(t.datasets.c.id == dataset_id)).first())
        if row is None:
            raise NotFound(f"No dataset with id {dataset_id}.")
        return row

    def list_datasets(self) -> list[dict]:
        q = sa.select(t.datasets).order_by(t.datasets.c.name, t.datasets.c.version)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- models -----------------------------------------------------------
    def add_model(self, *, name: str, task: str, dataset_id: int | None, package_sha: str,
                  manifest: dict, metrics: dict, created_by: str, refs: list[tuple[str, str]]) -> dict:
        values = dict(name=name, task=task, dataset_id=dataset_id, package_sha=package_sha,
                      manifest=manifest, metrics=metrics, stage="none", created_at=utcnow(),
                      created_by=created_by)
        return self._insert_versioned(t.models, values, refs + [("package", package_sha)])

    def get_model(self, name: str, version: int | None = None) -> dict:
        q = sa.select(t.models).where(t.models.c.name == name)
        q = q.where(t.models.c.version == version) if version else q.order_by(t.models.c.version.desc()).limit(1)
        with self.engine.connect() as conn:
            row = _row(conn.execute(q).first())
        if row is None:
            what = f"{name}:{version}" if version else name
            raise NotFound(f"No model {what!r} in this workspace.", hint="See `modelfab models list`.")
        return row

    def list_models(self, name: str | None = None) -> list[dict]:
        q = sa.select(t.models).order_by(t.models.c.name, t.models.c.version)
        if name:
            q = q.where(t.models.c.name == name)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def set_model_stage(self, model_id: int, stage: str, *, archive_others_of: str | None = None) -> None:
        """Set a version's stage; with ``archive_others_of``, other versions of that name in the
        same stage are archived in the same transaction (one production version per name)."""
        with self.engine.begin() as conn:
            if archive_others_of is not None:
                # Lock every version of the name first: two concurrent promotions then run one after
                # the other instead of both seeing the old state (PostgreSQL; SQLite has one writer).
                conn.execute(sa.select(t.models.c.id).where(t.models.c.name == archive_others_of)
                             .with_for_update()).all()
                conn.execute(t.models.update().where(t.models.c.name == archive_others_of, t.models.c.stage == stage,
                                                     t.models.c.id != model_id).values(stage="archived"))
            conn.execute(t.models.update().where(t.models.c.id == model_id).values(stage=stage))

    def models_in_stage(self, stage: str) -> list[dict]:
        q = sa.select(t.models).where(t.models.c.stage == stage).order_by(t.models.c.name, t.models.c.version)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- aliases (NAME@ALIAS -> one version of NAME) -----------------------
    def _alias_query(self):
        a, m = t.model_aliases, t.models
        return (sa.select(a.c.name, a.c.alias, a.c.model_id, m.c.version, a.c.set_by, a.c.set_at)
                .join(m, m.c.id == a.c.model_id).order_by(a.c.name, a.c.alias))

    def _no_alias(self, conn, name: str, alias: str) -> NotFound:
        known = [r[0] for r in conn.execute(sa.select(t.model_aliases.c.alias).where(t.model_aliases.c.name == name)
                                            .order_by(t.model_aliases.c.alias))]
        return NotFound(f"No alias {name}@{alias}; aliases of {name!r}: {', '.join(known) or 'none'}.",
                        hint="Set one: modelfab models alias NAME:VERSION ALIAS.")

    def set_alias(self, name: str, alias: str, model_id: int, *, set_by: str) -> dict:
        """Point ``name@alias`` at model ``model_id`` (a version of ``name``), creating or moving it in one
        transaction. Returns the alias with ``previous_version`` (None when it is new)."""
        a = t.model_aliases
        for _attempt in range(20):
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":  # setters of one alias queue instead of racing
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                     {"k": f"model_aliases:{name}@{alias}"})
                    target = conn.execute(sa.select(t.models.c.name, t.models.c.version)
                                          .where(t.models.c.id == model_id)).first()
                    if target is None or target[0] != name:
                        raise NotFound(f"No version of model {name!r} with id {model_id}.")
                    old = conn.execute(self._alias_query().where(a.c.name == name, a.c.alias == alias)).first()
                    values = dict(model_id=model_id, set_by=set_by, set_at=utcnow())
                    if old is None:
                        conn.execute(a.insert().values(name=name, alias=alias, **values))
                    else:
                        conn.execute(a.update().where(a.c.name == name, a.c.alias == alias).values(**values))
                    return dict(name=name, alias=alias, version=target[1], previous_version=old and old.version,
                                **values)
            except SAIntegrityError:
                continue  # another writer created the same alias first: move it instead
        raise Conflict(f"Could not set {name}@{alias}: too many concurrent writers.")

    def remove_alias(self, name: str, alias: str) -> dict:
        """Delete ``name@alias``; returns what it pointed at."""
        a = t.model_aliases
        with self.engine.begin() as conn:
            old = conn.execute(self._alias_query().where(a.c.name == name, a.c.alias == alias)).first()
            if old is None:
                raise self._no_alias(conn, name, alias)
            conn.execute(a.delete().where(a.c.name == name, a.c.alias == alias))
            return dict(old._mapping)

    def resolve_alias(self, name: str, alias: str) -> dict:
        """The model row ``name@alias`` points at."""
        q = (sa.select(t.models).join(t.model_aliases, t.model_aliases.c.model_id == t.models.c.id)
             .where(t.model_aliases.c.name == name, t.model_aliases.c.alias == alias))
        with self.engine.connect() as conn:
            row = _row(conn.execute(q).first())
            if row is None:
                raise self._no_alias(conn, name, alias)
        return row

    def list_aliases(self, name: str | None = None) -> list[dict]:
        """Every alias (of ``name``) with the version it points at, by name then alias."""
        q = self._alias_query()
        if name:
            q = q.where(t.model_aliases.c.name == name)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- blobs referenced -------------------------------------------------
    def referenced_blobs(self) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(t.blob_refs.c.sha).distinct())}

    def blob_refs(self, owner: str) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.blob_refs.c.role, t.blob_refs.c.sha).where(t.blob_refs.c.owner == owner))
            return {r[0]: r[1] for r in rows}

    # -- jobs -------------------------------------------------------------
    def create_job(self, kind: str, params: dict) -> int:
        now = utcnow()
        with self.engine.begin() as conn:
            return conn.execute(t.jobs.insert().values(kind=kind, state="queued", progress=0.0, message="",
                                                       params=params, created_at=now, updated_at=now)).inserted_primary_key[0]

    def update_job(self, job_id: int, *, state: str | None = None, progress: float | None = None,
                   message: str | None = None, result: dict | None = None, error: str | None = None) -> None:
        values: dict[str, Any] = {"updated_at": utcnow()}
        for k, v in (("state", state), ("progress", progress), ("message", message), ("result", result), ("error", error)):
            if v is not None:
                values[k] = v
        with self.engine.begin() as conn:
            conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(**values))

    def get_job(self, job_id: int) -> dict:
        with self.engine.connect() as conn:
            row = _row(conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).first())
        if row is None:
            raise NotFound(f"No job {job_id}.")
        return row

    def list_jobs(self, limit: int = 50) -> list[dict]:
        q = sa.select(t.jobs).order_by(t.jobs.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- tokens -----------------------------------------------------------
    def add_token(self, name: str, token_hash: str, scope: str, expires_at: str | None) -> int:
        with self.engine.begin() as conn:
            return conn.execute(t.tokens.insert().values(name=name, token_hash=token_hash, scope=scope,
                                                         created_at=utcnow(), expires_at=expires_at)).inserted_primary_key[0]

    def get_token(self, token_hash: str) -> dict | None:
        # Every REST request asks. SQLite: a plain query on one kept connection (SQLAlchemy's connection
        # checkout + statement execution cost 45 us, 15x the query); reads see every commit (WAL, autocommit).
        if self.engine.dialect.name == "sqlite":
            with self._token_lock:
                if self._token_conn is None:
                    self._token_conn = self.engine.raw_connection()
                cur = self._token_conn.cursor()
                try:
                    cur.execute(_TOKEN_SQL, (token_hash,))
                    row = cur.fetchone()
                finally:
                    cur.close()
            return None if row is None else dict(zip(_TOKEN_COLUMNS, row))
        with self.engine.connect() as conn:  # one statement built once (building it per call cost 2.5x the query)
            return _row(conn.execute(_TOKEN_BY_HASH, {"token_hash": token_hash}).first())

    def list_tokens(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(t.tokens).order_by(t.tokens.c.id))]

    def revoke_token(self, token_id: int) -> None:
        with self.engine.begin() as conn:
            n = conn.execute(t.tokens.update().where(t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None))
                             .values(revoked_at=utcnow())).rowcount
        if not n:
            raise NotFound(f"No active token with id {token_id}.", hint="See `modelfab tokens list`.")


def sqlite_url(path: str | os.PathLike) -> str:
    return "sqlite:///" + str(Path(path).resolve())

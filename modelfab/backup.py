"""Operations on a whole workspace: backup, restore, gc, migrate-storage.

A backup is a folder::

    DEST/manifest.json        format, schema revision, row counts, sha256 of every file below (written last)
    DEST/tables/NAME.jsonl    one JSON object per row, every table of the schema, read from one snapshot
    DEST/blobs/ab/cdef...     every blob the rows reference, content-addressed like a local store

It is taken while the workspace is in use: rows come from one consistent
snapshot (SQLite backup API / a PostgreSQL repeatable-read transaction), and
since blobs are written before the rows that reference them and only ``gc``
deletes blobs (never a referenced one), every blob a snapshot row needs is
there to copy. Restore verifies every file before it writes anything, then
writes blobs first and rows last, into an empty target, on any backend.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import Conflict, IntegrityError, InvalidInput, WorkspaceError
from .storage import snapshot as snap
from .storage.blobs import BlobStore, LocalBlobStore, sha256_file
from .storage.metadata import MetadataStore, head_revision, public_db_url, refuse_password
from .workspace import MARKER, WORKSPACE_FORMAT, Workspace, resolve_path

BACKUP_FORMAT = 1
DEFAULT_GC_MIN_AGE_S = 24 * 3600
Progress = Callable[[str, int, int], None]


def _json_default(o: Any):
    if isinstance(o, (_dt.date, _dt.datetime)):
        return o.isoformat()
    if isinstance(o, bytes):
        return o.hex()
    raise TypeError(f"cannot store {type(o).__name__} in a backup")


def _copy_blobs(src: BlobStore, dst: BlobStore, shas: list[str], progress: Progress | None = None) -> int:
    """Copy blobs (verified while read, stored under their recomputed sha256); returns bytes copied."""
    total = 0
    for i, sha in enumerate(shas):
        if not dst.exists(sha):
            if isinstance(dst, LocalBlobStore):
                with src.open(sha) as fh:
                    got = dst.put_stream(fh)  # type: ignore[arg-type]
            else:
                got = dst.put_file(src.local_path(sha)) if isinstance(src, LocalBlobStore) else dst.put_bytes(src.get_bytes(sha))
            if got != sha:
                raise IntegrityError(f"Blob {sha[:12]} changed while it was copied.")
        total += dst.info(sha).size
        if progress:
            progress("blobs", i + 1, len(shas))
    return total


def _canonical(rows) -> list[str]:
    """Rows as sorted JSON strings (backends may order text keys differently)."""
    return sorted(json.dumps(r, sort_keys=True, default=_json_default) for r in rows)


# -- backup -------------------------------------------------------------------
def backup(ws: Workspace, dest: str | os.PathLike, progress: Progress | None = None) -> dict:
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise Conflict(f"Backup destination {dest} exists and is not an empty folder.", hint="Give a new folder.")
    work = dest.with_name(dest.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    try:
        (work / "tables").mkdir(parents=True)
        files: dict[str, str] = {}
        counts: dict[str, int] = {}
        with snap.snapshot(ws.meta, ws.tmp_dir) as conn:
            rev = snap.revision(conn)
            for table in snap.present_tables(conn):  # an older schema (before `migrate`) lacks later tables
                path = work / "tables" / f"{table.name}.jsonl"
                n = 0
                with open(path, "w", encoding="utf-8") as fh:
                    for row in snap.iter_rows(conn, table):
                        fh.write(json.dumps(row, default=_json_default, ensure_ascii=False) + "\n")
                        n += 1
                counts[table.name] = n
                files[f"tables/{table.name}.jsonl"] = sha256_file(path)
            shas = sorted(snap.referenced(conn))
        out_blobs = LocalBlobStore(work / "blobs")
        nbytes = _copy_blobs(ws.blobs, out_blobs, shas, progress)
        out_blobs.clear_tmp()
        manifest = {"format": BACKUP_FORMAT, "schema": rev, "source": {"db": ws.meta.url, "blobs": ws.blobs.url},
                    "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "rows": counts, "files": files, "blobs": shas, "blob_bytes": nbytes}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if dest.exists():
            dest.rmdir()
        os.replace(work, dest)
    except BaseException:  # a failed backup (disk full, database gone) leaves nothing that blocks a retry
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {"backup": str(dest), "schema": rev, "rows": counts, "blobs": len(shas), "blob_bytes": nbytes}


def verify_backup(src: str | os.PathLike) -> dict:
    """Check a backup folder completely (every file's sha256); return its manifest."""
    src = Path(src)
    mpath = src / "manifest.json"
    if not mpath.is_file():
        raise InvalidInput(f"{src} is not a modelfab backup: no manifest.json.",
                           hint="Give a folder made by `modelfab backup`.")
    manifest = json.loads(mpath.read_text("utf-8"))
    if manifest.get("format") != BACKUP_FORMAT:
        raise InvalidInput(f"Backup format {manifest.get('format')!r} is not one this modelfab reads ({BACKUP_FORMAT}).")
    for rel, sha in manifest["files"].items():
        p = src / rel
        if not p.is_file() or sha256_file(p) != sha:
            raise IntegrityError(f"Backup file {rel} is missing or changed (sha256 mismatch).", hint="Use another backup.")
    store = LocalBlobStore(src / "blobs")
    for sha in manifest["blobs"]:
        p = store.root / sha[:2] / sha[2:]
        if not p.is_file() or sha256_file(p) != sha:
            raise IntegrityError(f"Backup blob {sha[:12]} is missing or changed (sha256 mismatch).",
                                 hint="Use another backup.")
    known = {r.revision for r in _script().walk_revisions()}
    if manifest["schema"] not in known:
        raise WorkspaceError(f"The backup has schema {manifest['schema']}, newer than this modelfab ({head_revision()}).",
                             hint="Upgrade modelfab to restore it.")
    return manifest


def _script():
    from alembic.script import ScriptDirectory

    from .storage.metadata import _alembic_config

    return ScriptDirectory.from_config(_alembic_config(None))


def _upgrade_to(meta: MetadataStore, rev: str) -> None:
    from alembic import command

    from .storage.metadata import _alembic_config

    with meta.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), rev)


def _iter_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _new_config(root: Path, db_url: str | None, blobs_url: str | None) -> tuple[dict, str]:
    db_url = db_url or os.environ.get("MODELFAB_DB") or "sqlite:///metadata.db"
    refuse_password(db_url)
    config = {"format": WORKSPACE_FORMAT, "db": public_db_url(db_url),
              "blobs": blobs_url or os.environ.get("MODELFAB_BLOBS") or "blobs",
              "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if os.environ.get("MODELFAB_S3_ENDPOINT") and config["blobs"].startswith("s3://"):
        config["s3_endpoint"] = os.environ["MODELFAB_S3_ENDPOINT"]
    return config, Workspace._db_url(root, db_url)


def _write_marker(root: Path, config: dict) -> None:
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")
    os.replace(tmp, root / MARKER)


def _restore_into(src: Path, root: Path, config: dict, url: str, manifest: dict, progress) -> tuple[dict, int]:
    blobs = Workspace._blob_store(root, config)
    if hasattr(blobs, "ensure_bucket"):
        blobs.ensure_bucket()
    meta = MetadataStore(url)
    try:
        if meta.current_revision() is not None:
            snap.ensure_empty(meta)
        nbytes = _copy_blobs(LocalBlobStore(src / "blobs"), blobs, manifest["blobs"], progress)  # blobs first
        _upgrade_to(meta, manifest["schema"])
        snap.ensure_empty(meta)
        counts = snap.load_rows(meta, {name: _iter_jsonl(src / "tables" / f"{name}.jsonl")
                                       for name in manifest["rows"]})
        if counts != {k: v for k, v in manifest["rows"].items() if k in counts}:
            raise IntegrityError(f"Restored row counts {counts} differ from the backup's {manifest['rows']}.")
        meta.upgrade()  # an older backup comes up to this modelfab's schema
    finally:
        meta.close()
    return counts, nbytes


def restore(src: str | os.PathLike, target: str | os.PathLike | None, *, db_url: str | None = None,
            blobs_url: str | None = None, progress: Progress | None = None) -> dict:
    """Restore a backup into a new workspace at ``target`` (empty or missing folder; empty database)."""
    src = Path(src)
    manifest = verify_backup(src)
    root = resolve_path(target)
    if (root / MARKER).exists() or (root.exists() and (not root.is_dir() or any(root.iterdir()))):
        raise Conflict(f"Restore target {root} is not empty.", hint="Restore into a new folder.")
    config, url = _new_config(root, db_url, blobs_url)  # a refused URL creates nothing
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("blobs", "cache", "tmp", "reports"):
            (root / sub).mkdir(exist_ok=True)
        counts, nbytes = _restore_into(src, root, config, url, manifest, progress)
    except BaseException:  # a failed restore (disk full, database gone) leaves the target as it was: retry works
        if created:
            shutil.rmtree(root, ignore_errors=True)
        elif root.is_dir():
            for child in root.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        raise
    _write_marker(root, config)  # last: a half-restored folder is not a workspace
    return {"workspace": str(root), "schema": head_revision(), "rows": counts, "blobs": len(manifest["blobs"]),
            "blob_bytes": nbytes}


# -- gc -----------------------------------------------------------------------
def gc(ws: Workspace, *, dry_run: bool = False, min_age_s: float = DEFAULT_GC_MIN_AGE_S) -> dict:
    """Delete blobs no row references and that are older than ``min_age_s`` (a writer puts its blobs
    before its row commits; the grace period keeps those). Never deletes a referenced blob: the list of
    blobs is taken first, the references after it and again right before deleting."""
    listed = list(ws.blobs.iter_ids())
    with ws.meta.engine.connect() as conn:
        refs = snap.referenced(conn, broad=True)
    now = time.time()
    candidates = []
    for sha in listed:
        if sha in refs:
            continue
        try:
            info = ws.blobs.info(sha)
        except Exception:  # deleted meanwhile
            continue
        if now - info.modified >= min_age_s:
            candidates.append((sha, info.size))
    with ws.meta.engine.connect() as conn:
        refs = snap.referenced(conn, broad=True)
    candidates = [(s, n) for s, n in candidates if s not in refs]
    if not dry_run:
        for sha, _n in candidates:
            ws.blobs.delete(sha)
    return {"blobs": len(listed), "referenced": len(set(listed) & refs), "unreferenced": len(candidates),
            "removed": 0 if dry_run else len(candidates), "bytes": sum(n for _s, n in candidates),
            "dry_run": dry_run, "ids": [s for s, _n in candidates]}


# -- migrate-storage ----------------------------------------------------------
def migrate_storage(ws: Workspace, *, db_url: str | None, blobs_url: str | None,
                    progress: Progress | None = None) -> dict:
    """Copy this workspace's metadata and blobs to a new database / blob store, verify, and switch to them.

    Stop writers (imports, training, the web UI) first: rows written during the copy would stay behind.
    The old metadata file and blob folder are left untouched (delete them once you are happy)."""
    if not db_url and not blobs_url:
        raise InvalidInput("Give --db URL and/or --blobs URL to move the workspace to.")
    refuse_password(db_url)
    config = json.loads((ws.root / MARKER).read_text("utf-8"))
    new_config = dict(config)
    if db_url:
        new_config["db"] = public_db_url(db_url)
    if blobs_url:
        new_config["blobs"] = blobs_url
        new_config.pop("s3_endpoint", None)
        if os.environ.get("MODELFAB_S3_ENDPOINT") and blobs_url.startswith("s3://"):
            new_config["s3_endpoint"] = os.environ["MODELFAB_S3_ENDPOINT"]
    new_blobs = Workspace._blob_store(ws.root, new_config) if blobs_url else ws.blobs
    if hasattr(new_blobs, "ensure_bucket"):
        new_blobs.ensure_bucket()
    new_meta = MetadataStore(Workspace._db_url(ws.root, db_url)) if db_url else ws.meta
    try:
        with snap.snapshot(ws.meta, ws.tmp_dir) as conn:
            shas = sorted(snap.referenced(conn))
            nbytes = _copy_blobs(ws.blobs, new_blobs, shas, progress) if blobs_url else 0  # blobs first
            counts = snap.count_rows(conn)
            if db_url:
                rev = snap.revision(conn)
                if new_meta.current_revision() is not None:
                    snap.ensure_empty(new_meta)
                _upgrade_to(new_meta, rev)
                snap.ensure_empty(new_meta)
                snap.load_rows(new_meta, {tb.name: snap.iter_rows(conn, tb) for tb in snap.table_order()})
                with new_meta.engine.connect() as nconn:  # verify: every row equal, every blob there
                    for tb in snap.table_order():
                        if _canonical(snap.iter_rows(conn, tb)) != _canonical(snap.iter_rows(nconn, tb)):
                            raise IntegrityError(f"Table {tb.name} differs after the copy; nothing was switched.")
        missing = [s for s in shas if not new_blobs.exists(s)]
        if missing:
            raise IntegrityError(f"{len(missing)} blobs are missing in the new store after the copy; nothing was switched.")
        with ws.meta.engine.connect() as conn:
            if snap.count_rows(conn) != counts:
                raise Conflict("The workspace changed during the move; nothing was switched.",
                               hint="Stop imports, training and the web UI, empty the target database and run again.")
    finally:
        if db_url:
            new_meta.close()
    _write_marker(ws.root, new_config)
    return {"workspace": str(ws.root), "db": new_config["db"], "blobs": new_config["blobs"], "rows": counts,
            "blobs_copied": len(shas) if blobs_url else 0, "blob_bytes": nbytes}

"""``modelfab backup``, ``restore``, ``gc``, ``migrate-storage``: operating a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import app
from ..settings import human_bytes
from .common import JsonOpt, WorkspaceOpt, console, emit_json, open_ws


@app.command("backup")
def backup_cmd(
    dest: Annotated[Path, typer.Argument(help="New folder for the backup.")],
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Consistent snapshot of metadata + every referenced blob, safe while the workspace is in use."""
    from ..backup import backup
    from ..workspace import Workspace

    # an older schema is backed up as it is (the upgrade advice is "back it up, then run migrate")
    res = backup(Workspace.open(workspace, allow_older_schema=True), dest)
    if json_out:
        emit_json(res)
        return
    console.print(f"Backup written to [bold]{res['backup']}[/]: {sum(res['rows'].values()):,} rows, "
                  f"{res['blobs']:,} blobs ({human_bytes(res['blob_bytes'])}), schema {res['schema']}")


@app.command("restore")
def restore_cmd(
    src: Annotated[Path, typer.Argument(help="A folder made by `modelfab backup`.")],
    target: Annotated[Optional[Path], typer.Argument(help="New (empty) workspace folder (default: --workspace / $MODELFAB_HOME).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Restore the metadata into this empty database (default: SQLite in the folder).")] = None,
    blobs: Annotated[Optional[str], typer.Option("--blobs", help="Restore the blobs into this store, e.g. s3://BUCKET/PREFIX (default: a folder).")] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify a backup (every sha256) and restore it into a new, empty workspace."""
    from ..backup import restore

    res = restore(src, target or workspace, db_url=db, blobs_url=blobs)
    if json_out:
        emit_json(res)
        return
    console.print(f"Restored into [bold]{res['workspace']}[/]: {sum(res['rows'].values()):,} rows, "
                  f"{res['blobs']:,} blobs ({human_bytes(res['blob_bytes'])}), all verified")


@app.command("gc")
def gc_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
    min_age: Annotated[float, typer.Option("--min-age", help="Keep unreferenced blobs younger than this many hours (a writer may be about to reference them).")] = 24.0,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove blobs that no record references (never a referenced one)."""
    from ..backup import gc

    res = gc(open_ws(workspace), dry_run=dry_run, min_age_s=min_age * 3600)
    if json_out:
        emit_json(res)
        return
    verb = "Would remove" if dry_run else "Removed"
    console.print(f"{verb} {res['unreferenced']:,} unreferenced blobs ({human_bytes(res['bytes'])}); "
                  f"{res['referenced']:,} of {res['blobs']:,} blobs are referenced and kept.")
    if dry_run:
        for sha in res["ids"][:50]:
            console.print(f"  {sha}")


@app.command("migrate-storage")
def migrate_storage_cmd(
    db: Annotated[Optional[str], typer.Option("--db", help="Move the metadata to this empty database, e.g. postgresql://user@host/db.")] = None,
    blobs: Annotated[Optional[str], typer.Option("--blobs", help="Move the blobs to this store, e.g. s3://BUCKET/PREFIX.")] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy metadata and blobs to PostgreSQL / S3, verify every row and blob, then switch the workspace to them.

    Stop imports, training and servers first. The old files stay untouched."""
    from ..backup import migrate_storage

    res = migrate_storage(open_ws(workspace), db_url=db, blobs_url=blobs)
    if json_out:
        emit_json(res)
        return
    console.print(f"Workspace [bold]{res['workspace']}[/] now uses metadata {res['db']} and blobs {res['blobs']} "
                  f"({sum(res['rows'].values()):,} rows, {res['blobs_copied']:,} blobs copied and verified).")

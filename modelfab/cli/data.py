"""``modelfab init``, ``modelfab data ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from . import app
from .common import JsonOpt, WorkspaceOpt, console, dataset_dict, emit_json, fmt_num, open_ws

data_app = typer.Typer(help="Import and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.command("init")
def init_cmd(
    directory: Annotated[Optional[Path], typer.Argument(help="Folder for the workspace (default: $MODELFAB_HOME or here).")] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a workspace: SQLite metadata + a content-addressed blob store."""
    from ..workspace import Workspace

    ws = Workspace.init(directory or workspace)
    if json_out:
        emit_json({"workspace": str(ws.root.resolve()), "database": ws.meta.url, "schema": ws.meta.current_revision()})
        return
    console.print(f"Workspace ready at [bold]{ws.root.resolve()}[/]")
    console.print("Next: [cyan]modelfab data import FILE --name NAME[/]")


@app.command("migrate")
def migrate_cmd(workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Upgrade the workspace database schema to this modelfab's version."""
    from ..storage.metadata import MetadataStore
    from ..workspace import MARKER, Workspace, resolve_path

    root = resolve_path(workspace)
    if not (root / MARKER).is_file():
        from ..errors import WorkspaceError

        raise WorkspaceError(f"No modelfab workspace at {root}.", hint="Pass --workspace.")
    import json

    config = json.loads((root / MARKER).read_text("utf-8"))
    meta = MetadataStore(Workspace._db_url(root, config.get("db", "sqlite:///metadata.db")))
    before = meta.current_revision()
    meta.upgrade()
    after = meta.current_revision()
    if json_out:
        emit_json({"workspace": str(root), "from": before, "to": after})
    else:
        console.print(f"Schema {before or '(none)'} -> {after}")


@data_app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="CSV/TSV, Parquet or Excel file.")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Dataset name (default: the file name).")] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import a table as a new immutable dataset version (identical content: no-op)."""
    ws = open_ws(workspace)
    with console.status(f"Importing {path.name} ...", spinner="dots") if not json_out else _null():
        res = ws.import_table(path, name=name)
    ds = res.dataset
    if json_out:
        emit_json(dict(dataset_dict(ds), created=res.created, schema=ds.schema["columns"]))
        return
    verb = "Imported" if res.created else "Already imported (identical content), nothing written:"
    console.print(f"{verb} [bold]{ds.ref}[/]  {ds.n_rows:,} rows x {ds.n_cols} columns  sha256 {ds.data_sha[:12]}")
    _schema_table(ds)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _schema_table(ds) -> None:
    t = Table(title=f"Columns of {ds.ref}", show_lines=False)
    for col in ("column", "kind", "missing", "unique", "summary"):
        t.add_column(col)
    for c in ds.schema.get("columns", []):
        st = ds.stats.get(c["name"], {})
        summary = ""
        if "counts" in st:
            items = list(st["counts"].items())[:4]
            summary = ", ".join(f"{k}: {v}" for k, v in items) + (" ..." if len(st["counts"]) > 4 else "")
        elif c["kind"] == "numeric":
            summary = f"{fmt_num(st.get('min'), 3)} .. {fmt_num(st.get('max'), 3)} (mean {fmt_num(st.get('mean'), 3)})"
        t.add_row(c["name"], c["kind"], f"{st.get('missing', 0):,}", f"{st.get('unique', 0):,}", summary)
    console.print(t)


@data_app.command("list")
def list_cmd(workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """List datasets and their versions."""
    ws = open_ws(workspace)
    items = ws.datasets()
    if json_out:
        emit_json({"datasets": [dataset_dict(d) for d in items]})
        return
    if not items:
        console.print("No datasets yet. Import one: [cyan]modelfab data import FILE --name NAME[/]")
        return
    t = Table(title="Datasets")
    for col in ("name", "version", "kind", "rows", "columns", "source", "sha256", "created"):
        t.add_column(col)
    for d in items:
        t.add_row(d.name, str(d.version), d.kind, f"{d.n_rows:,}", str(d.n_cols), d.source_name, d.data_sha[:12], d.created_at)
    console.print(t)


@data_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="NAME (latest version) or NAME:VERSION.")],
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Schema, missing values and class balance of a dataset version."""
    ws = open_ws(workspace)
    ds = ws.dataset(name)
    if json_out:
        emit_json(dict(dataset_dict(ds), schema=ds.schema, stats=ds.stats, options=ds.options))
        return
    console.print(f"[bold]{ds.ref}[/]  {ds.kind}, {ds.n_rows:,} rows x {ds.n_cols} columns, from {ds.source_name}, "
                  f"sha256 {ds.data_sha[:12]}, {ds.created_at}")
    _schema_table(ds)
    for c in ds.schema.get("columns", []):
        counts = ds.stats.get(c["name"], {}).get("counts")
        if counts and c["kind"] in ("categorical", "boolean") and 2 <= len(counts) <= 20:
            total = sum(counts.values()) or 1
            bal = ", ".join(f"{k} {v / total:.0%}" for k, v in counts.items())
            console.print(f"class balance of [bold]{c['name']}[/]: {bal}")

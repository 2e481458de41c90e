"""``modelfab init``, ``modelfab data ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.markup import escape

from . import app
from .common import JsonOpt, WorkspaceOpt, console, dataset_dict, emit_json, fmt_num, open_ws, add_row
from ..errors import InvalidInput

data_app = typer.Typer(help="Import and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.command("init")
def init_cmd(
    directory: Annotated[Optional[Path], typer.Argument(help="Folder for the workspace (default: $MODELFAB_HOME or here).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Metadata database URL, e.g. postgresql://user@host/db (default: $MODELFAB_DB, else SQLite in the folder). Give the password in MODELFAB_DB_PASSWORD or PGPASSWORD.")] = None,
    blobs: Annotated[Optional[str], typer.Option("--blobs", help="Blob store: a folder, or s3://BUCKET/PREFIX (default: $MODELFAB_BLOBS, else DIR/blobs). Endpoint from MODELFAB_S3_ENDPOINT, keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.")] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a workspace: metadata (SQLite, or PostgreSQL) + a content-addressed blob store (folder, or S3)."""
    from ..workspace import Workspace

    from ..workspace import MARKER, resolve_path

    existed = (resolve_path(directory or workspace) / MARKER).is_file()
    ws = Workspace.init(directory or workspace, db_url=db, blobs_url=blobs)
    if json_out:
        emit_json({"workspace": str(ws.root.resolve()), "database": ws.meta.url, "blobs": ws.blobs.url,
                   "schema": ws.meta.current_revision(), "created": not existed})
        return
    if existed:  # init is safe to repeat: it changes nothing, and says what is there
        n_data, n_models = len({d.name for d in ws.datasets()}), len({m.name for m in ws.models()})
        console.print(f"A workspace already exists at [bold]{ws.root.resolve()}[/] ({n_data} dataset(s), {n_models} "
                      f"model(s); metadata {ws.meta.url}, blobs {ws.blobs.url}): nothing changed.")
        return
    console.print(f"Workspace ready at [bold]{ws.root.resolve()}[/]  (metadata {ws.meta.url}, blobs {ws.blobs.url})")
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
    path: Annotated[Path, typer.Argument(help="A table (CSV/TSV, Parquet, Excel), a folder or zip of recordings (WAV/FLAC/OGG, .mat, .npy, CSV) or of images (JPEG/PNG/BMP/TIFF), or series (.ts, long or wide CSV/Parquet with --kind series).")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Dataset name (default: the file or folder name).")] = None,
    labels: Annotated[str, typer.Option("--labels", help="Recordings and images: folder | none | FILE.csv (file,label) | regex:PATTERN (first group = label); series: FILE.csv (id,label).")] = "folder",
    channel: Annotated[Optional[str], typer.Option("--channel", help="Recordings: channel index, or 'mean' (default: first channel).")] = None,
    sample_rate: Annotated[Optional[int], typer.Option("--sample-rate", help="Recordings: resample audio to this rate; the rate of .npy/CSV files.")] = None,
    variable: Annotated[Optional[str], typer.Option("--variable", help="Recordings: regex picking the .mat variable, e.g. DE_time.")] = None,
    window: Annotated[Optional[float], typer.Option("--window", help="Recordings: window length in seconds (default 1; 0.25 with --features vibration).")] = None,
    hop: Annotated[Optional[float], typer.Option("--hop", help="Recordings: hop between windows in seconds (default window/2).")] = None,
    features: Annotated[Optional[str], typer.Option("--features", help="Recordings: feature sets or a preset: sound (default), vibration (gain/offset-free bearing features, 0.25 s windows), or e.g. logmel,envelope.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Recordings and images: import the readable files and list the others; series: leave out the series that cannot be read (too short, empty) and list them.")] = False,
    kind: Annotated[str, typer.Option("--kind", help="What PATH holds: auto (default: a .ts file or --id-column/--time-column/--value-column/--label-column: series; another file: a table; a folder or zip: recordings or images, by their files), table, recordings, images, series.")] = "auto",
    id_column: Annotated[Optional[str], typer.Option("--id-column", help="Series: long format, the column naming the series of each row.")] = None,
    time_column: Annotated[Optional[str], typer.Option("--time-column", help="Series: long format, the column ordering the rows of a series.")] = None,
    value_columns: Annotated[Optional[list[str]], typer.Option("--value-column", help="Series: long format, a value column (repeat for channels; default: all others).")] = None,
    label_column: Annotated[Optional[str], typer.Option("--label-column", help="Series: the label of each series (or --labels FILE.csv with id,label).")] = None,
    sheet: Annotated[Optional[str], typer.Option("--sheet", help="Excel: the sheet to read (default: the one with the most cells).")] = None,
    header_row: Annotated[Optional[int], typer.Option("--header-row", min=1, help="Tables: the row holding the column names, counted from 1 as a spreadsheet does (default: found; title rows above it are left out with a note).")] = None,
    column_kinds: Annotated[Optional[list[str]], typer.Option("--column-kind", help="Tables: COLUMN=KIND where the inferred kind is wrong (repeat), e.g. --column-kind report=text for short texts that repeat (read as a category). Kinds: numeric, categorical, text, datetime, boolean, id.")] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import a table, recordings, images or series as a new immutable dataset version (identical content: no-op)."""
    from ..modalities import registry as modality_registry

    if kind not in modality_registry.IMPORT_KINDS:
        raise InvalidInput(f"--kind must be one of {', '.join(modality_registry.IMPORT_KINDS)}; got {kind!r}.")
    series_opts = [o for o, v in (("--id-column", id_column), ("--time-column", time_column),
                                  ("--value-column", value_columns), ("--label-column", label_column)) if v]
    if series_opts and kind not in ("auto", "series"):
        raise InvalidInput(f"{', '.join(series_opts)} {'apply' if len(series_opts) > 1 else 'applies'} to series; "
                           f"got --kind {kind}.",
                           hint="Pass --kind series, or leave those options out.")
    ws = open_ws(workspace)
    if kind == "auto":
        kind = "series" if series_opts else modality_registry.detect_kind(path)
    kinds = _column_kinds(column_kinds)
    for flag, value in (("--sheet", sheet), ("--header-row", header_row), ("--column-kind", kinds)):
        if value is not None and kind != "table" and not (flag == "--sheet" and kind == "series"):
            raise InvalidInput(f"{flag} is for tables (CSV, Excel); {path.name} is imported as {kind}.",
                               hint=f"Leave out {flag}.")
    if kind == "recordings":
        res = _import_recordings(ws, path, name, labels, channel, sample_rate, variable, window, hop, skip_bad, json_out,
                                 features)
    elif kind == "images":
        res = _import_images(ws, path, name, labels, skip_bad, json_out)
    elif kind == "series":
        res = ws.import_series(path, name, id_column=id_column, time_column=time_column, value_columns=value_columns,
                               label_column=label_column, labels_file=None if labels == "folder" else labels,
                               skip_bad=skip_bad, sheet=sheet)
    else:
        with console.status(f"Importing {path.name} ...", spinner="dots") if not json_out else _null():
            res = ws.import_table(path, name=name, sheet=sheet, header_row=header_row, kinds=kinds)
    ds = res.dataset
    if json_out:
        extra = {"schema": ds.schema["columns"]} if ds.kind == "table" else {"stats": ds.stats, "options": ds.options}
        notes = list(res.notes) + [n for n in import_notes(ds) if n not in res.notes]  # as the summary prints them
        emit_json(dict(dataset_dict(ds), created=res.created, notes=notes, **extra))
        return
    verb = "Imported" if res.created else "Already imported (identical content), nothing written:"
    if ds.kind == "table":
        console.print(f"{verb} [bold]{ds.ref}[/]  {ds.n_rows:,} rows x {ds.n_cols} columns  sha256 {ds.content_sha[:12]}")
        _schema_table(ds, limit=IMPORT_COLUMNS_SHOWN)
        for note in res.notes:
            console.print(f"[yellow]note[/] {note}", highlight=False)
    elif ds.kind == "series":
        _series_summary(ds, verb)
    elif ds.kind == "image":
        _images_summary(ds, verb)
    else:
        _recordings_summary(ds, verb)


def _series_summary(ds, verb: str = "") -> None:
    st = ds.stats
    ln = st["length"]
    lengths = f"length {ln['min']}" if ln["min"] == ln["max"] else f"lengths {ln['min']}..{ln['max']}"
    console.print(f"{verb} [bold]{ds.ref}[/]  {st['series']:,} series x {st['channels']} channel(s), {lengths} "
                  f"({st['format']})  sha256 {ds.content_sha[:12]}")
    if st.get("labels"):
        shown = list(st["labels"].items())[:10]
        console.print("labels: " + ", ".join(f"{k} {v}" for k, v in shown) + (" ..." if len(st["labels"]) > 10 else "")
                      + (f", unlabelled {st['unlabelled']}" if st.get("unlabelled") else ""))
    elif st.get("target"):
        console.print("target: {min:.4g} .. {max:.4g} (mean {mean:.4g})".format(**st["target"]))
    for note in import_notes(ds):
        console.print(f"[yellow]note[/] {note}", highlight=False)


def import_notes(ds) -> list[str]:
    """What an import of series, images or recordings says beside its counts (the --json output's ``notes``)."""
    st = ds.stats or {}
    if ds.kind == "series":
        return [str(n) for n in st.get("notes", [])]
    notes = []
    if st.get("boxes_rescaled_images"):
        notes.append(f"boxes of {st['boxes_rescaled_images']} images were annotated at another image size and were "
                     "rescaled to the real size")
    if st.get("pngs_as_images"):
        notes.append(f"{len(st['pngs_as_images'])} PNG file(s) beside an image of the same name are pictures, not "
                     f"black-and-white masks, and were imported as images: {', '.join(st['pngs_as_images'][:5])}")
    if st.get("low_bit_16bit_images"):
        notes.append(f"{st['low_bit_16bit_images']} 16-bit image(s) use 12 bits or fewer (e.g. "
                     f"{', '.join(st.get('low_bit_examples', [])[:3])}): read at 16-bit scale they look dark. If they "
                     "come from a 10- or 12-bit camera, give training and prediction images of the same kind (or "
                     "convert all of them to 8-bit the same way).")
    if st.get("hidden_images"):
        notes.append(f"{st['hidden_images']} image file(s) whose names start with '.' are hidden files and were left "
                     f"out: {', '.join(st.get('hidden_examples', []))}; rename them to import them")
    if st.get("empty_folders"):
        notes.append(f"folder(s) without images, so no class was made for them: {', '.join(st['empty_folders'][:10])}")
    if st.get("labels_unmatched_count"):
        names = st["labels_unmatched"][:5]
        more = st["labels_unmatched_count"] - len(names)
        what = "image" if ds.kind == "image" else "recording"
        notes.append(f"{st['labels_unmatched_count']} rows of the labels file name no {what} in the folder: "
                     f"{', '.join(names)}" + (f" (and {more} more)" if more > 0 else ""))
    return notes + [str(n) for n in st.get("notes", []) if str(n) not in notes]  # masks paired, TIFF pages, ...


def _import_recordings(ws, path, name, labels, channel, sample_rate, variable, window, hop, skip_bad, quiet,
                       features=None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .common import err_console

    with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[file]}"), console=err_console, disable=quiet, transient=True) as prog:
        bar = prog.add_task("import", total=None, file="")

        def on_file(i: int, n: int, rel: str) -> None:
            prog.update(bar, total=n, completed=i, file=rel[-60:])

        return ws.import_recordings(path, name, labels=labels, channel=channel, sample_rate=sample_rate,
                                    variable=variable, window_s=window, hop_s=hop, skip_bad=skip_bad,
                                    progress=on_file, features=features)


def _recordings_summary(ds, verb: str = "") -> None:
    st = ds.stats
    console.print(f"{verb} [bold]{ds.ref}[/]  {st['files']} recordings, {st['duration_s']:,.0f} s, "
                  f"{ds.n_rows:,} windows x {ds.n_cols} features at {ds.schema.get('sample_rate')} Hz  "
                  f"sha256 {ds.content_sha[:12]}")
    if st.get("labels"):
        console.print("labels: " + ", ".join(f"{k} {v}" for k, v in st["labels"].items())
                      + (f", unlabelled {st['unlabelled']}" if st.get("unlabelled") else ""))
    for s in st.get("skipped", []):
        console.print(f"[yellow]skipped[/] {escape(s['file'])}: {escape(s['reason'])}", markup=True, highlight=False)
    for s in st.get("annotations_refused", []):
        console.print(f"[yellow]no boxes[/] {escape(s['file'])}: {escape(s['reason'])}", markup=True, highlight=False)
    for note in import_notes(ds):
        console.print(f"[yellow]note[/] {note}", highlight=False)


def _import_images(ws, path, name, labels, skip_bad, quiet):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .common import err_console

    with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[file]}"), console=err_console, disable=quiet, transient=True) as prog:
        bar = prog.add_task("import", total=None, file="")
        return ws.import_images(path, name, labels=labels, skip_bad=skip_bad,
                                progress=lambda i, n, rel: prog.update(bar, total=n, completed=i, file=rel[-60:]))


def _images_summary(ds, verb: str = "") -> None:
    st = ds.stats
    sz = st["sizes"]
    size = (f"{sz['min_width']}x{sz['min_height']}" if sz["distinct"] == 1
            else f"{sz['distinct']} sizes, {sz['min_width']}..{sz['max_width']} x {sz['min_height']}..{sz['max_height']}")
    console.print(f"{verb} [bold]{ds.ref}[/]  {st['files']} images ({size}, {st['colour_images']} in colour), "
                  f"{st['masks']} masks, {st['boxes']} boxes  sha256 {ds.content_sha[:12]}")
    if st.get("labels"):
        console.print("labels: " + ", ".join(f"{k} {v}" for k, v in list(st["labels"].items())[:12])
                      + (f", unlabelled {st['unlabelled']}" if st.get("unlabelled") else ""))
    for s in st.get("skipped", []):
        console.print(f"[yellow]skipped[/] {escape(s['file'])}: {escape(s['reason'])}", markup=True, highlight=False)
    for s in st.get("annotations_refused", []):
        console.print(f"[yellow]no boxes[/] {escape(s['file'])}: {escape(s['reason'])}", markup=True, highlight=False)
    for note in import_notes(ds):
        console.print(f"[yellow]note[/] {note}", highlight=False)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


IMPORT_COLUMNS_SHOWN = 60  # a 2,000-column import printed 2,001 rows


def _schema_table(ds, limit: int | None = None) -> None:
    t = Table(title=f"Columns of {ds.ref}", show_lines=False)
    for col in ("column", "kind", "missing", "unique", "summary"):
        t.add_column(col)
    columns = ds.schema.get("columns", [])
    if limit is not None and len(columns) > limit:
        from collections import Counter

        kinds = ", ".join(f"{n:,} {k}" for k, n in Counter(c["kind"] for c in columns).most_common())
        t.caption = (f"first {limit} of {len(columns):,} columns ({kinds}); all of them: "
                     f"modelfab data show {ds.ref}")
        columns = columns[:limit]
    for c in columns:
        st = ds.stats.get(c["name"], {})
        summary = ""
        if "counts" in st:
            items = list(st["counts"].items())[:4]
            summary = ", ".join(f"{k}: {v}" for k, v in items) + (" ..." if len(st["counts"]) > 4 else "")
        elif c["kind"] == "numeric":
            summary = f"{fmt_num(st.get('min'), 3)} .. {fmt_num(st.get('max'), 3)} (mean {fmt_num(st.get('mean'), 3)})"
        add_row(t, c["name"], c["kind"], f"{st.get('missing', 0):,}", f"{st.get('unique', 0):,}", summary)
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
        add_row(t, d.name, str(d.version), d.kind, f"{d.n_rows:,}", str(d.n_cols), d.source_name, d.content_sha[:12], d.created_at)
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
    if ds.kind == "series":
        _series_summary(ds)
        return
    if ds.kind == "image":
        _images_summary(ds)
        return
    if ds.kind == "signal":
        _recordings_summary(ds)
        console.print("options: " + ", ".join(f"{k}={v}" for k, v in ds.options.items() if v not in (None, "")))
        return
    console.print(f"[bold]{ds.ref}[/]  {ds.kind}, {ds.n_rows:,} rows x {ds.n_cols} columns, from {ds.source_name}, "
                  f"sha256 {ds.content_sha[:12]}, {ds.created_at}")
    _schema_table(ds)
    for c in ds.schema.get("columns", []):
        counts = ds.stats.get(c["name"], {}).get("counts")
        if counts and c["kind"] in ("categorical", "boolean") and 2 <= len(counts) <= 20:
            total = sum(counts.values()) or 1
            bal = ", ".join(f"{k} {v / total:.0%}" for k, v in counts.items())
            console.print(f"class balance of [bold]{c['name']}[/]: {bal}")


def _column_kinds(given: list[str] | None) -> dict[str, str] | None:
    """--column-kind COLUMN=KIND (repeated) as a dict; the kinds are checked against the file at import."""
    if not given:
        return None
    out = {}
    for item in given:
        col, sep, kind = item.rpartition("=")
        if not sep or not col.strip() or not kind.strip():
            raise InvalidInput(f"--column-kind expects COLUMN=KIND; got {item!r}.",
                               hint="e.g. --column-kind report=text (kinds: numeric, categorical, text, datetime, "
                                    "boolean, id).")
        out[col.strip()] = kind.strip().lower()
    return out

"""``modelfab models promote|archive|alias|unalias|compare|export|import`` and ``modelfab export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from . import app
from .common import JsonOpt, WorkspaceOpt, add_row, console, emit_json, fmt_num, model_dict, open_ws
from .train import models_app


@models_app.command("promote")
def promote_cmd(
    model: Annotated[str, typer.Argument(help="NAME:VERSION (or NAME for the latest, NAME@ALIAS).")],
    stage: Annotated[str, typer.Option("--stage", help="staging | production.")] = "production",
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Move a version to staging or production (the previous production version is archived)."""
    from ..errors import InvalidInput

    if stage not in ("staging", "production"):
        raise InvalidInput(f"--stage must be staging or production; got {stage!r}. Use `models archive` to archive.")
    ws = open_ws(workspace)
    m = ws.model(model)
    m.promote(stage)  # re-reads every stored file first: a changed version is refused
    if json_out:
        emit_json(model_dict(m))
    else:
        console.print(f"{m.ref} is now in {stage}.")


@models_app.command("archive")
def archive_cmd(model: Annotated[str, typer.Argument(help="NAME:VERSION.")], workspace: WorkspaceOpt = None,
                json_out: JsonOpt = False) -> None:
    """Archive a version (it stays loadable by NAME:VERSION, but is no longer served as production)."""
    m = open_ws(workspace).model(model).promote("archived")
    if json_out:
        emit_json(model_dict(m))
    else:
        console.print(f"{m.ref} archived.")


@models_app.command("alias")
def alias_cmd(model: Annotated[str, typer.Argument(help="NAME:VERSION the alias should point at.")],
              alias: Annotated[str, typer.Argument(help="Alias name, e.g. champion or line3-current (not digits only).")],
              workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Point NAME@ALIAS at a version (moves the alias if it exists). NAME@ALIAS then works wherever a model is named."""
    m = open_ws(workspace).model(model)
    a = m.set_alias(alias)
    old = a["previous_version"]
    if json_out:
        emit_json({"model": m.name, "alias": alias, "ref": f"{m.name}@{alias}", "version": m.version,
                   "previous_version": old, "set_by": a["set_by"], "set_at": a["set_at"]})
    elif old is None:
        console.print(f"{m.name}@{alias} -> {m.ref} (new alias)", markup=False)
    else:
        console.print(f"{m.name}@{alias}: {m.name}:{old} -> {m.ref}", markup=False)


@models_app.command("unalias")
def unalias_cmd(name: Annotated[str, typer.Argument(help="Model NAME.")],
                alias: Annotated[str, typer.Argument(help="The alias to remove.")],
                workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Remove NAME@ALIAS (the version it pointed at is untouched)."""
    from ..registry import remove_alias

    old = remove_alias(open_ws(workspace).meta, name, alias)
    if json_out:
        emit_json({"model": name, "alias": alias, "removed": True, "version": old["version"]})
    else:
        console.print(f"Removed {name}@{alias} (pointed at {name}:{old['version']}).", markup=False)


@models_app.command("compare")
def compare_cmd(a: Annotated[str, typer.Argument(help="First model (NAME or NAME:VERSION).")],
                b: Annotated[str, typer.Argument(help="Second model.")],
                workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Metrics of two models side by side (same holdout when they share a data version and seed)."""
    from ..web.compare import compare

    ws = open_ws(workspace)
    ma, mb = ws.model(a), ws.model(b)
    result = compare(ma, mb)
    rows = result["metrics"]
    if json_out:
        emit_json(result)
        return
    t = Table(title=f"{ma.ref} vs {mb.ref}")
    for col in ("metric", ma.ref, mb.ref):
        t.add_column(col)
    for r in rows:
        add_row(t, r["metric"], fmt_num(r[ma.ref]), fmt_num(r[mb.ref]))
    console.print(t)
    if result["same_holdout"]:
        console.print("Same holdout rows: the comparison is like for like.")
    elif not result["same_task"]:
        console.print(f"Different tasks ({ma.task} vs {mb.task}) or targets: the metrics measure different things "
                      "and the holdouts differ.", markup=False)
    else:
        console.print("Different data versions, seeds or holdouts: the holdouts differ, compare with care.")


@models_app.command("export")
def export_pkg_cmd(model: Annotated[str, typer.Argument(help="NAME or NAME:VERSION.")],
                   out: Annotated[Path, typer.Option("--out", "-o", help="Destination .mfpkg file.")],
                   workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Export a model package (.mfpkg) to move it to another workspace."""
    m = open_ws(workspace).model(model)
    path = m.export(out)
    if json_out:
        emit_json({"model": m.ref, "path": str(path), "package_sha256": m.row["package_sha"]})
    else:
        console.print(f"Wrote {m.ref} to {path}")


@models_app.command("import")
def import_pkg_cmd(path: Annotated[Path, typer.Argument(help="A .mfpkg file.")],
                   name: Annotated[Optional[str], typer.Option("--name", help="Register under this name (default: the exported model's name).")] = None,
                   workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Import a .mfpkg: verified (format version, every sha256, no pickle) before it is registered."""
    ws = open_ws(workspace)
    m = ws.import_package(path, name=name)
    if json_out:
        emit_json(dict(model_dict(m), already_registered=m.already_registered))
    elif m.already_registered:
        console.print(f"{path.name} is already registered as {m.ref}: nothing added.")
    else:
        console.print(f"Imported {path.name} as {m.ref}")


@app.command("export")
def export_cmd(model: Annotated[str, typer.Argument(help="NAME or NAME:VERSION.")],
               fmt: Annotated[Optional[str], typer.Option("--format", help=(
                   "onnx | mfpkg (default: from the --out file's extension, else onnx)."))] = None,
               out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
                   "Destination file (default model.onnx, or model.mfpkg with --format mfpkg)."))] = None,
               workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Export a model: ONNX (preprocessing + model in one graph, checked against the native model) or .mfpkg."""
    from ..errors import InvalidInput

    if fmt is None and out is not None and out.suffix.lower() not in (".mfpkg", ".onnx"):
        raise InvalidInput(f"{out.name}: expected an --out name ending in .onnx (an ONNX graph) or .mfpkg (a model "
                           f"package); got {out.suffix or 'no extension'}.",
                           hint="Name the file model.onnx or model.mfpkg, or say --format onnx|mfpkg.")
    if fmt is None:  # -o line3.mfpkg means the package, as `models export` writes it
        fmt = "mfpkg" if out is not None and out.suffix.lower() == ".mfpkg" else "onnx"
    if out is None:
        out = Path("model.mfpkg" if fmt == "mfpkg" else "model.onnx")
    elif fmt == "onnx" and out.suffix.lower() == ".mfpkg":
        raise InvalidInput(f"--format onnx writes an ONNX graph; {out.name} names a model package.",
                           hint="Use --format mfpkg, or an --out name ending in .onnx.")
    m = open_ws(workspace).model(model)
    if fmt == "mfpkg":
        result = {"model": m.ref, "path": str(m.export(out))}
    elif fmt == "onnx":
        from ..export.onnx import export_onnx

        result = dict(export_onnx(m.folder, out, model_name=m.name, model_version=m.version), model=m.ref)
    else:
        raise InvalidInput(f"--format must be onnx or mfpkg; got {fmt!r}.")
    if json_out:
        emit_json(result)
    else:
        extra = f" (max abs difference vs native {result['max_abs_diff']:.2e} on {result['n_checked']} rows)" if "max_abs_diff" in result else ""
        console.print(f"Wrote {m.ref} to {result['path']}{extra}")

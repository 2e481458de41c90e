"""The ``modelfab`` command. Thin: every command is one call into the Python API."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from .. import __version__
from .common import err_console

app = typer.Typer(
    name="modelfab",
    help="modelfab: import data, train models with AutoML, evaluate, and serve them — on your own machine.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelfab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", help="Workspace folder (also accepted after each command; default: $MODELFAB_HOME, else the current folder)."),
) -> None:
    """modelfab command line."""
    if workspace is not None:
        os.environ["MODELFAB_HOME"] = str(workspace)


def _register() -> None:
    from . import data, registry, serve, train  # noqa: F401  (commands register themselves on import)
    from . import ops  # noqa: F401  (backup, restore, gc, migrate-storage)

    from importlib.util import find_spec

    if find_spec("modelfab.cli.web") is not None:  # the browser UI
        from . import web  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    from ..errors import ModelfabError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("MODELFAB_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere on the line
    want_json = "--json" in argv
    _register()
    try:
        app(args=argv, prog_name="modelfab")  # click handles usage errors and exits
    except ModelfabError as exc:
        if debug:
            raise
        _fail(exc.code, exc.message, exc.exit_code, want_json, hint=exc.hint)
    except KeyboardInterrupt:
        err_console.print("[yellow]Interrupted: nothing half-written was kept.[/]")
        sys.exit(130)
    except Exception as exc:  # an internal error: one line, no traceback unless asked
        if debug:
            raise
        from ..storage.errors import mask_password, path_error, translate

        known = translate(exc) or path_error(exc)  # database down, disk full, a path under a file, ...: said plainly
        if known is not None:
            _fail(known.code, known.message, known.exit_code, want_json, hint=known.hint)
        # never an SQL statement or its parameters (SQLAlchemy appends both), never a password
        text = mask_password(str(exc).split("\n[SQL:")[0].split("\n(Background on this error")[0].strip())
        _fail("internal", f"internal error: {type(exc).__name__}: {text.splitlines()[0][:500] if text else ''}", 1,
              want_json, hint="Run again with --debug for the traceback, and report it.")


def _fail(code: str, message: str, exit_code: int, want_json: bool, hint: str | None = None) -> None:
    if want_json:
        import json

        # one line: line-per-object readers (listen --json) take it like any other line
        sys.stdout.write(json.dumps({"error": {"code": code, "message": message, "hint": hint}}, ensure_ascii=False)
                         + "\n")
        sys.stdout.flush()
    else:
        from rich.text import Text

        err_console.print(Text.assemble(("error: ", "bold red"), message + (f" {hint}" if hint else "")))
    sys.exit(exit_code)

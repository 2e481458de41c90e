"""``modelfab ui`` (the browser UI) and ``modelfab users ...`` (its accounts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from . import app
from .common import JsonOpt, WorkspaceOpt, add_row, console, emit_json, err_console, open_ws

users_app = typer.Typer(help="Accounts of the browser UI (modelfab ui).", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _read_password(confirm: bool = True) -> str:
    """Prompted (hidden, twice) on a terminal; the first line of stdin otherwise."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, _ . @ -).")],
    role: Annotated[str, typer.Option("--role", help="admin | labeler | viewer.")] = "viewer",
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a UI account. The password is prompted (or read from stdin when it is not a terminal)."""
    from ..web.store import WebStore, check_role, check_user_name

    check_user_name(name)
    check_role(role)
    ws = open_ws(workspace)
    user = WebStore(ws.meta).create_user(name, _read_password(), role)
    if json_out:
        emit_json({"id": user["id"], "name": user["name"], "role": user["role"]})
        return
    import shlex

    console.print(f"Created {role} [bold]{user['name']}[/]. Start the UI with: "
                  f"[cyan]modelfab ui -w {escape(shlex.quote(str(ws.root)))}[/]", highlight=False)


@users_app.command("list")
def users_list(workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """List UI accounts (never their passwords)."""
    from ..web.store import WebStore

    ws = open_ws(workspace)
    rows = [{k: u[k] for k in ("id", "name", "role", "created_at", "last_login_at", "disabled_at")}
            for u in WebStore(ws.meta).list_users()]
    if json_out:
        emit_json({"users": rows})
        return
    if not rows:
        console.print("No accounts yet. Create the first admin: [cyan]modelfab users create NAME --role admin[/]")
        return
    t = Table(title="UI accounts")
    for col in ("name", "role", "created", "last login", "disabled"):
        t.add_column(col)
    for r in rows:
        add_row(t, r["name"], r["role"], r["created_at"], r["last_login_at"] or "", r["disabled_at"] or "")
    console.print(t)


@users_app.command("passwd")
def users_passwd(name: Annotated[str, typer.Argument(help="User name.")], workspace: WorkspaceOpt = None,
                 json_out: JsonOpt = False) -> None:
    """Set a new password (prompted, or stdin); the user's sessions are logged out."""
    from ..web.store import WebStore

    ws = open_ws(workspace)
    WebStore(ws.meta).set_password(name, _read_password())
    if json_out:
        emit_json({"name": name, "password_changed": True})
    else:
        console.print(f"Password of {name} changed; their open sessions were logged out.", markup=False)


@users_app.command("role")
def users_role(name: Annotated[str, typer.Argument(help="User name.")],
               role: Annotated[str, typer.Argument(help="admin | labeler | viewer.")],
               workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Change a user's role."""
    from ..web.store import WebStore

    ws = open_ws(workspace)
    WebStore(ws.meta).set_role(name, role)
    if json_out:
        emit_json({"name": name, "role": role})
    else:
        console.print(f"{name} is now {role}.", markup=False)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="User name.")], workspace: WorkspaceOpt = None,
                  json_out: JsonOpt = False) -> None:
    """Disable an account: it cannot log in, and its sessions end now."""
    from ..web.store import WebStore

    ws = open_ws(workspace)
    WebStore(ws.meta).disable_user(name)
    if json_out:
        emit_json({"name": name, "disabled": True})
    else:
        console.print(f"{name} is disabled.", markup=False)


@app.command("ui")
def ui_cmd(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (default: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    import_root: Annotated[Optional[Path], typer.Option("--import-root", envvar="MODELFAB_UI_IMPORT_ROOT", help="Server folder whose subfolders may be imported from the browser.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Start the browser UI: import, label, train, evaluate and try models without a terminal."""
    import os

    import uvicorn

    from ..web import create_web_app
    from ..web.config import WebSettings
    from ..web.store import WebStore
    from .serve import _check_port, _is_loopback

    ws = open_ws(workspace)
    if import_root is not None:
        if not import_root.is_dir():
            from ..errors import InvalidInput

            raise InvalidInput(f"--import-root {import_root} is not a folder.")
        os.environ["MODELFAB_UI_IMPORT_ROOT"] = str(import_root.resolve())
    settings = WebSettings.from_env(ws.settings)
    _check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"modelfab UI for workspace {ws.root.resolve()} on http://{shown}:{port}  (Ctrl-C stops)",
                  markup=False, highlight=False)
    if WebStore(ws.meta).count_users() == 0:
        console.print("No accounts yet: nobody can log in. Create the first admin (asks for a password):",
                      markup=False)
        console.print(f"  modelfab users create NAME --role admin --workspace {ws.root.resolve()}",
                      markup=False, highlight=False)
    if not _is_loopback(host):
        err_console.print("Listening beyond this machine over plain http: put a TLS reverse proxy in front and set "
                          "MODELFAB_UI_SECURE_COOKIES=1 (and MODELFAB_UI_ORIGINS to its address).",
                          markup=False, highlight=False)
    application = create_web_app(ws, settings)
    uvicorn.run(application, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)

"""``modelfab serve``, ``tokens``, ``demo``."""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from . import app
from .common import JsonOpt, WorkspaceOpt, console, emit_json, open_ws, add_row

tokens_app = typer.Typer(help="API tokens for the REST server.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    from ..errors import Conflict

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise Conflict(f"Cannot listen on {host}:{port}: {exc.strerror}.",
                           hint="Another program holds the port: pass --port with a free one.") from None


def _check_no_auth(host: str, no_auth: bool) -> None:
    from ..errors import InvalidInput

    if no_auth and not _is_loopback(host):
        raise InvalidInput(f"--no-auth is only allowed on a loopback address (127.0.0.1, ::1); got {host!r}.",
                           hint="Create a token with `modelfab tokens create NAME` and drop --no-auth.")


def _check_listen_args(port: int, workers: int) -> None:
    """--port and --workers checked before anything else (a port of 80000 was an OverflowError)."""
    from ..errors import InvalidInput

    if not 1 <= port <= 65535:
        raise InvalidInput(f"--port must be 1..65535; got {port}.", hint="E.g. --port 8000.")
    if workers < 1:
        raise InvalidInput(f"--workers is a number of processes, 1 or more; got {workers}.",
                           hint="E.g. --workers 2 (about one per CPU core).")


def http_url(host: str, port: int) -> str:
    """``http://host:port``, an IPv6 address in brackets (``http://[::1]:8000``)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_server(ws, refs: list[str] | None, host: str, port: int, no_auth: bool, workers: int = 1,
               announce=None) -> None:
    """Check the address, load and verify the models, then ``announce(model_set)`` (the banner: only what
    was really loaded) and listen."""
    import uvicorn

    from ..serving.app import configure_request_log, create_app

    _check_listen_args(port, workers)
    _check_no_auth(host, no_auth)
    _check_port(host, port)
    configure_request_log()
    application = create_app(ws, refs, auth=not no_auth)  # loads and verifies every model before listening
    if announce is not None:
        announce(application.state.models)
    if workers > 1:
        import os

        from ..serving.factory import CONFIG_ENV

        os.environ[CONFIG_ENV] = json.dumps({"workspace": str(ws.root.resolve()), "models": refs, "auth": not no_auth})
        uvicorn.run("modelfab.serving.factory:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level="warning", timeout_graceful_shutdown=10, timeout_keep_alive=5)
        return
    uvicorn.run(application, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10,
                timeout_keep_alive=5)


@app.command("serve")
def serve_cmd(
    models: Annotated[Optional[list[str]], typer.Argument(help="Model(s) to serve: NAME, NAME:VERSION or NAME@ALIAS (resolved at start). None: every production model, following promotions.")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (1..65535).")] = 8000,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without tokens (loopback only).")] = False,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (uvicorn), 1 or more.")] = 1,
    workspace: WorkspaceOpt = None,
) -> None:
    """Serve models over REST: POST /v1/models/{name}/predict, /healthz, /readyz, /docs."""
    _check_listen_args(port, workers)  # before the banner: a refused start prints no "Serving ..."
    _check_no_auth(host, no_auth)
    ws = open_ws(workspace)
    base = http_url(host, port)

    def announce(model_set) -> None:  # after the port check and the model loading: only what is served
        served = sorted(model_set.models.values(), key=lambda m: m.name)
        names = ", ".join(m.ref for m in served) or "none"
        if model_set.follow_production:
            what = f"production models ({names}); promotions switch over live"
        else:
            what = names
        console.print(f"Serving {what} on {base}  (docs: {base}/docs)", markup=False)
        for ref, why in sorted(model_set.refused.items()):
            console.print(f"Not serving {ref}: {why}", markup=False)
        if not served:
            console.print("No model can be served: /readyz answers 503 until a good version is promoted "
                          "(modelfab models promote NAME:VERSION).", markup=False)
        if not no_auth:
            console.print("Requests need 'Authorization: Bearer <token>' (create one: modelfab tokens create NAME).")
        if served:
            m = served[0]
            route = "predict-file" if m.manifest.get("modality") in ("image", "signal") else "predict"
            how = "  (multipart field 'file')" if route == "predict-file" else ""
            console.print(f"Predict: POST {base}/v1/models/{m.name}/{route}{how}   Ctrl-C stops.", markup=False)

    run_server(ws, models or None, host, port, no_auth, workers=workers, announce=announce)


def _expiry(expires_in: str | None) -> str | None:
    """``30d``, ``12h``, ``90m`` (or a bare number of days) -> the UTC time the token stops working."""
    import datetime as dt
    import re

    from ..errors import InvalidInput

    if expires_in is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([dhm]?)\s*", expires_in.lower())
    if not m or int(m.group(1)) < 1:
        raise InvalidInput(f"--expires-in must be a duration such as 30d, 12h or 90m (1 or more); got {expires_in!r}.")
    unit = {"d": "days", "": "days", "h": "hours", "m": "minutes"}[m.group(2)]
    amount = int(m.group(1))
    if amount > {"days": 36500, "hours": 876000, "minutes": 52560000}[unit]:
        raise InvalidInput(f"--expires-in {expires_in} is more than 100 years.", hint="Leave it out for no expiry.")
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(**{unit: amount})
    return when.isoformat(timespec="seconds")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the token by.")],
    scope: Annotated[str, typer.Option("--scope", help="predict | admin.")] = "predict",
    expires_in: Annotated[Optional[str], typer.Option("--expires-in", help="Stop working after this long: 30d, 12h, 90m (default: never).")] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an API token. It is shown once; only its hash is stored."""
    expires_at = _expiry(expires_in)
    ws = open_ws(workspace)
    token_id, plain = ws.create_token(name, scope, expires_at=expires_at)
    if json_out:
        emit_json({"id": token_id, "name": name, "scope": scope, "expires_at": expires_at, "token": plain})
        return
    until = f", expires {expires_at}" if expires_at else ""
    console.print(f"Token {token_id} ({scope}{until}) — copy it now, it is not shown again:", markup=False)
    console.print(plain, markup=False)


@tokens_app.command("list")
def tokens_list(workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """List tokens (never their secret)."""
    ws = open_ws(workspace)
    rows = [{k: r[k] for k in ("id", "name", "scope", "created_at", "expires_at", "revoked_at")} for r in ws.meta.list_tokens()]
    if json_out:
        emit_json({"tokens": rows})
        return
    t = Table(title="API tokens")
    for col in ("id", "name", "scope", "created", "expires", "revoked"):
        t.add_column(col)
    for r in rows:
        add_row(t, str(r["id"]), r["name"], r["scope"], r["created_at"], r["expires_at"] or "never",
                r["revoked_at"] or "")
    console.print(t)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="Token id (see `tokens list`).")],
                  workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Revoke a token: requests with it are refused from now on."""
    ws = open_ws(workspace)
    ws.meta.revoke_token(token_id)
    if json_out:
        emit_json({"id": token_id, "revoked": True})
    else:
        console.print(f"Token {token_id} revoked.")


@app.command("demo")
def demo_cmd(
    directory: Annotated[Path, typer.Option("--dir", help="Demo workspace folder.")] = Path("demo-workspace"),
    port: Annotated[int, typer.Option("--port", help="Port for the model server.")] = 8000,
    budget: Annotated[str, typer.Option("--budget", help="Training budget.")] = "30",
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server at the end.")] = True,
) -> None:
    """Set up a demo workspace, train on generated factory data, write the report, serve the model."""
    from ..demo import write_factory_csv
    from ..workspace import Workspace

    ws = Workspace.init(directory)
    csv_path = write_factory_csv(directory / "data" / "factory_quality.csv")
    res = ws.import_table(csv_path, name="factory")
    ds = res.dataset
    console.print(f"1/4 data: {ds.ref} ({ds.n_rows:,} rows, {ds.n_cols} columns) " + ("imported" if res.created else "already imported"))
    existing = [m for m in ws.models("factory") if m.manifest.get("data", {}).get("dataset_id") == ds.id]
    if existing:
        model = existing[-1]
        console.print(f"2/4 model: reusing {model.ref} (delete {directory} to train again)")
    else:
        console.print(f"2/4 training with a {budget} s budget ...")
        from .train import train_cmd

        train_cmd(dataset=ds.ref, target="quality", task="auto", budget=budget, metric=None, name="factory", seed=0,
                  normal_label="normal", max_false_alarm=0.01, learners=None, ensemble=True,
                  workspace=directory, json_out=False)
        model = ws.model("factory")
    html, _ = model.write_report()
    console.print(f"3/4 report: {html}")
    _, token = ws.create_token("demo", "predict")
    sample = ws.load_frame(ds).drop(columns=["quality"]).head(1)
    record = json.loads(sample.to_json(orient="records"))[0]
    body = json.dumps({"records": [record]})
    console.print("4/4 serving on http://127.0.0.1:%d  (GET /healthz, docs at /docs). Try:" % port)
    console.print(f"curl -s -X POST http://127.0.0.1:{port}/v1/models/{model.name}/predict "
                  f"-H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{body}'",
                  markup=False, soft_wrap=True)
    if serve:
        console.print("Ctrl-C stops the server.")
        run_server(ws, [model.ref], "127.0.0.1", port, no_auth=False)


@app.command("listen")
def listen_cmd(
    model: Annotated[str, typer.Argument(help="A recordings model: NAME or NAME:VERSION.")],
    file: Annotated[Optional[Path], typer.Option("--file", help="Follow a WAV file that is being written (else raw PCM on stdin).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="stdin PCM format: s16le | s32le | f32le.")] = "s16le",
    channels: Annotated[int, typer.Option("--channels", help="stdin PCM channels (averaged to mono).")] = 1,
    sample_rate: Annotated[Optional[int], typer.Option("--sample-rate", help="stdin PCM sample rate (default: the model's).")] = None,
    smooth: Annotated[int, typer.Option("--smooth", help="Anomaly: decide on the mean score of the last N windows.")] = 5,
    idle_timeout: Annotated[float, typer.Option("--idle-timeout", help="--file: stop after this many seconds without new data.")] = 10.0,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score a live signal window by window: one line per window, as soon as the window is complete."""
    import sys

    from ..errors import InvalidInput
    from ..streaming import StreamScorer, check_pcm, follow_wav, pcm_chunks

    if smooth < 1:
        raise InvalidInput(f"--smooth is a number of windows, 1 or more (1: no smoothing); got {smooth}.")
    if sample_rate is not None and not 1 <= sample_rate <= 1_000_000:
        raise InvalidInput(f"--sample-rate is in Hz, 1..1,000,000; got {sample_rate}.",
                           hint="Give the rate the recorder sends, e.g. 16000.")
    if not (idle_timeout > 0 and idle_timeout < float("inf")):  # NaN fails both
        raise InvalidInput(f"--idle-timeout is a number of seconds above 0; got {idle_timeout}.",
                           hint="e.g. --idle-timeout 30 to stop after 30 s without new data.")
    if file is None:
        check_pcm(fmt, channels)
    if file is not None and not file.is_file():
        what = "a folder" if file.is_dir() else "no such file"
        raise InvalidInput(f"--file {file}: expected a WAV file being written, got {what}.",
                           hint="Start the recorder first (the file must exist when listen starts), or leave out "
                                "--file to read raw PCM from stdin.")
    ws = open_ws(workspace)
    m = ws.model(model)
    pred = m.predictor
    if m.manifest.get("modality") != "signal":
        raise InvalidInput(f"{m.ref} is a model of {m.manifest.get('modality')} data; listen needs a model trained on recordings.")
    scorer = StreamScorer(pred, smooth=smooth)
    if file is not None:
        try:
            rate, chunks = follow_wav(file, idle_timeout, scorer.hop)
        except OSError as exc:  # removed or unreadable between the check and the open
            raise InvalidInput(f"--file {file}: expected a readable WAV file, got: {exc.strerror or exc}.",
                               hint="Check the path and its permissions.") from None
    else:
        rate, chunks = sample_rate or pred.sample_rate, pcm_chunks(sys.stdin.buffer, fmt, channels, scorer.hop)
    if rate != pred.sample_rate:
        raise InvalidInput(f"The live signal is at {rate} Hz; {m.ref} was trained at {pred.sample_rate} Hz.",
                           hint="Record at the model's rate.")
    if not json_out:
        err_print = typer.echo
        err_print(f"listening: {m.ref}, {rate} Hz, window {scorer.win / rate:.2f} s, hop {scorer.hop / rate:.2f} s", err=True)
    for chunk in chunks:
        for row in scorer.feed(chunk):
            if json_out:
                sys.stdout.write(json.dumps(row) + "\n")
            elif "error" in row:
                sys.stdout.write(f"{row['start_s']:9.2f}-{row['end_s']:<9.2f} skipped: {row['error']}\n")
            elif pred.task == "anomaly":
                flag = "ANOMALY" if row["is_anomaly"] else "ok"
                sys.stdout.write(f"{row['start_s']:9.2f}-{row['end_s']:<9.2f} score {row['score']:8.3f}  "
                                 f"level {row['level']:8.3f}  threshold {row['threshold']:.3f}  {flag}\n")
            else:
                sys.stdout.write(f"{row['start_s']:9.2f}-{row['end_s']:<9.2f} {row['label']}  {row['confidence']:.3f}\n")
            sys.stdout.flush()
    left = scorer.leftover_s()
    if left > 0 and not json_out:
        typer.echo(f"stream ended: the last {left:.2f} s did not fill a window and were not scored", err=True)

"""Deployments from the browser: ``modelfab serve`` as a managed process on 127.0.0.1.

One record per port in ``<workspace>/tmp/web-deploy/<port>.json`` (pid, model,
who, when) and the server's output in ``<port>.log``, so a deployment outlives
page reloads and restarts of the UI. The server process runs in its own session;
stopping it sends SIGTERM to that group (SIGKILL after 10 s), and only after
checking that the pid still belongs to a ``modelfab serve`` on that port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import Conflict, InvalidInput, NotFound
from ..storage.metadata import utcnow

HOST = "127.0.0.1"


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [p.decode("utf-8", "replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        return []


class Deployments:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.folder = ws.tmp_dir / "web-deploy"
        self.procs: dict[int, subprocess.Popen] = {}

    def _record_path(self, port: int) -> Path:
        return self.folder / f"{int(port)}.json"

    def _ours(self, rec: dict) -> bool:
        """Is the record's pid still the server we started (not a recycled pid)?"""
        proc = self.procs.get(rec["port"])
        if proc is not None and proc.pid == rec["pid"]:
            return proc.poll() is None
        cmd = _cmdline(int(rec["pid"]))
        return "serve" in cmd and str(rec["port"]) in cmd and any("modelfab" in c for c in cmd)

    def start(self, *, port: int, model: str | None, user: str) -> dict:
        if not 1024 <= int(port) <= 65535:
            raise InvalidInput(f"The port must be a number from 1024 to 65535; got {port}.")
        port = int(port)
        if self._record_path(port).is_file() and self.status(port)["state"] in ("starting", "running"):
            raise Conflict(f"A model server started here already runs on port {port}.",
                           hint="Stop it first, or pick another port.")
        if not port_is_free(port):
            raise Conflict(f"Port {port} on {HOST} is busy: another program (maybe this UI) listens there.",
                           hint="Pick another port, e.g. 8001, or stop the program that holds it.")
        if model:
            model = self.ws.model(model).name  # raises NotFound with a clear message
        self.folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "modelfab", "serve"] + ([model] if model else []) + \
              ["--host", HOST, "--port", str(port), "-w", str(self.ws.root.resolve())]
        env = dict(os.environ, PYTHONUNBUFFERED="1", LOGNAME=user, USER=user)
        env.pop("MODELFAB_HOME", None)
        with open(self.folder / f"{port}.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, close_fds=True)
        self.procs[port] = proc
        rec = {"port": port, "pid": proc.pid, "model": model or "", "started_at": utcnow(), "started_by": user,
               "url": f"http://{HOST}:{port}"}
        tmp = self._record_path(port).with_suffix(".tmp")
        tmp.write_text(json.dumps(rec))
        tmp.replace(self._record_path(port))
        return self.status(port)

    def status(self, port: int) -> dict:
        path = self._record_path(port)
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            raise NotFound(f"No model server was started from here on port {port}.") from None
        state = "stopped"
        if self._ours(rec):
            state = "running" if self._healthy(rec["port"]) else "starting"
        elif self._log_tail(rec["port"]):
            state = "failed"
        return dict(rec, state=state, log=self._log_tail(rec["port"]) if state in ("failed", "starting") else "")

    def _healthy(self, port: int) -> bool:
        import httpx

        try:
            return httpx.get(f"http://{HOST}:{port}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def _log_tail(self, port: int, n: int = 600) -> str:
        try:
            data = (self.folder / f"{int(port)}.log").read_bytes()[-n:]
        except OSError:
            return ""
        return data.decode("utf-8", "replace").strip()

    def list(self) -> list[dict]:
        if not self.folder.is_dir():
            return []
        out = []
        for p in sorted(self.folder.glob("*.json")):
            try:
                out.append(self.status(int(p.stem)))
            except (NotFound, ValueError):
                continue
        return out

    def stop(self, port: int, wait_s: float = 10.0) -> dict:
        rec = self.status(port)
        if rec["state"] in ("running", "starting") and self._ours(rec):
            try:
                os.killpg(int(rec["pid"]), signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and self._ours(rec):
                self._reap(port)
                time.sleep(0.1)
            if self._ours(rec):
                try:
                    os.killpg(int(rec["pid"]), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self._reap(port, block=True)
        self._record_path(port).unlink(missing_ok=True)
        (self.folder / f"{int(port)}.log").unlink(missing_ok=True)
        return dict(rec, state="stopped")

    def _reap(self, port: int, block: bool = False) -> None:
        proc = self.procs.get(port)
        if proc is None:
            return
        try:
            proc.wait(timeout=5) if block else proc.poll()
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is not None:
            self.procs.pop(port, None)

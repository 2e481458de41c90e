"""Background jobs of the UI (training, imports, relabelling): one worker process each.

The job row (``jobs`` table) is the truth the pages read, so a job survives a
page reload and a restart of the UI. A worker process (``python -m
modelfab.web.worker``) writes its progress there; cancelling sets the state to
``cancelling``, which the worker's progress callback turns into
``modelfab.errors.Cancelled`` before anything is registered. A worker that
does not stop within the grace period is killed (blobs first, row last: a
killed worker never leaves a half-registered model).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import Conflict, NotFound

TERMINAL = ("done", "failed", "cancelled")
ACTIVE = ("queued", "running", "cancelling")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as gone
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().split(b")")[-1].split()[0] != b"Z"
    except OSError:
        return True


class JobRunner:
    def __init__(self, ws, cancel_grace_s: float = 15.0) -> None:
        self.ws = ws
        self.grace = cancel_grace_s
        self.procs: dict[int, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.folder = ws.tmp_dir / "web-jobs"
        self.folder.mkdir(exist_ok=True)

    def log_path(self, job_id: int) -> Path:
        return self.folder / f"{int(job_id)}.log"

    def pid_path(self, job_id: int) -> Path:
        return self.folder / f"{int(job_id)}.pid"

    def start(self, kind: str, params: dict, user: str) -> int:
        job_id = self.ws.meta.create_job(kind, dict(params, user=user))
        env = dict(os.environ, LOGNAME=user, USER=user, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
        env.pop("MODELFAB_HOME", None)
        with open(self.log_path(job_id), "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "modelfab.web.worker", str(self.ws.root.resolve()),
                                     str(job_id)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True, close_fds=True)
        self.pid_path(job_id).write_text(str(proc.pid))
        with self.lock:
            self.procs[job_id] = proc
        return job_id

    def _pid(self, job_id: int) -> int | None:
        with self.lock:
            proc = self.procs.get(job_id)
        if proc is not None:
            return None if proc.poll() is not None else proc.pid
        try:
            pid = int(self.pid_path(job_id).read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def get(self, job_id: int) -> dict:
        """The job row; a job whose worker died without saying so is marked failed here."""
        job = self.ws.meta.get_job(job_id)
        if job["state"] in ACTIVE and self._pid(job_id) is None:
            time.sleep(0.2)  # the worker may be writing its last update right now
            job = self.ws.meta.get_job(job_id)
            if job["state"] in ACTIVE:
                if job["state"] == "cancelling":
                    self.ws.meta.update_job(job_id, state="cancelled", message="cancelled")
                else:
                    self.ws.meta.update_job(job_id, state="failed", error=self._tail(job_id) or
                                            "The worker process stopped without a result.")
                self._clean_scratch(job_id)
                job = self.ws.meta.get_job(job_id)
        return job

    def _clean_scratch(self, job_id: int) -> None:
        """A worker that was killed (cancel) or died cannot clean its temp folder: do it for it."""
        import shutil

        shutil.rmtree(self.folder / f"{int(job_id)}.scratch", ignore_errors=True)

    def _tail(self, job_id: int, n: int = 800) -> str:
        try:
            data = self.log_path(job_id).read_bytes()[-n:]
        except OSError:
            return ""
        return data.decode("utf-8", "replace").strip()

    def cancel(self, job_id: int) -> dict:
        job = self.get(job_id)
        if job["state"] in TERMINAL:
            raise Conflict(f"Job {job_id} has already finished ({job['state']}).")
        self.ws.meta.update_job(job_id, state="cancelling", message="cancelling")
        threading.Thread(target=self._enforce_cancel, args=(job_id,), daemon=True).start()
        return self.ws.meta.get_job(job_id)

    def _enforce_cancel(self, job_id: int) -> None:
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            if self._pid(job_id) is None:
                break
            time.sleep(0.25)
        pid = self._pid(job_id)
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            with self.lock:
                proc = self.procs.get(job_id)
            if proc is not None:
                proc.wait(timeout=10)
        self._clean_scratch(job_id)
        try:
            job = self.ws.meta.get_job(job_id)
        except NotFound:
            return
        if job["state"] in ACTIVE:
            self.ws.meta.update_job(job_id, state="cancelled", message="cancelled")

    def recover(self) -> None:
        """At start: jobs left active by a previous UI whose worker is gone are marked failed."""
        for job in self.ws.meta.list_jobs(limit=200):
            if job["state"] in ACTIVE:
                self.get(job["id"])

    def shutdown(self) -> None:
        """Workers keep running when the UI stops; only reap finished children."""
        with self.lock:
            for proc in self.procs.values():
                proc.poll()

"""Shared fixtures: real workspaces on disk, the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Real PostgreSQL and S3 servers on localhost: fixtures postgres_url, s3_url, pg_server, s3_server.
pytest_plugins = ["tests.storage.servers"]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run ``modelfab ARGS`` as a user would, in a new process."""
    full_env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    full_env.pop("MODELFAB_HOME", None)
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "modelfab", *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"modelfab {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_server(root, port: int, *models: str, deadline_s: float = 60.0) -> subprocess.Popen:
    """`modelfab serve [MODELS] --port PORT -w ROOT` as a real process, returned once /healthz answers 200."""
    import time

    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "modelfab", "serve", *models, "--port", str(port), "-w", str(root)],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not start within {deadline_s:.0f} s")


def cli_json(*args: str, **kw) -> dict:
    proc = run_cli(*args, "--json", **kw)
    return json.loads(proc.stdout)


@pytest.fixture
def ws(tmp_path):
    from modelfab.workspace import Workspace

    w = Workspace.init(tmp_path / "ws")
    yield w
    w.close()


@pytest.fixture(scope="session")
def factory_csv(tmp_path_factory) -> Path:
    from modelfab.demo import write_factory_csv

    return write_factory_csv(tmp_path_factory.mktemp("data") / "factory.csv", n_rows=1500, seed=1)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, factory_csv):
    """A workspace with the factory table imported and one model trained (short budget)."""
    from modelfab.workspace import Workspace

    root = tmp_path_factory.mktemp("trained") / "ws"
    w = Workspace.init(root)
    ds = w.import_table(factory_csv, name="factory").dataset
    model = w.train(ds, target="quality", budget=8, name="factory")
    yield w, model
    w.close()


def shared_data(sub: str) -> Path:
    p = SHARED_DATA / sub
    if not p.exists():
        pytest.skip(f"{p} not present (opt-in test on the real data sets)")
    return p


def run_docs_python(doc: str, heading: str, folder: Path, monkeypatch) -> dict:
    """Run the python block under ``heading`` (a regex of its title line) of ``docs/<doc>`` in ``folder``, as a
    reader would paste it; returns the names it defined."""
    import re

    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    block = re.search(heading + r"\s+```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(folder)
    namespace: dict = {}
    exec(compile(block, f"docs/{doc}", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace

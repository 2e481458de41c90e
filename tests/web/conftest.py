"""Fixtures for the browser UI: a real workspace, the app behind FastAPI's TestClient, logged-in clients."""

from __future__ import annotations

import os
import re
import time
import warnings
import zipfile
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*")

# The worker processes and servers these tests start inherit this: one thread each, so that
# the web tests stay within their share of the machine when the suite runs with -n 2.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, "page has no CSRF token"
    return m.group(1)


class Web:
    """A workspace with the UI app; ``client(role)`` gives a logged-in TestClient."""

    def __init__(self, root: Path, settings=None) -> None:
        from modelfab.web import create_web_app
        from modelfab.web.store import WebStore
        from modelfab.workspace import Workspace

        self.ws = Workspace.init(root)
        self.store = WebStore(self.ws.meta)
        self.app = create_web_app(self.ws, settings)

    def anon(self):
        from fastapi.testclient import TestClient

        return TestClient(self.app, base_url="http://testserver", follow_redirects=False)

    def client(self, role: str = "admin", name: str | None = None):
        name = name or f"{role}1"
        if self.store.find_user(name) is None:
            self.store.create_user(name, PASSWORD, role)
        c = self.anon()
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 303, r.text
        c.csrf = csrf_of(c.get("/models").text)
        return c

    def wait_job(self, job_id: int, timeout: float = 120) -> dict:
        runner = self.app.state.runner
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = runner.get(job_id)
            if job["state"] in ("done", "failed", "cancelled"):
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s: {self.ws.meta.get_job(job_id)}")

    def close(self) -> None:
        self.ws.close()


def module_site(tmp_path_factory, tag: str):
    """A module's shared site: a Web in its own workspace, ``tmp`` a folder for the module's files; closed after
    (use as ``yield from module_site(tmp_path_factory, "kinds")`` in a module-scoped fixture)."""
    w = Web(tmp_path_factory.mktemp(tag) / "ws")
    w.tmp = tmp_path_factory.mktemp(f"{tag}-files")
    yield w
    w.close()


@pytest.fixture
def web(tmp_path):
    w = Web(tmp_path / "ws")
    yield w
    w.close()


def zip_folder(folder: Path, out: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, prefix + f.relative_to(folder).as_posix())
    return out


@pytest.fixture(scope="session")
def demo_recordings(tmp_path_factory) -> Path:
    from modelfab.modalities.signal import make_machine_dataset

    root = tmp_path_factory.mktemp("webrec") / "fan"
    make_machine_dataset(root, n_normal=12, n_abnormal=6, seconds=2.0, seed=3)
    return root


def snippet_of(page: str, sid: str) -> str:
    """The text of the code snippet ``<pre id=sid>`` of a page, as the user copies it."""
    import html

    m = re.search(rf'<pre class="code" id="{sid}">(.*?)</pre>', page, re.S)
    assert m, f"page has no snippet {sid}"
    return html.unescape(m.group(1))


def run_python_snippet(code: str, token: str, workdir: Path, app=None, monkeypatch=None):
    """Run a page's Python snippet as a user would (TOKEN in the environment, files in the working folder);
    with ``app`` (an ASGI app), its ``httpx.post`` goes to that app instead of the network. The response."""
    import contextlib
    import io

    import httpx

    sent = []
    real_post = httpx.post
    with contextlib.ExitStack() as stack:
        if app is not None:
            from fastapi.testclient import TestClient

            client = stack.enter_context(TestClient(app))
            post = client.post
        else:
            post = real_post
        monkeypatch.setenv("TOKEN", token)
        monkeypatch.chdir(workdir)
        monkeypatch.setattr(httpx, "post", lambda url, **kw: sent.append(post(url, **kw)) or sent[-1])
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, "<snippet>", "exec"), {"__name__": "snippet"})
    assert len(sent) == 1, code
    return sent[0]

"""CSRF, Origin checks, escaping, upload limits, zip-slip and server folders."""

from __future__ import annotations

import os
import re
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from modelfab.web.config import WebSettings
from modelfab.web.uploads import ZipLimits, check_zip, extract_zip, resolve_in_root

from .conftest import Web

XSS = "<img src=x onerror=alert(1)>"


def _post_routes(app):
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        if "POST" in methods:
            yield re.sub(r"\{(\w+)\}", lambda m: "1" if m.group(1) in ("version", "job_id", "port") else "x", route.path)


def test_every_post_needs_the_csrf_token(web):
    c = web.client("admin")
    paths = list(_post_routes(web.app))
    assert len(paths) >= 14  # login, logout, lang, import, label, apply, train, cancel, threshold, promote, tokens, ...
    for path in paths:
        for body in ({}, {"csrf_token": "forged"}):
            r = c.post(path, data=body)
            assert r.status_code == 403, (path, body, r.status_code)
    # a forged header is refused as well; the real one passes the check
    assert c.post("/lang", data={"lang": "zh"}, headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert c.post("/lang", data={"lang": "zh"}, headers={"X-CSRF-Token": c.csrf}).status_code == 303


def test_cross_origin_posts_are_refused_even_with_a_token(web):
    c = web.client("admin")
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Referer": "http://evil.example/page"}):
        r = c.post("/tokens", data={"csrf_token": c.csrf, "name": "t"}, headers=headers)
        assert r.status_code == 403, headers
    assert web.ws.meta.list_tokens() == []
    r = c.post("/tokens", data={"csrf_token": c.csrf, "name": "t"}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200 and len(web.ws.meta.list_tokens()) == 1


def test_security_headers_and_authenticated_media(web):
    c = web.client("viewer")
    r = c.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert r.headers["x-frame-options"] == "SAMEORIGIN" and r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text  # no inline script: data goes in application/json blocks
    anon = web.anon()
    for path in ("/datasets/x/1/audio/0", "/datasets/x/1/thumb/0.png", "/models/x/1/report", "/jobs/1/events"):
        assert anon.get(path).status_code in (303, 401), path


def test_names_and_labels_are_escaped_everywhere(web, tmp_path):
    from modelfab.modalities.signal import make_machine_dataset

    csv = tmp_path / "evil.csv"
    pd.DataFrame({XSS: [1.0, 2.0, 3.0, 4.0] * 5, "quality": [XSS, "ok"] * 10}).to_csv(csv, index=False)
    web.ws.import_table(csv, name="evil")
    rec = tmp_path / "rec"
    make_machine_dataset(rec, n_normal=3, n_abnormal=2, seconds=1.0, seed=1)
    os.rename(rec / "abnormal", rec / XSS)
    web.ws.import_recordings(rec, "evilrec")
    c = web.client("admin")
    c.post("/label/evilrec/1", data={"csrf_token": c.csrf, "item": "normal/normal_0000.wav", "label": XSS + "2"})
    for path in ("/", "/datasets/evil/1", "/datasets/evilrec/1", "/label/evilrec/1", "/train", "/datasets/evilrec/1?label=" + XSS):
        page = c.get(path)
        assert page.status_code == 200, path
        assert XSS not in page.text, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text or "\\u003cimg" in page.text, path


def test_upload_size_limit(tmp_path):
    web = Web(tmp_path / "ws", WebSettings(max_upload_bytes=10_000))
    c = web.client("admin")
    big = b"a,b\n" + b"1,2\n" * 5000
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "table"}, files={"file": ("big.csv", big, "text/csv")})
    assert r.status_code == 413
    # a body without Content-Length is cut off while it streams
    boundary = "xyzzy"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{c.csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\ntable\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../big.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + big + f"\r\n--{boundary}--\r\n".encode()

    def chunks():
        for i in range(0, len(body), 4096):
            yield body[i:i + 4096]

    r = c.post("/import", content=chunks(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    uploads = web.ws.tmp_dir / "web-uploads"
    assert not any(uploads.iterdir())  # nothing left behind
    assert not (web.ws.root.parent / "big.csv").exists() and web.ws.meta.list_jobs() == []
    web.close()


def _zip(path: Path, entries: list[tuple[str, bytes]], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize("entries, symlink, message", [
    ([("../evil.wav", b"x")], None, "'..'"),
    ([("normal/../../evil.wav", b"x")], None, "'..'"),
    ([("/tmp/evil.wav", b"x")], None, "absolute"),
    ([("C:/evil.wav", b"x")], None, "absolute"),
    ([("ok/a.wav", b"x")], "normal/link.wav", "symbolic link"),
    ([("normal/bomb.wav", b"\0" * 5_000_000)], None, "compressed more than"),
    ([(f"n/{i}.wav", b"x") for i in range(30)], None, "entries"),
])
def test_hostile_zips_are_refused(tmp_path, entries, symlink, message):
    web = Web(tmp_path / "ws", WebSettings(max_zip_entries=20))
    c = web.client("labeler")
    z = _zip(tmp_path / "x.zip", entries, symlink)
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "zip"},
               files={"file": ("x.zip", z.read_bytes(), "application/zip")}, headers={"Accept": "application/json"})
    assert r.status_code in (413, 422), r.text
    assert message in r.json()["error"]["detail"]
    assert web.ws.meta.list_jobs() == [] and not any((web.ws.tmp_dir / "web-uploads").iterdir())
    assert not (tmp_path / "evil.wav").exists() and not Path("/tmp/evil.wav").exists()
    web.close()


def test_extraction_stays_inside_and_counts_real_bytes(tmp_path):
    limits = ZipLimits(max_entries=100, max_total_bytes=1000, max_ratio=1000)
    good = _zip(tmp_path / "g.zip", [("normal/a.wav", b"1" * 10), ("__MACOSX/._a.wav", b"x"), (".hidden", b"x")])
    assert extract_zip(good, tmp_path / "out", limits) == 1
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()) == ["normal/a.wav"]
    with pytest.raises(Exception, match="unpacks to more than 1,000 B"):  # a size people can read, not "0 MiB"
        check_zip(_zip(tmp_path / "big.zip", [("a.wav", b"1" * 2000)]), limits)
    with pytest.raises(Exception, match="not a readable zip"):
        (tmp_path / "n.zip").write_bytes(b"PK\x03\x04 not really")
        check_zip(tmp_path / "n.zip", limits)


def test_server_folders_must_stay_inside_the_import_root(tmp_path):
    root = tmp_path / "root"
    (root / "line3" / "normal").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    assert resolve_in_root(root, "line3") == (root / "line3").resolve()
    for bad in ("../outside", "/etc", "line3/../../outside", "escape", "C:/x", "nope"):
        with pytest.raises(Exception):
            resolve_in_root(root, bad)
    with pytest.raises(Exception, match="off"):
        resolve_in_root(None, "line3")
    web = Web(tmp_path / "ws", WebSettings(import_root=root))
    c = web.client("labeler")
    page = c.get("/import").text
    assert "line3" in page and "escape" not in page
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "folder", "folder": "../outside"},
               headers={"Accept": "application/json"})
    assert r.status_code == 422 and web.ws.meta.list_jobs() == []
    web.close()


def test_favicon_is_a_whole_svg(web):
    """The icon's data: URL sits in a double-quoted attribute: its own quotes must not end it early."""
    import xml.etree.ElementTree as ET
    from html.parser import HTMLParser
    from urllib.parse import unquote

    icons = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "link" and a.get("rel") == "icon":
                icons.append(a["href"])

    Links().feed(web.anon().get("/login", follow_redirects=True).text)
    assert len(icons) == 1 and icons[0].startswith("data:image/svg+xml,")
    svg = ET.fromstring(unquote(icons[0].split(",", 1)[1]))
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 32 32" and len(list(svg.iter())) > 3

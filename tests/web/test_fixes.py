"""Fixes from a black-box test of the browser UI: language switch, names in any script, import errors, uploads,
deployments, model page numbers, narrow screens."""

from __future__ import annotations

import re

import pytest


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from .conftest import module_site

    yield from module_site(tmp_path_factory, "fixes")


def _next_field(html: str) -> str:
    import html as h

    m = re.search(r'<input type="hidden" name="next" value="([^"]*)">', html)
    assert m, "page has no language switch"
    return h.unescape(m.group(1))


def test_language_switch_keeps_the_query_string(site):
    c = site.client("admin")
    nxt = _next_field(c.get("/train?dataset=tickets_zh:1&x=a%20b").text)
    assert nxt == "/train?dataset=tickets_zh:1&x=a%20b"
    r = c.post("/lang", data={"csrf_token": c.csrf, "lang": "zh", "next": nxt})
    assert r.status_code == 303 and r.headers["location"] == nxt
    # a path with Chinese in it comes back percent-encoded, never as raw bytes
    nxt = _next_field(c.get("/label/%E7%BB%B4%E4%BF%AE/1?filter=queue&page=2").text)
    assert nxt == "/label/%E7%BB%B4%E4%BF%AE/1?filter=queue&page=2"
    c.post("/lang", data={"csrf_token": c.csrf, "lang": "en", "next": "/"})

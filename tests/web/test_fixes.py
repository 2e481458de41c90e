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


# -- names in any script --------------------------------------------------------------------------------------
def _name_patterns() -> dict[str, str]:
    from pathlib import Path

    found = {}
    for tpl in sorted((Path(__file__).resolve().parents[2] / "modelfab" / "web" / "templates").glob("*.html")):
        for m in re.finditer(r'<input name="(name|alias)"[^>]*?pattern="([^"]+)"', tpl.read_text("utf-8")):
            found[f"{tpl.name}:{m.group(1)}:{m.start()}"] = m.group(2)
    return found


def test_name_fields_accept_what_the_server_accepts_in_a_real_browser():
    """Every name field's HTML pattern agrees with registry.check_name (names of letters of any script)."""
    import html
    import json

    from modelfab.errors import InvalidInput
    from modelfab.registry import check_alias, check_name

    patterns = _name_patterns()
    assert len(patterns) >= 5, patterns  # import x2, preview, train, alias
    names = ["维修工单", "tickets_zh", "line-3.v2", "Ölpumpe", "3d", "_x", "-x", ".x", "a b", "a/b", "x" * 101, "12"]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed")
    from pathlib import Path

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium",
                              args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"])
        page = b.new_page()
        for where, pattern in patterns.items():
            check = check_alias if ":alias:" in where else check_name
            page.set_content(f'<input id="i" pattern="{html.escape(pattern)}">')
            for name in names:
                try:
                    check(name)
                    server_ok = True
                except InvalidInput:
                    server_ok = False
                browser_ok = page.evaluate(f"() => {{ const i = document.getElementById('i'); i.value = {json.dumps(name)};"
                                           " return i.checkValidity(); }")
                assert browser_ok == server_ok, (where, pattern, name, server_ok)
        b.close()


def test_pages_work_with_chinese_dataset_and_model_names(site, tmp_path):
    from urllib.parse import quote

    from modelfab.demo import write_factory_csv

    csv = write_factory_csv(tmp_path / "工单.csv", n_rows=300, seed=2)
    ds = site.ws.import_table(csv, name="维修工单").dataset
    model = site.ws.train(ds, target="quality", budget=8, name="维修模型")
    c = site.client("admin")
    ds_url, m_url = "/datasets/" + quote("维修工单") + "/1", "/models/" + quote("维修模型") + f"/{model.version}"
    for url in (ds_url, "/label/" + quote("维修工单") + "/1?filter=queue&page=1", "/train?dataset=" + quote("维修工单:1"),
                m_url, m_url + "/report", "/models", "/", "/predict?model=" + quote(model.ref)):
        r = c.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
    assert 'value="维修工单:1" selected' in c.get("/train?dataset=" + quote("维修工单:1")).text
    # an alias set on the model's page comes back to the page (redirect percent-encoded)
    r = c.post("/models/" + quote("维修模型") + "/aliases",
               data={"csrf_token": c.csrf, "alias": "线上", "version": str(model.version), "next": f"/models/维修模型/{model.version}"})
    assert r.status_code == 303, r.text[:300]
    assert r.headers["location"] == m_url
    assert "线上" in c.get(m_url).text

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


@pytest.fixture(scope="module")
def zh_model(site):
    """A table classifier named in Chinese, trained on a dataset named in Chinese (not promoted)."""
    from modelfab.demo import write_factory_csv

    csv = write_factory_csv(site.tmp / "工单.csv", n_rows=300, seed=2)
    ds = site.ws.import_table(csv, name="维修工单").dataset
    return site.ws.train(ds, target="quality", budget=8, name="维修模型")


def test_pages_work_with_chinese_dataset_and_model_names(site, zh_model):
    from urllib.parse import quote

    from modelfab.web.views import _default_name

    assert _default_name("维修工单.csv") == "维修工单"  # the name the form suggests from the file (it said 'dataset')
    model = zh_model
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


# -- import errors name the uploaded file, in the page's language; failed uploads leave nothing behind -----------
def _uploads_left(site) -> list:
    from modelfab.web.uploads import upload_root

    return sorted(p.name for p in upload_root(site.ws).iterdir())


def _upload(c, name: str, data: bytes, source: str = "table", preview: bool = True, lang: str = "en", json=True):
    c.cookies.set("mf_lang", lang)
    fields = {"csrf_token": c.csrf, "source": source, "name": ""}
    if preview:
        fields["preview"] = "1"
    return c.post("/import", data=fields, files={"file": (name, data, "application/octet-stream")},
                  headers={"Accept": "application/json"} if json else {})


def _detail(r) -> str:
    return r.json()["error"]["detail"]


LOCKED = bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 504 + b"EncryptionInfo" + bytes(range(256)) * 8


def test_password_protected_workbook_and_empty_file_are_named_and_explained(site):

    c = site.client("labeler")
    before = _uploads_left(site)
    r = _upload(c, "季度 报表.xlsx", LOCKED)
    assert r.status_code == 415 and "季度 报表.xlsx" in _detail(r) and "password" in _detail(r), r.text
    assert "preview" not in _detail(r) and "zip archive" not in _detail(r)
    r = _upload(c, "季度 报表.xlsx", LOCKED, preview=False, lang="zh")
    assert r.status_code == 415 and "季度 报表.xlsx" in _detail(r) and "密码" in _detail(r)
    r = _upload(c, "parts.csv", b"", lang="en")
    assert r.status_code == 422 and _detail(r).startswith("parts.csv is empty (0 bytes)"), r.text
    r = _upload(c, "parts.csv", b"", lang="zh")
    assert "parts.csv 是空文件（0 字节）" in _detail(r)
    # an error page (no script) offers the way back to the Import page
    page = _upload(c, "parts.csv", b"", json=False).text
    assert 'href="/import" id="error-back-to"' in page
    c.cookies.set("mf_lang", "en")
    assert _uploads_left(site) == before


def test_unreadable_csv_preview_names_the_file_offers_import_and_is_removed(site):
    import os

    c = site.client("labeler")
    before = _uploads_left(site)
    r = _upload(c, "产线 数据.csv", os.urandom(5000))
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    assert len(_uploads_left(site)) == len(before) + 1  # kept while the preview waits for the person
    page = c.get(url)
    assert page.status_code in (415, 422), page.text[:500]
    detail = re.search(r'alert error">(.*?)</p>', page.text, re.S).group(1)
    assert "产线 数据.csv" in detail and "preview.csv" not in detail, detail
    assert 'href="/import" id="error-back-to"' in page.text
    assert _uploads_left(site) == before  # the upload that cannot be read is gone
    # the same in Chinese
    r = _upload(c, "产线 数据.csv", os.urandom(5000), lang="zh")
    page = c.get(r.json()["url"]).text
    assert "无法识别文本编码" in page and "返回导入页面" in page and "产线 数据.csv" in page
    assert _uploads_left(site) == before
    # a cancelled preview is removed too
    r = _upload(c, "ok.csv", b"a,b\n1,2\n3,4\n", lang="en")
    token = r.json()["url"].rsplit("/", 1)[1]
    assert c.get(f"/import/preview/{token}").status_code == 200
    assert c.post(f"/import/preview/{token}", data={"csrf_token": c.csrf, "action": "cancel"}).status_code == 303
    assert _uploads_left(site) == before
    c.cookies.set("mf_lang", "en")


def test_zip_errors_are_translated(site):
    c = site.client("labeler")
    r = _upload(c, "production.csv", b"a,b\n1,2\n", source="zip", preview=False, lang="zh")
    assert r.status_code == 415 and "需要以 .zip 结尾的文件" in _detail(r) and "production.csv" in _detail(r), r.text
    r = _upload(c, "photos.zip", b"PK\x03\x04" + bytes(3000), source="zip", preview=False, lang="zh")
    assert r.status_code == 415 and "不是可读取的 zip 压缩包" in _detail(r), r.text
    r = _upload(c, "photos.zip", b"PK\x03\x04" + bytes(3000), source="zip", preview=False, lang="en")
    assert "not a readable zip archive" in _detail(r)
    c.cookies.set("mf_lang", "en")


# -- deployments ----------------------------------------------------------------------------------------------
def test_serving_all_production_models_with_none_promoted_is_refused_before_starting(site):
    import socket

    c = site.client("admin")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not site.ws.meta.models_in_stage("production")
    for lang, words in (("en", "Promote to production"), ("zh", "发布到生产")):
        c.cookies.set("mf_lang", lang)
        r = c.post("/deployments", data={"csrf_token": c.csrf, "port": str(port), "model": ""},
                   headers={"Accept": "application/json"})
        assert r.status_code == 422 and words in r.json()["error"]["detail"], r.text
        assert "modelfab models promote" not in r.text
    c.cookies.set("mf_lang", "en")
    assert not (site.ws.tmp_dir / "web-deploy" / f"{port}.json").exists()  # nothing was started
    page = c.get("/models").text
    if site.ws.models():  # the 'all production' choice cannot be picked; the first model is chosen
        assert '<option value="" disabled>' in page and "none promoted yet" in page


# -- numbers on the model page ----------------------------------------------------------------------------------
def test_rates_read_as_percentages_and_each_metric_is_explained(site, zh_model):
    from urllib.parse import quote

    from modelfab.web.views import _metric

    assert _metric(0.8083, "accuracy") == "80.8%" and _metric(0.0, "false_alarm_rate") == "0.0%"
    assert _metric(0.8731, "roc_auc") == "0.873" and _metric(12.5, "rmse") == "12.500"
    c = site.client("viewer")
    url = "/models/" + quote(zh_model.name) + f"/{zh_model.version}"
    for lang, words in (("en", "Share of the held-out items classified correctly."), ("zh", "留出样本中分类正确的比例。")):
        c.cookies.set("mf_lang", lang)
        page = c.get(url).text
        cards = re.findall(r'<div class="metric" title="([^"]*)"><span class="metric-name">(.*?)</span>'
                           r'<span class="metric-value">(.*?)</span><span class="metric-help">(.*?)</span>', page)
        assert cards, page[:2000]
        by_value = {name: value for _title, name, value, _help in cards}
        assert all(h.strip() and title == h for title, _n, _v, h in cards), cards  # every card says what it means
        acc = "Accuracy" if lang == "en" else "准确率"
        assert by_value[acc].endswith("%"), by_value
        assert words in page
        # the home page and the models list show the model's quality the same way, explained on hover
        for other in ("/", "/models"):
            assert re.search(r'<span class="quality" title="[^"]+">[^<]+ <b>[0-9.]+%?</b>', c.get(other).text), other
    c.cookies.set("mf_lang", "en")


def test_training_progress_says_when_lower_is_better(site, zh_model):
    import json

    c = site.client("admin")
    r = _upload(c, "small.csv", b"a,b\n1,2\n3,4\n", preview=False)
    job_id = r.json()["job"]
    site.wait_job(job_id)
    page = c.get(f"/jobs/{job_id}").text
    data = json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', page, re.S).group(1))
    assert "log_loss" in data["lower_is_better"] and "accuracy" not in data["lower_is_better"]
    assert data["messages"]["job.js.metric_lower"] == "{metric}, lower is better"


# -- the threshold slider of a two-class table moves its confusion matrix ----------------------------------------
def _browser_on(client):
    """A chromium page whose requests to http://testserver/ are answered by ``client`` (a logged-in TestClient)."""
    from pathlib import Path

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium not installed")
    p = sync_playwright().start()
    b = p.chromium.launch(executable_path="/usr/bin/chromium",
                          args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"])
    page = b.new_page()

    def answer(route):
        req = route.request
        r = client.request(req.method, req.url, headers={k: v for k, v in req.headers.items() if k.lower() != "cookie"},
                           content=req.post_data_buffer)
        route.fulfill(status=r.status_code, headers={k: v for k, v in r.headers.items()
                                                     if k.lower() not in ("content-length", "content-encoding")},
                      body=r.content)

    page.route("http://testserver/**", answer)
    return p, b, page


def test_binary_table_confusion_matrix_follows_the_threshold_slider(site, zh_model):
    from urllib.parse import quote

    import numpy as np

    from modelfab.web.evaluate import binary_holdout, confusion

    h = binary_holdout(zh_model)
    assert h is not None, zh_model.manifest.get("labels")
    scores, truth = np.asarray(h["scores"]), np.asarray(h["y_true"])
    c = site.client("viewer")
    base = "/models/" + quote(zh_model.name) + f"/{zh_model.version}"
    # the server: cells and matrix at a chosen threshold, the rows as the matrix counts them
    high = float(np.quantile(scores, 0.9))
    cm = confusion(zh_model, high)
    want = [[int(((truth == i) & ((scores >= high).astype(int) == j)).sum()) for j in (0, 1)] for i in (0, 1)]
    assert cm["matrix"] == want
    cell = c.get(f"{base}/confusion/1/0?threshold={high}").json()
    assert cell["count"] == want[1][0] and len(cell["positions"]) == min(want[1][0], len(cell["positions"]))
    assert c.get(f"{base}/confusion/1/0?threshold=abc").status_code == 422
    # the browser: moving the slider changes the matrix's counts to the slider's false alarms and misses
    p, b, page = _browser_on(c)
    try:
        page.goto("http://testserver" + base)
        before = page.eval_on_selector_all("#confusion button.cell", "bs => bs.map(b => b.textContent)")
        page.eval_on_selector("#threshold-slider", "s => { s.value = s.max; s.dispatchEvent(new Event('input')); }")
        after = page.eval_on_selector_all("#confusion button.cell", "bs => bs.map(b => b.textContent)")
        fa, miss = page.text_content("#fa-count"), page.text_content("#miss-count")
        assert after != before, (before, after)
        assert after[1] == fa and after[2] == miss, (after, fa, miss)  # [neg->pos] false alarms, [pos->neg] misses
        n_pos = int(truth.sum())
        assert int(after[2]) + int(after[3]) == n_pos
    finally:
        b.close()
        p.stop()


# -- phone width: nothing scrolls sideways (tables scroll inside their own box) -------------------------------------
OVERFLOW_JS = """() => {
  const w = document.documentElement.clientWidth, out = [];
  for (const e of document.querySelectorAll('body *')) {
    let inside = false;  // inside a box that scrolls on its own
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if (ox === 'auto' || ox === 'scroll' || ox === 'hidden') { inside = true; break; }
    }
    const r = e.getBoundingClientRect();
    if (!inside && r.width > 0 && r.right > w + 1) { out.push(e.tagName + '.' + e.className + ' ' + Math.round(r.right)); }
  }
  return {scrollW: document.documentElement.scrollWidth, clientW: w, items: out.slice(0, 8)};
}"""


def test_nothing_scrolls_sideways_at_phone_width(site, zh_model, demo_recordings):
    from urllib.parse import quote

    if not any(d.name == "fan" for d in site.ws.datasets()):
        site.ws.import_recordings(demo_recordings, "fan")
    c = site.client("admin")
    r = _upload(c, "宽表 很长的列名.csv", ("零件编号,测量时间,产线,班次,温度读数_摄氏度,压力读数_千帕,振动幅度,质量结果\n"
                                     + "P100001,2026-01-01 08:00,L3,早班,69.95,1.574,1.3,合格\n" * 20).encode())
    preview_url = r.json()["url"]
    m = "/models/" + quote(zh_model.name) + f"/{zh_model.version}"
    pages = ["/", "/datasets/" + quote("维修工单") + "/1", "/datasets/fan/1", "/label/fan/1", preview_url, m, "/models",
             "/train", "/import", "/predict"]
    p, b, page = _browser_on(c)
    problems = {}
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        for lang in ("en", "zh"):
            c.cookies.set("mf_lang", lang)
            for url in pages:
                page.goto("http://testserver" + url)
                got = page.evaluate(OVERFLOW_JS)
                if got["scrollW"] > got["clientW"] or got["items"]:
                    problems[(lang, url)] = got
            # the preview's 'to predict' radios are on screen (reachable without scrolling sideways)
            page.goto("http://testserver" + preview_url)
            for radio in page.query_selector_all("input[name=target]"):
                box = radio.bounding_box()
                if not (box and box["x"] >= 0 and box["x"] + box["width"] <= 390):
                    problems[(lang, "preview radio")] = box
    finally:
        b.close()
        p.stop()
        c.cookies.set("mf_lang", "en")
    assert not problems, problems


def test_uploads_abandoned_for_days_are_swept_when_the_ui_starts(tmp_path):
    """A preview nobody confirmed or cancelled stayed in tmp/web-uploads for ever; the UI removes those older than
    two days when it starts, and keeps the recent ones (a person may still be looking at the preview)."""
    import os
    import time

    from modelfab.web import create_web_app
    from modelfab.web.uploads import upload_root
    from modelfab.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws")
    old, new = upload_root(ws) / ("a" * 32), upload_root(ws) / ("b" * 32)
    for d in (old, new):
        d.mkdir(parents=True)
        (d / "f000").write_bytes(b"x")
    past = time.time() - 3 * 24 * 3600
    os.utime(old, (past, past))
    create_web_app(ws)
    assert not old.exists() and new.exists()
    ws.close()

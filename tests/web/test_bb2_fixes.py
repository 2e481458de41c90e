"""A tester's findings on the train form, job pages, import messages and progress, series pictures and phones."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import numpy as np
import pytest

from .conftest import module_site, zip_folder
from .test_pages import _json
from .test_ui_robustness import _browser_on, _upload


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    yield from module_site(tmp_path_factory, "bb2")


def test_images_with_a_single_label_suggest_anomaly_detection():
    from modelfab.web.views import _train_info

    good_only = SimpleNamespace(kind="image", name="good", stats={"labels": {"good": 40}}, schema={})
    info = _train_info(good_only)
    assert info["suggested"] == "anomaly" and info["normal"] == "good"  # it said "classification"
    one_other = SimpleNamespace(kind="image", name="ok", stats={"labels": {"passed_parts": 40}}, schema={})
    assert _train_info(one_other) == dict(_train_info(one_other), suggested="anomaly", normal="passed_parts")
    two = SimpleNamespace(kind="image", name="two", stats={"labels": {"good": 20, "scratch": 20}}, schema={})
    assert _train_info(two)["suggested"] == "classification"


def test_a_finished_jobs_elapsed_time_is_the_runs_own_figure(site):
    from modelfab.web.views import _job_view

    job = {"id": 1, "kind": "train", "state": "done", "params": {"budget": 30}, "created_at": "2026-01-01T00:00:00",
           "updated_at": "2026-01-01T00:00:45", "result": {"model": "m:1", "elapsed_s": 39.2,
                                                            "live": {"elapsed_s": 32.0, "left_s": 0}}}
    assert _job_view(job)["live"]["elapsed_s"] == 39.2  # the model's "time used", not the last progress report


def test_image_import_counts_images_not_its_two_passes():
    from modelfab.web.worker import _two_passes

    seen = []
    reporter = SimpleNamespace(files=lambda i, n, rel, message="importing", progress=None: seen.append((i, n, message)))
    report = _two_passes(reporter)
    for i in range(0, 80, 8):  # 40 images: checked (0..39), then read (40..79) of "80"
        report(i, 80, "x.png")
    report(80, 80, "")
    assert all(n == 40 for _, n, _m in seen) and seen[-1] == (40, 40, "importing")
    assert seen[0][2] == "checking" and max(i for i, _, _m in seen) == 40


def test_a_broken_image_says_the_checkbox_and_the_job_page_offers_a_way_back(site):
    from PIL import Image

    root = site.tmp / "mixbad" / "good"
    root.mkdir(parents=True)
    for k in range(4):
        Image.fromarray((np.random.default_rng(k).random((32, 32)) * 255).astype("uint8")).save(root / f"g{k}.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    z = zip_folder(site.tmp / "mixbad", site.tmp / "mixbad.zip")
    c = site.client("labeler")
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "zip", "name": "mixbad"},
               files={"file": ("mixbad.zip", z.read_bytes(), "application/zip")}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "failed"
    page = c.get(f"/jobs/{job['id']}").text
    error = re.search(r'id="job-error"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert "--skip-bad" not in error and "Skip files that cannot be read" in error, error
    assert re.search(r'id="job-retry">\s*<a class="btn" href="/import">', page)
    assert re.search(r'<a href="/import" class="on">', page)  # the nav says where the job came from, not Home
    c.cookies.set("mf_lang", "zh")
    assert "跳过无法读取的文件" in c.get(f"/jobs/{job['id']}").text
    c.cookies.set("mf_lang", "en")


def test_a_long_table_preview_ticks_the_series_box_and_names_kinds_as_the_dropdowns(site):
    c = site.client("labeler")
    rows = ["machine_id,time,temp,label"] + [f"M{m},{t},{20 + t * 0.1},{'ok' if m % 2 else 'bad'}"
                                            for m in range(6) for t in range(20)]
    r = _upload(c, "traces.csv", ("\n".join(rows) + "\n").encode())
    page = c.get(r.json()["url"]).text
    assert re.search(r'id="series-options" open', page)
    assert re.search(r'<input type="checkbox" name="series" value="1" id="series-on" checked>', page)
    legend = re.search(r"number: amounts and measurements.*?date/time: dates and times", page)
    assert legend and "numeric:" not in page and "categorical:" not in page


def test_series_pictures_give_each_channel_its_own_scale():
    from PIL import Image

    from modelfab.web.kinds import render_series_png

    t = np.linspace(0, 6.28, 200)
    x = np.stack([20 + np.sin(t), 0.01 * np.sin(3 * t)], axis=1)  # one near 20, one near 0 that moves a little
    img = np.asarray(Image.open(io.BytesIO(render_series_png(x, 260, 140))).convert("RGB")).astype(int)
    red = (img[:, :, 0] > 180) & (img[:, :, 1] < 110) & (img[:, :, 2] < 110)  # the second channel's colour
    rows = np.flatnonzero(red.any(axis=1))
    assert len(rows) and rows.max() - rows.min() > 25, rows  # not a flat line at the bottom


def test_stopping_things_asks_first(site):
    c = site.client("admin")
    page = c.get("/models").text
    assert "<form" in page  # deployments form; the stop button of a running server carries data-confirm
    from pathlib import Path

    js = (Path(__file__).resolve().parents[2] / "modelfab" / "web" / "static" / "app.js").read_text()
    assert 'form[data-confirm]' in js and "window.confirm" in js
    job = Path(__file__).resolve().parents[2] / "modelfab" / "web" / "templates" / "job.html"
    assert "data-confirm=" in job.read_text()


def test_label_page_on_a_phone_and_after_a_reload(site):
    rows = ["text,label"] + [f"row number {i} of the table,{'a' if i % 2 else 'b'}" for i in range(30)]
    (site.tmp / "lab.csv").write_text("\n".join(rows) + "\n")
    site.ws.import_table(site.tmp / "lab.csv", name="lab")
    c = site.client("labeler")
    p, b, page = _browser_on(c)
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto("http://testserver/label/lab/1")
        page.wait_for_selector("#items li")
        assert page.evaluate("() => window.scrollY") == 0  # the page opens at its top, not scrolled to the list
        viewer, items = page.query_selector("#labeler .current").bounding_box(), page.query_selector("#items").bounding_box()
        assert viewer["y"] < items["y"], (viewer, items)  # the item and its label buttons come first
        top = page.query_selector("header.top")
        assert page.evaluate("() => getComputedStyle(document.querySelector('header.top')).position") != "sticky"
        assert top.bounding_box()["height"] < 125
        page.click("#items li:nth-child(6) .file")
        assert page.inner_text("#position").startswith("6 ")
        # the tap brought the picture/row view to the top of the screen
        assert page.evaluate("() => document.querySelector('#labeler .current').getBoundingClientRect().top") < 200
        page.reload()
        page.wait_for_selector("#items li.cur")
        assert page.inner_text("#position").startswith("6 ")  # it went back to 1 of 30
    finally:
        b.close()
        p.stop()

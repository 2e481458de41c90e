"""Labelling images and time series in the browser: the labelling page lists them with their pictures, the
assistant reads their features, the "model disagrees" filter asks their latest model, and "Apply labels" makes
a new dataset version that keeps the same images (masks, boxes) or values without reading them again."""

from __future__ import annotations

import json
from io import BytesIO

import pytest

from .conftest import module_site
from .test_pages import _json


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    yield from module_site(tmp_path_factory, "labelkinds")


@pytest.fixture(scope="module")
def surf(site):
    from modelfab.modalities.image.synth import make_image_dataset

    folder = make_image_dataset(site.tmp / "surf", n_per_class=8, size=48, masks=True, seed=3)
    # one image with a VOC box: boxes must survive a new version of labels
    (folder / "scratch" / "scratch_0.xml").write_text(
        "<annotation><size><width>48</width><height>48</height></size><object><name>scratch</name><bndbox>"
        "<xmin>4</xmin><ymin>5</ymin><xmax>30</xmax><ymax>20</ymax></bndbox></object></annotation>", "utf-8")
    res = site.ws.import_images(folder, "surf")
    assert res.created and res.dataset.stats["boxes"] == 1
    return folder


def _png_size(content: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(BytesIO(content)).size


def _apply(c, site, name: str, version: int) -> dict:
    r = c.post(f"/label/{name}/{version}/apply", data={"csrf_token": c.csrf}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", {k: v for k, v in site.ws.meta.get_job(job["id"]).items() if "err" in k or "mess" in k}
    page = c.get(f"/jobs/{job['id']}").text  # the job page says how long it took (not "-")
    assert 'id="live-elapsed">–<' not in page and 'id="live-elapsed">' in page
    return job["result"]


def test_images_are_labelled_in_the_browser_and_applied_as_a_new_version(site, surf):
    from modelfab.errors import InvalidInput
    import pandas as pd

    from modelfab.images import load_image_tables, relabel_images

    c = site.client("labeler")
    assert 'href="/label/surf/1"' in c.get("/datasets/surf/1").text  # the dataset page leads there
    page = c.get("/label/surf/1").text
    assert page.count('class="row-thumb image"') == 24 and 'id="current-thumb" class="big-image"' in page
    assert "space plays" not in page  # images have no sound
    js = json.loads(page.split('id="page-data">')[1].split("</script>")[0])
    assert js["kind"] == "image" and len(js["items"]) == 24
    big = c.get("/datasets/surf/1/thumb/0.png?size=large")
    assert big.status_code == 200 and big.headers["content-type"] == "image/png"
    assert _png_size(big.content) == (48, 48)  # never enlarged: the browser scales the picture
    # the assistant reads the texture features stored at import: the three generated classes are easy
    assist = _json(c.get("/label/surf/1/assist"))
    assert assist["ready"] and assist["n_labelled"] == 24 and assist["cv_accuracy"] >= 0.8
    # one label changed, two images made unlabelled (in bulk)
    r = _json(c.post("/label/surf/1", data={"csrf_token": c.csrf, "item": "good/good_0.png", "label": "spot"}))
    assert r["ok"] and r["label"] == "spot"
    r = _json(c.post("/label/surf/1/bulk", data={"csrf_token": c.csrf, "items": "spot/spot_0.png\nspot/spot_1.png",
                                                  "label": ""}))
    assert r["items"] == 2
    assert c.post("/label/surf/1", data={"csrf_token": c.csrf, "item": "good/nope.png", "label": "x"}).status_code == 404
    queue = c.get("/label/surf/1?filter=queue").text  # the active-learning queue: the unlabelled images
    assert queue.count('class="row-thumb image"') == 2 and "spot/spot_0.png" in queue
    # apply: a new version with those labels, the same image and mask blobs, the box kept
    res = _apply(c, site, "surf", 1)
    assert res["created"] and res["dataset"] == "surf:2"
    v1, v2 = site.ws.dataset("surf:1"), site.ws.dataset("surf:2")
    assert v2.stats["labels"] == {"good": 7, "scratch": 8, "spot": 7} and v2.stats["unlabelled"] == 2
    assert v2.stats["masks"] == 24 and v2.stats["boxes"] == 1
    refs1, refs2 = (site.ws.meta.blob_refs(f"datasets:{d.id}") for d in (v1, v2))
    assert {k: v for k, v in refs1.items() if ":" in k} == {k: v for k, v in refs2.items() if ":" in k}
    feats, files = load_image_tables(site.ws, v2)
    lab = dict(zip(files["file"], files["label"]))
    assert lab["good/good_0.png"] == "spot" and pd.isna(lab["spot/spot_0.png"]) and lab["good/good_1.png"] == "good"
    assert dict(zip(feats["file"], feats["label"]))["good/good_0.png"] == "spot"
    assert json.loads(files.set_index("file").loc["scratch/scratch_0.png", "boxes"])[0]["x0"] == 4
    assert c.get("/datasets/surf/2/thumb/0.png").status_code == 200
    home = c.get("/").text  # the home page counts the labels of image datasets too
    assert '<span class="chip">spot 7</span>' in home and "unlabelled 2" in home
    # the layer carried over: labelling goes on in the new version; applying it again changes nothing
    assert 'href="/label/surf/2"' in c.get("/datasets/surf/2").text
    assert '<b id="saved-count">0</b>' in c.get("/label/surf/2").text  # carried over, not changes of this version
    assert _apply(c, site, "surf", 2) == {**res, "created": False}
    # the same folder imported again is still version 1 (the version's content hash did not change)
    again = site.ws.import_images(surf, "surf")
    assert not again.created and again.dataset.version == 1
    with pytest.raises(InvalidInput, match="not in surf:1"):
        relabel_images(site.ws, v1, {"../etc/passwd": "x"})
    # a version trains like an imported one: the two unlabelled images are left out
    m = site.ws.train("surf:2", task="classification", budget=5, learners=("logreg",))
    assert m.manifest["data"]["dataset"] == "surf" and m.manifest["data"]["version"] == 2


def test_the_latest_image_model_says_where_it_disagrees(site, surf, monkeypatch):
    from modelfab.web import labeling

    c = site.client("labeler")
    site.ws.train("surf:1", task="classification", budget=5, learners=("logreg",), name="surf-cls")
    _json(c.post("/label/surf/1", data={"csrf_token": c.csrf, "item": "good/good_3.png", "label": "scratch"}))
    page = c.get("/label/surf/1?filter=disagree").text
    assert "surf-cls:1" in page and "good/good_3.png" in page
    assert page.count('class="row-thumb image"') < 24  # not every image: the model agrees on most
    # an anomaly model reads every image: it gives its opinion on a few hundred images, and says so beyond
    site.ws.train("surf:1", task="anomaly", budget=10, normal_label="good", max_false_alarm=0.05, name="surf-anom")
    _json(c.post("/label/surf/1", data={"csrf_token": c.csrf, "item": "spot/spot_5.png", "label": "good"}))
    page = c.get("/label/surf/1?filter=disagree").text
    assert "surf-anom:1" in page and "spot/spot_5.png" in page
    assert "the model&#39;s answer (the pale chip) before the current label" in page  # the two chips explained
    monkeypatch.setattr(labeling, "MAX_IMAGE_OPINIONS", 5)
    site.ws.train("surf:1", task="anomaly", budget=10, normal_label="good", name="surf-anom")  # not cached yet
    page = c.get("/label/surf/1?filter=disagree").text
    assert "this page scores up to 5" in page and "modelfab predict surf-anom:2" in page


def test_series_are_labelled_in_the_browser_and_applied_as_a_new_version(site):
    from modelfab.errors import InvalidInput
    from modelfab.series import load_series, relabel_series
    from tests.modalities.test_series_io import make_series, write_ts

    series, labels, target = make_series(30, 50, channels=2, seed=1)
    write_ts(site.tmp / "shapes.ts", series, labels)
    site.ws.import_series(site.tmp / "shapes.ts", "shapes")
    c = site.client("labeler")
    assert 'href="/label/shapes/1"' in c.get("/datasets/shapes/1").text
    page = c.get("/label/shapes/1").text
    assert page.count('class="row-thumb series"') == 30 and 'class="big-series"' in page
    big = c.get("/datasets/shapes/1/thumb/0.png?size=large")
    small = c.get("/datasets/shapes/1/thumb/0.png")
    assert _png_size(big.content) == (720, 220) and _png_size(small.content) == (260, 70)
    assist = _json(c.get("/label/shapes/1/assist"))  # shape and statistics features: bump vs step
    assert assist["ready"] and assist["cv_accuracy"] >= 0.8
    ids = [str(i) for i in load_series(site.ws, site.ws.dataset("shapes:1"))[2]["id"]]
    first = labels[0]
    other = next(v for v in labels if v != first)
    _json(c.post("/label/shapes/1", data={"csrf_token": c.csrf, "item": ids[0], "label": other}))
    _json(c.post("/label/shapes/1/bulk", data={"csrf_token": c.csrf, "items": ids[1], "label": "unsure"}))
    res = _apply(c, site, "shapes", 1)
    assert res["created"] and res["dataset"] == "shapes:2"
    v1, v2 = site.ws.dataset("shapes:1"), site.ws.dataset("shapes:2")
    assert v2.data_sha == v1.data_sha  # the values are the same blob, the versions' content hashes differ
    assert v1.content_sha[:12] in c.get("/datasets/shapes/1").text and v2.content_sha[:12] in c.get("/datasets/shapes/2").text
    assert v1.content_sha[:12] not in c.get("/datasets/shapes/2").text
    index = load_series(site.ws, v2)[2]
    assert index["label"].iloc[0] == other and index["label"].iloc[1] == "unsure"
    assert list(index["label"].iloc[2:]) == [str(v) for v in labels[2:]]
    assert v2.stats["labels"]["unsure"] == 1
    # numbers as targets (regression): no labelling page, a clear message
    write_ts(site.tmp / "levels.ts", series, [round(float(t), 3) for t in target], regression=True)
    site.ws.import_series(site.tmp / "levels.ts", "levels")
    r = c.get("/label/levels/1")
    assert r.status_code == 422 and "regression" in r.text and "Traceback" not in r.text
    c.cookies.set("mf_lang", "zh")
    assert "回归" in c.get("/label/levels/1").text  # in the reader's language
    c.cookies.set("mf_lang", "en")
    assert 'href="/label/levels/1"' not in c.get("/datasets/levels/1").text
    with pytest.raises(InvalidInput, match="regression"):
        relabel_series(site.ws, site.ws.dataset("levels:1"), {"0": "x"})
    # the latest series classifier gives its opinion (MiniRocket compiled first: a fresh clone compiles it once)
    from tests.test_series_flow import _warm_numba_cache

    _warm_numba_cache([s for s in series[:4]])
    site.ws.train("shapes:1", task="classification", budget=8, name="shapes-cls")
    page = c.get("/label/shapes/1?filter=disagree").text
    assert "shapes-cls:1" in page and f">{ids[0]}<" in page.replace(" <", "<")


def test_images_without_a_mask_beside_images_with_one_show(site, surf):
    """Some images with a mask, others without: every thumbnail and large picture renders (a missing mask read
    back from Parquet is NaN, which is truthy: it was taken for a mask's blob and gave a 500), and only the
    images whose mask marks something carry the mask tag."""
    import shutil

    folder = site.tmp / "some-masks"
    shutil.copytree(surf, folder)
    for p in list((folder / "good").glob("*_mask.png")) + list((folder / "scratch").glob("*_mask.png")):
        p.unlink()
    site.ws.import_images(folder, "somemasks")
    c = site.client("labeler")
    page = c.get("/datasets/somemasks/1").text
    assert page.count('<li id="img-') == 24 and page.count("chip small mask") == 8  # the spots' masks
    for idx in range(24):
        for q in ("", "?size=large"):
            r = c.get(f"/datasets/somemasks/1/thumb/{idx}.png{q}")
            assert r.status_code == 200 and r.headers["content-type"] == "image/png", (idx, q, r.text[:200])

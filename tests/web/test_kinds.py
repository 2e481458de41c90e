"""Images and time series in the browser: import (zip of images, .ts file), dataset pages with cached
thumbnails and label filters, training from the train form, and "Try it" on an uploaded image or series file."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import module_site, run_python_snippet, snippet_of, zip_folder
from .test_pages import _json


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    yield from module_site(tmp_path_factory, "kinds")


@pytest.fixture(scope="module")
def surfaces(site):
    from modelfab.modalities.image.synth import make_image_dataset

    return make_image_dataset(site.tmp / "surf", n_per_class=8, size=48, masks=True, seed=3)


def _import(c, site, source: str, path, name: str, **extra):
    mime = "application/zip" if source == "zip" else "application/octet-stream"
    r = c.post("/import", data={"csrf_token": c.csrf, "source": source, "name": name, **extra},
               files={"file": (path.name, path.read_bytes(), mime)}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", job
    return job


def test_zip_of_images_imports_and_shows_a_grid_with_masks(site, surfaces):
    c = site.client("labeler")
    z = zip_folder(surfaces, site.tmp / "surf.zip", prefix="surf/")
    job = _import(c, site, "zip", z, "surf")
    assert job["result"]["kind"] == "image"
    ds = site.ws.dataset("surf")
    assert ds.kind == "image" and ds.stats["labels"] == {"good": 8, "scratch": 8, "spot": 8} and ds.stats["masks"] == 24
    page = c.get("/datasets/surf/1").text
    assert page.count('<li id="img-') == 24 and "Defect masks" in page and "kind.image" not in page
    assert 'href="/label/surf/1"' in page  # images are labelled in the browser too (tests/web/test_label_kinds.py)
    only = c.get("/datasets/surf/1?label=spot").text
    assert only.count('<li id="img-') == 8 and "spot_" in only and "scratch_" not in only
    assert "kind.image" not in c.get("/").text  # the home page names the kind
    # thumbnails: a PNG, the defect mask tinted red, rendered once then read from the cache
    from io import BytesIO

    import numpy as np
    from PIL import Image

    def index_of(stem: str) -> int:
        return int(re.search(rf'<li id="img-(\d+)">\s*<img[^>]*alt="[^"]*/{stem}\.png', page).group(1))

    def redness(idx: int) -> float:
        r = c.get(f"/datasets/surf/1/thumb/{idx}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        pic = np.asarray(Image.open(BytesIO(r.content)).convert("RGB"), dtype=float)
        assert pic.shape[2] == 3 and max(pic.shape[:2]) <= 176
        return float(((pic[..., 0] - pic[..., 1]) > 60).mean())

    assert redness(index_of("spot_0")) > 0.001 and redness(index_of("good_0")) == 0.0
    assert len(list((site.ws.cache_dir / "web" / "thumbs").rglob("img-*.png"))) == 2
    redness(index_of("spot_0"))  # the second request is served from the cache
    assert len(list((site.ws.cache_dir / "web" / "thumbs").rglob("img-*.png"))) == 2
    assert c.get("/datasets/surf/1/thumb/999.png").status_code == 404
    assert c.get("/datasets/surf/1/thumb/-1.png").status_code == 404


def test_image_thumbnails_do_not_read_the_whole_dataset_each(site, surfaces, monkeypatch):
    """A page shows 50 thumbnails: each is served from the cached file table, not from a fresh lookup of
    every blob of the dataset (20,000 rows for 10,000 images with masks)."""
    c = site.client("labeler")
    if "surf" not in {d.name for d in site.ws.datasets()}:
        _import(c, site, "zip", zip_folder(surfaces, site.tmp / "surf.zip", prefix="surf/"), "surf")
    meta = site.ws.meta
    calls = []
    real = meta.blob_refs
    monkeypatch.setattr(meta, "blob_refs", lambda owner: calls.append(owner) or real(owner))
    for idx in range(6):
        r = c.get(f"/datasets/surf/1/thumb/{idx}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert len(calls) <= 2, calls  # at most the one read of the table (none once it is cached)


def test_an_image_thumbnail_shows_the_boxes_of_its_own_dataset_version(site, surfaces):
    """The same image in two versions with as many boxes, moved: each version's thumbnail draws its own
    boxes (the cache key names where the boxes are, not only how many)."""
    from io import BytesIO
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd
    from PIL import Image

    from modelfab.web.kinds import image_files, image_thumb

    c = site.client("labeler")
    if "surf" not in {d.name for d in site.ws.datasets()}:
        _import(c, site, "zip", zip_folder(surfaces, site.tmp / "surf.zip", prefix="surf/"), "surf")
    ds = site.ws.dataset("surf:1")
    real = SimpleNamespace(ws=site.ws, cached=lambda key, build: build())
    row = image_files(real, ds).iloc[0]
    pictures = []
    for n, box in enumerate(({"x0": 2, "y0": 2, "x1": 14, "y1": 14}, {"x0": 30, "y0": 30, "x1": 44, "y1": 44})):
        table = pd.DataFrame([{"file": row["file"], "sha": row["sha"], "mask_sha": None, "boxes": json.dumps([box]),
                               "n_boxes": 1, "mask": None}])
        fake = SimpleNamespace(ws=site.ws, cached=lambda key, build, table=table: table)
        path = image_thumb(fake, SimpleNamespace(id=10_000 + n), 0)
        pictures.append(np.asarray(Image.open(BytesIO(path.read_bytes())).convert("RGB"), dtype=float))
    assert pictures[0].shape == pictures[1].shape and np.abs(pictures[0] - pictures[1]).max() > 100


def _check_snippets(site, page: str, name: str, monkeypatch, files: dict | None = None) -> dict:
    """The model page's curl and Python snippets call the model as ``modelfab serve NAME`` wants: the Python
    one is run against the serving app; the curl one names the same route and body."""
    from modelfab.serving.app import create_app

    work = site.tmp / f"snip-{name}"
    work.mkdir(exist_ok=True)
    for fname, data in (files or {}).items():
        (work / fname).write_bytes(data)
    _, token = site.ws.create_token(f"snip-{name}", "predict")
    code = snippet_of(page, "snippet-python")
    r = run_python_snippet(code, token, work, app=create_app(site.ws, [name]), monkeypatch=monkeypatch)
    assert r.status_code == 200, (code, r.text)
    curl = snippet_of(page, "snippet-curl")
    route = "predict-file" if files else "predict"
    assert f"/v1/models/{name}/{route} " in curl and f"/v1/models/{name}/{route}\"" in code
    for fname in files or {}:
        assert f"-F file=@{fname}" in curl and "files=" in code
    return r.json()


def test_images_train_from_the_form_and_try_it_shows_the_heat_map(site, surfaces, monkeypatch):
    c = site.client("admin")
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "surf:1", "task": "anomaly", "budget": "10",
                               "normal_label": "good", "max_false_alarm": "0.05", "name": "surf-anom"},
               headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"], timeout=180)
    assert job["state"] == "done", job
    assert 'id="live-trials"' not in c.get(f"/jobs/{job['id']}").text  # fitted, not searched: no "tried 0"
    page = c.get("/models/surf-anom/1").text
    assert 'id="threshold-slider"' in page and 'class="confusion anomaly"' in page
    assert 'id="cm-no-examples"' not in page  # every held-out score names its image: the cells open
    hold = site.ws.model("surf-anom:1").holdout()
    assert len(hold["file"]) == len(hold["scores"]) == len(hold["y_true"])
    opened = 0
    for i in (0, 1):
        for j in (0, 1):
            cell = _json(c.get(f"/models/surf-anom/1/confusion/{i}/{j}"))
            for it in cell["items"]:
                assert it["file"].startswith("good/") != bool(i)  # truth: good images are the normal row
                assert it["thumb"] == f"/datasets/surf/1/thumb/{it['idx']}.png"
                assert it["item"].endswith(f"#img-{it['idx']}")
                opened += 1
    assert opened == len(hold["scores"])
    spot = sorted((surfaces / "spot").glob("spot_*[0-9].png"))[0]
    # "Use it from other programs": an image is uploaded to /predict-file (JSON records are refused)
    answer = _check_snippets(site, page, "surf-anom", monkeypatch, files={"part.png": spot.read_bytes()})
    assert answer["result"]["file"] == "part.png" and answer["result"]["is_anomaly"] is True
    res = c.post("/predict", data={"csrf_token": c.csrf, "model": "surf-anom:1"},
                 files={"file": ("../x <b>.png", spot.read_bytes(), "image/png")}).text
    assert 'id="verdict"' in res and 'id="predict-picture"' in res and 'src="data:image/png;base64,' in res
    assert "&lt;b&gt;" in res or "x _b_.png" in res  # the name is escaped, never markup
    assert "<b>.png" not in res
    bad = c.post("/predict", data={"csrf_token": c.csrf, "model": "surf-anom:1"},
                 files={"file": ("fake.png", b"GIF89a not a png", "image/png")})
    assert bad.status_code in (415, 422) and "Traceback" not in bad.text
    train_page = c.get("/train?dataset=surf:1").text
    assert '"surf:1": {"kind": "signal"' in train_page.replace("&#34;", '"') or '"kind": "signal"' in train_page


def test_ts_file_imports_as_series_trains_and_scores_an_upload(site, monkeypatch):
    from tests.modalities.test_series_io import make_series, write_ts

    series, labels, _ = make_series(30, 50, channels=2, seed=1)  # two channels: snippets send "channels"
    ts = site.tmp / "shapes.ts"
    write_ts(ts, series, labels)
    c = site.client("admin")
    job = _import(c, site, "table", ts, "shapes", preview="1")  # a .ts file skips the column preview
    assert job["result"]["kind"] == "series"
    ds = site.ws.dataset("shapes")
    page = c.get("/datasets/shapes/1").text
    assert ds.kind == "series" and page.count('<tr id="ser-') == 30 and "kind.series" not in page
    label = sorted(ds.stats["labels"])[0]
    filtered = c.get(f"/datasets/shapes/1?label={label}").text
    assert filtered.count('<tr id="ser-') == ds.stats["labels"][label]
    r = c.get("/datasets/shapes/1/thumb/0.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and len(r.content) > 500
    assert c.get("/datasets/shapes/1/thumb/30.png").status_code == 404
    train = c.get("/train?dataset=shapes:1").text
    assert '"kind": "series"' in train.replace("&#34;", '"')
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "shapes:1", "task": "auto", "budget": "15"},
               headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"], timeout=240)
    assert job["state"] == "done", job
    m = site.ws.model(job["result"]["model"])
    assert m.task == "classification"
    page = c.get(f"/models/{m.name}/{m.version}").text
    answer = _check_snippets(site, page, m.name, monkeypatch)
    assert '"channels": [[' in snippet_of(page, "snippet-curl") and len(answer["predictions"]) == 1
    # the REST description of the model says what a record holds: two channels, as "channels"
    from fastapi.testclient import TestClient

    from modelfab.serving.app import create_app

    desc = TestClient(create_app(site.ws, [m.name], auth=False)).get(f"/v1/models/{m.name}").json()
    assert desc["inputs"] == [{"name": "channels", "kind": "series", "channels": 2, "channel_names": ["dim_0", "dim_1"]}]
    # the confusion matrix says the truth: series cells cannot be opened yet (retraining would not help)
    assert 'id="cm-no-examples"' in page and "Held-out series" in page and "retrain" not in page
    assert "Held-out rows" not in page
    assert _json(c.get(f"/models/{m.name}/{m.version}/confusion/0/0"))["kind"] == "none"
    test, test_labels, _ = make_series(6, 50, channels=2, seed=2)
    probe = site.tmp / "probe.ts"
    write_ts(probe, test, test_labels)
    res = c.post("/predict", data={"csrf_token": c.csrf, "model": m.ref},
                 files={"file": ("probe.ts", probe.read_bytes(), "application/octet-stream")}).text
    assert 'id="prediction-table"' in res and res.count("<tr>") == 7  # header + 6 series
    assert "probe_0" in res and "input_0" not in res  # ids name the uploaded file, as the CLI and REST do
    head = res.split('id="prediction-table"')[1].split("</thead>")[0]
    assert ">Prediction<" in head and ">Probability of " in head and ">Confidence<" in head and "proba_" not in head
    c.cookies.set("mf_lang", "zh")
    res = c.post("/predict", data={"csrf_token": c.csrf, "model": m.ref},
                 files={"file": ("probe.ts", probe.read_bytes(), "application/octet-stream")}).text
    assert ">预测<" in res.split('id="prediction-table"')[1].split("</thead>")[0]
    # the series job page in Chinese names the search's metric ("out-of-fold accuracy") in Chinese
    page = c.get(f"/jobs/{job['id']}").text
    data = json.loads(re.search(r'<script[^>]*id="page-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert data["job"]["live"]["metric"] == "out-of-fold accuracy"
    assert data["messages"]["metric.accuracy"] == "准确率" and "折外" in data["messages"]["job.js.out_of_fold"]
    c.cookies.set("mf_lang", "en")


def test_a_job_fitted_without_a_search_shows_no_trials_even_with_task_auto(site):
    """'auto' on a set of good images only trains an image anomaly model: no search, so no "Tried 0" (the page
    hid the row for task 'anomaly' only)."""
    from modelfab.automl.search import Progress
    from modelfab.web.worker import Reporter

    c = site.client("admin")
    job_id = site.ws.meta.create_job("train", {"task": "auto", "dataset": "x:1", "budget": 60})
    site.ws.meta.update_job(job_id, state="running")
    rep = Reporter(site.ws, job_id, 60)
    rep(Progress(1.0, 59.0, 0, None, None, "", "fitting the model of good images", searched=False))
    page = c.get(f"/jobs/{job_id}").text
    assert re.search(r'class="live-search" hidden><dt>', page) and 'id="live-trials"' in page
    rep.last_write = 0.0
    rep(Progress(2.0, 58.0, 3, 0.9, "lgbm", "accuracy", "searching"))  # a search shows its trials
    page = c.get(f"/jobs/{job_id}").text
    assert not re.search(r'class="live-search" hidden', page)
    site.ws.meta.update_job(job_id, state="cancelled")


def test_image_classifier_confusion_cells_open_their_images(site, surfaces):
    c = site.client("admin")
    if "surf" not in {d.name for d in site.ws.datasets()}:
        _import(c, site, "zip", zip_folder(surfaces, site.tmp / "surf.zip", prefix="surf/"), "surf")
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "surf:1", "task": "classification", "budget": "8",
                               "name": "surf-cls"}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"], timeout=180)
    assert job["state"] == "done", job
    page = c.get("/models/surf-cls/1").text
    assert 'id="confusion"' in page and 'id="cm-no-examples"' not in page
    assert "Held-out images" in page and "Held-out rows" not in page
    m = site.ws.model("surf-cls:1")
    labels = m.manifest["labels"]
    opened = 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            cell = _json(c.get(f"/models/surf-cls/1/confusion/{i}/{j}"))
            assert cell["kind"] == "files" and len(cell["items"]) == cell["count"]
            for it in cell["items"]:
                assert it["file"].split("/")[0] == labels[i]  # surf's images sit in a folder per label
                assert it["thumb"] == f"/datasets/surf/1/thumb/{it['idx']}.png"
                opened += 1
    assert opened == len(m.holdout()["y_true"])


def test_try_it_reads_an_uploaded_image_with_the_import_limits(tmp_path):
    """The image of "Try it" is read as the import reads one: over the import's size limit it is refused
    before it is decoded or scored (the UI's upload limit can be set above the import limit)."""
    from dataclasses import replace
    from types import SimpleNamespace

    import numpy as np
    from PIL import Image

    from modelfab.errors import InvalidInput, TooLarge
    from modelfab.settings import Settings
    from modelfab.web.kinds import predict_image_upload
    from modelfab.web.uploads import UploadedFile

    path = tmp_path / "f000"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, format="PNG")

    class Unscored:
        task = "anomaly"

        @property
        def predictor(self):
            raise AssertionError("the image was scored although it is over the import limit")

    small = SimpleNamespace(settings=replace(Settings(), max_import_bytes=path.stat().st_size - 1))
    up = UploadedFile(field="file", filename="part.png", raw_name="part.png", path=path)
    with pytest.raises(TooLarge, match="import limit"):
        predict_image_upload(small, Unscored(), up)
    lying = UploadedFile(field="file", filename="part.jpg", raw_name="part.jpg", path=path)
    with pytest.raises(InvalidInput, match="holds PNG data"):  # the name says JPEG, the bytes are PNG
        predict_image_upload(SimpleNamespace(settings=Settings()), Unscored(), lying)


def test_try_it_with_series_holds_at_most_as_many_series_as_a_table_holds_rows(tmp_path):
    """A file of series scored in the browser is refused above max_records_per_request, as a table is,
    before the model scores it; the upload is read where it lies (no copy)."""
    from dataclasses import replace
    from types import SimpleNamespace

    import numpy as np

    from modelfab.errors import TooLarge
    from modelfab.settings import Settings
    from modelfab.web.kinds import predict_series_upload
    from modelfab.web.uploads import UploadedFile

    read = []

    class Predictor:
        def read_file(self, path):
            read.append(path)
            assert path.is_file() and path.suffix == ".ts"
            return SimpleNamespace(series=[np.zeros((1, 20))] * 3, ids=["a", "b", "c"])

        def predict_series(self, series, ids):
            raise AssertionError("scored although the file holds more series than allowed")

    model = SimpleNamespace(task="classification", predictor=Predictor())
    (tmp_path / "f000").write_text("@problemName x\n")
    ws = SimpleNamespace(settings=replace(Settings(), max_records_per_request=2))
    up = UploadedFile(field="file", filename="probe.ts", raw_name="probe.ts", path=tmp_path / "f000")
    with pytest.raises(TooLarge, match="3 series in one file; the limit here is 2"):
        predict_series_upload(ws, model, up)
    # moved, not copied, beside the upload under the user's file name (its series ids are named after it)
    assert read and read[0].parent.parent == tmp_path and read[0].name == "probe.ts"
    assert not (tmp_path / "f000").exists()


def test_image_screens_talk_about_images_and_the_form_not_recordings_or_flags(site, surfaces):
    c = site.client("admin")
    if "surf" not in {d.name for d in site.ws.datasets()}:
        _import(c, site, "zip", zip_folder(surfaces, site.tmp / "surf.zip", prefix="surf/"), "surf")
    none = c.get("/datasets/surf/1?label=nosuchlabel").text
    assert "No images match this filter." in none and "recordings" not in none.split("<main")[-1]
    # the train form: the good label defaults to the dataset's "good", named for images
    page = c.get("/train?dataset=surf:1").text
    info = json.loads(re.search(r'<script[^>]*id="page-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert info["datasets"]["surf:1"]["normal"] == "good" and info["datasets"]["surf:1"]["media"] == "image"
    assert "Label of good (defect-free) images" in page
    # an empty good label for anomaly detection is asked for in words; a wrong one fails without CLI flags
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "surf:1", "task": "anomaly", "budget": "10",
                               "normal_label": ""}, headers={"Accept": "application/json"})
    assert r.status_code == 422 and "choose their label" in r.json()["error"]["detail"] and "good" in r.text
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "surf:1", "task": "anomaly", "budget": "10",
                               "normal_label": "flawless", "name": "surf-wrong"},  # no image has it
               headers={"Accept": "application/json"})
    job_id = _json(r)["job"]
    assert site.wait_job(job_id)["state"] == "failed"
    job_page = c.get(f"/jobs/{job_id}").text
    assert "--normal-label" not in job_page and "Choose the label of the good items in the train form." in job_page
    with c.stream("GET", f"/jobs/{job_id}/events") as stream:
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith('data: {"id"')]
    assert "--normal-label" not in events[-1]["error"] and "train form" in events[-1]["error"]
    # an image anomaly model's threshold panel counts images
    if "surf-anom" in {m.name for m in site.ws.models()}:
        model = c.get("/models/surf-anom/1").text
        assert "good images" in model and "good recordings" not in model and "counted on images" in model
        assert "Held-out images, scored" in model and "recordings" not in model.split('id="threshold-panel"')[1].split("</section>")[0]
    # error pages in the browser point to the Models page, not to a command
    missing = c.get("/models/nosuchmodel")
    assert missing.status_code == 404 and "Models page" in missing.text and "modelfab models list" not in missing.text


@pytest.mark.parametrize("modality,extra,shape", [
    ("image", {}, ("predict-file", "part.png")),
    ("signal", {}, ("predict-file", "recording.wav")),
    ("series", {"series": {"n_channels": 1}}, ("predict", {"values"})),
    ("series", {"series": {"n_channels": 3}}, ("predict", {"channels"})),
])
def test_snippet_request_shape_per_modality(modality, extra, shape):
    """What the snippets send, per kind of model: a file upload, or JSON with the series' channels."""
    from types import SimpleNamespace

    from modelfab.web.snippets import request_of, snippets

    model = SimpleNamespace(name="m", manifest={"modality": modality, **extra})
    req = request_of(None, model)
    assert req["route"] == shape[0]
    if shape[0] == "predict-file":
        assert req["file"] == shape[1]
        assert f"-F file=@{shape[1]}" in snippets(None, model)["curl"]
    else:
        rec = req["body"]["records"][0]
        assert set(rec) == shape[1]
        n = extra["series"]["n_channels"]
        assert (len(rec["channels"]) == n) if n > 1 else isinstance(rec["values"][0], float)


def test_a_long_table_of_sensor_rows_is_imported_as_time_series_in_the_browser(site):
    """One row per machine and time step: the preview guesses the series and time columns, the person ticks "these
    are time series", and the import makes one series per machine labelled from the chosen column (it was a table
    of 600 rows; series tables needed the CLI)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for m in range(20):
        worn = m % 2
        for t in rng.permutation(30):  # rows out of order: the time column orders them
            rows.append({"machine_id": f"M{m:03d}", "time": t, "vibration": np.sin(t / 3) + worn * 0.05 * t,
                         "current": 5 + rng.normal(0, 0.1), "state": "worn" if worn else "ok"})
    path = site.tmp / "sensor_log.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    c = site.client("admin")
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "table", "name": "sensorlog", "preview": "1"},
               files={"file": ("sensor_log.csv", path.read_bytes(), "text/csv")}, headers={"Accept": "application/json"})
    url = _json(r)["url"]
    page = c.get(url).text
    assert 'id="series-options" open' in page
    assert re.search(r'<option value="machine_id" selected>', page) and re.search(r'<option value="time" selected>', page)
    bad = c.post(url, data={"csrf_token": c.csrf, "name": "sensorlog", "target": "state", "series": "1",
                            "series_id": "", "series_time": "time", "action": "import"},
                 headers={"Accept": "application/json"})
    assert bad.status_code == 422 and "series" in bad.text  # a time column alone orders nothing
    r = c.post(url, data={"csrf_token": c.csrf, "name": "sensorlog", "target": "state", "series": "1",
                          "series_id": "machine_id", "series_time": "time", "action": "import"},
               headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", site.ws.meta.get_job(job["id"])
    ds = site.ws.dataset("sensorlog")
    assert ds.kind == "series" and ds.stats["series"] == 20 and ds.stats["labels"] == {"ok": 10, "worn": 10}
    assert ds.schema["n_channels"] == 2
    # a table that only has a line and a timestamp is not guessed open (nothing repeats as a series id)
    from modelfab.web.importing import series_guess

    cols = [{"name": "part_id", "kind": "id", "unique": 600}, {"name": "timestamp", "kind": "datetime", "unique": 600}]
    assert series_guess(cols, 600)["id"] == ""


def test_import_notes_show_in_the_preview_and_stay_on_the_dataset_page(site):
    """Decimal commas, units and one value written several ways: said before the import and kept after it."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    n = 60
    df = pd.DataFrame({"temp": [f"{v:.1f}".replace(".", ",") for v in rng.normal(70, 3, n)],
                       "width": [f"{v:.2f} mm" for v in rng.normal(12, 0.1, n)],
                       "line": rng.choice(["L1", "l1", "L1 ", "L2"], n), "result": rng.choice(["ok", "defect"], n)})
    path = site.tmp / "mes_notes.csv"
    df.to_csv(path, sep=";", index=False)
    c = site.client("admin")
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "table", "name": "mesnotes", "preview": "1"},
               files={"file": ("mes_notes.csv", path.read_bytes(), "text/csv")}, headers={"Accept": "application/json"})
    url = _json(r)["url"]
    page = c.get(url).text
    notes = page.split('id="preview-notes"')[1].split("</ul>")[0]
    assert "temp" in notes and "mm" in notes and "differ only in case, spaces or dashes" in notes
    r = c.post(url, data={"csrf_token": c.csrf, "name": "mesnotes", "target": "result", "action": "import"},
               headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", site.ws.meta.get_job(job["id"])
    page = c.get("/datasets/mesnotes/1").text
    kept = page.split('id="import-notes"')[1].split("</section>")[0]
    assert "mm" in kept and "differ only in case, spaces or dashes" in kept and "Notes from the import" in kept
    # a train link naming the dataset without its version picks its newest version (it picked another dataset)
    assert '<option value="mesnotes:1" selected>' in c.get("/train?dataset=mesnotes").text

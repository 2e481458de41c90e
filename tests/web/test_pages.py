"""The pages working on real data, with real worker processes: import, view, label, train, evaluate, try."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import Web, zip_folder


@pytest.fixture(scope="module")
def site(tmp_path_factory, demo_recordings):
    w = Web(tmp_path_factory.mktemp("pages") / "ws")
    w.tmp = tmp_path_factory.mktemp("pages-files")
    yield w
    w.close()


def _json(r):
    assert r.status_code == 200, r.text
    return r.json()


def test_zip_of_recordings_is_imported_in_the_background(site, demo_recordings):
    c = site.client("labeler")
    z = zip_folder(demo_recordings, site.tmp / "fan.zip", prefix="fan/")  # one wrapping folder, as zips often have
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "zip", "name": "fan"},
               files={"file": ("fan.zip", z.read_bytes(), "application/zip")}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", job
    ds = site.ws.dataset("fan")
    assert ds.stats["labels"] == {"abnormal": 6, "normal": 12}  # labels from the folders inside the wrapper
    assert not any((site.ws.tmp_dir / "web-uploads").iterdir())  # the upload is gone once imported
    page = c.get(f"/jobs/{job['id']}").text
    assert "/datasets/fan/1" in page
    home = c.get("/").text
    assert "/datasets/fan/1" in home and f"/jobs/{job['id']}" in home


def test_dataset_page_thumbnails_are_cached_and_audio_is_the_file(site, demo_recordings):
    c = site.client("viewer")
    page = c.get("/datasets/fan/1").text
    assert page.count("<audio") == 18 and page.count('class="thumb"') == 18
    r = c.get("/datasets/fan/1/thumb/0.png")
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    cached = list((site.ws.cache_dir / "web" / "thumbs").rglob("*.png"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    t0 = time.perf_counter()
    assert c.get("/datasets/fan/1/thumb/0.png").content == r.content
    assert time.perf_counter() - t0 < 0.5 and cached[0].stat().st_mtime_ns == mtime  # rendered once
    audio = c.get("/datasets/fan/1/audio/0")
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.content == sorted(demo_recordings.rglob("*.wav"))[0].read_bytes()
    assert c.get("/datasets/fan/1/audio/99").status_code == 404
    assert c.get("/datasets/fan/1/thumb/-1.png").status_code in (404, 422)
    only = c.get("/datasets/fan/1?label=abnormal").text
    assert only.count("<audio") == 6


def test_labels_are_a_versioned_layer_applied_as_a_new_dataset_version(site):
    viewer, c = site.client("viewer"), site.client("labeler")
    item = "normal/normal_0000.wav"
    assert viewer.post("/label/fan/1", data={"csrf_token": viewer.csrf, "item": item, "label": "x"}).status_code == 403
    r = _json(c.post("/label/fan/1", data={"csrf_token": c.csrf, "item": item, "label": "rattle"},
                     headers={"Accept": "application/json"}))
    assert r["saved"] == 1 and r["label"] == "rattle"
    assert c.post("/label/fan/1", data={"csrf_token": c.csrf, "item": "../../etc/passwd", "label": "x"}).status_code == 404
    # undo = append the previous label again; the history keeps both
    _json(c.post("/label/fan/1", data={"csrf_token": c.csrf, "item": item, "label": "normal"}))
    _json(c.post("/label/fan/1", data={"csrf_token": c.csrf, "item": item, "label": "rattle"}))
    ds = site.ws.dataset("fan:1")
    assert [h["label"] for h in site.store.label_history(ds.id, item)] == ["rattle", "normal", "rattle"]
    page = c.get("/label/fan/1").text
    assert "rattle" in page and 'id="items"' in page
    assert c.get("/datasets/fan/1?label=rattle").text.count("<audio") == 1
    r = c.post("/label/fan/1/apply", data={"csrf_token": c.csrf}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", job
    new = site.ws.dataset("fan")
    assert new.version == 2 and new.stats["labels"] == {"abnormal": 6, "normal": 11, "rattle": 1}
    assert site.store.current_labels(new.id) == {item: "rattle"}  # labelling goes on in the new version


def test_train_with_live_progress_then_evaluate_threshold_promote_and_try(site, demo_recordings):
    c = site.client("admin")
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "fan:1", "task": "auto", "budget": "6"},
               headers={"Accept": "application/json"})
    job_id = _json(r)["job"]
    events = []
    with c.stream("GET", f"/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: {\"id\""):
                events.append(json.loads(line[6:]))
    assert events[-1]["state"] == "done", events[-1]
    assert any(e["state"] == "running" and e["live"].get("trials") for e in events)  # progress arrived live
    ref = events[-1]["result"]["model"]
    name, version = ref.split(":")
    page = c.get(f"/models/{name}/{version}").text
    assert 'id="threshold-slider"' in page and 'id="report-frame"' in page and '"holdout"' in page
    report = c.get(f"/models/{name}/{version}/report")
    assert report.status_code == 200 and "sandbox" in report.headers["content-security-policy"]
    model = site.ws.model(ref)
    new_thr = model.manifest["threshold"] * 1.5
    r = c.post(f"/models/{name}/{version}/threshold", data={"csrf_token": c.csrf, "threshold": str(new_thr)},
               headers={"Accept": "application/json"})
    assert site.wait_job(_json(r)["job"])["state"] == "done"
    moved = site.ws.model(name)
    assert moved.row["created_by"] == "admin1"  # lineage names the person, not the server's account
    assert moved.version == int(version) + 1 and moved.manifest["threshold"] == pytest.approx(new_thr)
    assert moved.manifest["derived_from"]["model"] == ref
    assert c.post(f"/models/{name}/{moved.version}/promote", data={"csrf_token": c.csrf}).status_code == 303
    assert site.ws.model(name).stage == "production"
    assert "production" in c.get("/models").text or "in production" in c.get("/models").text
    wav = sorted((demo_recordings / "abnormal").glob("*.wav"))[0]
    page = c.post("/predict", data={"csrf_token": c.csrf, "model": f"{name}:{moved.version}"},
                  files={"file": ("../../machine <1>.wav", wav.read_bytes(), "audio/wav")}).text
    assert 'id="verdict"' in page and "machine _1_.wav" in page and "&lt;1&gt;" not in page
    tok = c.post("/tokens", data={"csrf_token": c.csrf, "name": "mes", "scope": "predict", "model": name}).text
    plain = tok.split('id="token-value">')[1].split("<")[0]
    assert plain.startswith("mf_") and site.ws.check_token(plain)["name"] == "mes"
    assert f"/v1/models/{name}/predict" in tok


def test_table_import_preview_cancel_train_and_predict_csv(site, factory_csv):
    c = site.client("admin")
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "table", "name": "factory"},
               files={"file": ("factory.csv", factory_csv.read_bytes(), "text/csv")}, headers={"Accept": "application/json"})
    assert site.wait_job(_json(r)["job"])["state"] == "done"
    page = c.get("/datasets/factory/1").text
    assert 'id="column-stats"' in page and "quality" in page
    assert site.ws.dataset("factory").source_name == "factory.csv"
    assert c.get("/datasets/factory/1?page=3").text.count("<tr>") >= 50
    # a long training is cancelled: the job ends quickly and registers nothing
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "factory:1", "target": "quality", "budget": "120",
                               "name": "cancelme"}, headers={"Accept": "application/json"})
    job_id = _json(r)["job"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (site.ws.meta.get_job(job_id).get("result") or {}).get("live"):
        time.sleep(0.2)  # wait until the search is under way
    t0 = time.monotonic()
    assert c.post(f"/jobs/{job_id}/cancel", data={"csrf_token": c.csrf}).status_code == 303
    job = site.wait_job(job_id, timeout=60)
    assert job["state"] == "cancelled" and time.monotonic() - t0 < 20
    time.sleep(1)
    assert site.ws.models("cancelme") == []
    # a short one goes through, then scores an uploaded CSV
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "factory:1", "target": "quality", "budget": "6"},
               headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", job
    rows = b"\n".join(factory_csv.read_bytes().splitlines()[:6])
    page = c.post("/predict", data={"csrf_token": c.csrf, "model": job["result"]["model"]},
                  files={"file": ("parts.csv", rows, "text/csv")}).text
    assert 'id="prediction-table"' in page and page.count("<tr>") == 6  # header + 5 rows
    bad = c.post("/predict", data={"csrf_token": c.csrf, "model": job["result"]["model"]},
                 files={"file": ("parts.exe", b"MZ", "application/octet-stream")})
    assert bad.status_code == 415

"""The pages working on real data, with real worker processes: import, view, label, train, evaluate, try."""

from __future__ import annotations

import json
import re
import time

import pytest

from .conftest import module_site, run_python_snippet, snippet_of, zip_folder


@pytest.fixture(scope="module")
def site(tmp_path_factory, demo_recordings):
    yield from module_site(tmp_path_factory, "pages")


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
    assert "rattle" in page and 'id="items"' in page and "space plays" in page
    assert c.get("/datasets/fan/1?label=rattle").text.count("<audio") == 1
    r = c.post("/label/fan/1/apply", data={"csrf_token": c.csrf}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", job
    new = site.ws.dataset("fan")
    assert new.version == 2 and new.stats["labels"] == {"abnormal": 6, "normal": 11, "rattle": 1}
    assert site.store.current_labels(new.id) == {item: "rattle"}  # labelling goes on in the new version


def test_train_with_live_progress_then_evaluate_threshold_promote_and_try(site, demo_recordings, monkeypatch):
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
    assert events[-1]["state"] == "done", json.dumps(events[-1])[:3000]
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
    assert re.search(r'id="score-ratio"><dt>Compared with the threshold</dt><dd>(> 1,000|[\d.,]+) times</dd>', page)
    tok = c.post("/tokens", data={"csrf_token": c.csrf, "name": "mes", "scope": "predict", "model": name}).text
    plain = tok.split('id="token-value">')[1].split("<")[0]
    assert plain.startswith("mf_") and site.ws.check_token(plain)["name"] == "mes"
    # the snippets upload a recording to /predict-file (JSON records are refused for recordings) and work
    from modelfab.serving.app import create_app

    curl = snippet_of(tok, "snippet-curl")
    assert f"/v1/models/{name}/predict-file " in curl and "-F file=@recording.wav" in curl and plain in curl
    work = site.tmp / "snippet-rec"
    work.mkdir(exist_ok=True)
    (work / "recording.wav").write_bytes(wav.read_bytes())
    r = run_python_snippet(snippet_of(tok, "snippet-python"), plain, work, app=create_app(site.ws, [name]),
                           monkeypatch=monkeypatch)
    assert r.status_code == 200 and r.json()["result"]["file"] == "recording.wav", r.text
    page = c.get(f"/models/{name}/{moved.version}").text
    r = run_python_snippet(snippet_of(page, "snippet-python"), plain, work, app=create_app(site.ws, [name]),
                           monkeypatch=monkeypatch)
    assert r.status_code == 200, r.text
    # the snippets and the serve hint name the port the model's server would get (not always 8000)
    import modelfab.web.routes.models as models_routes

    monkeypatch.setattr(models_routes, "_suggest_port", lambda ui_port: 8765)
    tok = c.post("/tokens", data={"csrf_token": c.csrf, "name": "mes2", "scope": "predict", "model": name}).text
    assert "http://127.0.0.1:8765/v1/" in snippet_of(tok, "snippet-curl") and f"serve {name} --port 8765" in tok
    page = c.get(f"/models/{name}/{moved.version}").text
    assert "http://127.0.0.1:8765/v1/" in snippet_of(page, "snippet-curl") and "--port 8765" in page


def test_anomaly_confusion_cells_follow_the_threshold_and_open_recordings(site):
    """The 2x2 matrix of an anomaly model (truth x score above the threshold) at the model's threshold and at
    any other: each cell lists the held-out recordings behind it, with their scores and a link into the dataset."""
    import numpy as np

    c = site.client("admin")
    m = site.ws.model("fan")  # the version with the moved threshold (previous test)
    page = c.get(f"/models/fan/{m.version}").text
    assert 'class="confusion anomaly"' in page and '"anomaly": true' in page
    hold = m.holdout()
    scores, truth, thr = hold["scores"], hold["y_true"], m.manifest["threshold"]
    assert len(hold["file"]) == len(scores) and set(truth) == {0, 1}
    middle = float(np.sort(scores)[len(scores) // 2])
    counts = {}
    for used, query in ((thr, ""), (middle, f"?threshold={middle!r}")):
        for i in (0, 1):
            for j in (0, 1):
                cell = _json(c.get(f"/models/fan/{m.version}/confusion/{i}/{j}{query}"))
                expect = int(((truth == i) & ((scores > used) == bool(j))).sum())
                assert cell["count"] == expect and len(cell["items"]) == expect and cell["threshold"] == used
                counts[used, i, j] = expect
                for it in cell["items"]:
                    assert ("abnormal/" in it["file"]) == bool(i) and (it["score"] > used) == bool(j)
                    assert it["item"].startswith("/datasets/fan/1?page=") and it["item"].endswith(f"#rec-{it['idx']}")
                    assert it["thumb"] == f"/datasets/fan/1/thumb/{it['idx']}.png"
                near = [abs(it["score"] - used) for it in cell["items"]]
                assert near == sorted(near)  # the closest calls first
    assert sum(counts[thr, i, j] for i in (0, 1) for j in (0, 1)) == len(scores)
    assert any(counts[thr, i, j] != counts[middle, i, j] for i in (0, 1) for j in (0, 1))  # the slider matters
    first = next(it for i in (0, 1) for j in (0, 1)
                 for it in _json(c.get(f"/models/fan/{m.version}/confusion/{i}/{j}"))["items"])
    assert c.get(first["thumb"]).headers["content-type"] == "image/png"
    assert f'id="rec-{first["idx"]}"' in c.get(first["item"].split("#")[0]).text  # the link lands on the recording
    for bad in ("abc", "nan", "inf"):
        assert c.get(f"/models/fan/{m.version}/confusion/0/0?threshold={bad}").status_code == 422
    zh = site.client("admin", "admin-zh")
    zh.cookies.set("mf_lang", "zh")
    for client, said in ((c, "finite number"), (zh, "阈值")):  # the message in the reader's language
        r = client.get(f"/models/fan/{m.version}/confusion/0/0?threshold=abc", headers={"Accept": "application/json"})
        assert r.status_code == 422 and said in r.json()["error"]["detail"] and "'abc'" in r.json()["error"]["detail"]
    assert c.get(f"/models/fan/{m.version}/confusion/2/0").status_code == 422


def test_aliases_are_set_shown_and_removed_in_the_browser(site):
    admin, labeler = site.client("admin"), site.client("labeler")
    m = site.ws.model("fan")
    json_headers = {"Accept": "application/json"}
    r = admin.post("/models/fan/aliases", data={"csrf_token": admin.csrf, "version": str(m.version), "alias": "line3"},
                   headers=json_headers)
    assert _json(r)["ref"] == "fan@line3" and site.ws.model("fan@line3").version == m.version
    assert "fan@line3" in admin.get(f"/models/fan/{m.version}").text and "fan@line3" in admin.get("/models").text
    # moving it to another version says where it was
    r = admin.post("/models/fan/aliases", data={"csrf_token": admin.csrf, "version": "1", "alias": "line3"},
                   headers=json_headers)
    assert _json(r)["previous_version"] == m.version and site.ws.model("fan@line3").version == 1
    assert labeler.post("/models/fan/aliases", data={"csrf_token": labeler.csrf, "version": "1", "alias": "x"},
                        headers=json_headers).status_code == 403
    for bad in ("<img src=x onerror=alert(1)>", "", "a" * 300):
        r = admin.post("/models/fan/aliases", data={"csrf_token": admin.csrf, "version": "1", "alias": bad},
                       headers=json_headers)
        assert r.status_code == 422, (bad, r.text)
    assert admin.post("/models/fan/aliases", data={"csrf_token": admin.csrf, "version": "99", "alias": "x"},
                      headers=json_headers).status_code == 404
    zh = site.client("admin", "admin-zh")
    zh.cookies.set("mf_lang", "zh")
    for client, said in ((admin, "a version number"), (zh, "版本号")):  # the message in the reader's language
        r = client.post("/models/fan/aliases", data={"csrf_token": client.csrf, "version": "v2", "alias": "x"},
                        headers=json_headers)
        assert r.status_code == 422 and said in r.json()["error"]["detail"] and "'v2'" in r.json()["error"]["detail"]
    assert admin.post("/models/fan/aliases", data={"version": "1", "alias": "x"}).status_code == 403  # no CSRF token
    assert [a["alias"] for a in site.ws.meta.list_aliases("fan")] == ["line3"]
    r = admin.post("/models/fan/aliases/line3/remove", data={"csrf_token": admin.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/models/fan/1"
    assert site.ws.meta.list_aliases("fan") == [] and "fan@line3" not in admin.get("/models").text


def test_table_import_preview_cancel_train_and_predict_csv(site, factory_csv):
    c = site.client("admin")
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "table", "name": "factory"},
               files={"file": ("factory.csv", factory_csv.read_bytes(), "text/csv")}, headers={"Accept": "application/json"})
    assert site.wait_job(_json(r)["job"])["state"] == "done"
    page = c.get("/datasets/factory/1").text
    assert 'id="column-stats"' in page and "quality" in page
    assert site.ws.dataset("factory").source_name == "factory.csv"
    # the source is the file the person uploaded (it read "<dataset name>.csv"), made safe for a file name
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "table", "name": "factory-copy"},
               files={"file": ("线体3 数据 (1).csv", factory_csv.read_bytes(), "text/csv")},
               headers={"Accept": "application/json"})
    assert site.wait_job(_json(r)["job"])["state"] == "done"
    assert site.ws.dataset("factory-copy").source_name == "线体3_数据_1.csv"
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
    # 10 s: with 6 s, data preparation under a loaded machine (load 12-16) left no time for the search
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "factory:1", "target": "quality", "budget": "10"},
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
    # a file that cannot be read is named as the user named it, not after an internal file
    empty = c.post("/predict", data={"csrf_token": c.csrf, "model": job["result"]["model"]},
                   files={"file": ("line 3 parts.csv", b"\"a,b\n1,2\n", "text/csv")})
    detail = re.search(r"alert error\">(.*?)</p>", empty.text, re.S).group(1)
    assert empty.status_code in (415, 422) and "line_3_parts.csv" in detail and "input.csv" not in detail, detail


# -- import preview, leaderboard, confusion matrix, labelling tables, compare, deployments ----------------
def _parts_csv(path, n=300, unlabelled=40, seed=5):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    grade = np.where(a + b > 0, "ok", "bad").astype(object)
    grade[rng.choice(n, unlabelled, replace=False)] = None
    pd.DataFrame({"lot": rng.integers(1, 6, n), "a": a, "b": b, "noise": rng.standard_normal(n),
                  "grade": grade}).to_csv(path, index=False)
    return path


def test_table_preview_confirms_kinds_and_target_then_leaderboard_and_confusion_cells(site):
    c = site.client("admin")
    csv = _parts_csv(site.tmp / "parts.csv")
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "table", "name": "parts", "preview": "1"},
               files={"file": ("parts.csv", csv.read_bytes(), "text/csv")}, headers={"Accept": "application/json"})
    url = _json(r)["url"]
    assert url.startswith("/import/preview/") and not [d for d in site.ws.datasets() if d.name == "parts"]
    page = c.get(url).text
    assert 'id="preview-columns"' in page and 'value="grade" aria-label' in page
    kinds = dict(re.findall(r'name="(kind_\d+)" aria-label="[^"]*" data-column="([^"]+)"', page))
    lot_field = next(k for k, v in kinds.items() if v == "lot")
    r = c.post(url, data={"csrf_token": c.csrf, "name": "parts", lot_field: "categorical", "target": "grade",
                          "action": "import"}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", job
    ds = site.ws.dataset("parts")
    assert ds.column_kinds()["lot"] == "categorical" and ds.column_kinds()["a"] == "numeric"  # the correction holds
    assert job["result"]["target"] == "grade" and "/train?dataset=parts%3A1&amp;target=grade" in c.get(f"/jobs/{job['id']}").text
    assert c.get(url).status_code == 404  # the upload was taken over by the import

    # train: the job's live data carries a leaderboard of the learners tried, from the search's trial log
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "parts:1", "target": "grade", "budget": "10"},
               headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", job
    board = job["result"]["live"]["leaderboard"]
    from modelfab.automl.search import LEARNERS

    assert board and {row["learner"] for row in board} <= set(LEARNERS)
    assert sum(row["trials"] for row in board) >= 2 and board[0]["best"] >= board[-1]["best"]
    assert job["result"]["final_board"]
    # the ended job's page: nothing "left", no "keeps running" note; an import job has no tried/best
    page = c.get(f"/jobs/{job['id']}").text
    assert 'id="live-left">–<' in page and "keeps running on the server" not in page and 'id="live-best"' in page
    imports = [j for j in site.ws.meta.list_jobs(limit=50) if j["kind"] == "import" and j["state"] == "done"]
    page = c.get(f"/jobs/{imports[0]['id']}").text
    assert 'id="live-best"' not in page and "Best so far" not in page and "Tried" not in page
    assert "keeps running on the server" not in page

    for _ in range(60):  # the job's scratch folder is gone (at the latest when its worker process has exited)
        left = [str(p.relative_to(site.ws.tmp_dir)) for p in (site.ws.tmp_dir / "web-jobs").rglob("*")]
        if not [p for p in left if ".scratch" in p]:
            break
        time.sleep(0.25)
    assert not [p for p in left if ".scratch" in p], left

    # evaluate: a confusion matrix whose cells open the held-out rows behind them
    m = site.ws.model(job["result"]["model"])
    page = c.get(f"/models/parts/{m.version}").text
    assert 'id="confusion"' in page
    matrix = [[int(v) for v in re.findall(r'data-j="\d+"[^>]*>(\d+)<', row)]
              for row in re.findall(r"<tr><th>[^<]*</th>(.*?)</tr>", page.split('id="confusion"')[1].split("</table>")[0])]
    labels = m.manifest["labels"]
    assert sum(map(sum, matrix)) == m.manifest["data"]["n_holdout"]
    frame = site.ws.load_frame("parts:1")
    for i in range(len(labels)):
        for j in range(len(labels)):
            cell = _json(c.get(f"/models/parts/{m.version}/confusion/{i}/{j}"))
            assert cell["count"] == matrix[i][j] and len(cell["rows"]) == min(matrix[i][j], 60)
            col = cell["columns"].index("grade")
            for pos, row in zip(cell["positions"], cell["rows"]):
                assert row[col] == str(labels[i]) == frame["grade"].iloc[pos - 1]  # the true class of that row
    assert c.get(f"/models/parts/{m.version}/confusion/9/0").status_code == 422


def test_leaderboard_ties_rank_the_first_to_reach_the_score_first():
    """The search keeps the first learner that reached its best score; the board ranks ties the same way
    (the job page's "Best so far" is the board's first row)."""
    from modelfab.web.leaderboard import LiveBoard

    for greater, best in ((True, 1.0), (False, 0.0)):
        board = LiveBoard()
        board.greater = greater
        board._add("lgbm", best, 5.0, detail="", count=True)
        board._add("extra_tree", best, 2.0, detail="", count=True)
        board._add("rf", 0.5, 1.0, detail="", count=True)
        assert [r["learner"] for r in board.rows()] == ["extra_tree", "lgbm", "rf"]


def test_labelling_table_rows_bulk_colours_queue_disagreement_and_apply(site):
    import numpy as np

    c = site.client("labeler")
    page = c.get("/label/parts/1?column=grade").text
    assert "space plays" not in page and "label changes saved" in page  # a table has nothing to play
    assert 'id="items"' in page and 'id="learning-curve"' in page
    ds = site.ws.dataset("parts:1")
    frame = site.ws.load_frame(ds)
    assist = _json(c.get("/label/parts/1/assist?column=grade"))
    assert assist["ready"] and assist["n_labelled"] == 260 and 0.7 < assist["cv_accuracy"] <= 1.0
    assert assist["curve"][-1] == {"n": 260, "accuracy": round(assist["cv_accuracy"], 4)}
    # the active-learning queue: unlabelled rows only, the least certain first
    page = c.get("/label/parts/1?column=grade&filter=queue").text
    data = json.loads(page.split('id="page-data">')[1].split("</script>")[0])
    queue = data["items"]
    assert len(queue) == 40 and all(it["label"] is None for it in queue)
    conf = [it["confidence"] for it in queue]
    assert conf == sorted(conf) and conf[0] < conf[-1]
    # bulk: one label for a selection
    chosen = [it["id"] for it in queue[:5]]
    r = _json(c.post("/label/parts/1/bulk", data={"csrf_token": c.csrf, "items": "\n".join(chosen), "label": "ok",
                                                   "column": "grade"}))
    assert r["items"] == 5
    layer = site.store.current_labels(ds.id)
    assert {k: layer[k] for k in chosen} == dict.fromkeys(chosen, "ok")
    assert c.post("/label/parts/1/bulk", data={"csrf_token": c.csrf, "items": "999999:grade", "label": "ok"}).status_code == 404
    # label definitions with colours
    r = _json(c.post("/label/parts/1/defs", data={"csrf_token": c.csrf, "name": "scrap", "color": "#ff0000",
                                                   "column": "grade"}))
    assert {"name": "scrap", "color": "#ff0000"} in r["defs"]
    assert 'data-label="scrap" data-color="#ff0000"' in c.get("/label/parts/1?column=grade").text
    assert c.post("/label/parts/1/defs", data={"csrf_token": c.csrf, "name": "x", "color": "red;"}).status_code == 422
    # "model disagrees": flip ten labelled rows; listed rows are exactly where the latest model says otherwise
    labelled = [i for i in range(len(frame)) if isinstance(frame["grade"].iloc[i], str)][:10]
    flip = {f"{i}:grade": ("bad" if frame["grade"].iloc[i] == "ok" else "ok") for i in labelled}
    for item, lab in flip.items():
        site.store.add_label(ds.id, item, lab, "t")
    page = c.get("/label/parts/1?column=grade&filter=disagree").text
    data = json.loads(page.split('id="page-data">')[1].split("</script>")[0])
    model = site.ws.model("parts")
    pred = model.predict(frame.drop(columns=["grade"]))["prediction"].to_numpy()
    layer = site.store.current_labels(ds.id)
    given = np.array([layer.get(f"{i}:grade", frame["grade"].iloc[i]) for i in range(len(frame))], dtype=object)
    expected = [i for i in range(len(frame)) if isinstance(given[i], str) and given[i] != pred[i]]
    assert [it["idx"] for it in data["items"]] == expected[:100] and model.ref in page
    assert sum(f"{i}:grade" in flip for i in expected) >= 7  # most flipped rows are caught
    # apply: a new version of the table with the layer's values in the column
    r = c.post("/label/parts/1/apply", data={"csrf_token": c.csrf}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", job
    new = site.ws.load_frame("parts:2")
    for item, lab in list(flip.items())[:3] + [(k, "ok") for k in chosen]:
        assert new["grade"].iloc[int(item.split(":")[0])] == lab


def test_compare_matches_the_cli_and_recordings_cells_show_thumbnails(site):
    import subprocess
    import sys

    c = site.client("admin")
    page = c.get("/compare?a=fan:1&b=fan:2").text
    assert 'id="compare-table"' in page and "fan:1" in page and "fan:2" in page
    from modelfab.web.compare import compare

    mine = compare(site.ws.model("fan:1"), site.ws.model("fan:2"))
    p = subprocess.run([sys.executable, "-m", "modelfab", "models", "compare", "fan:1", "fan:2", "--json", "-w",
                        str(site.ws.root)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == json.loads(json.dumps(mine))
    # a recordings classifier: its matrix counts recordings, and a cell shows them with their pictures
    # (accuracy: with 18 recordings, grouped folds often hold one class only, where ROC AUC is undefined)
    r = c.post("/train", data={"csrf_token": c.csrf, "dataset": "fan:1", "task": "classification", "budget": "12",
                               "metric": "accuracy", "name": "fanclass"}, headers={"Accept": "application/json"})
    job = site.wait_job(_json(r)["job"])
    assert job["state"] == "done", job
    m = site.ws.model("fanclass")
    assert 'id="confusion"' in c.get(f"/models/fanclass/{m.version}").text
    files = m.manifest["data"]["holdout_files"]
    labels = m.manifest["labels"]
    seen = []
    for i in range(len(labels)):
        for j in range(len(labels)):
            cell = _json(c.get(f"/models/fanclass/{m.version}/confusion/{i}/{j}"))
            assert cell["kind"] == "files"
            for it in cell["items"]:
                assert it["file"].startswith(labels[i] + "/")  # folders are the true labels
                seen.append(it["file"])
    assert sorted(seen) == sorted(files)
    thumb = c.get(cell["items"][0]["thumb"] if cell["items"] else "/datasets/fan/1/thumb/0.png")
    assert thumb.status_code == 200 and thumb.content[:4] == b"\x89PNG"
    # an anomaly model against a classifier: metric names are words in each language, and metrics of the
    # same name mean different things across tasks, so no difference and no winner (nor for the threshold)
    for lang in ("en", "zh"):
        c.cookies.set("mf_lang", lang)
        page = c.get(f"/compare?a=fan:1&b=fanclass:{m.version}").text
        names = re.findall(r'<tr class="metric-row">\s*<th[^>]*>([^<]*)</th>', page)  # th: title explains the metric
        assert names and not [n for n in names if "_" in n or n in ("n", "f1", "threshold", "max_fpr")], names
        assert 'class="better"' not in page
        deltas = re.findall(r'<td class="num muted">([^<]*)</td>', page)
        assert deltas and all(not d.strip() for d in deltas), deltas
        assert ("s of" if lang == "en" else "秒") in page.split('id="compare-table"')[1]
    c.cookies.set("mf_lang", "en")
    same = c.get("/compare?a=fan:1&b=fan:2").text  # same task: differences are shown
    assert any(d.strip() for d in re.findall(r'<td class="num muted">([^<]*)</td>', same))


def test_deploy_starts_and_stops_a_model_server_and_refuses_a_busy_port(site, monkeypatch):
    import socket

    import httpx

    from modelfab.web.deploy import port_is_free

    c, viewer = site.client("admin"), site.client("viewer")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = c.post("/deployments", data={"csrf_token": c.csrf, "port": str(busy), "model": "parts"},
                   headers={"Accept": "application/json"})
        assert r.status_code == 409 and f"Port {busy}" in r.json()["error"]["detail"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert viewer.post("/deployments", data={"csrf_token": viewer.csrf, "port": str(port)}).status_code == 403
    r = c.post("/deployments", data={"csrf_token": c.csrf, "port": str(port), "model": "parts"},
               headers={"Accept": "application/json"})
    dep = _json(r)["deployment"]
    assert dep["url"] == f"http://127.0.0.1:{port}" and dep["model"] == "parts"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = [d for d in _json(c.get("/deployments"))["deployments"] if d["port"] == port][0]["state"]
            if state != "starting":
                break
            time.sleep(0.3)
        assert state == "running", _json(c.get("/deployments"))
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert f"http://127.0.0.1:{port}" in viewer.get("/").text  # the home page lists deployments
        # a fresh app (a restarted UI) still knows it; the page shows it with snippets
        from modelfab.web import create_web_app

        again = create_web_app(site.ws)
        assert [d["state"] for d in again.state.deployments.list()] == ["running"]
        page = viewer.get("/models").text
        assert f"http://127.0.0.1:{port}/v1/models/parts/predict" in page and 'id="deploy-python"' in page
        assert 'id="deploy-form"' not in page  # viewers see, admins start and stop
        # the snippet works against the running server: a whole record of the table, not "{...}"
        _, token = site.ws.create_token("deploy-snippet", "predict")
        r = run_python_snippet(snippet_of(page, "deploy-python"), token, site.tmp, monkeypatch=monkeypatch)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 1, r.text
        r = c.post(f"/deployments/{port}", data={"csrf_token": c.csrf}, headers={"Accept": "application/json"})
        assert r.status_code in (404, 405)
    finally:
        r = c.post(f"/deployments/{port}/stop", data={"csrf_token": c.csrf}, headers={"Accept": "application/json"})
    assert _json(r)["deployment"]["state"] == "stopped"
    assert port_is_free(port) and _json(c.get("/deployments"))["deployments"] == []
    # a server of all production models: the snippet calls a model it serves (a production one)
    served = site.ws.meta.models_in_stage("production")
    assert served
    fake = {"port": 1, "url": "http://127.0.0.1:1", "model": "", "state": "running", "started_at": "2026-01-01T00:00",
            "started_by": "admin1", "log": ""}
    monkeypatch.setattr(type(site.app.state.deployments), "list", lambda self: [fake])
    page = viewer.get("/models").text
    names = {m.name for m in site.ws.models()} - {r["name"] for r in served}
    curl = snippet_of(page, "deploy-curl")
    assert f"/v1/models/{served[0]['name']}/" in curl
    assert not any(f"/v1/models/{n}/" in curl for n in names)


def test_binary_classifier_evaluate_page_has_the_threshold_slider_and_saves_a_new_version(site):
    from modelfab.demo import write_factory_csv

    csv = write_factory_csv(site.tmp / "binary.csv", n_rows=600, seed=2)
    ds = site.ws.import_table(csv, name="binfactory").dataset
    model = site.ws.train(ds, target="quality", budget=4, name="binq", learners=("lgbm",), ensemble=False)
    neg, pos = model.manifest["labels"]
    c = site.client("admin")
    page = c.get(f"/models/binq/{model.version}").text
    assert 'id="threshold-slider"' in page and 'id="threshold-form"' in page
    data = json.loads(re.search(r'<script[^>]*id="page-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    hold = data["holdout"]
    assert hold["binary"] is True and (hold["negative"], hold["positive"]) == (neg, pos) and hold["threshold"] == 0.5
    stored = model.holdout()
    assert hold["y_true"] == stored["y_true"].tolist() and hold["scores"] == stored["proba"][:, 1].tolist()
    assert f"“{pos}” not caught" in page  # the misses box names the positive label
    r = c.post(f"/models/binq/{model.version}/threshold", data={"csrf_token": c.csrf, "threshold": "1.5"},
               headers={"Accept": "application/json"})
    assert r.status_code == 422
    r = c.post(f"/models/binq/{model.version}/threshold", data={"csrf_token": c.csrf, "threshold": "0.25"},
               headers={"Accept": "application/json"})
    assert site.wait_job(_json(r)["job"])["state"] == "done"
    moved = site.ws.model("binq")
    assert moved.version == model.version + 1 and moved.manifest["decision_threshold"] == 0.25
    assert moved.manifest["derived_from"]["model"] == model.ref and moved.row["created_by"] == "admin1"
    page = c.get(f"/models/binq/{moved.version}").text
    data = json.loads(re.search(r'<script[^>]*id="page-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert data["holdout"]["threshold"] == 0.25
    assert sum(map(sum, moved.metrics["confusion_matrix"])) == len(stored["y_true"])


def test_numbers_in_tables_read_without_exponents():
    import numpy as np

    from modelfab.web.views import _cell

    got = [_cell(v) for v in (1.43796e-05, np.float32(1.43796e-05), 0.5, 4013.3, 1e-9, 3e12, float("nan"), "x")]
    assert got == ["0.000014", "0.000014", "0.5", "4013.3", "<0.000001", "3,000,000,000,000", "", "x"]


def test_the_preview_says_what_the_import_read_around_a_title(site):
    """A plant export with a title above the header: the CLI said which row the header was read from, the preview
    said nothing."""
    c = site.client("admin")
    body = "设备维修工单导出\n导出时间: 2025-01-02\n\n工单号,车间,设备,故障类别\n" + "".join(
        f"WO{i},一车间,CNC-{i % 3},{'电气' if i % 2 else '机械'}\n" for i in range(12))
    r = c.post("/import", data={"csrf_token": c.csrf, "source": "table", "name": "titled", "preview": "1"},
               files={"file": ("工单导出.csv", body.encode("utf-8"), "text/csv")}, headers={"Accept": "application/json"})
    page = c.get(_json(r)["url"]).text
    assert 'id="preview-notes"' in page and "工单导出.csv: the rows above row 4 look like a title" in page

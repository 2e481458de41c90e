"""Time series end to end: import (.ts via the CLI, long and wide tables via the API), train both tasks
within the budget, reload equality, `modelfab predict`, REST predict with series JSON, report section,
and the docs/timeseries.md example."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput
from modelfab.workspace import Workspace
from tests.conftest import cli_json, run_cli, run_docs_python
from tests.modalities.test_series_io import make_series, write_long, write_ts, write_wide

BUDGET = 20


def _warm_numba_cache(series) -> None:
    from modelfab.modalities.series.io import SeriesSet
    from modelfab.modalities.series.rocket import RocketTransform

    packed = SeriesSet(series[:4], ["a", "b", "c", "d"]).packed()
    RocketTransform("minirocket", n_features=840).fit(*packed).transform(*packed)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("series")
    series, labels, _ = make_series(48, 60, seed=1)
    write_ts(root / "train.ts", series, labels)
    test, test_labels, _ = make_series(20, 60, seed=2)
    write_ts(root / "test.ts", test, test_labels)
    ws_dir = root / "ws"
    run_cli("init", str(ws_dir))
    env = {"MODELFAB_HOME": str(ws_dir)}
    imp = cli_json("data", "import", str(root / "train.ts"), "--name", "shapes", env=env)
    _warm_numba_cache(series)  # a fresh checkout compiles the transforms once (counted in a user's first budget)
    t0 = time.monotonic()
    out = cli_json("train", "shapes", "--task", "classification", "--budget", str(BUDGET), env=env)
    elapsed = time.monotonic() - t0
    yield {"root": root, "ws": ws_dir, "env": env, "import": imp, "train": out, "elapsed": elapsed,
           "test": test, "test_labels": test_labels}


def test_cli_import_ts_is_series_and_idempotent(trained):
    imp = trained["import"]
    assert imp["kind"] == "series" and imp["created"] is True
    assert imp["stats"]["series"] == 48 and imp["stats"]["labels"] == {"bump": 24, "step": 24}
    again = cli_json("data", "import", str(trained["root"] / "train.ts"), "--name", "shapes", env=trained["env"])
    assert again["created"] is False and again["version"] == imp["version"]


def test_cli_series_options_make_a_long_table_series_and_are_refused_for_tables(trained, tmp_path):
    series, labels, _ = make_series(6, 30, seed=3)
    path = tmp_path / "long.csv"
    write_long(path, series, labels)
    imp = cli_json("data", "import", str(path), "--name", "longauto", "--id-column", "machine", "--time-column", "t",
                   "--label-column", "state", env=trained["env"])  # no --kind: the series options say what it is
    assert imp["kind"] == "series" and imp["stats"]["series"] == 6
    bad = run_cli("data", "import", str(path), "--kind", "table", "--id-column", "machine", env=trained["env"], check=False)
    assert bad.returncode == 2 and "--id-column applies to series; got --kind table" in bad.stderr


def test_cli_train_within_budget_and_predict(trained, tmp_path):
    assert trained["elapsed"] <= BUDGET * 1.1 + 5, trained["elapsed"]
    out = tmp_path / "pred.csv"
    res = cli_json("predict", "shapes", str(trained["root"] / "test.ts"), "-o", str(out), env=trained["env"])
    assert res["rows"] == 20
    pred = pd.read_csv(out)
    acc = float(np.mean(pred["prediction"].astype(str) == np.array(trained["test_labels"])))
    assert acc >= 0.85, acc
    assert {"proba_bump", "proba_step", "id"} <= set(pred.columns)


def test_batch_predict_refuses_a_bad_series_alone_and_warns_on_odd_lengths(trained, tmp_path):
    test = list(trained["test"][:4])
    series = test[:2] + [test[2][:, :2], test[3][:, :12], np.tile(test[0], 3)]  # 2 steps, 12 of 60, 180 of 60
    path = tmp_path / "mixed.ts"
    write_ts(path, series, ["bump"] * len(series))
    out = tmp_path / "pred.csv"
    res = cli_json("predict", "shapes", str(path), "-o", str(out), env=trained["env"])
    assert res["rows"] == 5
    pred = pd.read_csv(out, keep_default_na=False)
    assert list(pred["error"] != "") == [False, False, True, False, False]
    assert "2 time step(s)" in pred["error"][2] and pred["prediction"][2] == ""
    assert set(pred["prediction"][:2]) <= {"bump", "step"} and set(pred["prediction"][3:]) <= {"bump", "step"}
    assert [bool(w) for w in pred["warning"]] == [False, False, False, True, True]
    assert "far shorter" in pred["warning"][3] and "far longer" in pred["warning"][4]
    with Workspace.open(trained["ws"]) as ws:
        recs = ws.model("shapes").predictor.predict_records([{"values": series[3][0].tolist()}])
    assert "far shorter" in recs[0]["warning"]
    from modelfab.errors import InvalidInput

    with Workspace.open(trained["ws"]) as ws, pytest.raises(InvalidInput, match="looks transposed"):
        ws.model("shapes").predictor.predict_records([{"channels": [[v] for v in series[0][0].tolist()]}])


def test_reload_gives_equal_predictions_and_report_has_series_section(trained, tmp_path):
    ws = Workspace.open(trained["ws"])
    model = ws.model("shapes")
    assert model.manifest["modality"] == "series" and model.manifest["learner"]["format"] == "series-ensemble"
    first = model.predictor.predict_raw(trained["test"])
    pkg = model.export(tmp_path / "shapes.mfpkg")
    other = Workspace.init(tmp_path / "other")
    again = other.import_package(pkg, name="copy").predictor.predict_raw(trained["test"])
    assert np.array_equal(first, again)
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in model.folder.iterdir())
    from modelfab.errors import UnsupportedFormat
    from modelfab.export.onnx import export_onnx

    with pytest.raises(UnsupportedFormat, match="series' data: the ROCKET transform .* has no ONNX converter") as err:
        export_onnx(model.folder, tmp_path / "m.onnx")
    assert "modelfab serve" in err.value.hint
    assert not (tmp_path / "m.onnx").exists()
    html, js = model.write_report(tmp_path / "report")
    report = json.loads(Path(js).read_text("utf-8"))
    titles = [s["title"] for s in report.get("sections") or []]
    assert titles and titles[0] == "Misclassified series"
    # the "best validation score" the report names is a row of its table: the kept candidate, or their blend
    chosen = [r for r in model.manifest["leaderboard"] if r.get("chosen")]
    # what chose it is the out-of-fold log loss (the report said "accuracy", and a row of higher accuracy could lose)
    assert model.metrics["primary"]["name"] == "log loss, out of fold"
    assert len(chosen) == 1 and chosen[0]["loss"] == pytest.approx(model.metrics["primary"]["validation_score"],
                                                                   abs=1e-6), model.manifest["leaderboard"]
    assert "Models were compared on <b>log loss, out of fold</b>" in Path(html).read_text("utf-8")
    assert f"· loss {chosen[0]['loss']:.4f}" in Path(html).read_text("utf-8")  # the number that chose, per row
    assert Path(html).read_text("utf-8").count('<tr class="chosen">') == 1
    ws.close()
    other.close()


@pytest.fixture(scope="module")
def server(trained):
    ws = Workspace.open(trained["ws"])
    _, token = ws.create_token("t", "predict")
    ws.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MODELFAB_HOME=str(trained["ws"]))
    proc = subprocess.Popen([sys.executable, "-m", "modelfab", "serve", "shapes", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError(proc.stderr.read())
    yield base, {"Authorization": f"Bearer {token}"}
    proc.terminate()
    proc.wait(timeout=20)


def test_rest_predict_with_series_json(trained, server):
    base, auth = server
    recs = [{"id": f"s{i}", "values": s[0].round(4).tolist()} for i, s in enumerate(trained["test"][:6])]
    r = httpx.post(base + "/v1/models/shapes/predict", json={"records": recs}, headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 6  # in the order of the records
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-6 for p in preds)
    assert all(p["confidence"] == max(p["probabilities"].values()) for p in preds)  # as every classifier row
    right = sum(p["prediction"] == y for p, y in zip(preds, trained["test_labels"][:6]))
    assert right >= 5
    bad = httpx.post(base + "/v1/models/shapes/predict", json={"records": [{"values": [1, "x", 3]}]}, headers=auth)
    assert bad.status_code == 422 and "numbers" in bad.json()["error"]["message"]
    two = httpx.post(base + "/v1/models/shapes/predict", json={"records": [{"channels": [[1, 2, 3, 4], [1, 2, 3, 4]]}]},
                     headers=auth)
    assert two.status_code == 422 and "channel" in two.json()["error"]["message"]
    both = httpx.post(base + "/v1/models/shapes/predict", json={"records": [{"values": [1, 2, 3], "channels": [[1, 2, 3]]}]},
                      headers=auth)
    assert both.status_code == 422 and "both 'values' and 'channels'" in both.json()["error"]["message"]
    twice = httpx.post(base + "/v1/models/shapes/predict-file", headers=auth, timeout=60,
                       files=[("file", ("a.ts", b"x")), ("file", ("b.ts", b"y"))])
    assert twice.status_code == 422 and "one file per request" in twice.json()["error"]["message"]
    up = httpx.post(base + "/v1/models/shapes/predict-file", headers=auth, timeout=60,
                    files={"file": ("test.ts", (trained["root"] / "test.ts").read_bytes())})
    assert up.status_code == 200, up.text
    assert len(up.json()["result"]["predictions"]) == 20
    gappy = (trained["root"] / "test.ts").read_text().replace("@missing false", "@missing true").splitlines()
    first = gappy.index("@data") + 1
    values = gappy[first].split(",")
    gappy[first] = ",".join(values[:5] + ["?"] + values[6:])  # one gap inside the first series
    gap = httpx.post(base + "/v1/models/shapes/predict-file", headers=auth, timeout=60,
                     files={"file": ("gap.ts", "\n".join(gappy).encode())})
    assert gap.status_code == 200 and any("interpolation" in n for n in gap.json()["notes"]), gap.text
    assert "notes" not in up.json()  # nothing to say about a clean file
    top = up.json()["predictions"]  # top-level, as /predict answers, probabilities as an object
    assert [p["prediction"] for p in top] == [p["prediction"] for p in up.json()["result"]["predictions"]]
    assert all(isinstance(p["probabilities"], dict) and len(p["probabilities"]) >= 2 for p in top)
    # the file's own labels come back beside the predictions, as `modelfab predict` writes them
    assert [p["label"] for p in up.json()["result"]["predictions"]] == list(trained["test_labels"])
    mixed = trained["root"] / "mixed.ts"
    write_ts(mixed, [trained["test"][0], trained["test"][1][:, :2]], ["bump", "bump"])
    up = httpx.post(base + "/v1/models/shapes/predict-file", headers=auth, timeout=60,
                    files={"file": ("mixed.ts", mixed.read_bytes())})
    assert up.status_code == 200, up.text  # the short series is refused alone, in its row (no NaN in the JSON)
    rows = up.json()["result"]["predictions"]
    assert rows[0]["prediction"] and not rows[0]["error"]
    assert rows[1]["prediction"] is None and rows[1]["proba_bump"] is None and "time step" in rows[1]["error"]
    top = up.json()["predictions"]  # in /predict's shape: nothing empty said, a refused row's probabilities null
    assert "error" not in top[0] and "warning" not in top[0] and isinstance(top[0]["probabilities"], dict)
    assert top[1]["probabilities"] is None and "time step" in top[1]["error"] and "confidence" not in top[1]
    # the same two series as JSON records: the short one is refused alone there too (it was a 422 for both)
    mixed = [{"id": "ok", "values": trained["test"][0][0].round(4).tolist()}, {"id": "bad", "values": [1, 2]}]
    r = httpx.post(base + "/v1/models/shapes/predict", json={"records": mixed}, headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert preds[0]["prediction"] in {"bump", "step"} and preds[1]["prediction"] is None
    assert preds[1]["error"] == "record 1: has 2 time step(s); at least 3 are needed"
    # null gaps in a JSON record are filled and said, per record (a file's gaps are said in the top-level notes)
    vals = trained["test"][0][0].round(4).tolist()
    holed = [{"id": "holed", "values": [None] + vals[1:5] + [None, None] + vals[7:]}, {"id": "whole", "values": vals}]
    r = httpx.post(base + "/v1/models/shapes/predict", json={"records": holed}, headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert preds[0]["note"] == ("2 missing value(s) inside the series filled by linear interpolation; 1 missing value(s) "
                                "at its start or end set to the nearest value; the answer rests partly on filled values")
    assert "note" not in preds[1] and preds[0]["prediction"] == preds[1]["prediction"]


def test_regression_multivariate_unequal_long_table(tmp_path):
    series, _, target = make_series(40, 50, channels=2, seed=3, unequal=True)
    write_long(tmp_path / "long.csv", series, [round(t, 3) for t in target])
    ws = Workspace.init(tmp_path / "ws")
    ds = ws.import_series(tmp_path / "long.csv", "amp", id_column="machine", time_column="t",
                          value_columns=["ch0", "ch1"], label_column="state").dataset
    assert ds.kind == "series" and ds.schema["n_channels"] == 2 and not ds.schema["equal_length"]
    t0 = time.monotonic()
    model = ws.train("amp", task="regression", budget=15)
    assert time.monotonic() - t0 <= 15 * 1.1 + 5
    assert model.task == "regression" and model.metrics["r2"] > 0.3
    pred = model.predictor.predict_records([{"channels": s.tolist()} for s in series[:3]])
    assert all(isinstance(p["prediction"], float) for p in pred)
    scored = model.predictor.predict_file(tmp_path / "long.csv")  # same layout; the label column is ignored
    truth = [target[int(i[1:])] for i in scored["id"]]  # ids are m0, m1, ...
    assert len(scored) == 40 and np.corrcoef(scored["prediction"], truth)[0, 1] > 0.5
    # a file of another layout: the error names the layout the model reads, not an option the user never gave
    write_wide(tmp_path / "wide.csv", series[:5], [None] * 5)
    with pytest.raises(InvalidInput) as ei:
        model.predictor.predict_file(tmp_path / "wide.csv")
    assert "expected the id column 'machine' (the layout the model was trained on)" in ei.value.message
    assert "--id-column" not in ei.value.message
    assert ei.value.hint == ("This model reads a long table: one row per series and time step, id column 'machine', "
                             "time column 't', value column(s) 'ch0', 'ch1'. Give new series in that layout.")
    ws.close()


def test_wide_table_with_labels_file_and_errors(tmp_path):
    series, labels, _ = make_series(12, 30, seed=4)
    write_wide(tmp_path / "wide.csv", series, [None] * 12)
    pd.DataFrame({"id": [f"row_{i + 1}" for i in range(12)], "label": labels}).to_csv(tmp_path / "labels.csv", index=False)
    ws = Workspace.init(tmp_path / "ws")
    ds = ws.import_series(tmp_path / "wide.csv", "w", labels_file=tmp_path / "labels.csv").dataset
    assert ds.stats["labels"] == {"bump": 6, "step": 6}
    assert ws.import_series(tmp_path / "wide.csv", "nolab").dataset.stats["unlabelled"] == 12
    bad = run_cli("train", "nolab", "--budget", "5", "--workspace", str(tmp_path / "ws"), check=False)
    assert bad.returncode == 2 and "no labels" in (bad.stdout + bad.stderr) and "Traceback" not in bad.stderr
    ws.close()


def test_docs_example_runs(tmp_path, monkeypatch):
    namespace = run_docs_python("timeseries.md", r"## From Python", tmp_path, monkeypatch)
    assert namespace["model"].task == "classification"
    assert list(namespace["scored"]["prediction"]) == ["spike", "flat"]


def test_cli_imports_a_wide_table_with_its_id_column(trained, tmp_path):
    """The tester's command: a wide table (one row per series) with --id-column keeps its ids, and the dataset
    (so its models) reads new files as wide; a long table with --id-column stays long."""
    from modelfab.series import SeriesOptions, read_file
    from modelfab.settings import Settings

    series, labels, _ = make_series(8, 30, seed=6)
    write_wide(tmp_path / "plain.csv", series, labels)
    df = pd.read_csv(tmp_path / "plain.csv").rename(columns={"label": "state"})
    df.insert(0, "unit", [f"u{i}" for i in range(8)])
    df.to_csv(tmp_path / "wide_ids.csv", index=False)
    imp = cli_json("data", "import", str(tmp_path / "wide_ids.csv"), "--kind", "series", "--label-column", "state",
                   "--id-column", "unit", env=trained["env"])
    assert imp["stats"]["series"] == 8 and imp["stats"]["format"] == "wide" and imp["stats"]["notes"] == []
    assert imp["options"]["layout"] == "wide" and imp["options"]["wide_steps"] is True
    with Workspace.open(trained["ws"]) as ws:
        from modelfab.series import load_series_index

        assert list(load_series_index(ws, ws.dataset(imp["name"]))["id"]) == [f"u{i}" for i in range(8)]
    again = read_file(tmp_path / "wide_ids.csv", Settings(), SeriesOptions.from_dict(imp["options"]).for_prediction(),
                      with_labels=False)
    assert again.format == "wide" and again.ids[:2] == ["u0", "u1"]
    long = SeriesOptions(id_column="machine", label_column="state")  # as stored for a long table: no layout
    assert long.to_dict() == SeriesOptions.from_dict(long.to_dict()).to_dict() and "layout" not in long.to_dict()
    assert long.for_prediction().layout == "long"


def test_records_that_cannot_be_scored_are_refused_one_by_one(trained):
    """REST /predict answers per record: a bad record gets its reason (records numbered from 0, as for tables),
    the others are scored; with none scorable the request is refused."""
    from modelfab.errors import InvalidInput

    good = trained["test"][0][0].round(4).tolist()
    with Workspace.open(trained["ws"]) as ws:
        p = ws.model("shapes").predictor
        out = p.predict_records([{"id": "ok", "values": good}, {"id": "bad", "values": [1, 2]},
                                 {"values": [1, "x", 3]}, 5, {"channels": [good, good]},
                                 {"values": ["1.5"] + good[1:]}, {"values": [True] + good[1:]}])
        with pytest.raises(InvalidInput, match=r"^record 0: has 2 time step\(s\)"):
            p.predict_records([{"values": [1, 2]}])
        with pytest.raises(InvalidInput, match=r"None of the 2 series could be scored: record 0: .*; record 1: expected"):
            p.predict_records([{"values": [1, 2]}, "x"])
    assert out[0]["id"] == "ok" and out[0]["prediction"] in {"bump", "step"} and "error" not in out[0]
    assert out[1] == {"id": "bad", "prediction": None, "probabilities": None,
                      "error": "record 1: has 2 time step(s); at least 3 are needed"}
    assert out[2]["id"] == "2" and out[2]["error"].startswith("record 2: series values must be JSON numbers")
    assert "str '1.5'" in out[5]["error"] and "bool 'True'" in out[6]["error"]  # not read as 1.5 and 1.0
    assert out[3]["id"] == "3" and out[3]["error"].startswith("record 3: expected an object")
    assert out[4]["error"].startswith("record 4 has 2 channel(s); the model was trained on 1")
    json.dumps(out, allow_nan=False)


def test_a_series_over_the_value_limit_is_refused_alone_at_prediction(trained, tmp_path):
    """MODELFAB_MAX_SIGNAL_SAMPLES, the import's limit, holds for each series at prediction (REST records, files):
    a longer series is refused in its row before it is transformed; the others are scored."""
    from dataclasses import replace

    test = trained["test"]
    with Workspace.open(trained["ws"]) as ws:
        p = ws.model("shapes").predictor
        p.settings = replace(p.settings, max_signal_samples=150)  # 60 steps each; two of them: 120
        out = p.predict_records([{"values": test[0][0].tolist()}, {"id": "long", "values": np.tile(test[1][0], 3).tolist()}])
        assert out[0]["prediction"] in {"bump", "step"}
        assert out[1]["prediction"] is None and out[1]["error"].startswith(
            "record 1: 180 values (180 time steps); expected at most 150 per series (MODELFAB_MAX_SIGNAL_SAMPLES")
        write_ts(tmp_path / "mixed.ts", [test[0], np.tile(test[1], 3), test[2]], ["bump"] * 3)
        scored = p.predict_file(tmp_path / "mixed.ts")
    assert list(scored["error"] != "") == [False, True, False] and "expected at most 150" in scored["error"][1]
    assert scored["prediction"].notna().tolist() == [True, False, True]


def test_a_series_with_other_channels_in_a_file_is_refused_alone(trained, tmp_path):
    """As the docs say for `predict`: a series with another number of channels than at training gets its reason
    in its row; the other series of the file are scored."""
    test = trained["test"]
    lines = (tmp_path / "one.ts")
    write_ts(lines, [test[0], test[1], test[2]], ["bump"] * 3)
    text = lines.read_text().splitlines()
    data_at = text.index("@data") + 1
    values = text[data_at + 1].rsplit(":", 1)[0]
    text[data_at + 1] = f"{values}:{values}:bump"  # the second series: two channels
    lines.write_text("\n".join(text) + "\n")
    with Workspace.open(trained["ws"]) as ws:
        scored = ws.model("shapes").predictor.predict_file(lines)
    assert scored["prediction"].notna().tolist() == [True, False, True]
    assert "has 2 channel(s); the model was trained on 1" in scored["error"][1]


def test_one_request_holds_at_most_so_many_series_values(trained, tmp_path, monkeypatch):
    """MODELFAB_MAX_SERIES_VALUES_PER_REQUEST bounds the CPU one REST request can cost (the transform follows
    the number of values): over it, 413 with the setting's name, before anything is transformed. Refused
    records do not count; `predict` on a file (the CLI) is not limited."""
    from fastapi.testclient import TestClient

    from modelfab.errors import TooLarge
    from modelfab.serving.app import create_app

    test = trained["test"]
    two = [{"values": test[0][0].tolist()}, {"values": test[1][0].tolist()}]  # 60 steps each
    monkeypatch.setenv("MODELFAB_MAX_SERIES_VALUES_PER_REQUEST", "100")  # as an admin sets it for the server
    with Workspace.open(trained["ws"]) as ws:
        p = ws.model("shapes").predictor
        assert p.predict_records(two[:1])[0]["prediction"] in {"bump", "step"}
        assert p.predict_records(two[:1] + [{"values": "x" * 500}])[1]["error"]  # refused alone, not counted
        with pytest.raises(TooLarge, match="120 values .* the limit is 100"):
            p.predict_records(two)
        write_ts(tmp_path / "two.ts", [test[0], test[1]], ["bump"] * 2)
        with pytest.raises(TooLarge, match="MODELFAB_MAX_SERIES_VALUES_PER_REQUEST"):
            p.predict_bytes((tmp_path / "two.ts").read_bytes(), "two.ts")
        assert p.predict_file(tmp_path / "two.ts")["prediction"].notna().all()  # batch: no request limit
        _, token = ws.create_token("limit", "predict")
        client = TestClient(create_app(ws, ["shapes"]))
        r = client.post("/v1/models/shapes/predict", json={"records": two},
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 413 and "MODELFAB_MAX_SERIES_VALUES_PER_REQUEST" in r.json()["error"]["message"]
        assert client.post("/v1/models/shapes/predict", json={"records": two[:1]},
                           headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_try_it_in_the_web_ui_refuses_a_bad_series_alone(trained, tmp_path):
    from modelfab.web.kinds import predict_series_upload
    from modelfab.web.uploads import UploadedFile

    test = trained["test"]
    path = tmp_path / "upload-1"
    write_ts(path, [test[0], test[1][:, :2], test[2]], ["bump"] * 3)
    up = UploadedFile(field="file", filename="mixed.ts", raw_name="mixed.ts", path=path)
    with Workspace.open(trained["ws"]) as ws:
        res = predict_series_upload(ws, ws.model("shapes"), up)
    rows = [dict(zip(res["columns"], r)) for r in res["rows"]]
    assert res["n"] == 3 and [bool(r["error"]) for r in rows] == [False, True, False]
    assert "2 time step(s)" in rows[1]["error"] and rows[1]["prediction"] == "" and rows[0]["prediction"]
    assert res["warnings"] == []
    gappy = (trained["root"] / "test.ts").read_text().replace("@missing false", "@missing true").splitlines()
    first = gappy.index("@data") + 1
    values = gappy[first].split(",")
    gappy[first] = ",".join(values[:5] + ["?"] + values[6:])  # one gap inside the first series
    path.write_text("\n".join(gappy))
    up = UploadedFile(field="file", filename="gap.ts", raw_name="gap.ts", path=path)
    with Workspace.open(trained["ws"]) as ws:
        res = predict_series_upload(ws, ws.model("shapes"), up)
    assert res["n"] == 20 and any("interpolation" in w for w in res["warnings"]), res["warnings"]


def test_cli_hash_of_a_relabelled_series_version_is_its_own(tmp_path):
    """A series version made by relabelling shares the values blob with its source; the CLI's sha256 column is
    the version's content hash, so the two versions do not show the same one."""
    from modelfab.series import load_series_index, relabel_series
    from modelfab.workspace import Workspace

    series, labels, _ = make_series(8, 30, seed=4)
    write_ts(tmp_path / "s.ts", series, labels)
    ws = Workspace.init(tmp_path / "ws")
    ds = ws.import_series(tmp_path / "s.ts", name="s").dataset
    first = str(load_series_index(ws, ds)["id"].iloc[0])
    new = relabel_series(ws, ds, {first: "other"})
    ws.close()
    assert new.created and new.dataset.data_sha == ds.data_sha
    listed = run_cli("data", "list", "-w", str(tmp_path / "ws")).stdout
    assert ds.content_sha[:12] in listed and new.dataset.content_sha[:12] in listed
    assert ds.data_sha[:12] not in listed


def test_predict_on_a_ucr_table_reads_every_row_and_keeps_its_labels(trained, tmp_path):
    """A headerless UCR-style test file (class label, a whole number, first): no series becomes the header, the
    label is not scored as a time step, and the true label stays beside the prediction."""
    test, labels = trained["test"], trained["test_labels"]
    codes = [1 if lab == "bump" else 2 for lab in labels]
    rows = ["\t".join([str(c)] + [f"{v:.6f}" for v in s[0]]) for c, s in zip(codes, test)]
    (tmp_path / "shapes_TEST.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with Workspace.open(trained["ws"]) as ws:
        p = ws.model("shapes").predictor
        scored = p.predict_file(tmp_path / "shapes_TEST.tsv")
        from_ts = p.predict_file(trained["root"] / "test.ts")
    assert len(scored) == len(test) and "error" not in scored and "warning" not in scored
    assert scored["label"].tolist() == [str(c) for c in codes]
    assert scored["prediction"].tolist() == from_ts["prediction"].tolist()  # the same values as the .ts file
    assert from_ts["label"].tolist() == labels


def test_predict_refuses_a_ts_series_with_a_channel_cut_short_alone(trained, tmp_path):
    test = trained["test"]
    write_ts(tmp_path / "cut.ts", test[:3], ["bump"] * 3)
    text = (tmp_path / "cut.ts").read_text().splitlines()
    at = text.index("@data") + 2
    a, lab = text[at].split(":")
    text[at] = ":".join([a, ",".join(a.split(",")[:40]), lab])  # the second series: a channel of 40 beside 60 values
    (tmp_path / "cut.ts").write_text("\n".join(text) + "\n")
    with Workspace.open(trained["ws"]) as ws:
        scored = ws.model("shapes").predictor.predict_file(tmp_path / "cut.ts")
    assert scored["prediction"].notna().tolist() == [True, False, True]
    assert "channels have different lengths (60, 40 values)" in scored["error"][1]


def test_a_series_far_outside_the_training_values_gets_a_warning(trained):
    """A tester's random arrays (values ~5 for a channel trained at ~45) were answered at confidence 1.0 with no
    word; the length check existed, a value check did not."""
    with Workspace.open(trained["ws"]) as ws:
        m = ws.model("shapes")
        lo, hi = m.manifest["series"]["value_range"][0]
        same = trained["test"][0]
        far = same + 10 * (hi - lo) + hi
        out = m.predictor.predict_series([same, far], ["same", "far"])
    assert out["warning"].iloc[0] == ""
    assert "is far outside the training values" in out["warning"].iloc[1] and "median" in out["warning"].iloc[1]


def test_evaluate_measures_the_model_on_a_labelled_test_file(trained):
    """`modelfab evaluate MODEL FILE`: the UCR TEST split's accuracy and confusion matrix (a script was needed)."""
    res = cli_json("evaluate", "shapes", str(trained["root"] / "test.ts"), env=trained["env"])
    assert res["task"] == "classification" and res["n"] == 20
    met = res["metrics"]
    assert met["accuracy"] >= 0.8 and sum(map(sum, met["confusion_matrix"])) == 20
    text = run_cli("evaluate", "shapes", str(trained["root"] / "test.ts"), env=trained["env"]).stdout
    assert "accuracy" in text and "confusion matrix" in text
    bad = run_cli("evaluate", "shapes", str(trained["root"] / "test.ts"), "--label-column", "x",
                  env=trained["env"], check=False)
    assert bad.returncode != 0 and "a .ts file carries its labels itself" in bad.stderr

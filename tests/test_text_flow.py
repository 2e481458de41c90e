"""Text end to end: GB18030 CSV import, train within budget, reload, `modelfab predict`, REST, report, docs."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from modelfab.modalities.text.synth import make_reports
from tests.conftest import cli_json, run_cli, run_docs_python

BUDGET = 8


@pytest.fixture(scope="module")
def zh(tmp_path_factory):
    """Chinese reviews + a numeric column, as a GB18030 CSV, imported and trained through the CLI."""
    d = tmp_path_factory.mktemp("text")
    df = make_reports(300, lang="zh", seed=2)
    src = d / "reviews.csv"
    df.to_csv(src, index=False, encoding="gb18030")
    assert "好评".encode("gb18030") in src.read_bytes()
    ws = d / "ws"
    w = ["--workspace", str(ws)]
    run_cli("init", str(ws))
    imp = cli_json("data", "import", str(src), "--name", "reviews", *w)
    tr = cli_json("train", "reviews", "--target", "label", "--budget", str(BUDGET), *w)
    return {"dir": d, "ws": ws, "w": w, "df": df, "import": imp, "train": tr}


def test_import_keeps_chinese_text_as_a_text_column(zh):
    from modelfab.workspace import Workspace

    with Workspace.open(zh["ws"]) as ws:
        ds = ws.dataset("reviews")
        assert ds.column_kinds() == {"text": "text", "hours": "numeric", "label": "categorical"}
        assert ws.load_frame(ds)["text"].tolist() == zh["df"]["text"].tolist()  # decoded from GB18030


def test_train_within_budget_and_learns(zh):
    tr = zh["train"]
    assert tr["elapsed_s"] <= BUDGET * 1.1 + 5
    assert tr["metrics"]["accuracy"] > 0.8  # 5% of the labels are flipped on purpose
    from modelfab.workspace import Workspace

    with Workspace.open(zh["ws"]) as ws:
        m = ws.model("reviews")
        learners = {r["learner"] for r in m.manifest["leaderboard"]}
        trees = {x for x in learners if not x.startswith("text:")}
        assert learners - trees  # the text candidates are on the leaderboard
        # the trees ran on the text scores + hours, unless the text model used the budget (a very loaded machine)
        assert trees or "used the whole budget" in " ".join(m.manifest["training"]["notes"])
        assert {"text.text_score", "hours"} <= set(json.loads((m.folder / "preprocess.json").read_text())["feature_names"])
        assert not list(m.folder.glob("*.pkl")) and (m.folder / "text_0.npz").is_file()


def test_reloaded_model_predicts_identically_and_handles_hostile_text(zh):
    from modelfab.predictor import load_predictor
    from modelfab.workspace import Workspace

    rows = zh["df"].drop(columns="label").head(40).astype({"text": object})
    rows.loc[0, "text"] = ""
    rows.loc[1, "text"] = "质量很好" * 200_000  # 800,000 characters: cut to the first 10,000
    rows.loc[2, "text"] = None
    rows.loc[3, "text"] = 12345  # not text at all
    with Workspace.open(zh["ws"]) as ws:
        m = ws.model("reviews")
        first = m.predict(rows)
        t0 = time.monotonic()
        again = load_predictor(m.folder).predict(rows)
        assert time.monotonic() - t0 < 10
    pd.testing.assert_frame_equal(first, again)
    assert first.iloc[1]["prediction"] == "好评"
    rows.loc[4, "text"] = "ŋŋŋ ßßß"
    with Workspace.open(zh["ws"]) as ws, pytest.warns(UserWarning, match="no word the model knows"):
        notes = ws.model("reviews").predict(rows).attrs["notes"]
    assert any(n.startswith("2 row(s) have text in 'text' but no word the model knows (e.g. '12345', 'ŋŋŋ ßßß')")
               for n in notes), notes
    assert np.allclose(first.filter(like="proba_").sum(axis=1), 1.0)
    assert np.allclose(first["confidence"], first.filter(like="proba_").max(axis=1))  # as images and series give it


def test_cli_predict_on_a_gb18030_file(zh):
    src = zh["dir"] / "new.csv"
    new = pd.DataFrame({"text": ["质量很好，非常满意。", "质量太差，已经退货。"], "hours": [10.0, 20.0]})
    new.to_csv(src, index=False, encoding="gb18030")
    out = zh["dir"] / "out.csv"
    res = cli_json("predict", "reviews", str(src), "-o", str(out), *zh["w"])
    assert res["rows"] == 2
    got = pd.read_csv(out)
    assert got["prediction"].tolist() == ["好评", "差评"]
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # a byte-order mark: Excel shows the Chinese, not mojibake
    assert list(got.columns)[0] == "text"  # pandas reads past the mark
    assert "notes" not in res and "rows_without_text" not in res
    new.assign(text=["质量很好。", "  "]).to_csv(src, index=False, encoding="gb18030")  # one row without text: said
    res = cli_json("predict", "reviews", str(src), "-o", str(out), *zh["w"])
    assert res["rows_without_text"] == {"text": 1} and "unreadable_values" not in res
    from modelfab.workspace import Workspace

    with Workspace.open(zh["ws"]) as ws:  # the text model may be kept alone (then 'hours' is unused) or trees
        alone = ws.model("reviews").manifest["learner"]["format"] == "text-scores"
    said = "are only how often each class occurred in training" if alone else "rest on the other columns and are less reliable"
    assert f"1 row(s) have no text in 'text': their answers {said}" in res["notes"]
    new.assign(text=["质量很好。", "ŋŋŋ ßßß"]).to_csv(src, index=False, encoding="gb18030")  # no word it knows: said
    res = cli_json("predict", "reviews", str(src), "-o", str(out), *zh["w"])
    assert res["rows_without_known_words"] == {"text": 1}
    assert any("1 row(s) have text in 'text' but no word the model knows (e.g. 'ŋŋŋ ßßß')" in n for n in res["notes"])


def test_report_shows_top_terms_and_misclassified_examples(zh):
    from modelfab.workspace import Workspace

    with Workspace.open(zh["ws"]) as ws:
        html_path, js = ws.model("reviews").write_report(zh["dir"] / "report")
    rep = json.loads(Path(js).read_text("utf-8"))
    sections = {s["title"]: s for s in rep["sections"]}
    top = {r["class"]: r["top terms"] for r in sections["Top terms per class"]["table"]}
    assert any(w in top["好评"] for w in ("满意", "很好", "推荐"))
    assert any(w in top["差评"] for w in ("失望", "太差", "退货"))
    wrong = sections["Held-out examples the model got wrong"]["table"]
    assert wrong and all(r["true"] != r["predicted"] for r in wrong)
    html = Path(html_path).read_text("utf-8")
    assert "Top terms per class" in html
    with Workspace.open(zh["ws"]) as ws:  # the dataset's hash as `data list` shows it (the content's, not its blob's)
        assert f"<code title=\"{ws.dataset('reviews').content_sha}\">{ws.dataset('reviews').content_sha[:12]}</code>" in html


def test_onnx_export_of_a_text_model_is_a_clear_error(zh):
    from modelfab.errors import UnsupportedFormat
    from modelfab.export.onnx import export_onnx
    from modelfab.workspace import Workspace

    with Workspace.open(zh["ws"]) as ws, pytest.raises(UnsupportedFormat, match=r"text column\(s\) 'text'.*ONNX"):
        export_onnx(ws.model("reviews").folder, zh["dir"] / "m.onnx")
    assert not (zh["dir"] / "m.onnx").exists()


def test_rest_predict_with_text_json(zh):
    from modelfab.workspace import Workspace

    with Workspace.open(zh["ws"]) as ws:
        _, token = ws.create_token("text-tests", "predict")
    with socket_port() as port:
        env = dict(os.environ, MODELFAB_HOME=str(zh["ws"]))
        proc = subprocess.Popen([sys.executable, "-m", "modelfab", "serve", "reviews", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        body = {"records": [{"text": "非常满意，推荐购买", "hours": 3.0}, {"text": "", "hours": None},
                            {"text": "ŋŋŋ ßßß", "hours": 3.0}]}
        r = httpx.post(base + "/v1/models/reviews/predict", json=body, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert preds[0]["prediction"] == "好评" and set(preds[0]["probabilities"]) == {"好评", "差评"}
        with Workspace.open(zh["ws"]) as ws:  # the text model alone (then 'hours' is unused) or trees
            alone = ws.model("reviews").manifest["learner"]["format"] == "text-scores"
        said = "is only how often each class occurred" if alone else "rests on the other fields and is less reliable"
        assert "warning" not in preds[0] and preds[1]["warning"].startswith(f"no text in 'text': the answer {said}")
        # text holding no word the model knows scores as an empty text does: said as well (it was silent)
        assert preds[2]["warning"].startswith(f"no word the model knows in 'text': the answer {said}"), preds[2]
        bad = httpx.post(base + "/v1/models/reviews/predict", json={"records": [{"text": {"a": 1}, "hours": 1}]},
                         headers=auth, timeout=30)
        assert bad.status_code == 422 and "text" in bad.text
        missing = httpx.post(base + "/v1/models/reviews/predict", json={"records": [{"hours": 1}]}, headers=auth, timeout=30)
        assert missing.status_code == 422 and "'text' is missing" in missing.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


class socket_port:
    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc) -> None:
        return None


def test_docs_example_runs(tmp_path, monkeypatch):
    namespace = run_docs_python("text.md", r"## From Python", tmp_path, monkeypatch)
    assert namespace["model"].ref == "tickets:1"
    assert namespace["scored"]["prediction"].tolist()[:2] == ["leak", "electrical"]


def test_notes_name_the_model_that_was_kept(tmp_path):
    """A text column alone: when its linear model is kept over the tree learners, the notes say so, and no note
    says a tree learner was kept (a tie-break note of the trees used to stay: "kept rf" beside text:svm)."""
    from modelfab.workspace import Workspace

    df = make_reports(240, lang="en", seed=5)[["text", "label"]]
    df.to_csv(tmp_path / "only_text.csv", index=False)
    with Workspace.init(tmp_path / "ws") as ws:
        ws.import_table(tmp_path / "only_text.csv", name="only")
        m = ws.train("only", target="label", budget=8)
        notes = " ".join(m.manifest["training"]["notes"])
        # a text with no known term gets the training rows' class shares, whichever learner was kept: the
        # linear text model here, trees on its scores for 150 Chinese reviews (rf, lgbm or an ensemble of them)
        zh = make_reports(150, lang="zh", seed=0)[["text", "label"]]
        zh.to_csv(tmp_path / "zh_only.csv", index=False)
        ws.import_table(tmp_path / "zh_only.csv", name="zh")
        trees = ws.train("zh", target="label", budget=6)
        for mm, data in ((m, df), (trees, zh)):
            shares = data["label"].value_counts(normalize=True)
            out = mm.predict([{"text": ""}, {"text": None}, {"text": data["text"].iloc[0]}])
            for i in (0, 1):
                got = {c[len("proba_"):]: out[c].iloc[i] for c in out.columns if c.startswith("proba_")}
                assert got == pytest.approx({str(k): v for k, v in shares.items()}, abs=0.03), (mm.ref, got)
            assert out["confidence"].iloc[2] > shares.max()  # a real text is still read
        learner = m.manifest["learner"]["name"] if isinstance(m.manifest.get("learner"), dict) else m.row["learner"]
    assert str(learner).startswith("text:"), learner  # on texts alone the linear text model validates best
    assert "whose probabilities fit best" not in notes
    assert "Kept the text model of 'text'" in notes or "used the whole budget" in notes, notes


def test_a_text_model_is_kept_alone_over_trees_using_noise_columns_too(tmp_path):
    """Tickets in a few phrasings per fault beside an id-like code and random hours (a tester's set): trees on the
    text model's out-of-fold scores sent a short new phrasing of a known fault ('轴承异响') and an empty text to
    another class at 0.995; the text model alone validates as well, so it is kept and the other columns are said
    to be unused."""
    import numpy as np

    from modelfab.workspace import Workspace

    r = np.random.default_rng(3)
    cls = {"轴承故障": ["bearing noise loud", "轴承异响，温度高", "bearing overheated 轴承磨损", "振动大 bearing worn"],
           "电气故障": ["motor tripped breaker", "电机跳闸 保险丝烧了", "短路 fuse blown", "接线松动 wiring loose"],
           "液压泄漏": ["oil leak under gearbox", "液压油泄漏", "hydraulic hose leaking 漏油", "油管破裂 pressure drop"],
           "传感器故障": ["sensor reading wrong", "传感器无信号", "encoder fault 编码器故障", "探头损坏 probe broken"]}
    rows = []
    for k in range(200):
        c = list(cls)[k % 4]
        t = r.choice(cls[c]) + " " + r.choice(["二号线", "line 3", "夜班", "请尽快处理", "again", "已停机"])
        rows.append([f"T{k:04d}", t, float(r.integers(1, 50)), c])
    rows += rows[:15] + [["T9999", "", 3.0, "电气故障"]]
    pd.DataFrame(rows, columns=["ticket", "desc", "hours", "fault"]).to_csv(tmp_path / "tickets.csv", index=False)
    with Workspace.init(tmp_path / "ws") as ws:
        ws.import_table(tmp_path / "tickets.csv", name="tickets")
        m = ws.train("tickets", target="fault", budget=12)
        assert m.manifest["learner"]["format"] == "text-scores", m.manifest["training"]["notes"]
        assert any("so the other columns are not used" in n for n in m.manifest["training"]["notes"])
        got = m.predict([{"ticket": "N1", "desc": "轴承异响", "hours": 5.0},
                         {"ticket": "N2", "desc": "hydraulic oil leaking again", "hours": 3.0}])
        assert got["prediction"].tolist() == ["轴承故障", "液压泄漏"]


def test_short_texts_that_repeat_can_be_declared_text_at_import(tmp_path):
    """A tester's tickets of a few words that repeat were typed 'categorical' with no way to say they are text:
    every new wording was then a category never seen ('漏油严重' -> another class at 0.8)."""
    rng = np.random.default_rng(0)
    words = {"leak": ["漏油", "漏水", "油管漏"], "trip": ["跳闸", "断电", "停机跳闸"]}
    rows = [(rng.choice(words[c]), c) for c in ("leak", "trip") for _ in range(60)]
    src = tmp_path / "short.csv"
    pd.DataFrame(rows, columns=["desc", "cls"]).to_csv(src, index=False)
    w = ("-w", str(tmp_path / "ws"))
    run_cli("init", str(tmp_path / "ws"))
    auto = cli_json("data", "import", str(src), "--name", "short", *w)
    assert {c["name"]: c["kind"] for c in auto["schema"]}["desc"] == "categorical"
    said = cli_json("data", "import", str(src), "--name", "short", "--column-kind", "desc=text", *w)
    assert said["created"] and {c["name"]: c["kind"] for c in said["schema"]}["desc"] == "text"
    bad = run_cli("data", "import", str(src), "--name", "short", "--column-kind", "desk=text", *w, check=False)
    assert bad.returncode != 0 and "Cannot set column 'desk'" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("data", "import", str(src), "--column-kind", "desc", *w, check=False)
    assert bad.returncode != 0 and "expects COLUMN=KIND" in bad.stderr

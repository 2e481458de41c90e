"""Text columns: tokens, TF-IDF blocks, linear candidates, stored state (no pickle)."""

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import IntegrityError
from modelfab.modalities.tabular import infer_schema
from modelfab.modalities.text.column import TextColumnModel, fit_text_column
from modelfab.modalities.text.linear import fit_candidate
from modelfab.modalities.text.synth import make_reports
from modelfab.modalities.text.tokens import MAX_TEXT_CHARS, AnalyzerConfig, char_terms, normalise, word_terms
from modelfab.modalities.text.vectorizer import TfidfBlocks


def test_chinese_and_english_reports_are_inferred_as_text_not_ids():
    for lang in ("zh", "en"):
        kinds = {c["name"]: c["kind"] for c in infer_schema(make_reports(120, lang=lang))["columns"]}
        assert kinds == {"text": "text", "hours": "numeric", "label": "categorical"}
    short = pd.DataFrame({"result": ["合格", "不合格"] * 30})  # two values: still a category
    assert infer_schema(short)["columns"][0]["kind"] in ("categorical", "boolean")
    # short tickets made of a few phrases repeat: 96 different of 240 rows is still text
    rng = np.random.default_rng(0)
    parts = (["接触器烧坏", "液压油管漏油", "主轴异响", "程序报警", "皮带打滑", "传感器失灵"],
             ["夜班发现", "早班反馈", "巡检发现", "操作工报告"], ["已停机", "已处理", "待备件", "需复查"])
    tickets = ["，".join(rng.choice(p) for p in parts) for _ in range(96)]
    col = pd.DataFrame({"描述": tickets + list(rng.choice(tickets, 144)),
                        "设备": rng.choice(["装配线B", "冲床1号", "注塑机IM3"], 240)})
    kinds = {c["name"]: c["kind"] for c in infer_schema(col)["columns"]}
    assert kinds == {"描述": "text", "设备": "categorical"}, (kinds, col["描述"].nunique())


def test_normalise_and_terms():
    assert normalise("  Ｐｕｍｐ\tFAILED！ ") == "pump failed!"
    assert len(normalise("x" * (5 * MAX_TEXT_CHARS))) == MAX_TEXT_CHARS
    long = "filler words here " * 2000 + "cause: bearing worn"  # 36,019 characters: the end is kept too
    assert len(normalise(long)) == MAX_TEXT_CHARS and normalise(long).endswith("cause: bearing worn")
    assert normalise(None) == "" and normalise(float("nan")) == "nan"
    en = AnalyzerConfig.for_texts(["the pump is leaking oil"])
    assert en.lang == "latin"
    assert "pump is" in word_terms("the pump is leaking", en) and "don't" in word_terms("don't", en)
    assert " pu" in char_terms("pump", en)
    zh = AnalyzerConfig.for_texts(["电机异响，轴承温度高"])
    assert zh.lang == "cjk" and zh.char_ngrams == (1, 3)
    chars = char_terms("轴承 过热", zh)
    assert "承过" in chars and "轴承过" in chars  # spaces are not characters of Chinese text
    assert all(t.strip() for t in word_terms("轴承，过热！", zh))


def test_vectorizer_rows_are_unit_length_per_block_and_state_round_trips():
    texts = [normalise(t) for t in make_reports(80, lang="en")["text"]] + ["", "zzz unseen"]
    vec = TfidfBlocks(AnalyzerConfig.for_texts(texts))
    X = vec.fit_transform(texts)
    assert X.shape == (82, vec.n_features) and set(vec.terms) == {"w", "c"}
    n_w = len(vec.terms["w"])
    norms = np.sqrt(np.asarray(X[:, :n_w].multiply(X[:, :n_w]).sum(axis=1)).ravel())
    assert np.allclose(norms[:80], 1.0) and norms[80] == 0.0
    meta, arrays = vec.state()
    again = TfidfBlocks.from_state(meta, arrays)
    assert abs(again.transform(texts) - X).max() < 1e-12
    arrays["idf_w"] = arrays["idf_w"][:-1]
    with pytest.raises(IntegrityError, match="idf values"):
        TfidfBlocks.from_state(meta, arrays)


@pytest.mark.parametrize("kind,C", [("lr", 4.0), ("nblr", 4.0), ("svm", 0.3)])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_every_linear_candidate_gives_probabilities(kind, C, n_classes):
    df = make_reports(150, lang="en", seed=3)
    labels = sorted(df["label"].unique())[:n_classes]
    df = df[df["label"].isin(labels)]
    y = df["label"].map({v: i for i, v in enumerate(labels)}).to_numpy()
    texts = [normalise(t) for t in df["text"]]
    vec = TfidfBlocks(AnalyzerConfig.for_texts(texts))
    X = vec.fit_transform(texts)
    p = fit_candidate(kind, C, X, y, n_classes, 0).predict(X)
    assert p.shape == (len(y), n_classes) and np.allclose(p.sum(axis=1), 1.0) and (p >= 0).all()
    assert (p.argmax(axis=1) == y).mean() > 0.8  # 5% of labels are flipped on purpose


def test_text_column_model_saves_as_json_and_npz_and_reloads_identically(tmp_path):
    df = make_reports(240, lang="en", seed=1)
    labels = sorted(df["label"].unique())
    y = df["label"].map({v: i for i, v in enumerate(labels)}).to_numpy()
    model, oof, board, best = fit_text_column(df["text"].tolist(), y, column="text", n_classes=3, labels=labels,
                                              metric="accuracy", seconds=5, seed=0)
    assert oof.shape == (240, 3) and 0.8 < best <= 1.0 and board
    model.save(tmp_path, "text_0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text_0.json", "text_0.npz"]
    with np.load(tmp_path / "text_0.npz", allow_pickle=False) as npz:  # plain numbers only
        assert all(npz[k].dtype.kind == "f" for k in npz.files)
    again = TextColumnModel.load(tmp_path, "text_0")
    new = ["oil leak under the gearbox", "", "x" * 100_000, "保险丝又烧了"]
    assert np.array_equal(again.scores(new), model.scores(new))
    top = {r["class"]: r["top terms"] for r in again.top_terms()}
    for cls, signs in {"leak": ("leak", "seal", "coolant", "puddle", "gasket", "hydraulic"),
                       "bearing": ("bearing", "grinding", "vibration", "rumble", "hot")}.items():
        assert any(w in top[cls].split(", ") for w in signs), (cls, top[cls])


def test_regression_on_text_uses_ridge():
    rng = np.random.default_rng(0)
    words = np.array(["hot", "cold", "noise", "ok"])
    texts = [" ".join(rng.choice(words, 4)) for _ in range(120)]
    y = np.array([t.count("hot") * 2.0 - t.count("cold") for t in texts]) + rng.normal(0, 0.1, 120)
    model, oof, _, best = fit_text_column(texts, y, column="t", n_classes=0, labels=[], metric="r2", seconds=5)
    assert oof.shape == (120, 1) and best > 0.8 and model.output_names == ["t.text_prediction"]


def test_tampered_or_pickled_text_model_is_refused(tmp_path):
    df = make_reports(60, lang="zh")
    y = (df["label"] == "好评").to_numpy().astype(int)
    model, *_ = fit_text_column(df["text"].tolist(), y, column="text", n_classes=2, labels=["差评", "好评"],
                                metric="roc_auc", seconds=3)
    model.save(tmp_path, "t")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(tmp_path / "t.npz", **dict(arrays, coef=np.array([{"evil": 1}], dtype=object)))
    with pytest.raises(IntegrityError, match="cannot be read"):
        TextColumnModel.load(tmp_path, "t")
    np.savez(tmp_path / "t.npz", **dict(arrays, coef=arrays["coef"][:, :-1]))
    with pytest.raises(IntegrityError, match="shape"):
        TextColumnModel.load(tmp_path, "t")
    with pytest.raises(IntegrityError, match="missing"):
        TextColumnModel.load(tmp_path, "../t")


def test_texts_without_any_term_give_the_class_prior():
    y = np.array([0, 0, 0, 1] * 10)
    model, oof, _, _ = fit_text_column([""] * 40, y, column="t", n_classes=2, labels=["a", "b"], metric="accuracy",
                                       seconds=2)
    assert model.vectorizer.n_features == 0 and np.allclose(model.scores(["anything", ""]), 0.25, atol=1e-3)


def test_text_scores_learner_round_trips(tmp_path):
    from modelfab.modalities.text.stage import TextScoresLearner

    X = np.array([[5.0, 0.2, 0.7, 0.1], [3.0, 0.9, 0.1, 0.0]])
    binary = TextScoresLearner([1], "classification", 2)
    assert np.allclose(binary.predict_raw(X), [[0.8, 0.2], [0.1, 0.9]])
    multi = TextScoresLearner([1, 2, 3], "classification", 3)
    name = multi.save(tmp_path)
    again = TextScoresLearner.load(tmp_path, {"file": name}, "classification", 3)
    assert np.allclose(again.predict_raw(X), multi.predict_raw(X)) and np.allclose(again.predict_raw(X).sum(1), 1)
    with pytest.raises(IntegrityError):
        TextScoresLearner.load(tmp_path, {"file": "../x.json"}, "classification", 3)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_engine_trains_text_tables_within_budget(task):
    from modelfab.automl.budget import Budget
    from modelfab.automl.engine import train_tabular

    df = make_reports(200, lang="en", seed=4)
    if task == "regression":  # a numeric target that depends on the text and on hours
        df["label"] = df["label"].map({"bearing": 10.0, "electrical": 20.0, "leak": 30.0}) + df["hours"] / 100
    else:
        df = df.drop(columns="hours")  # the text alone: the linear model is a candidate on its own
    clock = Budget(6)
    res = train_tabular(df, infer_schema(df), target="label", task=task, budget=clock, seed=0)
    assert clock.elapsed() <= 6 * 1.1 + 5
    assert any(r["learner"].startswith("text:") for r in res.leaderboard)
    out = res.learner.predict_raw(res.X_holdout)
    assert np.allclose(out, res.proba_holdout if task == "classification" else res.pred_holdout)
    if task == "classification":
        assert res.metrics["accuracy"] > 0.8 and res.manifest_extra["text"]["examples"] is not None
    else:
        assert res.metrics["r2"] > 0.5 and "label" not in res.preprocessor.feature_names


def test_top_terms_leave_out_lone_letters():
    """"5 m" and "e stop" made "m" and "e" top terms of a class: nothing a reader can use."""
    rng = np.random.default_rng(0)
    a = [f"hmi e stop m {w} alarm" for w in rng.choice(["screen", "plc", "reset", "panel"], 60)]
    b = [f"oil leak {w} under pump" for w in rng.choice(["seal", "hose", "gasket", "drip"], 60)]
    model, *_ = fit_text_column(a + b, np.r_[np.zeros(60), np.ones(60)].astype(int), column="t", n_classes=2,
                                labels=["soft", "leak"], metric="accuracy", seconds=5)
    shown = [t.strip("“”\"") for r in model.top_terms() for t in r["top terms"].split(", ")]
    assert shown and not [t for t in shown if len(t) == 1 and t.isascii()], shown

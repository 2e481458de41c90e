"""The tabular AutoML engine: tasks, targets, budget honoured, real learners."""

import time

import numpy as np
import pandas as pd
import pytest

from modelfab.automl.budget import Budget, parse_duration
from modelfab.automl.engine import train_tabular
from modelfab.errors import InvalidInput
from modelfab.modalities.tabular import infer_schema


def _frame(n=400, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    cat = rng.choice(["a", "b", "c"], n)
    score = 2 * x1 - x2 + (cat == "b") * 1.5 + rng.normal(scale=0.3, size=n)
    if classes == 2:
        y = np.where(score > 0, "bad", "good")
    else:
        y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])).astype(str)
    x1[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"x1": x1, "x2": x2, "cat": cat, "y": y, "value": score * 3 + 10})


@pytest.mark.parametrize("text,seconds", [("90", 90), (60, 60), ("90s", 90), ("2m", 120), ("1m30s", 90), ("1h", 3600)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["0", "abc", "-5", "", "5x", 0, "10 years"])
def test_parse_duration_rejects(bad):
    with pytest.raises(InvalidInput, match="Budget"):
        parse_duration(bad)


def test_budget_clock():
    now = [100.0]
    b = Budget(10, clock=lambda: now[0])
    b.reserve(3)
    now[0] = 104.0
    assert b.elapsed() == 4 and b.left() == 6 and b.left_for_search() == 3
    now[0] = 120.0
    assert b.left() == 0 and b.expired()


def test_binary_classification_learns_and_reports(tmp_path):
    df = _frame()
    start = time.monotonic()
    res = train_tabular(df.drop(columns=["value"]), infer_schema(df.drop(columns=["value"])), target="y",
                        budget=Budget(6))
    elapsed = time.monotonic() - start
    assert elapsed <= 6 * 1.1 + 5
    assert res.task == "classification" and sorted(res.labels) == ["bad", "good"]
    counts = df["y"].value_counts()
    assert counts["good"] < counts["bad"] and res.labels == ["good", "bad"]  # 'good' is negative even when rarer
    assert res.metrics["roc_auc"] > 0.9
    assert res.leaderboard and res.leaderboard[0]["score"] >= res.leaderboard[-1]["score"]
    searched = [r for r in res.leaderboard if "cross-validation" in r["validation"] or r["validation"] == "holdout"]
    assert len(searched) >= 2 and all(r["train_time_s"] and r["train_time_s"] > 0 for r in searched), res.leaderboard
    assert res.proba_holdout.shape == (res.n_holdout, 2)
    assert np.allclose(res.proba_holdout.sum(axis=1), 1.0)
    assert set(res.feature_importance) >= {"x1", "x2", "cat"}


def test_multiclass_and_regression():
    df = _frame(600, classes=4)
    cls = df.drop(columns=["value"])
    res = train_tabular(cls, infer_schema(cls), target="y", budget=Budget(6))
    assert res.labels == ["0", "1", "2", "3"] and res.metric == "log_loss"
    assert res.metrics["accuracy"] > 0.6
    num = df.drop(columns=["y"])
    reg = train_tabular(num, infer_schema(num), target="value", budget=Budget(6))
    assert reg.task == "regression" and reg.metrics["r2"] > 0.8


@pytest.mark.parametrize("mutate,pattern", [
    (lambda d: d.assign(y="good"), "single class"),
    (lambda d: d.assign(y=np.nan), "no values"),
    (lambda d: d.rename(columns={"y": "label"}), "not in the dataset"),
    (lambda d: d.head(5), "at least 10"),
    (lambda d: pd.concat([d, d.head(1).assign(y="lonely")]), "only one row"),
])
def test_bad_targets(mutate, pattern):
    df = mutate(_frame(100).drop(columns=["value"]))
    with pytest.raises(InvalidInput, match=pattern):
        train_tabular(df, infer_schema(df), target="y", budget=Budget(5))


def test_wrong_metric_for_task():
    df = _frame(100)
    with pytest.raises(InvalidInput, match="does not fit"):
        train_tabular(df, infer_schema(df), target="y", budget=Budget(5), metric="rmse")


def test_learner_subset_and_no_ensemble():
    df = _frame(300).drop(columns=["value"])
    res = train_tabular(df, infer_schema(df), target="y", budget=Budget(5), learners=("lgbm",), ensemble=False)
    assert res.learner_name == "lgbm" and res.learner.format == "lightgbm-text"
    assert [r["learner"] for r in res.leaderboard] == ["lgbm"]
    with pytest.raises(InvalidInput, match="Unknown learner"):
        train_tabular(df, infer_schema(df), target="y", budget=Budget(5), learners=("svm",))
    with pytest.raises(InvalidInput, match="only fitted beside the tree learners|without lgbm"):
        train_tabular(df, infer_schema(df), target="y", budget=Budget(5), learners=("mlp",))
    with pytest.raises(InvalidInput, match="without lgbm"):
        train_tabular(df, infer_schema(df), target="y", budget=Budget(5), learners=("rf", "mlp"))


def test_large_table_refits_the_chosen_models_on_every_row_and_the_package_agrees(ws):
    """>= 1M cells: boosters and the network finished on the fit rows, scored on the holdout, then fitted again on
    training + holdout rows; the metrics stay the holdout's, the package reproduces the refit model."""
    rng = np.random.default_rng(0)
    n, k = 32_000, 40  # 25,600 training rows x 40: over 1M cells
    X = rng.normal(size=(n, k))
    score = X[:, 0] + 0.7 * X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + rng.normal(scale=0.5, size=n)
    df = pd.DataFrame(X, columns=[f"s{i}" for i in range(k)])
    df["y"] = np.where(score > 0, "bad", "good")
    path = ws.root / "big.csv"
    df.to_csv(path, index=False)
    ds = ws.import_table(path, name="big").dataset
    t0 = time.monotonic()
    model = ws.train(ds, target="y", budget=30)
    assert time.monotonic() - t0 <= 30 * 1.1 + 5
    notes = " ".join(model.manifest["training"]["notes"])
    assert "fitted again on all 32,000 rows" in notes, notes
    assert model.manifest["data"]["n_holdout"] == 6400
    assert model.manifest["metrics"]["roc_auc"] > 0.9
    pred = model.predict(df.drop(columns="y").iloc[:2000])
    assert pred["proba_bad"].between(0, 1).all()
    assert ((pred["proba_bad"] > 0.5) == (df["y"].iloc[:2000] == "bad")).mean() > 0.85


def test_a_small_class_is_said_once_in_the_notes_not_in_hundreds_of_warnings(tmp_path):
    from tests.conftest import run_cli

    rng = np.random.default_rng(3)
    y = np.array(["ok"] * 60 + ["bad"] * 40 + ["rare"] * 3)
    df = pd.DataFrame({"x": rng.normal(size=len(y)) + (y == "bad") * 2 + (y == "rare") * 4,
                       "z": rng.normal(size=len(y)), "label": y})
    df.to_csv(tmp_path / "t.csv", index=False)
    w = ["-w", str(tmp_path / "ws")]
    run_cli("init", str(tmp_path / "ws"))
    run_cli("data", "import", str(tmp_path / "t.csv"), "--name", "t", *w)
    proc = run_cli("train", "t", "--target", "label", "--budget", "6", "--json", *w)
    assert "least populated" not in proc.stderr, proc.stderr[-2000:]
    notes = " ".join(__import__("json").loads(proc.stdout)["notes"])
    assert "'rare' (3)" in notes and "fewer than 5" in notes


def test_two_classes_the_normal_one_is_negative_else_the_rarer_one_is_positive():
    from modelfab.automl.engine import order_labels

    assert order_labels(pd.Series({"abnormal": 40, "normal": 60})) == ["normal", "abnormal"]
    assert order_labels(pd.Series({"defect": 60, "OK": 40})) == ["OK", "defect"]  # by name, even when rarer
    assert order_labels(pd.Series({"合格": 5, "划伤": 50})) == ["合格", "划伤"]
    assert order_labels(pd.Series({"a": 10, "b": 90})) == ["b", "a"]  # no name says normal: the rarer is positive
    assert order_labels(pd.Series({"a": 50, "b": 50})) == ["a", "b"]
    assert order_labels(pd.Series({"ok": 5, "x": 5, "y": 9})) == ["ok", "x", "y"]  # three classes: sorted


def test_copies_of_rows_stay_on_one_side_of_the_holdout():
    rng = np.random.default_rng(5)
    base = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "c": rng.choice(list("xyz"), 300),
                         "y": rng.choice(["ok", "defect"], 300)})  # the label is noise: nothing to learn
    df = base.loc[base.index.repeat(6)].reset_index(drop=True)  # every row six times (an export error)
    res = train_tabular(df, infer_schema(df), target="y", budget=Budget(8), learners=("rf", "extra_tree"),
                        ensemble=False)
    assert res.metrics["roc_auc"] < 0.7  # copies on both sides: the trees recalled the holdout, AUC ~ 0.95
    assert any("1,500 of 1,800 rows repeat another row's inputs" in n for n in res.notes)


def test_a_rare_class_missed_at_one_half_gets_a_note_with_a_better_threshold():
    from modelfab.automl.engine import _rare_class_threshold_note

    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(2000, int), np.ones(40, int)]
    x = np.r_[rng.normal(0, 1, 2000), rng.normal(2.5, 1, 40)]
    p1 = 1 / (1 + np.exp(-(2.5 * x - 3.125 - np.log(200))))  # calibrated for 1 defect in 200 rows
    note = _rare_class_threshold_note(y, p1, ["ok", "defect"])
    assert note and "finds" in note and "--max-false-alarm 0.01" in note
    found = float((p1[y == 1] >= 0.5).mean())
    assert found < 0.5 and f"finds {found:.0%} of the held-out 'defect' rows" in note
    assert _rare_class_threshold_note(y, np.where(y == 1, 0.9, 0.1), ["ok", "defect"]) is None  # 0.5 finds them


def test_a_rare_class_found_at_no_threshold_says_so_and_a_weak_one_names_a_larger_rate():
    from modelfab.automl.engine import _rare_class_threshold_note

    rng = np.random.default_rng(4)
    y = np.r_[np.zeros(800, int), np.ones(200, int)]
    weak = np.r_[rng.normal(0.10, 0.05, 800), rng.normal(0.17, 0.05, 200)]  # AUC ~ 0.84, all under 0.5
    note = _rare_class_threshold_note(y, weak, ["good", "bad"])
    assert note.startswith("At the default threshold") and "finds 0%" in note and "--max-false-alarm" in note
    noise = rng.uniform(0, 0.3, 1000)  # nothing to find
    note = _rare_class_threshold_note(y, noise, ["good", "bad"])
    assert "No threshold that flags at most 10% of 'good' finds many more" in note


def test_the_rare_class_note_survives_probabilities_of_one():
    from modelfab.automl.engine import _rare_class_threshold_note

    y = np.r_[np.zeros(100, int), np.ones(20, int)]
    p1 = np.r_[np.ones(30), np.zeros(70), np.full(20, 0.3)]  # 30 % of the negatives at probability 1
    assert "No threshold that flags at most 10%" in _rare_class_threshold_note(y, p1, ["ok", "defect"])


def test_a_third_of_the_defects_missed_at_one_half_is_noted_too():
    from modelfab.automl.engine import _rare_class_threshold_note

    y = np.r_[np.zeros(500, int), np.ones(30, int)]
    p1 = np.r_[np.linspace(0.0, 0.2, 500), np.full(10, 0.3), np.full(20, 0.9)]  # 20 of 30 found at 0.5
    note = _rare_class_threshold_note(y, p1, ["ok", "defect"])
    assert note and "finds 67% of the held-out 'defect' rows" in note and "finds 100%" in note


def test_a_one_row_class_that_is_another_class_with_a_trailing_space_is_named():
    """A tester's tickets: 'calibration ' (1 row) beside 'calibration' was refused without saying why: the space is
    invisible in quotes."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=40), "y": ["leak"] * 20 + ["calibration"] * 19 + ["calibration "]})
    with pytest.raises(InvalidInput) as ei:
        train_tabular(df, infer_schema(df), target="y", budget=Budget(5))
    assert "'calibration ' is 'calibration' written another way (a space at its end)" in ei.value.message
    assert "one spelling" in ei.value.hint
    other = df.assign(y=["leak"] * 20 + ["jam"] * 19 + ["noise"])
    with pytest.raises(InvalidInput) as ei:
        train_tabular(other, infer_schema(other), target="y", budget=Budget(5))
    assert "written another way" not in ei.value.message and "merge the class" in ei.value.hint

"""The one-record fast path of serving gives exactly what the DataFrame path gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelfab as mf
from modelfab.errors import InvalidInput


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({
        "temp": rng.normal(70, 5, n).round(2),
        "count": rng.integers(0, 9, n),
        "line": rng.choice(["L1", "L2", "L3", "线4"], n),
        "shift": rng.choice(["A", "B", "C"], n),
        "ok_flag": rng.choice(["yes", "no"], n),
    })
    df.loc[rng.random(n) < 0.1, "temp"] = np.nan
    df["quality"] = np.where(df.temp.fillna(70) + (df.line == "L2") * 4 + rng.normal(0, 2, n) > 72, "bad", "good")
    df["wear"] = df.temp.fillna(70) * 0.5 + df["count"] + rng.normal(0, 1, n)
    root = tmp_path_factory.mktemp("fast")
    df.to_csv(root / "t.csv", index=False)
    w = mf.Workspace.init(root / "ws")
    w.import_table(root / "t.csv", name="t")
    return w


def _records(rng, k):
    out = []
    for _ in range(k):
        out.append({
            "temp": None if rng.random() < 0.2 else float(rng.normal(70, 6)),
            "count": int(rng.integers(0, 12)),
            "line": [None, "L1", "L2", "L3", "线4", "unseen", 7][rng.integers(0, 7)],
            "shift": ["A", "B", "C", 2, None][rng.integers(0, 5)],
            "ok_flag": ["yes", "no", "YES ", True, False, None, "maybe"][rng.integers(0, 7)],
            "quality": ["good", "bad"][rng.integers(0, 2)],
            "wear": float(rng.normal(40, 3)),
        })
    return out


@pytest.mark.parametrize("target", ["quality", "wear"])
def test_one_record_path_equals_frame_path(ws, target):
    model = ws.train("t", target=target, budget=8, learners=("lgbm",), ensemble=False)
    pred = model.predictor
    assert pred.preprocessor.transform_record(_records(np.random.default_rng(1), 1)[0]) is not None
    for rec in _records(np.random.default_rng(2), 60):
        rec = {k: v for k, v in rec.items() if k != target}
        fast = pred.predict_records([rec])[0]
        frame = pd.DataFrame.from_records([rec])
        slow = pred.predict(frame).iloc[0]
        assert fast["prediction"] == (slow["prediction"] if target == "quality" else pytest.approx(slow["prediction"], abs=0))
        np.testing.assert_array_equal(pred.preprocessor.transform_record(rec), pred.preprocessor.transform(frame))
        if target == "quality":
            for lab, p in fast["probabilities"].items():
                assert p == slow[f"proba_{lab}"]


@pytest.mark.parametrize("target", ["quality", "wear"])
def test_batch_of_records_equals_frame_path(ws, target):
    """A batch of JSON records (the serving batch path, no pandas) answers exactly as ``predict`` on a frame."""
    model = ws.train("t", target=target, budget=8, learners=("lgbm",), ensemble=False)
    pred = model.predictor
    recs = [{k: v for k, v in r.items() if k != target} for r in _records(np.random.default_rng(3), 200)]
    fast = pred.predict_records(recs)
    slow = pred.predict(pd.DataFrame.from_records(recs))
    assert len(fast) == len(slow) == 200
    for f, (_, s) in zip(fast, slow.iterrows()):
        assert f["prediction"] == s["prediction"]
        if target == "quality":
            assert set(f["probabilities"]) == {"bad", "good"}
            assert all(p == s[f"proba_{lab}"] for lab, p in f["probabilities"].items())
        else:
            assert "probabilities" not in f and isinstance(f["prediction"], float)
    assert pred.predict_records(recs[:1]) == fast[:1]
    with pytest.raises(InvalidInput, match="non-empty list"):
        pred.predict_records([])


@pytest.mark.parametrize("target", ["quality", "wear"])
def test_a_header_only_file_gives_no_rows_not_an_internal_error(ws, target, tmp_path):
    """A header-only CSV crashed inside the learner ("Found array with 0 sample(s) ... ExtraTreesClassifier")."""
    from modelfab.batch import predict_table_file

    model = ws.train("t", target=target, budget=5, seed=0)
    other = "wear" if target == "quality" else "quality"  # the other target is an input of this model
    header = pd.DataFrame(columns=["temp", "count", "line", "shift", "ok_flag", other])
    out = model.predict(header)
    assert len(out) == 0 and "prediction" in out.columns
    (tmp_path / "empty.csv").write_text(",".join(header.columns) + "\n")
    with pytest.raises(InvalidInput, match="empty.csv: expected at least one data row under the header"):
        predict_table_file(model, tmp_path / "empty.csv", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(InvalidInput, match="missing 1 column"):  # the column checks still apply
        model.predict(header.drop(columns="temp"))


def test_a_missing_column_names_the_look_alike_the_file_has(ws):
    model = ws.train("t", target="wear", budget=5, learners=("lgbm",), ensemble=False)
    rows = pd.DataFrame({"Temp": [70.0], "count": [1], "line ": ["L1"], "shift": ["A"], "ok_flag": ["yes"],
                         "quality": ["good"]})
    with pytest.raises(InvalidInput, match="missing 2 column") as ei:
        model.predict(rows)
    assert "the file has 'Temp' for 'temp', 'line ' for 'line'" in ei.value.hint
    with pytest.raises(InvalidInput) as ei:
        model.predict(rows.rename(columns={"Temp": "pressure", "line ": "zone"}))
    assert "Rename" not in ei.value.hint and "named as at training" in ei.value.hint


def test_a_category_never_seen_in_training_is_noted(ws):
    model = ws.train("t", target="wear", budget=5, learners=("lgbm",), ensemble=False)
    rows = pd.DataFrame({"temp": [70.0, 71.0, 72.0], "count": [1, 2, 3], "line": ["L9", "L1", "l1 "],
                         "shift": ["A", "B", None], "ok_flag": ["yes", "no", "yes"], "quality": ["good"] * 3})
    with pytest.warns(UserWarning, match="never seen in training"):
        out = model.predict(rows)
    notes = " ".join(out.attrs["notes"])
    assert "2 value(s) of 'line' were never seen in training (e.g. 'L9', 'l1 ')" in notes
    assert "'shift'" not in notes  # a missing value is not an unseen one

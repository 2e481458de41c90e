"""Columns that give the target away are named in the training notes; --exclude leaves them out."""

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput
from modelfab.evaluation.leakage import note_for, target_copies
from tests.conftest import cli_json, run_cli

NUM = "numeric"


def _faults(n=400, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return y, pd.DataFrame({
        "code": np.array([10, 20, 30])[y],                    # the label under another name
        "name": np.array(["OL", "BN", "BS"])[y],              # again, as text
        "score": y * 1.0 + rng.normal(0, 0.05, n),            # an earlier model's output: thresholds split it
        "hours": rng.normal(100, 20, n) + 15 * (y == 0),      # genuinely informative, not decisive
        "row": np.arange(n),                                  # unique per row: an id, not a copy
        "shift": rng.choice(["A", "B", "C"], n),              # noise
    })


def test_copies_and_threshold_columns_are_found_and_honest_columns_are_not():
    y, df = _faults()
    cols = [{"name": "code", "kind": NUM}, {"name": "name", "kind": "categorical"}, {"name": "score", "kind": NUM},
            {"name": "hours", "kind": NUM}, {"name": "row", "kind": NUM}, {"name": "shift", "kind": "categorical"}]
    found = {f["column"]: f for f in target_copies(df, cols, y, task="classification", n_classes=3, target="t")}
    assert set(found) == {"code", "name", "score"}
    assert found["code"]["rule"].startswith("each value") and found["score"]["rule"].startswith("a few thresholds")
    assert all(f["agreement"] == 1.0 for f in found.values())
    # one wrong row in 50 (2 %) is not "alone predicts"
    noisy = df["code"].copy()
    noisy.iloc[::50] = 30
    assert target_copies(df.assign(code=noisy), cols[:1], y, task="classification", n_classes=3, target="t") == []
    # a target that is nearly one class: a rule is only suspicious if it beats the majority by far
    skew = np.zeros(len(y), int)
    skew[:2] = 1
    assert target_copies(df.assign(code=0), cols[:1], skew, task="classification", n_classes=2, target="t") == []
    note = note_for(list(found.values()), "fault")
    assert "'code'" in note and "--exclude code" in note and "100.0%" in note


def test_a_rare_class_copy_is_found_by_its_error_in_each_class_and_before_the_numbers():
    rng = np.random.default_rng(3)
    n = 20_000
    y = (rng.random(n) < 0.014).astype(int)                     # 1.4 % defects
    verdict = np.where(y == 1, rng.random(n) < 0.97, rng.random(n) < 0.001)  # an inspector: 97 % of defects
    sensor = rng.normal(0, 1, n) + 2.5 * y                       # informative, far from decisive
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(25)})
    df = df.assign(sensor=sensor, verdict=np.where(verdict, "REJECT", "PASS"), flag=y.astype(bool))
    cols = ([{"name": f"x{i}", "kind": NUM} for i in range(25)]
            + [{"name": "sensor", "kind": NUM}, {"name": "verdict", "kind": "categorical"},
               {"name": "flag", "kind": "boolean"}])
    found = {f["column"] for f in target_copies(df, cols, y, task="classification", n_classes=2, target="q")}
    assert found == {"verdict", "flag"}  # the verdict errs on 0.16 % of rows: over a tenth of the 1.4 % base
    # the flags and categories are looked at first: a short clock still reaches a copy behind 25 numbers
    quick = target_copies(df, cols, y, task="classification", n_classes=2, target="q", seconds=0.01)
    assert "flag" in {f["column"] for f in quick}


def test_regression_copy_by_rank():
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    df = pd.DataFrame({"scaled": np.exp(y), "other": y + rng.normal(0, 0.5, 300)})
    found = target_copies(df, [{"name": "scaled", "kind": NUM}, {"name": "other", "kind": NUM}], y,
                          task="regression", n_classes=0, target="t")
    assert [f["column"] for f in found] == ["scaled"]


def test_training_names_the_copy_and_exclude_leaves_it_out(ws, tmp_path):
    y, df = _faults(300)
    df.insert(0, "fault", np.array(["oil leak", "bearing noise", "belt slip"])[y])
    df = df.drop(columns=["name", "score"])
    path = tmp_path / "faults.csv"
    df.to_csv(path, index=False)
    ws.import_table(path, name="faults")
    first = ws.train("faults", target="fault", budget=6, name="faults")
    notes = " ".join(first.manifest["training"]["notes"])
    assert "'code'" in notes and "--exclude code" in notes
    assert [c["column"] for c in first.manifest["target_copies"]] == ["code"]
    second = ws.train("faults", target="fault", budget=6, name="faults", exclude=("code",))
    assert "code" not in [c["name"] for c in second.manifest["input_schema"]["columns"]]
    assert "code" in second.manifest["input_schema"]["ignored"] and "target_copies" not in second.manifest
    assert second.predict(df.drop(columns=["code"]).head(5))["prediction"].notna().all()  # not needed any more
    with pytest.raises(InvalidInput, match="Did you mean 'code'"):
        ws.train("faults", target="fault", budget=6, exclude=("cdoe",))
    with pytest.raises(InvalidInput, match="is the target"):
        ws.train("faults", target="fault", budget=6, exclude=("fault",))
    root = str(ws.root)
    out = cli_json("train", "faults", "--target", "fault", "--budget", "5", "--exclude", "code,shift", "-w", root)
    assert out["version"] == 3
    # the option repeated adds up (only the last one counted before)
    out = cli_json("train", "faults", "--target", "fault", "--budget", "5", "--exclude", "code", "--exclude", "shift",
                   "-w", root)
    inputs = [c["name"] for c in ws.model(f"faults:{out['version']}").manifest["input_schema"]["columns"]]
    assert "code" not in inputs and "shift" not in inputs
    bad = run_cli("train", "faults", "--target", "fault", "--exclude", "nope", "-w", root, check=False)
    assert bad.returncode == 2 and "no such column" in bad.stderr and "Traceback" not in bad.stderr

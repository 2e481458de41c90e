"""Moving a two-class table classifier's decision threshold: a new version, no retraining."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput

from .conftest import run_cli


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """A small factory table (labels ok/defect) and one quickly trained classifier."""
    from modelfab.demo import write_factory_csv
    from modelfab.workspace import Workspace

    tmp = tmp_path_factory.mktemp("thrbin")
    csv = write_factory_csv(tmp / "factory.csv", n_rows=600, seed=1)
    ws = Workspace.init(tmp / "ws")
    ds = ws.import_table(csv, name="factory").dataset
    model = ws.train(ds, target="quality", budget=4, name="q", learners=("lgbm",), ensemble=False)
    frame = pd.read_csv(csv).drop(columns=["quality"])
    yield ws, model, frame
    ws.close()


def test_new_version_predicts_the_second_label_from_the_threshold_and_recomputes_metrics(binary):
    from modelfab.artifacts import verify_package
    from modelfab.evaluation.metrics import classification_metrics
    from modelfab.workspace import Workspace

    ws, model, frame = binary
    neg, pos = model.manifest["labels"]
    assert model.manifest.get("decision_threshold") is None
    before = model.predict(frame)
    p_pos = before[f"proba_{pos}"].to_numpy()
    thr = float(np.quantile(p_pos, 0.6))  # a cut-off that changes some answers compared with 0.5
    new = model.with_threshold(threshold=thr)
    assert new.name == model.name and new.version > model.version
    assert new.manifest["decision_threshold"] == thr
    assert new.manifest["derived_from"]["model"] == model.ref
    assert new.manifest["derived_from"]["package_sha"] == model.row["package_sha"]
    said = [n for n in new.manifest["training"]["notes"] if n.startswith("The decision threshold was chosen on")]
    assert len(said) == 1 and "optimistic" in said[0]  # the metrics below were measured where it was picked
    after = new.predict(frame)
    np.testing.assert_array_equal(after[f"proba_{pos}"].to_numpy(), p_pos)  # the same learner, untouched
    assert list(after["prediction"]) == [pos if p >= thr else neg for p in p_pos]
    assert (after["prediction"] != before["prediction"]).any()
    # metrics are those of the stored holdout at the new threshold
    hold = model.holdout()
    expected = classification_metrics(hold["y_true"], hold["proba"], [str(neg), str(pos)], threshold=thr)
    assert new.metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert new.metrics["threshold"] == thr and new.metrics["accuracy"] == pytest.approx(expected["accuracy"])
    assert new.metrics["confusion_matrix"] != model.metrics["confusion_matrix"] or thr == 0.5
    assert verify_package(new.folder)["decision_threshold"] == thr  # hashes rewritten, package verifies
    # a fresh process view of the workspace loads the registered version with its threshold
    again = Workspace.open(ws.root).model(new.ref)
    assert again.predictor.threshold == thr
    assert list(again.predict(frame)["prediction"]) == list(after["prediction"])
    assert again.predictor.predict_records([frame.iloc[0].to_dict()])[0]["prediction"] == after["prediction"].iloc[0]


def test_max_false_alarm_bounds_the_held_out_negatives_flagged(binary):
    ws, model, _ = binary
    hold = model.holdout()
    y, p_pos = hold["y_true"].astype(int), hold["proba"][:, 1]
    new = model.with_threshold(max_false_alarm=0.05)
    thr = new.manifest["decision_threshold"]
    flagged = (p_pos[y == 0] >= thr).mean()
    assert flagged <= 0.05
    lower = np.nextafter(thr, 0)  # any lower threshold flags more than allowed (it is the lowest one)
    assert thr == 0.0 or (p_pos[y == 0] >= lower).mean() > 0.05 or not (p_pos[y == 0] >= lower).any()


def test_bad_thresholds_and_models_are_refused_clearly(binary):
    ws, model, _ = binary
    with pytest.raises(InvalidInput, match="probability"):
        model.with_threshold(threshold=1.5)
    with pytest.raises(InvalidInput, match="exactly one"):
        model.with_threshold(threshold=0.3, max_false_alarm=0.1)
    # the same registered row seen as other kinds of model: their predictors ignore a decision threshold
    from modelfab.model import Model

    as_regression = Model(ws, dict(model.row, task="regression"))
    with pytest.raises(InvalidInput, match="regression model; only anomaly models and two-class"):
        as_regression.with_threshold(threshold=0.5)
    as_images = Model(ws, dict(model.row, manifest=dict(model.manifest, modality="image")))
    with pytest.raises(InvalidInput, match="image data"):
        as_images.with_threshold(threshold=0.5)
    as_three = Model(ws, dict(model.row, manifest=dict(model.manifest, labels=["a", "b", "c"])))
    with pytest.raises(InvalidInput, match="3-class classifier"):
        as_three.with_threshold(threshold=0.5)


def test_cli_moves_a_binary_threshold_and_refuses_a_bad_one(binary):
    ws, model, _ = binary
    w = ["--workspace", str(ws.root)]
    human = run_cli("models", "threshold", model.ref, "--threshold", "0.7", *w).stdout
    new = ws.model("q")  # the latest version: the one just registered
    assert new.manifest["decision_threshold"] == 0.7 and new.manifest["derived_from"]["model"] == model.ref
    neg, pos = model.manifest["labels"]
    assert f"Registered {new.ref} from {model.ref}" in human
    assert f"'{pos}' when its probability >= 0.7" in human and f"of '{neg}' flagged as '{pos}'" in human
    bad = run_cli("models", "threshold", model.ref, "--threshold", "2", *w, check=False)
    assert bad.returncode == 2 and "probability" in (bad.stderr + bad.stdout) and "Traceback" not in bad.stderr

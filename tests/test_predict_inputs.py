"""model.predict and the predictors given the wrong kind of input: a clear InvalidInput saying what the model
takes (never an AttributeError/IndexError from inside pandas or numpy); the obvious inputs are accepted (one
record as a dict, one image path, one series as a 1-D array, the path of a file of series); series ids count
from 0 whatever the input; the import_* methods check their path argument."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelfab as mf
from modelfab.errors import InvalidInput
from modelfab.modalities.image.synth import make_image_dataset
from modelfab.modalities.text.synth import make_reports
from tests.modalities.test_series_io import make_series


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    w = mf.Workspace.init(root / "ws")
    yield root, w
    w.close()


@pytest.fixture(scope="module")
def text_model(ws):
    root, w = ws
    make_reports(120, lang="en", seed=3).to_csv(root / "reports.csv", index=False)
    w.import_table(root / "reports.csv", name="reports")
    return w.train("reports", target="label", budget=10)


@pytest.fixture(scope="module")
def series_model(ws):
    root, w = ws
    series, labels, _ = make_series(30, 40, seed=1)
    df = pd.DataFrame(np.stack([s[0] for s in series]), columns=[f"t{j}" for j in range(40)])
    df.insert(0, "label", labels)
    df.to_csv(root / "traces.csv", index=False)
    w.import_series(root / "traces.csv", "traces", label_column="label")
    from tests.test_series_flow import _warm_numba_cache

    _warm_numba_cache(series)  # a fresh checkout compiles the transforms once: not in this small budget
    model = w.train("traces", task="classification", budget=15)
    test, _, _ = make_series(3, 40, seed=2)
    return model, np.stack([s[0] for s in test]), root


@pytest.fixture(scope="module")
def image_model(ws):
    root, w = ws
    folder = make_image_dataset(root / "surfaces", n_per_class=6, size=48, seed=1)
    w.import_images(folder, "surfaces")
    return w.train("surfaces", task="anomaly", normal_label="good", budget=15, name="surface-check"), folder


# ------------------------------------------------------------------ tables and text
@pytest.mark.parametrize("bad", ["oil leak", Path("reports.csv"), None, np.zeros((2, 2)), 42, ["oil leak"], []],
                         ids=["str", "path", "none", "array", "int", "list-of-str", "empty-list"])
def test_a_table_model_says_what_predict_takes(text_model, bad):
    with pytest.raises(InvalidInput, match="predicts rows of a table: expected a DataFrame, a list of records"):
        text_model.predict(bad)


def test_a_table_model_takes_one_record_as_a_dict(text_model):
    rec = {"text": "oil leak under the gearbox", "hours": 120.0}
    one = text_model.predict(rec)
    assert len(one) == 1
    pd.testing.assert_frame_equal(one, text_model.predict([rec]))
    with pytest.raises(InvalidInput, match="a dict is read as one record"):
        text_model.predict({"text": ["a", "b"], "hours": [1, 2]})
    # records are checked as REST checks them, on the columns the model uses: a field left out is refused, a word
    # where a number belongs too; a column the model does not use (a text model kept alone) is not needed
    with pytest.raises(InvalidInput, match="record 0: field 'text' is missing"):
        text_model.predict({"hours": 1.0})
    if "hours" in {c["name"] for c in text_model.predictor.used_columns}:
        with pytest.raises(InvalidInput, match="record 0: field 'hours' must be a number or null, got str 'abc'"):
            text_model.predict({"text": "x", "hours": "abc"})
    else:
        assert len(text_model.predict({"text": "x", "hours": "abc"})) == 1
        assert len(text_model.predict({"text": "x"})) == 1
    pd.testing.assert_frame_equal(text_model.predict({"text": rec["text"], "hours": np.float32(120.0)}), one)


def test_the_table_predictor_refuses_what_is_not_a_frame(text_model):
    with pytest.raises(InvalidInput, match="Expected a pandas DataFrame of input rows; got a str"):
        text_model.predictor.predict("oil leak")


# ------------------------------------------------------------------ images
def test_an_image_model_takes_a_path_and_says_what_else_it_takes(image_model):
    model, folder = image_model
    one = folder / "spot" / sorted(p.name for p in (folder / "spot").iterdir())[0]
    by_path = model.predict(str(one))
    assert list(by_path["file"]) == [one.name] and by_path["error"].tolist() == [""]
    pd.testing.assert_frame_equal(model.predictor.predict_files(str(one)), by_path)  # not its characters
    pd.testing.assert_frame_equal(model.predictor.predict_files(one), by_path)
    pd.testing.assert_frame_equal(model.predictor.predict(str(one)), by_path)
    assert len(model.predict([folder / "spot", folder / "good"])) == 12
    for bad in (np.zeros((48, 48)), None, {"image": str(one)}):
        with pytest.raises(InvalidInput, match="scores images: expected a file, folder or .zip path"):
            model.predict(bad)
    with pytest.raises(InvalidInput, match="An image model scores image files.*got a 2-D numpy array"):
        model.predictor.predict(np.zeros((48, 48)))


# ------------------------------------------------------------------ series
def test_series_inputs_give_the_same_answers_with_ids_from_0(series_model):
    model, test, _ = series_model
    frame = model.predict(pd.DataFrame(test))
    assert frame["id"].tolist() == ["0", "1", "2"]
    for other in (model.predict(test), model.predict(test.tolist()), model.predict(list(test))):
        assert other["id"].tolist() == ["0", "1", "2"]
        assert other["prediction"].tolist() == frame["prediction"].tolist()
        np.testing.assert_allclose(other["confidence"], frame["confidence"])
    for one in (model.predict(test[1]), model.predict(test[1].tolist())):  # 1-D: one series
        assert one["id"].tolist() == ["0"] and one["prediction"].tolist() == [frame["prediction"][1]]


def test_series_model_reads_a_file_path(series_model):
    model, _, root = series_model
    by_path = model.predict(str(root / "traces.csv"))
    assert len(by_path) == 30
    pd.testing.assert_frame_equal(by_path, model.predictor.predict_file(root / "traces.csv"))


@pytest.mark.parametrize("bad, message", [
    (pd.DataFrame(), "No series to score: the input is empty"),
    ([], "No series to score"),
    (None, "A series model scores series: expected a DataFrame.*got None"),
    (42, "got an int"),
    ({"values": [1, 2, 3]}, "predict_records"),
    (np.zeros((2, 2, 2, 2)), "got a 4-D array"),
    ([["a"] * 40], r"series .0.: expected numbers .*got a str \(.a.\) among the values"),
    ([np.zeros((2, 2, 2))], "expected a series .*got a 3-D array"),
], ids=["empty-frame", "empty-list", "none", "int", "dict", "4d", "strings", "3d-item"])
def test_series_model_says_what_predict_takes(series_model, bad, message):
    model, _, _ = series_model
    with pytest.raises(InvalidInput, match=message):
        model.predict(bad)


def test_series_records_must_be_a_list(series_model):
    model, _, _ = series_model
    for bad in (None, "abc", {"values": [1.0] * 40}):
        with pytest.raises(InvalidInput, match="Expected a list of records like"):
            model.predictor.predict_records(bad)
    with pytest.raises(InvalidInput, match="No series to score"):
        model.predictor.predict_records([])


# ------------------------------------------------------------------ workspace arguments
@pytest.mark.parametrize("call", [
    lambda w: w.import_series(123, "x"),
    lambda w: w.import_series("traces.csv", "x", labels_file=5),
    lambda w: w.import_table(None, name="x"),
    lambda w: w.import_table("  ", name="x"),
    lambda w: w.import_images(None, "x"),
    lambda w: w.import_recordings(1.5, "x"),
    lambda w: w.import_package(None),
], ids=["series-int", "labels-file-int", "table-none", "table-blank", "images-none", "recordings-float",
        "package-none"])
def test_import_path_arguments_are_checked(ws, call):
    _, w = ws
    with pytest.raises(InvalidInput, match=r"expected the path of .* \(a str or Path\); got"):
        call(w)


def test_write_report_checks_its_folder_argument(text_model):
    with pytest.raises(InvalidInput, match="out_dir must be a folder path"):
        text_model.write_report(123)

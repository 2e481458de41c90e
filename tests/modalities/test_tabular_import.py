"""A plant's MES export end to end: a ';' file with timestamps of three formats (some with 'Z'), numbers with a
decimal comma and '.' thousands, numbers with units, Y/N/是/否. It imports (no internal error), regression on a
comma-decimal target trains, and a new raw file is predicted as the stored rows are (the number formats of the
schema are used at prediction), in batch and in ONNX."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelfab as mf


def _mes(n: int, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    ts = pd.Timestamp("2026-03-01") + pd.to_timedelta(r.integers(0, 86400 * 60, n), unit="s")
    fmt = r.integers(0, 3, n)
    temp, force, diam = r.normal(74, 4, n), r.normal(1500, 200, n), r.normal(12.0, 0.15, n)
    torque = 20 + 0.01 * force + 0.3 * (temp - 74) + r.normal(0, 0.2, n)
    return pd.DataFrame({
        "timestamp": [t.strftime("%Y-%m-%d %H:%M:%S") if f == 0 else t.strftime("%d.%m.%Y %H:%M") if f == 1
                      else t.strftime("%Y-%m-%dT%H:%M:%SZ") for t, f in zip(ts, fmt)],
        "diameter": [f"{v:.3f} mm" for v in diam],
        "temperature_c": [f"{v:.1f}".replace(".", ",") for v in temp],
        "force_n": [f"{v:,.1f}".replace(",", "X").replace(".", ",").replace("X", ".") for v in force],
        "humidity": [f"{v:.0f} %" for v in r.uniform(30, 70, n)],
        "coolant_ok": r.choice(["Y", "是", "N", "否"], n),
        "torque_nm": [f"{v:.2f}".replace(".", ",") for v in torque],
    })


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    root = tmp_path_factory.mktemp("mes")
    _mes(400, 1).to_csv(root / "mes_export.csv", sep=";", index=False)
    w = mf.Workspace.init(root / "ws")
    res = w.import_table(root / "mes_export.csv", name="mes")
    yield root, w, res
    w.close()


def test_the_mes_export_imports_with_numbers_datetimes_and_booleans(plant):
    _, _, res = plant
    kinds = res.dataset.column_kinds()
    assert kinds == {"timestamp": "datetime", "diameter": "numeric", "temperature_c": "numeric", "force_n": "numeric",
                     "humidity": "numeric", "coolant_ok": "boolean", "torque_nm": "numeric"}
    cols = {c["name"]: c for c in res.dataset.schema["columns"]}
    assert cols["force_n"]["number_format"] == {"decimal": ",", "unit": ""}
    assert cols["diameter"]["number_format"] == {"decimal": ".", "unit": "mm"}
    assert 1000 < res.dataset.stats["force_n"]["mean"] < 2000
    notes = " ".join(res.notes)
    assert "diameter (mm)" in notes and "humidity (%)" in notes and "decimal comma" in notes


@pytest.fixture(scope="module")
def model(plant):
    return plant[1].train("mes", target="torque_nm", task="regression", budget=8)


def test_regression_on_a_comma_decimal_target_and_prediction_of_a_raw_file(plant, model):
    root = plant[0]
    new = _mes(30, 7)
    new.drop(columns=["torque_nm"]).to_csv(root / "new.csv", sep=";", index=False)
    from modelfab.batch import predict_table_file

    predict_table_file(model, root / "new.csv", root / "scored.csv")
    scored = pd.read_csv(root / "scored.csv")
    truth = new["torque_nm"].str.replace(",", ".").astype(float)
    assert np.abs(scored["prediction"].to_numpy() - truth.to_numpy()).mean() < 2.0  # the numbers were read
    # the same rows given as parsed numbers (a JSON client) predict the same
    as_numbers = new.drop(columns=["torque_nm"]).assign(
        temperature_c=new["temperature_c"].str.replace(",", ".").astype(float),
        force_n=new["force_n"].str.replace(".", "", regex=False).str.replace(",", ".").astype(float),
        diameter=new["diameter"].str.removesuffix(" mm").astype(float),
        humidity=new["humidity"].str.removesuffix(" %").astype(float))
    assert model.predict(as_numbers)["prediction"].to_numpy() == pytest.approx(scored["prediction"].to_numpy())


def test_onnx_export_of_a_model_with_converted_columns_takes_the_numbers(model, tmp_path):
    pytest.importorskip("onnxruntime")
    from modelfab.export.onnx import export_onnx

    info = export_onnx(model.folder, tmp_path / "m.onnx")
    kinds = {c["column"]: (c["kind"], c["type"]) for c in info["inputs"]}
    assert kinds["force_n"] == kinds["diameter"] == ("numeric", "double")
    assert info["n_checked"] > 0 and info["max_abs_diff"] <= 1e-5
    # checked on rows as the file has them ('70,2', '12.039 mm'): the feeds read them by the column's format
    raw = _mes(40, 9).drop(columns=["torque_nm"])
    info = export_onnx(model.folder, tmp_path / "m2.onnx", check_data=raw)
    assert info["n_checked"] == 40 and info["max_abs_diff"] <= 1e-5
    assert next(c for c in info["inputs"] if c["column"] == "diameter")["number_format"]["unit"] == "mm"


def test_predict_says_which_values_it_could_not_read(plant, model):
    root = plant[0]
    new = _mes(30, 8).drop(columns=["torque_nm"])
    new.loc[:4, "temperature_c"] = "abc"          # not a number at all
    new.loc[5:6, "diameter"] = "12,0 inch"        # another unit than the import's mm
    new.to_csv(root / "bad.csv", sep=";", index=False)
    from modelfab.batch import predict_table_file

    res = predict_table_file(model, root / "bad.csv", root / "bad_scored.csv")
    assert res["rows"] == 30 and res["unreadable_values"] == {"temperature_c": 5, "diameter": 2}
    assert any("5 value(s) of 'temperature_c'" in n and "'abc'" in n for n in res["notes"])


def test_predict_notes_dates_and_yes_no_words_it_could_not_read(plant, model):
    root = plant[0]
    new = _mes(30, 8).drop(columns=["torque_nm"])
    new.loc[:2, "timestamp"] = ["garbage", "2026-03-29 09:23:30 CEST", "1743235410"]  # no dates modelfab reads
    new.loc[3:4, "coolant_ok"] = "vielleicht"
    new.to_csv(root / "bad_dates.csv", sep=";", index=False)
    from modelfab.batch import predict_table_file

    res = predict_table_file(model, root / "bad_dates.csv", root / "bad_dates_scored.csv")
    assert res["unreadable_values"] == {"timestamp": 3, "coolant_ok": 2}
    assert any("3 value(s) of 'timestamp' are not dates" in n and "'garbage'" in n for n in res["notes"])
    # the Python API says the same: a warning, and the notes on the answer
    with pytest.warns(UserWarning, match="2 value.s. of 'coolant_ok'"):
        pred = model.predict(new)
    assert pred.attrs["unreadable_values"] == {"timestamp": 3, "coolant_ok": 2}
    # /predict-file of a table answers with the same notes
    from types import SimpleNamespace

    from modelfab.serving.app import _score_upload
    from modelfab.settings import Settings

    answer = _score_upload(SimpleNamespace(predictor=model.predictor), (root / "bad_dates.csv").read_bytes(),
                           "bad_dates.csv", Settings())
    assert len(answer["predictions"]) == 30 and answer["notes"] == pred.attrs["notes"]
    assert set(answer["predictions"][0]) == {"prediction"}  # every column is an input: nothing to repeat
    # a column the model does not read (the order number) comes back in each row, to match answers to rows
    new.insert(0, "order_no", [f"A-{i:03d}" for i in range(len(new))])
    new.to_csv(root / "with_ids.csv", sep=";", index=False)
    answer = _score_upload(SimpleNamespace(predictor=model.predictor), (root / "with_ids.csv").read_bytes(),
                           "with_ids.csv", Settings())
    assert [r["order_no"] for r in answer["predictions"]] == list(new["order_no"])
    assert all(isinstance(r["prediction"], float) for r in answer["predictions"])


def test_an_excel_cell_holding_the_text_of_a_number_is_read_as_that_number(plant, model):
    root = plant[0]
    new = _mes(10, 8).drop(columns=["torque_nm"])
    new["temperature_c"] = new["temperature_c"].str.replace(",", ".").astype(float).astype(object)
    new.loc[0, "temperature_c"] = "68.9"  # a cell formatted as text: Excel keeps '68.9' a string
    new.to_excel(root / "text_cell.xlsx", index=False)
    from modelfab.batch import predict_table_file

    res = predict_table_file(model, root / "text_cell.xlsx", root / "text_cell_scored.csv")
    assert "unreadable_values" not in res
    as_number = new.copy()
    as_number.loc[0, "temperature_c"] = 68.9
    scored = pd.read_csv(root / "text_cell_scored.csv")
    assert scored["prediction"].iloc[0] == pytest.approx(float(model.predict(as_number)["prediction"].iloc[0]))


def test_evaluate_on_a_new_file_with_the_target_filled_in(plant, model):
    from modelfab.evaluation.new_data import evaluate_on

    root = plant[0]
    new = _mes(60, 9)
    new.to_csv(root / "labelled.csv", sep=";", index=False)
    res = evaluate_on(model, root / "labelled.csv")
    assert res["task"] == "regression" and res["n"] == 60 and res["metrics"]["r2"] > 0.5  # '21,3' targets read
    from modelfab.errors import InvalidInput

    with pytest.raises(InvalidInput, match="expected the true values in column .torque_nm."):
        new.drop(columns="torque_nm").to_csv(root / "unlabelled.csv", sep=";", index=False)
        evaluate_on(model, root / "unlabelled.csv")
    res = evaluate_on(model, root / "labelled.csv", label_column="torque_nm")
    assert res["n"] == 60

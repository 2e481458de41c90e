"""Mistakes a plant user makes with long tables of series (found by a black-box test): a long import without
--time-column/--value-column, a wide table given the options of a long one, a mistyped cell in a file to score,
a DataFrame or (length, channels) arrays given to a model from Python, ONNX export of a series model."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput, TooLarge, UnsupportedFormat
from modelfab.modalities.series.io import lenient_reading, read_series
from modelfab.settings import Settings
from modelfab.workspace import Workspace
from tests.conftest import cli_json, run_cli
from tests.modalities.test_series_io import make_series, write_long, write_wide


def _cycles(path, n: int = 6, length: int = 20, seed: int = 0, shuffle: bool = True) -> pd.DataFrame:
    """A long table as a plant writes it: id, a time in seconds, two sensors, a class and a per-cycle number."""
    series, labels, target = make_series(n, length, channels=2, seed=seed)
    rows = [{"cycle_id": f"C{i:03d}", "t_s": round(0.01 * t, 2), "pressure": s[0, t], "temp": s[1, t],
             "state": y, "wear_um": round(w, 3)}
            for i, (s, y, w) in enumerate(zip(series, labels, target)) for t in range(s.shape[1])]
    df = pd.DataFrame(rows)
    if shuffle:
        df = df.sample(frac=1.0, random_state=1)
    df.to_csv(path, index=False)
    return df


# ------------------------------------------------------------------ item 1: a long import naming only the id
def test_a_long_import_naming_only_the_id_takes_the_time_column_and_says_what_it_read(tmp_path):
    _cycles(tmp_path / "cycles.csv")
    s = read_series(tmp_path / "cycles.csv", Settings(), id_column="cycle_id", label_column="state")
    assert s.time_column == "t_s" and s.channel_names == ["pressure", "temp", "wear_um"]
    ordered = pd.read_csv(tmp_path / "cycles.csv").sort_values(["cycle_id", "t_s"])
    first = ordered[ordered["cycle_id"] == "C000"]
    np.testing.assert_allclose(s.series[0][0], first["pressure"].to_numpy())  # rows ordered by the time found
    text = " ".join(s.notes)
    assert "Column 't_s' looks like the time" in text and "pass --time-column" in text
    assert "Read 3 channel(s)" in text and "'pressure', 'temp', 'wear_um'" in text
    assert "Column 'wear_um' holds one value per series" in text and "--label-column 'wear_um'" in text
    # a named time column stays what the user said; at prediction (a model's layout) nothing is guessed
    told = read_series(tmp_path / "cycles.csv", Settings(), id_column="cycle_id", time_column="t_s",
                       label_column="state")
    assert told.time_column is None and told.channel_names == ["pressure", "temp", "wear_um"]
    with lenient_reading():
        scored = read_series(tmp_path / "cycles.csv", Settings(), id_column="cycle_id", ignore=("state",),
                             layout="long")
    assert scored.channel_names == ["t_s", "pressure", "temp", "wear_um"] and scored.notes == []


def test_a_counter_is_taken_as_time_and_without_one_the_rows_are_in_file_order(tmp_path):
    rng = np.random.default_rng(0)
    counted = pd.DataFrame({"unit": np.repeat(["a", "b", "c"], 8), "sample": np.tile(np.arange(0, 80, 10), 3),
                            "v": rng.normal(size=24)})
    counted.to_csv(tmp_path / "counted.csv", index=False)
    s = read_series(tmp_path / "counted.csv", Settings(), id_column="unit")
    assert s.time_column == "sample" and s.channel_names == ["v"]
    assert any("rise in equal steps" in n for n in s.notes)
    shuffled = counted.sample(frac=1.0, random_state=3)  # rows in any order: the counter is still the time
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    again = read_series(tmp_path / "shuffled.csv", Settings(), id_column="unit")
    assert again.time_column == "sample" and again.channel_names == ["v"]
    assert np.allclose(again.series[again.ids.index("a")][0], counted["v"][:8])  # in counter order, not file order
    plain = counted.drop(columns=["sample"]).assign(w=rng.normal(size=24))
    plain.to_csv(tmp_path / "plain.csv", index=False)
    s = read_series(tmp_path / "plain.csv", Settings(), id_column="unit")
    assert s.time_column is None and s.channel_names == ["v", "w"]
    assert any("No time column: the rows of each series are taken in file order" in n for n in s.notes)
    repeated = counted.assign(time=np.tile([0, 1, 1, 2, 3, 4, 5, 6], 3)).drop(columns=["sample"])
    repeated.to_csv(tmp_path / "repeated.csv", index=False)  # a time repeated within a series: not taken
    assert read_series(tmp_path / "repeated.csv", Settings(), id_column="unit").channel_names == ["v", "time"]


def test_cli_import_naming_only_the_id_stores_the_time_column_for_new_files(tmp_path):
    _cycles(tmp_path / "cycles.csv")
    env = {"MODELFAB_HOME": str(tmp_path / "ws")}
    run_cli("init", str(tmp_path / "ws"))
    imp = cli_json("data", "import", str(tmp_path / "cycles.csv"), "--kind", "series", "--id-column", "cycle_id",
                   "--label-column", "state", env=env)
    assert imp["options"]["time_column"] == "t_s" and imp["stats"]["channels"] == 3
    assert any("'t_s' looks like the time" in n for n in imp["notes"])
    plain = run_cli("data", "import", str(tmp_path / "cycles.csv"), "--name", "again", "--kind", "series",
                    "--id-column", "cycle_id", "--label-column", "state", env=env)
    said = " ".join((plain.stdout + plain.stderr).split())
    assert "note" in said and "'t_s' looks like the time" in said


# ------------------------------------------------------------------ item 3: a wide table forced as long
def test_cli_a_wide_table_given_long_options_says_it_looks_wide_and_leaks_no_pandas_warning(tmp_path):
    series, labels, _ = make_series(6, 130, seed=2)  # 130 step columns: pandas warns of a fragmented frame
    write_wide(tmp_path / "plain.csv", series, labels)
    df = pd.read_csv(tmp_path / "plain.csv")
    df.insert(0, "unit", [f"u{i}" for i in range(6)])
    df.to_csv(tmp_path / "wide.csv", index=False)
    run_cli("init", str(tmp_path / "ws"))
    bad = run_cli("data", "import", str(tmp_path / "wide.csv"), "--kind", "series", "--id-column", "unit",
                  "--time-column", "t0", "--value-column", "t1", "--label-column", "label",
                  env={"MODELFAB_HOME": str(tmp_path / "ws")}, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "Warning" not in bad.stderr, bad.stderr
    said = " ".join(bad.stderr.split())
    assert "every id in 'unit' is on its own row" in said and "looks like a wide table" in said
    assert "Drop --time-column and --value-column" in said


def test_a_long_table_of_many_columns_is_read_without_a_pandas_warning(tmp_path):
    rows = [{"id": f"s{i}", "t": t, **{f"c{j}": float(j + t) for j in range(120)}} for i in range(3) for t in range(8)]
    pd.DataFrame(rows).to_csv(tmp_path / "many.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the PerformanceWarning of a fragmented frame would raise here
        with pytest.raises(TooLarge, match="120 channels"):
            read_series(tmp_path / "many.csv", Settings(), id_column="id", time_column="t")


# ------------------------------------------------------------------ items 2 and 4: predicting with a long model
@pytest.fixture(scope="module")
def long_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("series_long")
    series, labels, _ = make_series(24, 40, channels=2, seed=7)
    write_long(root / "train.csv", series, labels)
    test, _, _ = make_series(6, 40, channels=2, seed=8)
    write_long(root / "new.csv", test, ["?"] * 6)
    run_cli("init", str(root / "ws"))
    env = {"MODELFAB_HOME": str(root / "ws")}
    cli_json("data", "import", str(root / "train.csv"), "--name", "cyc", "--kind", "series", "--id-column", "machine",
             "--time-column", "t", "--value-column", "ch0", "--value-column", "ch1", "--label-column", "state", env=env)
    from tests.test_series_flow import _warm_numba_cache

    _warm_numba_cache(series)  # a fresh checkout compiles the transforms once (counted in a user's first budget)
    cli_json("train", "cyc", "--task", "classification", "--budget", "20", env=env)
    yield {"root": root, "env": env, "ws": root / "ws", "test": test}


def _dirty(src, dst) -> dict:
    """``src`` with 'abc' in a ch0 cell of m1, an empty cell in m2 and 'n/a' in m3 (inside the series); returns
    the data row (from 1) of the 'abc'."""
    with open(src, newline="") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], rows[1:]
    col, ids, t = head.index("ch0"), head.index("machine"), head.index("t")
    where = {}
    for i, r in enumerate(body):
        if r[t] == "10" and r[ids] in ("m1", "m2", "m3"):
            r[col] = {"m1": "abc", "m2": "", "m3": "n/a"}[r[ids]]
            where[r[ids]] = i + 1
    with open(dst, "w", newline="") as fh:
        csv.writer(fh).writerows([head] + body)
    return where


def test_cli_predict_refuses_a_series_with_a_non_number_alone_and_notes_filled_gaps(long_model, tmp_path):
    where = _dirty(long_model["root"] / "new.csv", tmp_path / "dirty.csv")
    out = tmp_path / "pred.csv"
    res = cli_json("predict", "cyc", str(tmp_path / "dirty.csv"), "-o", str(out), env=long_model["env"])
    pred = pd.read_csv(out, keep_default_na=False).set_index("id")
    assert res["rows"] == 6 and res["series_with_errors"] == 1
    assert pred.loc["m1", "error"] == (f"series 'm1': column 'ch0' holds a non-number ('abc' in data row "
                                       f"{where['m1']}); expected numbers (an empty cell for a gap)")
    assert pred.loc["m1", "prediction"] == "" and all(pred.drop(index="m1")["prediction"] != "")
    assert (pred.drop(index="m1")["error"] == "").all()
    assert any("2 missing values inside series were filled by linear interpolation" in n and "dirty.csv" in n
               for n in res["notes"]), res.get("notes")
    plain = run_cli("predict", "cyc", str(tmp_path / "dirty.csv"), "-o", str(out), env=long_model["env"])
    assert "note: " in plain.stderr and "filled by linear interpolation" in " ".join(plain.stderr.split())


def test_a_text_column_still_refuses_the_file_with_the_layout_and_import_refuses_a_non_number(long_model, tmp_path):
    df = pd.read_csv(long_model["root"] / "new.csv").assign(ch1="high")
    df.to_csv(tmp_path / "text.csv", index=False)
    bad = run_cli("predict", "cyc", str(tmp_path / "text.csv"), "-o", str(tmp_path / "p.csv"), env=long_model["env"],
                  check=False)
    said = " ".join(bad.stderr.split())
    assert bad.returncode == 2 and "column 'ch1' holds a non-number ('high'" in said
    assert "This model reads a long table" in said and "Traceback" not in bad.stderr
    _dirty(long_model["root"] / "train.csv", tmp_path / "dirty_train.csv")
    imp = run_cli("data", "import", str(tmp_path / "dirty_train.csv"), "--name", "dirty", "--kind", "series",
                  "--id-column", "machine", "--time-column", "t", "--label-column", "state", env=long_model["env"],
                  check=False)
    assert imp.returncode == 2 and "column 'ch0' holds a non-number ('abc' in data row" in " ".join(imp.stderr.split())


def test_python_predict_reads_a_dataframe_in_the_models_layout(long_model, tmp_path):
    with Workspace.open(long_model["ws"]) as ws:
        model = ws.model("cyc")
        path = long_model["root"] / "new.csv"
        by_path = model.predict(path)
        by_frame = model.predict(pd.read_csv(path))
        pd.testing.assert_frame_equal(by_frame, by_path)
        _dirty(path, tmp_path / "dirty.csv")
        with pytest.warns(UserWarning, match="filled by linear interpolation"):
            dirty = model.predict(pd.read_csv(tmp_path / "dirty.csv", keep_default_na=False, na_values=[""]))
        assert "filled by linear interpolation" in dirty.attrs["notes"][0]
        assert dirty.set_index("id").loc["m1", "error"].startswith("series 'm1': column 'ch0' holds a non-number")
        with pytest.raises(InvalidInput, match="the DataFrame has no column 'machine'") as ei:
            model.predict(pd.read_csv(path).drop(columns=["machine"]))
        assert "This model reads a long table" in ei.value.message
        arrays = [s.T for s in long_model["test"]]  # (length, channels): the other way round
        with pytest.raises(InvalidInput, match=r"\(40, 2\) looks transposed .* expected \(channels, length\) = "
                                               r"\(2, 40\); pass array.T"):
            model.predict(arrays)
        assert list(model.predict([s for s in long_model["test"]])["prediction"]) == list(by_path["prediction"])


def test_a_ts_line_with_a_non_number_is_refused_alone_at_prediction(long_model, tmp_path):
    from tests.modalities.test_series_io import write_ts

    write_ts(tmp_path / "new.ts", long_model["test"], ["bump"] * 6)
    lines = (tmp_path / "new.ts").read_text().splitlines()
    lines[-6] = "abc," + lines[-6].split(",", 1)[1]  # the first series' first value
    (tmp_path / "new.ts").write_text("\n".join(lines) + "\n")
    with lenient_reading():
        s = read_series(tmp_path / "new.ts", Settings())
    assert isinstance(s.series[0], InvalidInput) and "expected comma-separated numbers" in s.series[0].message
    assert s.n_channels == 2 and len(s.series) == 6
    with pytest.raises(InvalidInput, match="expected comma-separated numbers"):
        read_series(tmp_path / "new.ts", Settings())


# ------------------------------------------------------------------ item 5: ONNX export names what the model uses
def test_onnx_refusal_names_what_the_series_model_computes(long_model, tmp_path, monkeypatch):
    """The tester's model was features_lgbm x1 and was told of a ROCKET transform it does not have."""
    import modelfab.export.onnx as onnx_export

    with Workspace.open(long_model["ws"]) as ws:
        folder = ws.model("cyc").folder
        manifest = onnx_export.verify_package(folder)
    said = {}
    for members in (["features_lgbm"], ["minirocket_ridge", "multirocket_ridge"], ["minirocket_ridge", "features_lgbm"]):
        as_trained = dict(manifest, series=dict(manifest["series"], members=[{"name": n, "weight": 1.0} for n in members]))
        monkeypatch.setattr(onnx_export, "verify_package", lambda _folder, m=as_trained: m)
        with pytest.raises(UnsupportedFormat) as ei:
            onnx_export.export_onnx(folder, tmp_path / "x.onnx")
        said[members[-1] if len(members) == 1 else "+".join(members)] = (ei.value.message, ei.value.hint)
        assert not (tmp_path / "x.onnx").exists()
    features, _ = said["features_lgbm"]
    assert "the series feature extraction that feeds its LightGBM" in features and "ROCKET" not in features
    rocket, hint = said["minirocket_ridge+multirocket_ridge"]
    assert "the ROCKET transform" in rocket and "feature extraction" not in rocket
    both, _ = said["minirocket_ridge+features_lgbm"]
    assert "ROCKET transform" in both and "feature extraction" in both and "have no ONNX converter" in both
    assert "--format mfpkg" in hint and "modelfab serve" in hint and "REST" in hint


def test_cli_onnx_export_of_a_series_model_names_its_members_and_what_to_use(long_model, tmp_path):
    with Workspace.open(long_model["ws"]) as ws:
        learner = ws.model("cyc").manifest["learner"]["name"]
    bad = run_cli("export", "cyc", "--format", "onnx", "-o", str(tmp_path / "cyc.onnx"), env=long_model["env"],
                  check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and not (tmp_path / "cyc.onnx").exists()
    said = " ".join(bad.stderr.split())
    assert ("ROCKET transform" in said) == ("rocket" in learner)
    assert ("series feature extraction" in said) == ("features" in learner)
    assert "--format mfpkg" in said and "modelfab serve" in said


def test_a_series_with_too_few_channels_is_told_the_channels_of_training(long_model):
    from modelfab.workspace import Workspace

    with Workspace.open(long_model["ws"]) as ws:
        with pytest.raises(InvalidInput, match=r"record 0 has 1 channel\(s\); the model was trained on 2 \('ch0', "
                                               r"'ch1'\)") as ei:
            ws.model("cyc").predictor.predict_records([{"values": [0.1, 0.2, 0.3, 0.4, 0.5]}])
    assert "a column missing from the file?" in ei.value.hint

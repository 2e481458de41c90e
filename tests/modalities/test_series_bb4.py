"""Series findings of black-box test bb4: zero-padded ids kept as written (F1), labels written several ways said
(F2), a .ts file of other data scored by a long-table model said (F5), value_columns as one str (F17), gaps in
Python arrays said in attrs and a UserWarning (F18), one bad row refusing only its series at prediction (F23), and
one panel per channel in the report (F21)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput
from modelfab.modalities.series.io import lenient_reading, read_series
from modelfab.settings import Settings
from modelfab.workspace import Workspace
from tests.conftest import cli_json, run_cli
from tests.modalities.test_series_io import make_series, write_ts
from tests.modalities.test_series_mistakes import long_model  # noqa: F401  (a fixture: cyc, long, ch0/ch1)

S = Settings()


def _padded(path, n: int = 30, labelled: bool = True, seed: int = 8) -> pd.DataFrame:
    """A long CSV as an MES writes it: cycle ids 000..029, labels ok/bad written 'ok', 'OK' and 'ok '."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        lab = ["ok", "bad"][i % 2]
        for j in range(40):
            v = np.sin(j / 5) + rng.normal(0, .2) + (1.5 if lab == "bad" and 15 < j < 25 else 0)
            row = {"cycle": f"{i:03d}", "time": j, "force": round(v, 4)}
            if labelled:
                row["result"] = {0: lab, 1: lab.upper(), 2: lab + " "}[i % 3]
            rows.append(row)
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    return df


# ------------------------------------------------------------------ F1 + F2: ids as written, label spellings said
def test_zero_padded_ids_are_kept_and_label_spellings_are_said_at_import_and_training(tmp_path):
    _padded(tmp_path / "ids.csv")
    _padded(tmp_path / "new.csv", n=3, labelled=False, seed=9)
    s = read_series(tmp_path / "ids.csv", S, id_column="cycle", time_column="time", label_column="result")
    assert s.ids[:3] == ["000", "001", "002"] and "ok " in s.labels  # as written: no stripping
    run_cli("init", str(tmp_path / "ws"))
    env = {"MODELFAB_HOME": str(tmp_path / "ws")}
    imp = cli_json("data", "import", str(tmp_path / "ids.csv"), "--name", "ids", "--kind", "series", "--id-column",
                   "cycle", "--time-column", "time", "--label-column", "result", env=env)
    said = [n for n in imp["stats"]["notes"] if "differ only in case, spaces or dashes" in n]
    assert said and "Column 'result'" in said[0] and "'OK' / 'ok' / 'ok '" in said[0], imp["stats"]["notes"]
    assert "each spelling is a class of its own" in said[0]
    with Workspace.open(tmp_path / "ws") as ws:
        model = ws.train("ids", task="classification", budget=10)
        assert any("'BAD' / 'bad' / 'bad '" in n for n in model.manifest["training"]["notes"])
        assert list(model.predict(tmp_path / "new.csv")["id"]) == ["000", "001", "002"]
    res = cli_json("predict", "ids", str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv"), env=env)
    assert res["rows"] == 3
    assert list(pd.read_csv(tmp_path / "p.csv", dtype=str)["id"]) == ["000", "001", "002"]


def test_a_labels_file_matches_zero_padded_ids_and_parquet_ids_stay_whole(tmp_path):
    df = _padded(tmp_path / "x.csv", n=6, labelled=False)
    pd.DataFrame({"cycle": [f"{i:03d}" for i in range(6)], "label": ["a", "b"] * 3}).to_csv(tmp_path / "lab.csv",
                                                                                           index=False)
    from modelfab.series import SeriesOptions, read_file

    s = read_file(tmp_path / "x.csv", S, SeriesOptions(id_column="cycle", time_column="time",
                                                        labels_file=str(tmp_path / "lab.csv")))
    assert s.ids[:2] == ["000", "001"] and s.labels == ["a", "b"] * 3
    ints = df.assign(cycle=df["cycle"].astype(int).astype(float))  # ints with a float dtype (as after an empty cell)
    ints.to_parquet(tmp_path / "x.parquet")
    assert read_series(tmp_path / "x.parquet", S, id_column="cycle", time_column="time").ids[:2] == ["0", "1"]


def test_the_labels_file_spellings_are_said_too():
    from modelfab.series import label_spelling_notes

    note = label_spelling_notes(["ok", "OK", "bad"], None)
    assert note and note[0].startswith("The labels file has labels that differ only in case")
    assert label_spelling_notes(["ok", "bad", None], "state") == []


# ------------------------------------------------------------------ F17: value_columns as one str
def test_value_columns_as_one_str_is_one_column_and_other_options_say_their_name(tmp_path):
    _padded(tmp_path / "ids.csv", n=6)
    ws = Workspace.init(tmp_path / "ws")
    res = ws.import_series(tmp_path / "ids.csv", "one", id_column="cycle", time_column="time", value_columns="force",
                           label_column="result")
    assert res.dataset.schema["channel_names"] == ["force"]
    with pytest.raises(InvalidInput, match=r"id_column names one column; expected a str, got a list \(\['cycle'\]\)"):
        ws.import_series(tmp_path / "ids.csv", "two", id_column=["cycle"])
    with pytest.raises(InvalidInput, match="value_columns names the channel columns; expected a list of column names"):
        ws.import_series(tmp_path / "ids.csv", "three", id_column="cycle", value_columns=[1, 2])


# ------------------------------------------------------------------ F23: a bad row refuses its series alone
def _long_rows(n: int = 4, length: int = 20) -> pd.DataFrame:
    series, _, _ = make_series(n, length, channels=2, seed=3)
    return pd.DataFrame([{"machine": f"m{i}", "t": t, "ch0": s[0, t], "ch1": s[1, t]}
                         for i, s in enumerate(series) for t in range(length)])


OPTS = dict(id_column="machine", time_column="t", value_columns=["ch0", "ch1"], layout="long")


def test_a_repeated_time_an_empty_time_and_rows_without_id_refuse_only_their_series_at_prediction(tmp_path):
    df = _long_rows()
    dup = pd.concat([df, df.iloc[[3]]], ignore_index=True)  # m0's time 3 written twice (the last row)
    dup.to_csv(tmp_path / "dup.csv", index=False)
    no_t = df.astype({"t": object})
    no_t.loc[25, "t"] = None  # m1
    no_t.to_csv(tmp_path / "no_t.csv", index=False)
    no_id = df.astype({"machine": object})
    no_id.loc[[45, 46], "machine"] = None  # two rows of m2
    no_id.to_parquet(tmp_path / "no_id.parquet")
    for f, what in (("dup.csv", "has two rows at time 3"), ("no_t.csv", "data row 26 (series 'm1') has no time"),
                    ("no_id.parquet", "2 row(s) have no series id in 'machine' (the first: data row 46)")):
        with pytest.raises(InvalidInput, match=what.replace("(", r"\(").replace(")", r"\)")):  # import: strict
            read_series(tmp_path / f, S, **OPTS)
    with lenient_reading():
        s = read_series(tmp_path / "dup.csv", S, **OPTS)
    assert s.ids == ["m0", "m1", "m2", "m3"] and all(isinstance(x, np.ndarray) for x in s.series[1:])
    assert s.series[0].message == ("series 'm0': data row 81 repeats the time 3 of an earlier row; expected one row "
                                   "per series and time step (remove the repeated row).")
    with lenient_reading():
        s = read_series(tmp_path / "no_t.csv", S, **OPTS)
    assert isinstance(s.series[1], InvalidInput) and "data row 26 has no time in 't'" in s.series[1].message
    assert sum(isinstance(x, np.ndarray) for x in s.series) == 3
    with lenient_reading():
        s = read_series(tmp_path / "no_id.parquet", S, **OPTS)
    assert s.ids == ["m0", "m1", "m2", "m3"] and all(isinstance(x, np.ndarray) for x in s.series)
    assert s.series[2].shape == (2, 18)
    assert any(n.startswith("2 row(s) have no series id in 'machine' (the first: data row 46) and were left out")
               for n in s.notes)


def test_cli_predict_scores_the_other_series_of_a_file_with_a_repeated_time(long_model, tmp_path):  # noqa: F811
    df = pd.read_csv(long_model["root"] / "new.csv")
    pd.concat([df, df.iloc[[0]]], ignore_index=True).to_csv(tmp_path / "dup.csv", index=False)
    out = tmp_path / "p.csv"
    res = cli_json("predict", "cyc", str(tmp_path / "dup.csv"), "-o", str(out), env=long_model["env"])
    pred = pd.read_csv(out, keep_default_na=False)
    assert res["rows"] == 6 and res["series_with_errors"] == 1
    first = str(df.iloc[0]["machine"])
    bad = pred[pred["id"] == first]
    assert "repeats the time" in bad["error"].iloc[0] and bad["prediction"].iloc[0] == ""
    assert (pred[pred["id"] != first]["prediction"] != "").all()


# ------------------------------------------------------------------ F5: a .ts file of other data
def test_a_ts_file_of_other_data_is_said_for_a_long_table_model_and_the_same_layout_is_not(long_model, tmp_path):  # noqa: F811
    test = long_model["test"]
    write_ts(tmp_path / "other.ts", test, ["normal", "fault"] * 3)
    with Workspace.open(long_model["ws"]) as ws:
        model = ws.model("cyc")
        with pytest.warns(UserWarning, match="A .ts file has no channel names"):
            out = model.predict(tmp_path / "other.ts")
        notes = out.attrs["notes"]
        assert any("its 2 channel(s) are read in order as the model's 'ch0', 'ch1'" in n for n in notes), notes
        assert any("The file's own labels ('normal', 'fault') are none of the model's classes" in n for n in notes)
        write_ts(tmp_path / "same.ts", test, ["bump", "step"] * 3)  # the model's classes: only the channels said
        notes = model.predict(tmp_path / "same.ts").attrs["notes"]
        assert not any("own labels" in n for n in notes)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the training layout: no note, no warning
            same = model.predict(long_model["root"] / "new.csv")
        assert not same.attrs.get("notes")
    res = cli_json("predict", "cyc", str(tmp_path / "other.ts"), "-o", str(tmp_path / "p.csv"), env=long_model["env"])
    assert any("other.ts: A .ts file has no channel names" in n for n in res["notes"]), res.get("notes")


def test_channel_names_made_up_by_readers_are_not_said():
    from modelfab.modalities.series.mismatch import channel_note, label_note

    assert channel_note("ts", ["dim_0"], ["value"]) == []
    assert channel_note("wide", ["value"], ["dim_0"]) == []
    assert channel_note("long", ["a", "b"], ["a", "b"]) == []
    assert channel_note("long", ["x", "y"], ["a", "b"])[0].startswith("The file's channels 'x', 'y' are read in order")
    assert label_note(["1", "2"], [1, 2]) == [] and label_note(["1.0"], [1]) == []


# ------------------------------------------------------------------ F18: gaps in Python arrays and lists
def test_gaps_in_python_arrays_and_lists_are_said_in_attrs_and_a_warning(long_model):  # noqa: F811
    a = np.array(long_model["test"][0], dtype=float)
    a[0, 10:15] = np.nan
    with Workspace.open(long_model["ws"]) as ws:
        model = ws.model("cyc")
        with pytest.warns(UserWarning, match=r"5 missing values inside series were filled by linear interpolation "
                                             r"\(in 1 series, e.g. series '0'\)"):
            out = model.predict([a, long_model["test"][1]])
        assert out.attrs["notes"] == ["5 missing values inside series were filled by linear interpolation (in 1 "
                                      "series, e.g. series '0')."]
        assert out["note"].iloc[0].startswith("5 missing value(s) inside the series") and out["note"].iloc[1] == ""
        with pytest.warns(UserWarning, match="filled by linear interpolation"):
            model.predict(np.stack([a, long_model["test"][1]]))  # a 3-D array
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no gap: no warning
            assert not model.predict([long_model["test"][1]]).attrs.get("notes")


# ------------------------------------------------------------------ F21: one panel per channel in the report
def test_the_report_plots_each_channel_on_its_own_panel():
    from modelfab.modalities.series.report import PANELS, series_figure

    t = np.arange(100)
    s = np.vstack([5 + 0.5 * np.sin(t / 6), 45 + np.cos(t / 6)])
    fig = series_figure(s, "A: true ok, predicted leak", ["pressure bar", "temp_c"])
    assert len(fig.axes) == 2 and [a.get_ylabel() for a in fig.axes] == ["pressure bar", "temp_c"]
    lo, hi = fig.axes[0].get_ylim()
    assert hi - lo < 2  # the pressure fills its panel, not squashed under the temperature's 45
    many = series_figure(np.random.default_rng(0).normal(size=(PANELS + 2, 50)), "x")
    assert len(many.axes) == 1 and "0..1" in many.axes[0].get_ylabel()


def test_a_wide_table_with_ids_leaves_out_rows_without_an_id_at_prediction_and_refuses_them_at_import(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(4, 10)), columns=[f"t{j}" for j in range(10)])
    df.insert(0, "unit", ["007", None, "009", "010"])
    df.to_csv(tmp_path / "wide.csv", index=False)
    with pytest.raises(InvalidInput, match=r"1 row\(s\) have no series id in 'unit' \(the first: data row 2\)"):
        read_series(tmp_path / "wide.csv", S, id_column="unit", layout="wide")
    with lenient_reading():
        s = read_series(tmp_path / "wide.csv", S, id_column="unit", layout="wide")
    assert s.ids == ["007", "009", "010"] and any("were left out" in n for n in s.notes)


def test_decimal_commas_are_read_as_tables_read_them(tmp_path):
    """A European export (';' between fields, '4,15' for 4.15) was refused: "holds a non-number ('4,15…')",
    while the table reader reads the same file."""
    from modelfab.modalities.series.long import read_long
    from modelfab.settings import Settings

    rng = np.random.default_rng(0)
    rows = [{"cycle": f"C{i}", "t": t, "pressure bar": f"{4 + rng.normal():.3f}".replace(".", ","),
             "temp": f"{40 + rng.normal():.2f}".replace(".", ",")} for i in range(4) for t in range(20)]
    pd.DataFrame(rows).to_csv(tmp_path / "euro.csv", sep=";", index=False)
    sset = read_long(tmp_path / "euro.csv", Settings(), id_column="cycle", time_column="t",
                     value_columns=["pressure bar", "temp"])
    assert len(sset.series) == 4 and 2.0 < float(np.mean(sset.series[0][0])) < 6.0
    assert 38.0 < float(np.mean(sset.series[0][1])) < 42.0


def test_a_series_workbook_sheet_is_chosen_with_sheet_at_import_and_prediction(long_model, tmp_path):  # noqa: F811
    """--sheet was refused for series ("--sheet is for tables"), so a series sheet that is not the fullest could not
    be read; REST predict-file refused .xlsx for series."""
    rows = pd.read_csv(long_model["root"] / "new.csv")
    book = tmp_path / "cycles.xlsx"
    with pd.ExcelWriter(book) as xw:
        pd.DataFrame({"x": range(2000), "y": range(2000)}).to_excel(xw, sheet_name="summary", index=False)  # fuller
        rows.to_excel(xw, sheet_name="data", index=False)
    env = long_model["env"]
    res = cli_json("predict", "cyc", str(book), "--sheet", "data", "-o", str(tmp_path / "p.csv"), env=env)
    assert res["rows"] == 6 and len(pd.read_csv(tmp_path / "p.csv")) == 6
    bad = run_cli("predict", "cyc", str(book), "-o", str(tmp_path / "q.csv"), env=env, check=False)
    assert bad.returncode != 0 and "'summary'" in bad.stderr  # the fullest sheet was read, and said
    bad = run_cli("predict", "cyc", str(book), "--sheet", "nope", "-o", str(tmp_path / "q.csv"), env=env, check=False)
    assert bad.returncode != 0 and "has no sheet 'nope'" in bad.stderr
    with Workspace.open(long_model["ws"]) as ws:
        imp = ws.import_series(book, "cyc_xlsx", id_column="machine", time_column="t", value_columns=["ch0", "ch1"],
                               sheet="data")
        assert imp.dataset.n_rows == 6
        pred = ws.model("cyc").predictor
        with pytest.raises(InvalidInput, match="read sheet 'summary'"):  # REST picks the fullest sheet, and says so
            pred.predict_bytes(book.read_bytes(), "cycles.xlsx")
        rows.to_excel(tmp_path / "one.xlsx", sheet_name="data", index=False)
        answer = pred.predict_bytes((tmp_path / "one.xlsx").read_bytes(), "one.xlsx")  # REST predict-file took no .xlsx
    assert len(answer["predictions"]) == 6


def test_evaluate_reads_a_long_tables_label_column(long_model, tmp_path):  # noqa: F811
    """`evaluate` found the labels of .ts files only: a long table's label column (the one of training) was not
    read ("no item has a true label"), and --label-column was refused for series."""
    train = pd.read_csv(long_model["root"] / "train.csv")
    res = cli_json("evaluate", "cyc", str(long_model["root"] / "train.csv"), env=long_model["env"])
    assert res["n"] == train["machine"].nunique() and res["metrics"]["accuracy"] >= 0.7
    renamed = tmp_path / "renamed.csv"
    train.rename(columns={"state": "truth"}).to_csv(renamed, index=False)
    res = cli_json("evaluate", "cyc", str(renamed), "--label-column", "truth", env=long_model["env"])
    assert res["n"] == train["machine"].nunique()

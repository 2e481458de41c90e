"""Series files as they come from elsewhere: the UCR archive's headerless tables, .ts from Windows, channels cut
short, missing values at the edges, mixed-precision ISO times, empty label columns, too-short series."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput, UnsupportedFormat
from modelfab.modalities.series.io import lenient_reading, read_series, read_ts
from modelfab.modalities.series.ucr import series_file_kind
from modelfab.settings import Settings

S = Settings()
TS_HEAD = "@problemName x\n@timeStamps false\n@missing true\n@univariate {uni}\n@classLabel true a b\n@data\n"


def _ucr_rows(n: int = 12, length: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = [1 + i % 2 for i in range(n)]
    values = rng.normal(size=(n, length)) + np.array(labels)[:, None]
    return labels, values


def write_ucr(path, labels, values, sep: str = "\t", label_fmt=str) -> None:
    lines = [sep.join([label_fmt(lab)] + [f"{v:.6f}" for v in row]) for lab, row in zip(labels, values)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ------------------------------------------------------------------ 1. UCR archive tables
def test_ucr_tsv_is_read_headerless_with_the_first_column_as_label(tmp_path):
    labels, values = _ucr_rows()
    write_ucr(tmp_path / "Sines_TRAIN.tsv", labels, values)
    s = read_series(tmp_path / "Sines_TRAIN.tsv", S)
    assert len(s.series) == 12  # the first series is a series, not the header
    assert s.labels == [str(v) for v in labels]
    assert {x.shape for x in s.series} == {(1, 20)}  # the label is not time step 0
    assert np.allclose(s.series[0][0], values[0], atol=1e-6)
    assert "UCR archive layout" in s.notes[0] and "2 classes: 1, 2" in s.notes[0]


def test_older_comma_separated_ucr_with_float_labels_and_no_archive_name(tmp_path):
    labels, values = _ucr_rows(seed=1)
    write_ucr(tmp_path / "sines.txt", labels, values, sep=",", label_fmt=lambda v: f"{float(v):.7e}")
    s = read_series(tmp_path / "sines.txt", S)  # whole numbers that repeat, the rest measurements: labels
    assert len(s.series) == 12 and s.labels == [str(v) for v in labels]
    assert np.allclose(s.series[-1][0], values[-1], atol=1e-6)


def test_headerless_values_only_and_numbered_headers(tmp_path):
    _, values = _ucr_rows(seed=2)
    pd.DataFrame(values).to_csv(tmp_path / "plain.csv", index=False, header=False)
    s = read_series(tmp_path / "plain.csv", S)
    assert len(s.series) == 12 and s.labels is None and s.series[0].shape == (1, 20)
    assert "no header row" in s.notes[0] and "no label column" in s.notes[0]
    few = np.round(values[:2], 1)
    few[:, 0] = [3.0, 7.0]  # two series that happen to start with whole numbers: values, not labels
    pd.DataFrame(few).to_csv(tmp_path / "two.csv", index=False, header=False)
    s = read_series(tmp_path / "two.csv", S)
    assert s.labels is None and s.series[0].shape == (1, 20) and s.series[1][0, 0] == 7.0
    # pandas writes numbered column names 0,1,2,...: a header, not a series
    pd.DataFrame(values).to_csv(tmp_path / "numbered.csv", index=False)
    s = read_series(tmp_path / "numbered.csv", S)
    assert len(s.series) == 12 and np.allclose(s.series[0][0], values[0])
    times = pd.DataFrame(values, columns=[f"{0.5 * j:.1f}" for j in range(20)])  # times as column names
    times.to_csv(tmp_path / "times.csv", index=False)
    s = read_series(tmp_path / "times.csv", S)
    assert len(s.series) == 12 and np.allclose(s.series[0][0], values[0])
    with pytest.raises(InvalidInput, match="no header row.*'label'"):
        read_series(tmp_path / "plain.csv", S, label_column="label")


def test_kind_of_ucr_names_and_arff(tmp_path):
    labels, values = _ucr_rows()
    write_ucr(tmp_path / "Sines_TEST.tsv", labels, values)
    assert series_file_kind(tmp_path / "Sines_TEST.tsv") == "series"
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(tmp_path / "table_TRAIN.csv", index=False)
    assert series_file_kind(tmp_path / "table_TRAIN.csv") is None  # a header row: a table
    (tmp_path / "x.arff").write_text("@relation x\n@attribute a numeric\n@data\n1\n", encoding="utf-8")
    with pytest.raises(UnsupportedFormat, match=r"\.arff files are not supported.*\.ts"):
        series_file_kind(tmp_path / "x.arff")
    with pytest.raises(UnsupportedFormat, match=r"\.arff files are not supported"):
        read_series(tmp_path / "x.arff", S)


# ------------------------------------------------------------------ 2. .ts channels and edges
def test_ts_channel_cut_short_is_refused_not_padded(tmp_path):
    a, b = ",".join(["1"] * 10), ",".join(["2"] * 10)
    p = tmp_path / "chan.ts"
    p.write_text(TS_HEAD.format(uni="false") + f"{a}:{b}:a\n{a}:{b[:-4]}:b\n{a}:{b}:a\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"line 8: channels have different lengths \(10, 8 values\)"):
        read_ts(p, S)
    with lenient_reading():  # prediction: that series alone is refused, with the reason
        s = read_ts(p, S)
    assert isinstance(s.series[1], InvalidInput) and "different lengths" in s.series[1].message
    assert s.series[0].shape == (2, 10) and len(s.ids) == 3


def test_ts_missing_values_at_the_edges_are_filled_and_said_so(tmp_path):
    p = tmp_path / "lead.ts"
    p.write_text(TS_HEAD.format(uni="true") + "?,2,3,4,5:a\n1,2,?,4,5:b\n1,2,3,4,5,?,?:a\n", encoding="utf-8")
    s = read_ts(p, S)
    assert s.series[0].shape == (1, 5) and s.series[0][0, 0] == 2.0  # the series keeps its first step
    assert s.series[2].shape == (1, 5)  # trailing '?' is the end of a shorter series
    assert any("1 missing value inside series was filled by linear interpolation" in n for n in s.notes)
    edge = [n for n in s.notes if "before the first or after the last value" in n]
    assert edge and "1 missing value" in edge[0] and "lead.ts line 7" in edge[0]
    two = tmp_path / "two.ts"
    two.write_text(TS_HEAD.format(uni="false") + "1,2,3,4:5,6,7,?:a\n1,2,3,4:5,6,7,8:b\n", encoding="utf-8")
    s = read_ts(two, S)
    assert list(s.series[0][1]) == [5, 6, 7, 7] and not any("inside series" in n for n in s.notes)
    assert any("before the first or after the last value" in n for n in s.notes)


# ------------------------------------------------------------------ 3. long-format times
def _long(times, n_series: int = 3):
    rows = []
    for u in range(n_series):
        for j, t in enumerate(times):
            rows.append({"unit": f"u{u}", "time": t, "value": float(np.sin(j + u)), "label": "ab"[u % 2]})
    return pd.DataFrame(rows)


def test_iso_times_of_mixed_precision_and_no_pandas_warning(tmp_path):
    import datetime as dt

    start = dt.datetime(2024, 5, 1, 12)
    times = [(start + dt.timedelta(milliseconds=500 * j)).isoformat() for j in range(8)]
    _long(times).to_csv(tmp_path / "iso.csv", index=False)
    s = read_series(tmp_path / "iso.csv", S, id_column="unit", time_column="time", value_columns=["value"],
                    label_column="label")
    assert len(s.series) == 3 and s.series[0].shape == (1, 8)
    us = [(start + dt.timedelta(seconds=j)).strftime("%m/%d/%Y %I:%M:%S %p") for j in range(8)]
    _long(us).sample(frac=1, random_state=0).to_csv(tmp_path / "us.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = read_series(tmp_path / "us.csv", S, id_column="unit", time_column="time", value_columns=["value"])
    assert np.allclose(s.series[0][0], np.sin(np.arange(8)))


def test_an_empty_time_cell_is_named_by_its_row(tmp_path):
    df = _long([f"2024-05-01T12:00:0{j}" for j in range(6)])
    df.loc[8, "time"] = None
    df.to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(InvalidInput, match=r"data row 9 \(series 'u1'\) has no time in 'time'") as err:
        read_series(tmp_path / "gap.csv", S, id_column="unit", time_column="time", value_columns=["value"])
    assert "nan" not in err.value.message


# ------------------------------------------------------------------ 4. .ts from Windows
def test_ts_with_bom_and_crlf(tmp_path):
    body = TS_HEAD.format(uni="true") + "1,2,3,4:a\n4,3,2,1:b\n"
    (tmp_path / "win.ts").write_bytes(b"\xef\xbb\xbf" + body.replace("\n", "\r\n").encode())
    s = read_ts(tmp_path / "win.ts", S)
    assert s.labels == ["a", "b"] and list(s.series[1][0]) == [4, 3, 2, 1]


# ------------------------------------------------------------------ 5. empty label column
def test_an_empty_label_column_is_said_at_import_and_at_training(tmp_path):
    from modelfab.training_series import _targets

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(6, 10)), columns=[f"t{j}" for j in range(10)])
    df.insert(0, "label", np.nan)
    df.to_csv(tmp_path / "nolab.csv", index=False)
    s = read_series(tmp_path / "nolab.csv", S, label_column="label")
    assert any("label column 'label' is empty in all 6 series" in n for n in s.notes)
    with pytest.raises(InvalidInput, match="the label column 'label' was empty for all 6 series"):
        _targets(pd.DataFrame({"id": list("abcdef"), "label": [None] * 6}), "auto", None, "the label column 'label'")


# ------------------------------------------------------------------ 6. too-short series
def test_a_too_short_series_says_what_to_do_and_can_be_left_out(tmp_path):
    from modelfab.workspace import Workspace

    rng = np.random.default_rng(0)
    table = rng.normal(size=(12, 10))
    table[4, 2:] = np.nan  # two steps
    df = pd.DataFrame(table, columns=[f"t{j}" for j in range(10)])
    df.insert(0, "label", ["a", "b"] * 6)
    df.to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(InvalidInput, match="row 5: has 2 time step") as err:
        read_series(tmp_path / "short.csv", S, label_column="label")
    assert "--skip-bad" in err.value.hint and "skip_bad=True" in err.value.hint
    from modelfab.series import SeriesOptions, import_series

    ws = Workspace.init(tmp_path / "ws")
    res = import_series(ws, tmp_path / "short.csv", "short", SeriesOptions(label_column="label"), skip_bad=True)
    st = res.dataset.stats
    assert st["series"] == 11 and any("1 series could not be imported" in n and "row 5" in n for n in st["notes"])
    ws.close()


# ------------------------------------------------------------------ 7. numeric class labels
def test_few_numeric_labels_are_summed_up_as_classes(tmp_path):
    from modelfab.series import SeriesOptions, import_series
    from modelfab.workspace import Workspace

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(16, 10)), columns=[f"t{j}" for j in range(10)])
    df.insert(0, "grade", [1 + i % 8 for i in range(16)])
    df.to_csv(tmp_path / "grades.csv", index=False)
    ws = Workspace.init(tmp_path / "ws")
    st = import_series(ws, tmp_path / "grades.csv", "g", SeriesOptions(label_column="grade")).dataset.stats
    assert st["labels"] == {str(k): 2 for k in range(1, 9)}
    assert any("8 different numbers" in n and "classes" in n for n in st["notes"])
    df = pd.DataFrame(rng.normal(size=(30, 10)), columns=[f"t{j}" for j in range(10)])
    df["grade"] = np.linspace(0, 1, 30)  # over 20 values: a number to predict, no class counts
    df.to_csv(tmp_path / "life.csv", index=False)
    st = import_series(ws, tmp_path / "life.csv", "life", SeriesOptions(label_column="grade")).dataset.stats
    assert "labels" not in st and st["target"]["max"] == 1.0
    ws.close()


def test_docs_ucr_example_runs(tmp_path, monkeypatch):
    from tests.conftest import run_docs_python

    namespace = run_docs_python("timeseries.md", r"### A UCR archive table from Python", tmp_path, monkeypatch)
    st = namespace["ds"].stats
    assert st["series"] == 20 and st["length"]["max"] == 50 and st["labels"] == {"1": 10, "2": 10}
    assert "UCR archive layout" in st["notes"][0]
    namespace["ws"].close()


def test_cli_reads_ucr_tables_without_kind_and_skips_bad_series(tmp_path):
    """`data import Name_TRAIN.tsv` with no --kind is series (it was a table of 79 rows named by the first series);
    --skip-bad leaves out a series too short to use, and the summary names it."""
    from tests.conftest import cli_json, run_cli

    labels, values = _ucr_rows(12, 20)
    write_ucr(tmp_path / "Wave_TRAIN.tsv", labels, values)
    w = ["-w", str(tmp_path / "ws")]
    run_cli("init", str(tmp_path / "ws"))
    out = cli_json("data", "import", str(tmp_path / "Wave_TRAIN.tsv"), *w)
    assert out["kind"] == "series" and out["stats"]["series"] == 12 and out["stats"]["labels"] == {"1": 6, "2": 6}
    table = values.copy()
    table[4, 2:] = np.nan
    df = pd.DataFrame(table, columns=[f"t{j}" for j in range(20)])
    df.insert(0, "label", ["a", "b"] * 6)
    df.to_csv(tmp_path / "short.csv", index=False)
    bad = run_cli("data", "import", str(tmp_path / "short.csv"), "--kind", "series", "--label-column", "label", *w,
                  check=False)
    assert bad.returncode == 2 and "--skip-bad" in bad.stderr
    ok = run_cli("data", "import", str(tmp_path / "short.csv"), "--kind", "series", "--label-column", "label",
                 "--skip-bad", *w).stdout
    assert "11 series" in ok and "row 5" in ok, ok

"""Reading series files: long/wide tables and UCR/UEA .ts, equal and unequal lengths, hostile input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput, TooLarge, UnsupportedFormat
from modelfab.modalities.series.io import read_series, read_ts
from modelfab.settings import Settings

S = Settings()


def make_series(n: int = 40, length: int = 60, channels: int = 1, seed: int = 0, unequal: bool = False):
    """Two classes: a bump ("bump") or a step ("step") at a random place in noise; plus a numeric target."""
    rng = np.random.default_rng(seed)
    out, labels, target = [], [], []
    for i in range(n):
        L = int(rng.integers(max(16, length // 2), length + 1)) if unequal else length
        x = rng.normal(0, 0.3, (channels, L))
        pos = int(rng.integers(2, L - 8))
        amp = float(rng.uniform(1, 3))
        if i % 2 == 0:
            x[:, pos:pos + 5] += amp
            labels.append("bump")
        else:
            x[:, pos:] += amp
            labels.append("step")
        out.append(x)
        target.append(amp)
    return out, labels, target


def write_ts(path, series, labels, *, regression: bool = False) -> None:
    channels = series[0].shape[0]
    equal = len({s.shape[1] for s in series}) == 1
    head = ["@problemName test", "@timeStamps false", "@missing false",
            f"@univariate {'true' if channels == 1 else 'false'}", f"@dimensions {channels}",
            f"@equalLength {'true' if equal else 'false'}"]
    head.append("@targetLabel true" if regression else "@classLabel true " + " ".join(sorted(set(map(str, labels)))))
    lines = head + ["@data"]
    for s, y in zip(series, labels):
        lines.append(":".join(",".join(f"{v:.5f}" for v in c) for c in s) + f":{y}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_long(path, series, labels) -> None:
    rows = []
    for i, (s, y) in enumerate(zip(series, labels)):
        for t in range(s.shape[1]):
            rows.append({"machine": f"m{i}", "t": t, **{f"ch{c}": s[c, t] for c in range(s.shape[0])}, "state": y})
    pd.DataFrame(rows).sample(frac=1.0, random_state=0).to_csv(path, index=False)  # shuffled: time orders rows


def write_wide(path, series, labels) -> None:
    L = max(s.shape[1] for s in series)
    table = np.full((len(series), L), np.nan)
    for i, s in enumerate(series):
        table[i, :s.shape[1]] = s[0]
    df = pd.DataFrame(table, columns=[f"t{j}" for j in range(L)])
    df.insert(0, "label", labels)
    df.to_csv(path, index=False)


def test_ts_multivariate_unequal(tmp_path):
    series, labels, _ = make_series(12, 30, channels=3, unequal=True)
    write_ts(tmp_path / "a.ts", series, labels)
    s = read_ts(tmp_path / "a.ts", S)
    assert s.n_channels == 3 and len(s.series) == 12 and s.labels == labels
    assert [x.shape[1] for x in s.series] == [x.shape[1] for x in series]
    assert np.allclose(s.series[4], series[4], atol=1e-5)


def test_ts_regression_target(tmp_path):
    series, _, target = make_series(10, 20)
    write_ts(tmp_path / "r.ts", series, [f"{t:.4f}" for t in target], regression=True)
    s = read_ts(tmp_path / "r.ts", S)
    assert s.labels == pytest.approx(target, abs=1e-4)


def test_long_format_sorts_by_time_and_keeps_channels(tmp_path):
    series, labels, _ = make_series(8, 25, channels=2, unequal=True)
    write_long(tmp_path / "long.csv", series, labels)
    s = read_series(tmp_path / "long.csv", S, id_column="machine", time_column="t", value_columns=["ch0", "ch1"],
                    label_column="state")
    got = dict(zip(s.ids, s.series))
    assert s.n_channels == 2 and s.channel_names == ["ch0", "ch1"]
    assert np.allclose(got["m3"], series[3], atol=1e-9)
    assert dict(zip(s.ids, s.labels))["m3"] == labels[3]


def test_wide_format_trims_padding_and_fills_gaps(tmp_path):
    series, labels, _ = make_series(6, 20, unequal=True)
    series[2][0, 5] = np.nan
    write_wide(tmp_path / "wide.csv", series, labels)
    s = read_series(tmp_path / "wide.csv", S, label_column="label")
    assert [x.shape[1] for x in s.series] == [x.shape[1] for x in series]
    assert np.isfinite(s.series[2]).all() and "interpolation" in s.notes[0]


def test_wide_format_leaves_out_other_columns_and_reads_prefixed_channels(tmp_path):
    rng = np.random.default_rng(0)
    steps = rng.normal(size=(5, 30))
    df = pd.DataFrame(steps, columns=[f"t{i}" for i in range(30)])
    df.insert(0, "remaining_life", np.arange(5) * 100.0)  # a number, but not a time step
    df["label"] = ["a", "b"] * 2 + ["a"]
    df.to_csv(tmp_path / "meta.csv", index=False)
    s = read_series(tmp_path / "meta.csv", S, label_column="label")
    assert {x.shape for x in s.series} == {(1, 30)} and np.allclose(s.series[1][0], steps[1])
    assert "'remaining_life'" in s.notes[0] and "left out" in s.notes[0]
    two = pd.DataFrame(np.hstack([steps, -steps]), columns=[f"p_{i}" for i in range(30)] + [f"q_{i}" for i in range(30)])
    two[["p_10", "p_2"]] = two[["p_2", "p_10"]].to_numpy()  # columns out of order: the step numbers order them
    two = two.rename(columns={"p_10": "p_2", "p_2": "p_10"})
    two.to_csv(tmp_path / "pq.csv", index=False)
    s = read_series(tmp_path / "pq.csv", S)
    assert {x.shape for x in s.series} == {(2, 30)} and s.channel_names == ["p", "q"]
    assert np.allclose(s.series[3][0], steps[3]) and np.allclose(s.series[3][1], -steps[3])
    assert "2 channels" in s.notes[0]
    # models made before read every column as one channel: their stored options say so (wide_steps False)
    old = read_series(tmp_path / "pq.csv", S, wide_steps=False)
    assert {x.shape for x in old.series} == {(1, 60)}
    # dates or fractional times as column names are not step numbers: every column stays a step, in file order
    dates = pd.DataFrame(steps, columns=[str(d.date()) for d in pd.date_range("2024-01-01", periods=30)])
    dates.to_csv(tmp_path / "dates.csv", index=False)
    assert {x.shape for x in read_series(tmp_path / "dates.csv", S).series} == {(1, 30)}


@pytest.mark.parametrize("body, message", [
    ("@classLabel true a b\n@data\n1,2,x,4:a\n", "comma-separated numbers"),
    ("@classLabel true a b\n@data\n1,2,3,4:c\n", "not one of the declared"),
    ("@classLabel true a b\n1,2,3:a\n", "header line"),
    ("@problemName x\n@classLabel true a b\n", "no @data"),
    ("@timeStamps true\n@data\n(0,1),(1,2):a\n", "time stamps"),
    ("@classLabel true a b\n@data\n1,2,3,4:a\n1,2,3,4:5,6,7,8:b\n", "different numbers of channels"),
    ("@classLabel true a b\n@data\n1,2:a\n", "at least 3"),
    ("@classLabel true a b\n@data\n1,inf,3,4:a\n", "infinite"),
])
def test_hostile_ts_files_are_refused_with_a_reason(tmp_path, body, message):
    p = tmp_path / "bad.ts"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        read_ts(p, S)


def test_binary_and_oversized_files(tmp_path):
    p = tmp_path / "bin.ts"
    p.write_bytes(b"\xff\xfe\x00\x81" * 100)
    with pytest.raises(UnsupportedFormat):
        read_ts(p, S)
    series, labels, _ = make_series(10, 50)
    write_ts(tmp_path / "ok.ts", series, labels)
    with pytest.raises(TooLarge, match="limit"):
        read_ts(tmp_path / "ok.ts", Settings(max_signal_samples=100))
    with pytest.raises(TooLarge, match=r"ok.ts: \d[\d.,]* KiB is over the import limit of 100 B"):  # not "0 MiB"
        read_ts(tmp_path / "ok.ts", Settings(max_import_bytes=100))


def test_hostile_tables(tmp_path):
    df = pd.DataFrame({"id": ["a"] * 4 + ["b"] * 4, "t": [0, 1, 2, 3] * 2, "v": np.arange(8.0),
                       "y": ["x", "x", "x", "z", "x", "x", "x", "x"]})
    df.to_csv(tmp_path / "two_labels.csv", index=False)
    with pytest.raises(InvalidInput, match="one label per series"):
        read_series(tmp_path / "two_labels.csv", S, id_column="id", time_column="t", label_column="y")
    df.assign(t=[0, 1, 1, 3, 0, 1, 2, 3], y="x").to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(InvalidInput, match="two rows at time"):
        read_series(tmp_path / "dup.csv", S, id_column="id", time_column="t", label_column="y")
    df.assign(v=["1", "2", "oops", "4", "1", "2", "3", "4"], y="x").to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(InvalidInput, match="non-number"):
        read_series(tmp_path / "text.csv", S, id_column="id", time_column="t", label_column="y")
    with pytest.raises(InvalidInput, match="not a column"):
        read_series(tmp_path / "text.csv", S, id_column="machine")
    with pytest.raises(UnsupportedFormat):
        read_series(tmp_path / "x.wav", S)


def test_long_format_says_when_series_skip_time_steps(tmp_path):
    from modelfab.modalities.series.io import read_long
    from modelfab.settings import Settings

    rows = [{"id": f"s{i}", "t": t, "v": float(t)} for i in range(3) for t in range(10) if not (i == 1 and t == 7)]
    pd.DataFrame(rows).to_csv(tmp_path / "gap.csv", index=False)
    notes = read_long(tmp_path / "gap.csv", Settings(), id_column="id", time_column="t").notes
    gaps = [n for n in notes if "skip time steps" in n]  # beside it: the channels read (no --value-column)
    assert len(gaps) == 1 and "1 series skip time steps" in gaps[0] and "'s1' before '8'" in gaps[0]
    dates = [{"id": "a", "t": f"2026-01-01 00:0{m}", "v": 1.0} for m in (0, 1, 2, 5, 6)]
    pd.DataFrame(dates).to_csv(tmp_path / "dates.csv", index=False)
    assert any("skip time steps" in n for n in read_long(tmp_path / "dates.csv", Settings(), id_column="id",
                                                         time_column="t").notes)
    regular = [{"id": f"s{i}", "t": 2 * t, "v": 1.0} for i in range(2) for t in range(6)]  # a step of 2 is no gap
    pd.DataFrame(regular).to_csv(tmp_path / "even.csv", index=False)
    assert not any("skip" in n for n in read_long(tmp_path / "even.csv", Settings(), id_column="id", time_column="t").notes)


def test_a_wide_table_with_an_id_column_keeps_its_ids(tmp_path):
    """--id-column alone does not mean the long format: a table with each id on one row and a column per time step
    is wide and keeps its ids; repeated ids stay long; a table that is neither says what each layout needs."""
    series, labels, _ = make_series(6, 20, seed=5)
    write_wide(tmp_path / "wide.csv", series, labels)
    df = pd.read_csv(tmp_path / "wide.csv")
    df.insert(0, "unit", [f"u{i}" for i in range(6)])
    df.to_csv(tmp_path / "wide_ids.csv", index=False)
    s = read_series(tmp_path / "wide_ids.csv", S, id_column="unit", label_column="label")
    assert s.format == "wide" and s.ids == [f"u{i}" for i in range(6)] and s.labels == labels
    assert {x.shape for x in s.series} == {(1, 20)} and np.allclose(s.series[4], series[4], atol=1e-5)
    assert s.notes == []  # the id column is not left out with a note
    write_long(tmp_path / "long.csv", series, labels)  # ids repeated: long, even without --time-column
    assert read_series(tmp_path / "long.csv", S, id_column="machine", label_column="state").format == "long"
    df[["unit", "t0", "t1", "label"]].to_csv(tmp_path / "neither.csv", index=False)
    with pytest.raises(InvalidInput, match="every id in 'unit' is on one row.*2 time-step column") as err:
        read_series(tmp_path / "neither.csv", S, id_column="unit", label_column="label")
    assert "one row per series and time step" in err.value.hint
    with pytest.raises(InvalidInput, match="appears 2 times"):  # a model of a wide table reads wide files only
        pd.concat([df, df.head(1)]).to_csv(tmp_path / "twice.csv", index=False)
        read_series(tmp_path / "twice.csv", S, id_column="unit", label_column="label", layout="wide")


def test_messages_show_plain_values_not_numpy_reprs(tmp_path):
    df = pd.DataFrame({"id": ["a"] * 4 + ["b"] * 4, "t": [0, 1, 1, 3, 0, 1, 2, 3], "v": np.arange(8.0), "y": 7})
    df.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(InvalidInput) as err:
        read_series(tmp_path / "dup.csv", S, id_column="id", time_column="t", label_column="y")
    assert "has two rows at time 1;" in err.value.message and "np." not in err.value.message
    df.assign(t=[0, 1, 2, 3] * 2, y=[1, 1, 2, 2, 1, 1, 1, 1]).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(InvalidInput) as err:
        read_series(tmp_path / "labels.csv", S, id_column="id", time_column="t", label_column="y")
    assert "2 different labels (1, 2)" in err.value.message and "np." not in err.value.message
    from modelfab.training_series import _targets

    with pytest.raises(InvalidInput) as err:
        _targets(pd.DataFrame({"label": [3.0, 3.0]}), "classification", "numeric")
    assert "the same class (3)" in err.value.message and "np." not in err.value.message


def test_two_series_classes_put_the_normal_one_first_so_the_other_is_positive():
    import pandas as pd

    from modelfab.training_series import _targets

    _, y, task, labels = _targets(pd.DataFrame({"label": ["normal"] * 6 + ["abnormal"] * 4}), "auto", "category")
    assert task == "classification" and labels == ["normal", "abnormal"]  # sorted, 'normal' was the positive class
    assert y.tolist() == [0] * 6 + [1] * 4

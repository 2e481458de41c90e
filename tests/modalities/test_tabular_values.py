"""Plant tables as they are written: timestamps of several formats and time zones in one column, numbers with a
decimal comma or thousands separators, numbers with a unit, yes/no words of two languages. Read at import as
datetimes, numbers and booleans, and read the same way by a trained model at prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput

from modelfab.modalities.tabular import TabularPreprocessor, check_records, infer_kind, infer_schema
from modelfab.modalities.tabular_values import detect_number_format, parse_datetimes, to_numbers

MIXED_TIMES = ["2026-03-29 09:23:30", "29.03.2026 09:23", "2026-03-29T09:23:30Z", "2026-03-29T11:23:30+02:00"]


def _kinds(df, delimiter=None):
    return {c["name"]: (c["kind"], c.get("number_format")) for c in infer_schema(df, delimiter)["columns"]}


# -- datetimes ------------------------------------------------------------------------------------------------

def test_mixed_time_zones_and_formats_are_one_datetime_column_naive_taken_as_utc():
    s = pd.Series(MIXED_TIMES * 10)
    assert infer_kind(s, "timestamp") == "datetime"  # was: ValueError: Mixed timezones detected
    d = parse_datetimes(s)
    assert d.dt.tz is None
    assert d.iloc[0] == pd.Timestamp("2026-03-29 09:23:30")
    assert d.iloc[1] == pd.Timestamp("2026-03-29 09:23:00")
    assert d.iloc[2] == d.iloc[0] and d.iloc[3] == d.iloc[0]  # 'Z' and +02:00 converted to UTC


def test_dotted_dates_are_day_first():
    d = parse_datetimes(pd.Series(["03.04.2026 10:00", "2026-04-03 10:00", None]))
    assert d.iloc[0] == d.iloc[1] == pd.Timestamp("2026-04-03 10:00")  # not March 4
    assert pd.isna(d.iloc[2])


def test_the_preprocessor_reads_mixed_time_zones_at_predict_time():
    train = pd.DataFrame({"t": ["2026-03-01 08:00:00"] * 5 + ["2026-03-02 08:00:00"] * 5})
    pre = TabularPreprocessor().fit(train, infer_schema(train))
    new = pd.DataFrame({"t": ["2026-03-29 09:23:30", "29.03.2026 09:23", "2026-03-29T09:23:30Z"]})
    x = pre.transform(new)  # was: ValueError: Mixed timezones detected
    assert x[0, -1] == x[2, -1]  # epoch days: naive and 'Z' the same instant
    assert x[:, :5].tolist()[0] == [2026, 3, 29, 6, 9]


# -- numbers with a decimal comma, thousands separators, units ------------------------------------------------

@pytest.mark.parametrize("values, delimiter, fmt, expected", [
    (["70,2", "31,11", "72,1"], ";", {"decimal": ",", "unit": ""}, [70.2, 31.11, 72.1]),
    (["1.486,7", "986,3", "1.314,2"], ";", {"decimal": ",", "unit": ""}, [1486.7, 986.3, 1314.2]),
    (["1 486,7", "986,3", "1\u202f314,2"], ";", {"decimal": ",", "unit": ""}, [1486.7, 986.3, 1314.2]),
    (["1,486.7", "986.3", "1,314.2"], ",", {"decimal": ".", "unit": ""}, [1486.7, 986.3, 1314.2]),
    (["1,486", "2,001", "1,314"], ",", {"decimal": ".", "unit": ""}, [1486, 2001, 1314]),  # comma thousands
    (["1,486", "2,001", "1,314"], ";", {"decimal": ",", "unit": ""}, [1.486, 2.001, 1.314]),  # ';' file: decimal
    (["1,486", "2,5", "1,314"], ",", {"decimal": ",", "unit": ""}, [1.486, 2.5, 1.314]),  # '2,5' says decimal
    (["12.039 mm", "11.713 mm", "12.1mm"], ",", {"decimal": ".", "unit": "mm"}, [12.039, 11.713, 12.1]),
    (["40 %", "63 %", "34%"], ",", {"decimal": ".", "unit": "%"}, [40, 63, 34]),
    (["3,5 bar", "4 bar", "2,25 bar"], ";", {"decimal": ",", "unit": "bar"}, [3.5, 4, 2.25]),
    (["-1,5 °C", "\u22122,5 °C", "20 °C"], ";", {"decimal": ",", "unit": "°C"}, [-1.5, -2.5, 20]),
])
def test_number_formats_are_found_and_read(values, delimiter, fmt, expected):
    s = pd.Series(values * 20)
    assert detect_number_format(s, delimiter) == fmt
    assert to_numbers(s, fmt).tolist()[:3] == pytest.approx(expected)
    kind, found = _kinds(pd.DataFrame({"x": s}), delimiter)["x"]
    assert (kind, found) == ("numeric", fmt)


@pytest.mark.parametrize("values", [
    ["L1", "L2", "L-2"], ["2026-03-29", "2026-03-30", "2026-03-31"], ["12 mm", "3 bar", "4 kg"],
    ["1.2.3", "1.2.4", "2.0.1"], ["ok", "defect", "ok"], ["09:23", "10:11", "11:00"],
])
def test_texts_that_are_not_numbers_of_one_format_are_left_alone(values):
    assert detect_number_format(pd.Series(values * 20), ";") is None


def test_a_bare_unit_is_a_missing_value_and_another_unit_is_missing():
    s = pd.Series(["12.039 mm"] * 60 + [" mm", None])
    fmt = detect_number_format(s, ",")
    assert fmt == {"decimal": ".", "unit": "mm"}
    v = to_numbers(pd.Series(["12.5 mm", "12.5", "12.5 cm", "abc", None, 7.0], dtype=object), fmt)
    assert v.tolist()[:2] == [12.5, 12.5] and v.iloc[5] == 7.0
    assert v.iloc[2:5].isna().all()


def test_the_preprocessor_keeps_the_format_and_reads_new_texts_with_it():
    raw = pd.DataFrame({"force": ["1.486,7", "986,3", "1.314,2", "1.000,0"] * 10,
                        "d": ["12.039 mm", "11.9 mm", "12.2 mm", "12 mm"] * 10})
    schema = infer_schema(raw, ";")
    stored = raw.copy()
    from modelfab.modalities.tabular_values import apply_number_formats

    notes = apply_number_formats(stored, schema, "plant.csv")
    assert stored["force"].dtype == np.float64 and stored["force"].iloc[0] == pytest.approx(1486.7)
    assert any("'force'" in n and "decimal comma" in n for n in notes)
    assert any("d (mm)" in n for n in notes)
    pre = TabularPreprocessor().fit(stored, schema)
    pre = TabularPreprocessor.from_dict(pre.to_dict())  # as a package loads it
    # a new file, read raw (batch prediction reads strings): the same numbers as the stored table
    new = pd.DataFrame({"force": ["1.486,7", "2.000,5", None], "d": ["12.039 mm", "12.5 cm", "12,5 mm"]})
    x = pre.transform(new)
    assert x[0].tolist() == pytest.approx([1486.7, 12.039])
    assert x[1, 0] == pytest.approx(2000.5) and np.isnan(x[1, 1])  # another unit: missing
    assert np.isnan(x[2, 0])
    # numbers (a JSON record, a parsed file) pass as they are; the serving fast path reads texts the same way
    rec = {"force": "1.486,7", "d": 12.039}
    check_records([rec], pre.input_columns)
    assert pre.transform_record(rec).tolist() == x[:1].tolist()


# -- yes/no words ---------------------------------------------------------------------------------------------

def test_yes_no_words_of_two_languages_are_boolean():
    s = pd.Series(["Y", "是", "N", "否", "Y"] * 10)
    assert infer_kind(s, "coolant_ok") == "boolean"
    assert infer_kind(pd.Series(["ok", "defect"] * 10), "quality") == "categorical"


def test_rest_records_with_a_date_that_is_no_date_are_refused_by_field():
    cols = [{"name": "when", "kind": "datetime"}, {"name": "line", "kind": "categorical"}]
    for ok in ("2026-03-29 09:23:30", "2026-03-29T09:23:30Z", "29.03.2026 09:23", "2026-03-29T09:23:30+02:00", ""):
        check_records([{"when": ok, "line": "L1"}], cols)
    with pytest.raises(InvalidInput) as err:
        check_records([{"when": "2026-03-29", "line": "L1"}, {"when": "yesterday", "line": "L2"}], cols)
    assert "record 1: field 'when' must be a date/time" in err.value.message and "'yesterday'" in err.value.message


def test_categories_written_several_ways_are_noted():
    from modelfab.modalities.tabular_values import spelling_notes

    df = pd.DataFrame({"line": ["L1", "l1", "L1 ", "L-2", "L2", "L3"] * 5, "shift": ["A", "B", "C"] * 10})
    schema = infer_schema(df)
    notes = spelling_notes(df, schema)
    assert len(notes) == 1 and "'line'" in notes[0] and "'L1' / 'L1 ' / 'l1'" in notes[0] and "'L-2' / 'L2'" in notes[0]


# -- numbers as text before dates; a clear majority of numbers is a numeric column ------------------------------

def test_english_thousands_all_over_1000_are_numbers_not_dates():
    # '1,509.5' holds '509.5', which dateutil read as the year 509: the column imported as datetime
    s = pd.Series(["1,509.5", "9,486.6", "2,001.0", "1,860.4"] * 20)
    assert _kinds(pd.DataFrame({"force": s}), ",")["force"] == ("numeric", {"decimal": ".", "unit": ""})
    for dates in (["29.03.2026", "30.03.2026"], ["2026-03-29", "2026-03-30"], ["29.03.2026 09:23", "2026-03-29T09:23Z"]):
        assert infer_kind(pd.Series(dates * 20), "when") == "datetime"


def _import(df, delimiter=";"):
    from modelfab.modalities.tabular import column_stats
    from modelfab.modalities.tabular_values import apply_number_formats

    df = df.copy()
    schema = infer_schema(df, delimiter)
    notes = apply_number_formats(df, schema, "plant.csv")
    return df, {c["name"]: (c["kind"], c.get("number_format")) for c in schema["columns"]}, notes, \
        column_stats(df, schema)


def test_a_clear_majority_of_numbers_is_numeric_and_the_rest_is_counted():
    n = 200
    mostly = ["70,2"] * 190 + ["70.2"] * 4 + ["abc"] * 3 + ["70,2 cm"] * 3  # was: 193 categories, no note
    df = pd.DataFrame({"x": mostly, "half": ["70,2", "70.2"] * (n // 2), "thou": ["1.739,0", "1287.0"] * (n // 2)})
    out, kinds, notes, stats = _import(df)
    assert kinds == {"x": ("numeric", {"decimal": ",", "unit": ""}), "half": ("numeric", {"decimal": ",", "unit": ""}),
                     "thou": ("numeric", {"decimal": ",", "unit": ""})}
    assert out["x"].iloc[190] == pytest.approx(70.2) and out["x"].isna().sum() == 6
    assert out["half"].tolist()[:2] == pytest.approx([70.2, 70.2])
    assert out["thou"].tolist()[:2] == pytest.approx([1739.0, 1287.0])
    note = next(t for t in notes if "'x'" in t)
    assert "6 values of 'x' are not numbers" in note and "'abc'" in note and "'70,2 cm'" in note
    assert stats["x"]["missing"] == 6
    assert not any("are not numbers" in t for t in notes if "'x'" not in t)


def test_plain_numbers_with_a_few_words_count_them_as_missing():
    df = pd.DataFrame({"p": ["75.3", "78.9", "81.25"] * 66 + ["abc", "abc"]})
    out, kinds, notes, stats = _import(df, ",")
    assert kinds["p"] == ("numeric", None) and out["p"].dtype == np.float64
    assert stats["p"]["missing"] == 2  # was: missing 0, no note
    assert any("2 values of 'p' are not numbers (e.g. 'abc') and are missing" in t for t in notes)


# -- prediction: values given but not readable -------------------------------------------------------------------

def test_rest_refuses_a_text_the_columns_number_format_does_not_read():
    cols = [{"name": "t", "kind": "numeric", "number_format": {"decimal": ",", "unit": "mm"}}]
    for ok in ("70,2 mm", "70,2", "1.486,7", "70.2", "", 70.2):
        check_records([{"t": ok}], cols)
    for bad in ("abc", "70,2 cm"):
        with pytest.raises(InvalidInput) as err:
            check_records([{"t": bad}], cols)
        assert "field 't' must be a number" in err.value.message and repr(bad) in err.value.message


def test_predict_notes_unreadable_numbers_dates_and_yes_no_words():
    import warnings

    from modelfab.modalities.tabular import unreadable_values

    cols = [{"name": "x", "kind": "numeric", "number_format": {"decimal": ",", "unit": ""}},
            {"name": "when", "kind": "datetime"}, {"name": "ok", "kind": "boolean"}]
    df = pd.DataFrame({"x": ["70,2", "abc", None], "ok": ["ja", "vielleicht", "nein"],
                       "when": ["29.03.2026", "n/a", "2026-03-29 09:23:30 CEST"]})
    found = unreadable_values(df, cols)
    assert found == {"x": (1, ["abc"]), "when": (2, ["n/a", "2026-03-29 09:23:30 CEST"]), "ok": (1, ["vielleicht"])}
    assert unreadable_values(pd.DataFrame({"when": ["1743235410"]}), cols[1:2])["when"][0] == 1  # epoch as text
    pre = TabularPreprocessor(cols)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Series.dt.dayofweek warned at every prediction
        x = pre.transform(df)
    assert x[0, 0] == pytest.approx(70.2) and x[0, 4] == 6  # 2026-03-29 is a Sunday (Monday = 0)
    assert x[:, -1].tolist()[0] == 1.0 and np.isnan(x[1, -1]) and x[2, -1] == 0.0  # ja / vielleicht / nein


@pytest.mark.parametrize("yes, no", [("ja", "nein"), ("oui", "non"), ("sí", "no"), ("si", "no")])
def test_yes_no_words_of_german_french_and_spanish_are_boolean(yes, no):
    assert infer_kind(pd.Series([yes, no, yes.capitalize(), no.upper()] * 10), "ok") == "boolean"


def test_a_missing_field_names_the_look_alike_the_record_has():
    """REST field '故障描述 ' (a trailing space) was refused as "'故障描述' is missing" with no word on the other."""
    cols = [{"name": "故障描述", "kind": "text"}, {"name": "hours", "kind": "numeric"}]
    with pytest.raises(InvalidInput) as ei:
        check_records([{"故障描述 ": "漏油", "Hours": 3}], cols)
    msg = ei.value.message
    assert "field '故障描述' is missing (the record has '故障描述 ': rename it)" in msg
    assert "field 'hours' is missing (the record has 'Hours': rename it)" in msg
    with pytest.raises(InvalidInput) as ei:
        check_records([{"故障描述": "漏油"}], cols)
    assert ei.value.message == "record 0: field 'hours' is missing."

"""Reading cell values of tables the way plants write them: datetimes of several formats and time zones in one
column, numbers with a decimal comma or thousands separators, numbers with a unit (``12.039 mm``, ``40 %``).

The same functions read the imported table and, at prediction, a new one: a column's number format is decided
once, at import (:func:`detect_number_format`), kept in the schema and the model's preprocessor, and every later
value is read by that rule (:func:`to_numbers`), never guessed again from a new file.
"""

from __future__ import annotations

import math
import re
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

# dd.mm.yyyy is day first wherever dots separate a date (de, fr, ru, ...); dateutil alone reads 03.04.2026 as March 4
_DOTTED_DMY = re.compile(r"^\s*\d{1,2}\.\d{1,2}\.\d{2,4}(?:\D|$)")


def parse_datetimes(s: pd.Series) -> pd.Series:
    """Datetimes of ``s`` as naive UTC: aware values converted to UTC, naive ones taken as UTC (so a column mixing
    ``2026-03-29 09:23:30``, ``29.03.2026 09:23`` and ``2026-03-29T09:23:30Z`` is one column of times, not an
    error); ``dd.mm.yyyy`` is read day first; what is not a datetime is NaT."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pd.api.types.is_datetime64_any_dtype(s):
            d = s
        else:
            text = s.astype(str).where(s.notna())
            d = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
            dotted = text.str.match(_DOTTED_DMY).fillna(False).astype(bool)
            if dotted.any():
                d = d.copy()
                d[dotted] = pd.to_datetime(text[dotted], errors="coerce", format="mixed", utc=True, dayfirst=True)
    if getattr(d.dt, "tz", None) is not None:
        d = d.dt.tz_convert("UTC").dt.tz_localize(None)
    return d


# -- numbers written as text ----------------------------------------------------------------------------------

_GROUP_SPACES = " \u00a0\u202f\u2009'"  # space, no-break space, narrow no-break space, thin space, Swiss apostrophe
_UNIT = r"%|‰|[°µ]?[^\W\d_][^\d]{0,15}?"  # '%', or a word starting with a letter: mm, bar, °C, kg/h, N·m, 毫米
DECIMALS = (".", ",")


@lru_cache(maxsize=4)
def _pattern(decimal: str) -> re.Pattern:
    group = re.escape(("." if decimal == "," else ",") + _GROUP_SPACES)
    frac = r"(?:,\d+)?" if decimal == "," else r"(?:\.\d+)?(?:[eE][+-]?\d+)?"
    number = rf"[+\-\u2212]?(?:\d{{1,3}}(?P<g>[{group}])\d{{3}}(?:(?P=g)\d{{3}})*|\d+){frac}"
    return re.compile(rf"^\s*(?P<num>{number})\s*(?P<unit>{_UNIT})?\s*$")


def _clean(num: pd.Series, decimal: str) -> pd.Series:
    """Matched number texts -> floats (group separators dropped, the decimal mark a dot)."""
    other = "." if decimal == "," else ","
    num = num.str.replace(f"[{re.escape(other + _GROUP_SPACES)}]", "", regex=True).str.replace("\u2212", "-")
    if decimal == ",":
        num = num.str.replace(",", ".", regex=False)
    return pd.to_numeric(num, errors="coerce")


@lru_cache(maxsize=4)
def _other_pattern(decimal: str) -> re.Pattern:
    """A number written with the other decimal mark that cannot be a thousands group: one mark, not followed by
    exactly three digits (``70.2``, ``1287.0`` in a decimal-comma column; ``70,2`` in a decimal-point one)."""
    other = re.escape("." if decimal == "," else ",")
    number = rf"[+\-\u2212]?\d+{other}(?:\d{{1,2}}|\d{{4,}})"
    return re.compile(rf"^\s*(?P<num>{number})\s*(?P<unit>{_UNIT})?\s*$")


def _read(text: pd.Series, decimal: str, unit: str | None,
          other: bool = False) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(value, matched, unit written) of each text under a decimal mark; ``unit`` None: any unit is taken.
    ``other``: also read a number that can only be written with the other decimal mark (:func:`_other_pattern`)."""
    ex = text.str.extract(_pattern(decimal).pattern)
    written = ex["unit"].fillna("").str.strip()
    ok = ex["num"].notna()
    if unit is not None:
        ok &= (written == unit) | (written == "")  # a bare number is taken as in the column's unit
    values = _clean(ex["num"].where(ok).fillna(""), decimal).where(ok)
    if other and (~ok).any():
        rest = text[~ok].str.extract(_other_pattern(decimal).pattern)
        unit_ok = rest["unit"].fillna("").str.strip()
        took = rest["num"].notna() & (((unit_ok == unit) | (unit_ok == "")) if unit is not None else True)
        if took.any():
            mark = "." if decimal == "," else ","
            nums = rest["num"][took].str.replace(mark, ".", regex=False).str.replace("\u2212", "-")
            values = values.astype(float)
            values[nums.index] = pd.to_numeric(nums, errors="coerce")
            ok = ok.copy()
            ok[nums.index] = True
            written = written.copy()
            written[nums.index] = unit_ok[took]
    return values.astype(float), ok, written


NUMBER_SHARE = 0.9  # a column is numbers when at least this share of its values read as numbers of one format


def number_share(values: pd.Series) -> float:
    """The share of the texts in ``values`` that read as numbers of either decimal mark (any unit): how
    :func:`~modelfab.modalities.tabular.infer_kind` tells ``1,509.5`` (a number) from a date before trying dates."""
    text = values.dropna().astype(str)
    if text.empty:
        return 0.0
    return float(max(_read(text, d, None, other=True)[1].mean() for d in DECIMALS))


def detect_number_format(values: pd.Series, delimiter: str | None = None) -> dict | None:
    """The number format of a column of texts, or None when they are not numbers that need one.

    A format (``{"decimal": "," | ".", "unit": "mm" | "%" | ""}``) is returned when at least 90 % (NUMBER_SHARE)
    of the values are numbers written with that decimal mark (and '.', ',', space or narrow-space thousands
    separators) followed by one and the same unit or none, and something needs reading (a decimal comma, thousands
    separators, a unit, or a value written with the other decimal mark). A value that can only be written with the
    other mark (``70.2`` or ``1287.0`` in a decimal-comma column: one '.', not followed by exactly three digits)
    reads as that number; the values that do not read at all are missing (the import note names them).
    The decimal mark is decided from the evidence: ``70,2``, ``31,11`` or ``1.486,7`` say comma, ``1,486.7`` says
    dot; when every value reads either way (``1,234``), a ';'-separated file is taken to write a decimal comma and
    any other a comma between thousands."""
    text = values.dropna().astype(str)
    if text.empty:
        return None
    if len(text) > 500:
        sample = text.sample(500, random_state=0)
        if max(_read(sample, d, None, other=True)[1].mean() for d in DECIMALS) < 0.5:
            return None  # a quick no for the categorical columns of a large table
    read = {d: _read(text, d, None) for d in DECIMALS}
    ok = {d: r[1] for d, r in read.items()}
    only = {d: int((ok[d] & ~ok[other]).sum()) for d, other in zip(DECIMALS, DECIMALS[::-1])}
    if only[","] != only["."]:
        decimal = "," if only[","] > only["."] else "."
    else:
        decimal = "," if delimiter == ";" and text.str.contains(",", regex=False).any() else "."
    _, matched, written = _read(text, decimal, None, other=True)
    units = written[matched & (written != "")].value_counts()
    bare = int((matched & (written == "")).sum())
    # the unit most values write; a few values with a unit among bare numbers ('70,2 cm') are not the column's
    unit = str(units.index[0]) if len(units) and int(units.iloc[0]) >= bare else ""
    _, good, _ = _read(text, decimal, unit, other=True)
    strict = _read(text, decimal, unit)[1]
    blank = text.str.strip() == unit if unit else pd.Series(False, index=text.index)  # ' mm': a missing value
    if good.sum() < NUMBER_SHARE * (~blank).sum() or not strict.any():
        return None
    grouped = text[good].str.contains(f"\\d[{re.escape(',.' + _GROUP_SPACES)}]\\d{{3}}(?:\\D|$)").any()
    if decimal == "." and not unit and not grouped and not (good & ~strict).any():
        return None  # plain numbers: read as numbers without a format
    return {"decimal": decimal, "unit": unit}


def to_numbers(s: pd.Series, fmt: dict | None) -> pd.Series:
    """Floats of a numeric column: numbers as they are; texts by the column's number format (``fmt``, see
    :func:`detect_number_format`; None: plain numbers). A text that is not a number of the format (another unit,
    no number) is NaN; one that can only be written with the other decimal mark (``70.2`` in a decimal-comma
    column) is that number."""
    if not fmt or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return pd.to_numeric(s, errors="coerce").astype(float)
    is_text = s.map(lambda v: isinstance(v, str)).astype(bool)
    out = pd.to_numeric(s.where(~is_text), errors="coerce").astype(float)
    if is_text.any():
        out[is_text] = _read(s[is_text].astype(str), fmt.get("decimal", "."), fmt.get("unit", "") or "",
                             other=True)[0]
    return out


def unreadable(raw: pd.Series, values: pd.Series) -> pd.Series:
    """Where a value was given (not missing, not blank) but read as missing."""
    given = raw.notna() & ~raw.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return given & pd.Series(values, index=raw.index).isna()


def unreadable_note(source: str, name: str, bad: pd.Series, raw: pd.Series, what: str = "numbers") -> str:
    """``5 values of 'x' are not numbers (e.g. 'abc', '70,2 cm') and are missing``: the values ``bad`` marks."""
    n = int(bad.sum())
    shown = ", ".join(repr(str(v)[:30]) for v in raw[bad].astype(str).unique()[:3])
    return (f"{source}: {n:,} value{'s' if n != 1 else ''} of {name!r} {'are' if n != 1 else 'is'} not {what} "
            f"(e.g. {shown}) and {'are' if n != 1 else 'is'} missing; fix them in the file and import it again "
            "to keep them.")


def to_number(v, fmt: dict | None) -> float:
    """One value as :func:`to_numbers` reads it (the serving fast path)."""
    if v is None:
        return math.nan
    if isinstance(v, str):
        if not fmt:
            try:
                return float(v)
            except ValueError:
                return math.nan
        return float(to_numbers(pd.Series([v], dtype=object), fmt).iloc[0])
    return float(v)


def format_label(name: str, fmt: dict | None) -> str:
    """``diameter (mm)``: the column with its unit, as notes name it."""
    return f"{name} ({fmt['unit']})" if fmt and fmt.get("unit") else name


def number_format_note(source: str, name: str, fmt: dict, raw: pd.Series, values: pd.Series) -> str:
    """What the import did to a column it read with a number format: an example, and the values it could not read."""
    shown = raw.notna() & values.notna()
    example = f" ({str(raw[shown].iloc[0]).strip()!r} = {values[shown].iloc[0]:g})" if shown.any() else ""
    how = []
    if fmt.get("decimal") == ",":
        how.append("a decimal comma")
    if fmt.get("unit"):
        how.append(f"the unit {fmt['unit']!r}")
    what = " and ".join(how) or "thousands separators"
    lost = unreadable(raw, values)
    missing = " " + unreadable_note(source, name, lost, raw).split(": ", 1)[1] if lost.any() else ""
    return (f"{source}: column {name!r} holds numbers written with {what}{example}: read as numbers "
            f"({format_label(name, fmt)}); new data for a model is read the same way, and a value in another unit "
            f"or without a number is read as missing.{missing}")


def apply_number_formats(df: pd.DataFrame, schema: dict, source: str) -> list[str]:
    """Convert (in ``df``) every numeric column of ``schema`` held as texts to floats: by its number format, or as
    plain numbers ('abc' among '70.2', '71.5': a column of numbers with a few that are not); the notes say what was
    read and count the values that are not numbers (they are missing). A column whose kind is no longer numeric (a
    person chose another) loses its format."""
    notes = []
    for col in schema["columns"]:
        fmt = col.get("number_format")
        if col["kind"] != "numeric":
            col.pop("number_format", None)
            continue
        raw = df[col["name"]]
        if not fmt and (pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw)):
            continue
        values = to_numbers(raw, fmt)
        df[col["name"]] = values.to_numpy(dtype=np.float64)
        col["dtype"] = "float64"
        if fmt:
            notes.append(number_format_note(source, col["name"], fmt, raw, values))
        elif unreadable(raw, values).any():
            notes.append(unreadable_note(source, col["name"], unreadable(raw, values), raw))
    return notes


# -- categories written several ways -------------------------------------------------------------------------

def spelling_key(value) -> str:
    """What is left of a category or class name without case, spaces, dashes, underscores and dots: two values with
    the same key are one name written several ways ('L1', 'l1', 'L1 ', 'L-1')."""
    return re.sub(r"[\s\-_.]+", "", str(value).casefold())


def spelling_notes(df: pd.DataFrame, schema: dict, limit: int = 5) -> list[str]:
    """Notes on categorical columns whose values differ only in case, spaces, dashes or underscores ('L1', 'l1',
    'L1 ', 'L-1'): the model treats each spelling as its own category, which is rarely what the plant meant."""
    notes = []
    for col in schema["columns"]:
        if col["kind"] != "categorical" or col["name"] not in df.columns:
            continue
        values = pd.Series(df[col["name"]].dropna().astype(str).unique())
        if len(values) < 2 or len(values) > 1000:
            continue
        key = values.map(spelling_key)
        groups = [sorted(g.tolist()) for _, g in values.groupby(key) if len(g) > 1]
        if groups:
            shown = "; ".join(" / ".join(repr(v) for v in g[:4]) for g in groups[:3])
            more = f" and {len(groups) - 3} more" if len(groups) > 3 else ""
            notes.append(f"Column {col['name']!r} has values that differ only in case, spaces or dashes ({shown}"
                         f"{more}): each spelling is a category of its own. If they mean the same, clean the "
                         "column and import it again.")
        if len(notes) >= limit:
            break
    return notes

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


def _read(text: pd.Series, decimal: str, unit: str | None) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(value, matched, unit written) of each text under a decimal mark; ``unit`` None: any unit is taken."""
    ex = text.str.extract(_pattern(decimal).pattern)
    written = ex["unit"].fillna("").str.strip()
    ok = ex["num"].notna()
    if unit is not None:
        ok &= (written == unit) | (written == "")  # a bare number is taken as in the column's unit
    values = _clean(ex["num"].where(ok).fillna(""), decimal).where(ok)
    return values.astype(float), ok, written


def detect_number_format(values: pd.Series, delimiter: str | None = None) -> dict | None:
    """The number format of a column of texts, or None when they are not numbers that need one.

    A format (``{"decimal": "," | ".", "unit": "mm" | "%" | ""}``) is returned when at least 98 % of the values are
    numbers written with that decimal mark (and '.', ',', space or narrow-space thousands separators) followed by
    one and the same unit or none, and something needs reading (a decimal comma, thousands separators or a unit).
    The decimal mark is decided from the evidence: ``70,2``, ``31,11`` or ``1.486,7`` say comma, ``1,486.7`` says
    dot; when every value reads either way (``1,234``), a ';'-separated file is taken to write a decimal comma and
    any other a comma between thousands."""
    text = values.dropna().astype(str)
    if text.empty:
        return None
    if len(text) > 500 and _read(text.sample(500, random_state=0), ".", None)[1].mean() < 0.5 \
            and _read(text.sample(500, random_state=0), ",", None)[1].mean() < 0.5:
        return None  # a quick no for the categorical columns of a large table
    read = {d: _read(text, d, None) for d in DECIMALS}
    ok = {d: r[1] for d, r in read.items()}
    only = {d: int((ok[d] & ~ok[other]).sum()) for d, other in zip(DECIMALS, DECIMALS[::-1])}
    if only[","] != only["."]:
        decimal = "," if only[","] > only["."] else "."
    else:
        decimal = "," if delimiter == ";" and text.str.contains(",", regex=False).any() else "."
    _, matched, written = read[decimal]
    units = written[matched & (written != "")].value_counts()
    unit = str(units.index[0]) if len(units) else ""
    _, good, _ = _read(text, decimal, unit)
    blank = text.str.strip() == unit if unit else pd.Series(False, index=text.index)  # ' mm': a missing value
    if good.sum() < 0.98 * (~blank).sum() or not good.any():
        return None
    grouped = text[good].str.contains(f"\\d[{re.escape(',.' + _GROUP_SPACES)}]\\d{{3}}(?:\\D|$)").any()
    if decimal == "." and not unit and not grouped:
        return None  # plain numbers: read as numbers without a format
    return {"decimal": decimal, "unit": unit}


def to_numbers(s: pd.Series, fmt: dict | None) -> pd.Series:
    """Floats of a numeric column: numbers as they are; texts by the column's number format (``fmt``, see
    :func:`detect_number_format`; None: plain numbers). A text that is not a number of the format (another unit,
    no number) is NaN."""
    if not fmt or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return pd.to_numeric(s, errors="coerce").astype(float)
    is_text = s.map(lambda v: isinstance(v, str)).astype(bool)
    out = pd.to_numeric(s.where(~is_text), errors="coerce").astype(float)
    if is_text.any():
        out[is_text] = _read(s[is_text].astype(str), fmt.get("decimal", "."), fmt.get("unit", "") or "")[0]
    return out


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
    lost = raw.notna() & values.isna()
    missing = ""
    if lost.any():
        bad = ", ".join(repr(str(v)[:30]) for v in raw[lost].astype(str).unique()[:3])
        missing = (f" {int(lost.sum()):,} value(s) that are not such numbers were read as missing (e.g. {bad}); "
                   "fix them in the file and import it again to keep them.")
    return (f"{source}: column {name!r} holds numbers written with {what}{example}: read as numbers "
            f"({format_label(name, fmt)}); new data for a model is read the same way, and a value in another unit "
            f"or without a number is read as missing.{missing}")


def apply_number_formats(df: pd.DataFrame, schema: dict, source: str) -> list[str]:
    """Convert (in ``df``) every numeric column of ``schema`` that has a number format to floats; the notes say
    what was read. A column whose kind is no longer numeric (a person chose another) loses its format."""
    notes = []
    for col in schema["columns"]:
        fmt = col.get("number_format")
        if not fmt:
            continue
        if col["kind"] != "numeric":
            col.pop("number_format")
            continue
        raw = df[col["name"]]
        values = to_numbers(raw, fmt)
        df[col["name"]] = values.to_numpy(dtype=np.float64)
        col["dtype"] = "float64"
        notes.append(number_format_note(source, col["name"], fmt, raw, values))
    return notes


# -- categories written several ways -------------------------------------------------------------------------

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
        key = values.str.lower().str.replace(r"[\s\-_.]+", "", regex=True)
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

"""Tabular modality: column kinds, statistics, and the fitted preprocessor.

The preprocessor's state is plain JSON, stored in the model package, so
a model loads without re-deriving anything and without pickle.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .tabular_values import NUMBER_SHARE, detect_number_format, number_share, parse_datetimes, to_number, to_numbers

KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "id", "empty")
# yes/no words of the plants modelfab serves (en, zh, de, fr, es); docs/onnx.md lists the same (a test keeps them so)
TRUE_WORDS = {"true", "yes", "y", "t", "1", "on", "是", "真", "ok", "pass", "ja", "oui", "sí", "si"}
FALSE_WORDS = {"false", "no", "n", "f", "0", "off", "否", "假", "ng", "fail", "nein", "non"}
MAX_CATEGORIES = 256
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|serial|sn|key|编号|序号)($|[_\s-])|id$", re.IGNORECASE)
_DATEISH = re.compile(r"\d{1,4}[-/.:年]\d{1,2}")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def _is_bool_like(values: pd.Series) -> bool:
    """Every value a true or a false word (TRUE_WORDS, FALSE_WORDS; of any languages mixed: Y/N/是/否)."""
    words = set(values.astype(str).str.strip().str.lower().unique())
    return 0 < len(words) and words <= (TRUE_WORDS | FALSE_WORDS) and not (words <= {"0", "1"} and len(words) == 1)


def infer_kind(s: pd.Series, name: str) -> str:
    nonnull = s.dropna()
    n = len(nonnull)
    if n == 0:
        return "empty"
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    if pd.api.types.is_numeric_dtype(s):
        nunique = nonnull.nunique()
        if nunique <= 2 and set(np.unique(nonnull.to_numpy())) <= {0, 1}:
            return "boolean"
        if (pd.api.types.is_integer_dtype(s) and nunique == len(s) and len(s) >= 20
                and (_ID_NAME.search(name) or nonnull.is_monotonic_increasing)):
            return "id"
        return "numeric"
    values = nonnull.astype(str)
    if _is_bool_like(values):
        return "boolean"
    sample = values.sample(min(n, 500), random_state=0) if n > 500 else values
    # numbers written as text first: '1,509.5' holds '509.5', which dateutil reads as the year 509
    numberish = number_share(sample) >= NUMBER_SHARE
    if not numberish and sample.str.contains(_DATEISH).mean() > 0.9:
        if parse_datetimes(sample).notna().mean() >= 0.95:
            return "datetime"
    numeric = pd.to_numeric(sample, errors="coerce")
    if numeric.notna().mean() >= NUMBER_SHARE:
        return "numeric"  # plain numbers, a few values that are not (the import counts them as missing)
    nunique = values.nunique()
    ratio = nunique / n
    # A CJK character carries about as much as two Latin letters, and Chinese has no spaces
    # between words: count it as half a word, so Chinese reviews are text, not ids.
    cjk = sample.str.count(_CJK)
    avg_len = float((sample.str.len() + cjk).mean())
    words = float((sample.str.split().str.len() + cjk / 2).mean())
    # short tickets written from a few phrases repeat (95 different of 240 rows): several words each and many
    # different values is still text, not 95 categories a new ticket would never match
    if avg_len > 40 or (ratio > 0.5 and words >= 4) or (nunique >= 30 and ratio > 0.25 and words >= 5):
        return "text"
    if ratio > 0.95 and n >= 20 and (words <= 1.0) and (_ID_NAME.search(name) or nunique > 50):
        return "id"
    return "categorical"


def _json_num(x: Any) -> Any:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    return None if math.isnan(f) or math.isinf(f) else f


def infer_schema(df: pd.DataFrame, delimiter: str | None = None) -> dict:
    """Each column's kind. A column of texts that are numbers with a decimal comma, thousands separators or a unit
    is numeric with a ``number_format`` (tabular_values.detect_number_format; ``delimiter``, the CSV's, decides
    a comma that reads either way; default: the one read_table kept in ``df.attrs``); the import converts it
    (tabular_values.apply_number_formats) and the model reads new values by the same format."""
    delimiter = delimiter if delimiter is not None else df.attrs.get("delimiter")
    cols = []
    for name in df.columns:
        s = df[name]
        col = {"name": name, "kind": infer_kind(s, name), "dtype": str(s.dtype)}
        if col["kind"] in ("categorical", "text", "id", "numeric") and not pd.api.types.is_numeric_dtype(s):
            fmt = detect_number_format(s, delimiter)
            if fmt is not None:
                col.update(kind="numeric", number_format=fmt)
        cols.append(col)
    return {"columns": cols}


def column_stats(df: pd.DataFrame, schema: dict, max_classes: int = 30) -> dict:
    stats: dict[str, Any] = {}
    for col in schema["columns"]:
        s = df[col["name"]]
        st: dict[str, Any] = {"missing": int(s.isna().sum()), "unique": int(s.nunique(dropna=True))}
        if col["kind"] == "numeric":
            num = to_numbers(s, col.get("number_format"))
            st.update(min=_json_num(num.min()), max=_json_num(num.max()), mean=_json_num(num.mean()),
                      std=_json_num(num.std()))
        if col["kind"] in ("categorical", "boolean") or (col["kind"] == "numeric" and st["unique"] <= 10):
            if st["unique"] <= max_classes:
                vc = s.astype(str).where(s.notna()).value_counts(dropna=True)
                st["counts"] = {str(k): int(v) for k, v in vc.items()}
        stats[col["name"]] = st
    return stats


def _to_bool(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
    low = s.astype(str).str.strip().str.lower()
    out = np.full(len(s), np.nan)
    out[low.isin(TRUE_WORDS).to_numpy()] = 1.0
    out[low.isin(FALSE_WORDS).to_numpy()] = 0.0
    out[s.isna().to_numpy()] = np.nan
    return out


def _to_datetime(s: pd.Series) -> pd.Series:
    """Naive UTC datetimes (one function for training, prediction and the ONNX check: tabular_values)."""
    return parse_datetimes(s)


class TabularPreprocessor:
    """Turns a raw frame into a float matrix. State is JSON (``to_dict``)."""

    def __init__(self, columns: list[dict] | None = None, text_models: dict | None = None) -> None:
        self.columns = columns or []
        # text column -> fitted TextColumnModel (see modalities/text): its scores become features
        self.text_models = text_models or {}

    @property
    def input_columns(self) -> list[dict]:
        return [c for c in self.columns if c["kind"] not in ("id", "empty")]

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for c in self.input_columns:
            if c["kind"] == "datetime":
                names += [f"{c['name']}.{p}" for p in ("year", "month", "day", "dayofweek", "hour", "epoch_days")]
            elif c["kind"] == "text":
                names += [f"{c['name']}.length", f"{c['name']}.words"]
                if c["name"] in self.text_models:
                    names += self.text_models[c["name"]].output_names
            else:
                names.append(c["name"])
        return names

    def fit(self, df: pd.DataFrame, schema: dict, exclude: tuple[str, ...] = ()) -> "TabularPreprocessor":
        cols = []
        for col in schema["columns"]:
            if col["name"] in exclude:
                continue
            entry = {"name": col["name"], "kind": col["kind"]}
            if col["kind"] == "numeric" and col.get("number_format"):  # new texts are read as the import read them
                entry["number_format"] = dict(col["number_format"])
            if col["kind"] == "categorical":
                vc = df[col["name"]].dropna().astype(str).value_counts()
                entry["categories"] = [str(v) for v in vc.index[:MAX_CATEGORIES]]
            cols.append(entry)
        self.columns = cols
        return self

    def transform(self, df: pd.DataFrame, text_scores: dict[str, np.ndarray] | None = None,
                  no_evidence: list | None = None) -> np.ndarray:
        """Float matrix of ``df``. ``text_scores`` (column -> scores) replaces a text model's own scores:
        training passes out-of-fold scores for its rows."""
        if not isinstance(df, pd.DataFrame):
            got = "None" if df is None else f"a {type(df).__name__}"
            raise InvalidInput(f"Expected a pandas DataFrame of input rows; got {got}.",
                               hint="model.predict also takes a list of records (dicts) or one record (a dict).")
        missing = [c["name"] for c in self.input_columns if c["name"] not in df.columns]
        if missing:
            message, hint = _missing_columns_message(missing, [str(c) for c in df.columns])
            raise InvalidInput(message, hint=hint)
        parts: list[np.ndarray] = []
        n = len(df)
        for c in self.input_columns:
            s = df[c["name"]]
            kind = c["kind"]
            if kind == "numeric":
                parts.append(to_numbers(s, c.get("number_format")).to_numpy(dtype=np.float64)[:, None])
            elif kind == "boolean":
                parts.append(_to_bool(s)[:, None])
            elif kind == "categorical":
                mapping = {v: float(i) for i, v in enumerate(c["categories"])}
                codes = s.astype(str).map(mapping).astype(float).to_numpy(copy=True)
                codes[s.isna().to_numpy()] = np.nan
                parts.append(codes[:, None])
            elif kind == "datetime":
                d = _to_datetime(s)
                epoch = (d - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0
                block = np.column_stack([
                    d.dt.year, d.dt.month, d.dt.day, d.dt.day_of_week, d.dt.hour, epoch,  # Monday = 0
                ]).astype(float) if n else np.zeros((0, 6))
                parts.append(block)
            elif kind == "text":
                txt = s.astype(str).where(s.notna(), "")
                parts.append(np.column_stack([txt.str.len().astype(float), txt.str.split().str.len().astype(float)]))
                if text_scores is not None and c["name"] in text_scores:
                    parts.append(np.asarray(text_scores[c["name"]], dtype=np.float64).reshape(n, -1))
                elif c["name"] in self.text_models:  # no_evidence: a bool per row and text column (scores())
                    parts.append(self.text_models[c["name"]].scores(txt.tolist(), no_evidence))
        if not parts:
            raise InvalidInput("The model has no usable input columns (all are ids, empty or the target).")
        return np.hstack(parts).astype(np.float64) if n else np.zeros((0, len(self.feature_names)))

    def transform_record(self, rec: dict) -> np.ndarray | None:
        """Fast path for one validated JSON record (serving): the same row as ``transform`` gives,
        built without pandas. ``None`` when a column kind needs the full path (datetime, text)."""
        row: list[float] = []
        for c in self.input_columns:
            kind, v = c["kind"], rec.get(c["name"])
            if kind == "numeric":
                row.append(to_number(v, c.get("number_format")))
            elif kind == "boolean":
                if v is None:
                    row.append(float("nan"))
                elif isinstance(v, (bool, int, float)):
                    row.append(float(v))
                else:
                    low = str(v).strip().lower()
                    row.append(1.0 if low in TRUE_WORDS else 0.0 if low in FALSE_WORDS else float("nan"))
            elif kind == "categorical":
                if v is None or (isinstance(v, float) and v != v):
                    row.append(float("nan"))
                else:
                    lookups = self.__dict__.setdefault("_lookups", {})
                    lookup = lookups.get(c["name"])
                    if lookup is None:
                        lookup = lookups[c["name"]] = {cat: float(i) for i, cat in enumerate(c["categories"])}
                    row.append(lookup.get(str(v), float("nan")))
            else:
                return None
        return np.asarray([row], dtype=np.float64)

    def to_dict(self) -> dict:
        text = {name: f"text_{i}" for i, name in enumerate(self.text_models)}
        return {"columns": self.columns, "feature_names": self.feature_names, **({"text_models": text} if text else {})}

    def save(self, folder, name: str = "preprocess.json") -> None:
        """Write the JSON state and each text model's vocabulary/weights (JSON + npz) into a package folder."""
        import json

        state = self.to_dict()
        for col, stem in state.get("text_models", {}).items():
            self.text_models[col].save(folder, stem)
        (folder / name).write_text(json.dumps(state, indent=1, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, folder, state: dict) -> "TabularPreprocessor":
        """The preprocessor of a package folder (text models are read from their own files)."""
        pre = cls.from_dict(state)
        stems = state.get("text_models") or {}
        if stems:
            from .text.column import TextColumnModel

            if not isinstance(stems, dict):
                raise InvalidInput("Preprocessor state is malformed: 'text_models' must map columns to file stems.")
            pre.text_models = {str(col): TextColumnModel.load(folder, str(stem)) for col, stem in stems.items()}
        return pre

    @classmethod
    def from_dict(cls, state: dict) -> "TabularPreprocessor":
        cols = state.get("columns")
        if not isinstance(cols, list) or not all(isinstance(c, dict) and c.get("kind") in KINDS for c in cols):
            raise InvalidInput("Preprocessor state is malformed: expected a list of columns with known kinds.")
        return cls(cols)


def validate_records(records: list[dict], columns: list[dict]) -> pd.DataFrame:
    """Strict validation of JSON records (serving): errors name the field. Returns them as a frame."""
    check_records(records, columns)
    return pd.DataFrame.from_records(records)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_datetime_text(v: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(v.strip().replace("Z", "+00:00"))  # the usual case, microseconds
        return True
    except ValueError:
        return bool(parse_datetimes(pd.Series([v])).notna().iloc[0])


def _format_example(fmt: dict) -> str:
    """``e.g. '1.486,7 mm'``: how a number of a column's format is written."""
    num = "1.486,7" if fmt.get("decimal") == "," else "1,486.7"
    return f"e.g. {num + (' ' + fmt['unit'] if fmt.get('unit') else '')!r}"


def unreadable_values(df: pd.DataFrame, columns: list[dict]) -> dict[str, tuple[int, list[str]]]:
    """Column -> (count, up to three examples) of the inputs given but read as missing at prediction: a numeric
    text that is no number (of the column's format: 'abc', another unit), a datetime text that is no date ('n/a',
    '... CEST', epoch seconds as text), a boolean word that is none of TRUE_WORDS / FALSE_WORDS, a category never
    seen in training (when training kept all its categories)."""
    from .tabular_values import unreadable

    found: dict[str, tuple[int, list[str]]] = {}
    for c in columns:
        s = df.get(c["name"]) if isinstance(df, pd.DataFrame) else None
        if c["kind"] == "text" and s is not None:  # no text at all: said too (the answer cannot rest on it)
            empty = s.isna() | s.astype(str).str.strip().eq("")
            if empty.any():
                found[c["name"]] = (int(empty.sum()), [])
            continue
        if s is None or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) \
                or pd.api.types.is_datetime64_any_dtype(s):
            continue
        if c["kind"] == "numeric":
            values = to_numbers(s, c.get("number_format"))
        elif c["kind"] == "datetime":
            values = _to_datetime(s)
        elif c["kind"] == "boolean":
            values = pd.Series(_to_bool(s), index=s.index)
        elif c["kind"] == "categorical" and c.get("categories") and len(c["categories"]) < MAX_CATEGORIES:
            # every category of training was kept: a value not among them was never seen (a new line, a typo)
            as_text = s.astype(str)
            bad = s.notna() & as_text.str.strip().ne("") & ~as_text.isin(set(c["categories"]))
            if bad.any():
                found[c["name"]] = (int(bad.sum()), [str(v)[:40] for v in s[bad].unique()[:3]])
            continue
        else:
            continue
        bad = unreadable(s, values)
        if bad.any():
            found[c["name"]] = (int(bad.sum()), [str(v)[:40] for v in s[bad].unique()[:3]])
    return found



def _similar_name(name: str, given: list) -> str | None:
    """The name of ``given`` that looks like ``name`` ('Description' or 'description ' for 'description', 'downtime
    h' for 'downtime_h', a typo), else None."""
    import difflib

    def key(v) -> str:
        return "".join(ch for ch in str(v).casefold() if ch.isalnum())

    given = [str(g) for g in given]
    same = [g for g in given if key(g) == key(name)] or difflib.get_close_matches(name, given, n=1, cutoff=0.75)
    return same[0] if same else None


def _look_alike(name: str, given: list) -> str:
    """' (the record has 'X': rename it)' when a field of the record looks like ``name``, else ''."""
    same = _similar_name(name, given)
    return f" (the record has {same!r}: rename it)" if same is not None else ""


def _missing_columns_message(missing: list[str], given: list[str]) -> tuple[str, str]:
    """(message, hint) for input columns the model needs and the rows lack: the columns given that look like them
    ('Description' for 'description', 'downtime h' for 'downtime_h') are named."""
    shown = ", ".join(repr(m) for m in missing[:10])
    pairs = []
    for m in missing[:10]:
        same = _similar_name(m, given)
        if same is not None:
            pairs.append(f"{same!r} for {m!r}")
    hint = ("Rename the column(s): the file has " + ", ".join(pairs) + ". " if pairs else "") + \
        "Send every input column of the model, named as at training (see `modelfab models show`)."
    return f"Input is missing {len(missing)} column(s) the model needs: {shown}.", hint


def unreadable_notes(found: dict[str, tuple[int, list[str]]], columns: list[dict]) -> list[str]:
    """The notes of :func:`unreadable_values`: what was given, that it was scored as missing, what to do."""
    kinds = {c["name"]: c["kind"] for c in columns}
    alone = sum(k == "text" for k in kinds.values()) == len(kinds)
    notes = [f"{n:,} row(s) have no text in {col!r}: their answers " + (
        "are only how often each class occurred in training" if alone else "rest on the other columns and are less reliable (the model learnt from rows with text)")
        for col, (n, _) in found.items() if kinds.get(col) == "text"]
    found = {col: v for col, v in found.items() if kinds.get(col) != "text"}
    what = {"numeric": "numbers the model can read", "datetime": "dates/times the model can read (such as "
            "'2026-03-29 09:23:30' or '29.03.2026 09:23')", "boolean": "yes/no words the model knows"}
    return notes + [
        f"{n:,} value(s) of {col!r} were never seen in training (e.g. {', '.join(repr(v) for v in examples)}) and were "
        "scored as missing: their answers rest on the other columns (a new category, or another spelling of a known one?)"
        if kinds.get(col) == "categorical" else
        f"{n:,} value(s) of {col!r} are not {what.get(kinds.get(col), 'readable')}: "
        f"{', '.join(repr(v) for v in examples)}{', ...' if n > len(examples) else ''}; scored as missing: check the column"
        for col, (n, examples) in found.items()]


def check_records(records: list[dict], columns: list[dict]) -> None:
    """Strict validation of JSON records (serving): errors name the field."""
    if not isinstance(records, list) or not records:
        raise InvalidInput("Expected a non-empty list of records (JSON objects).",
                           hint='Send {"records": [{"column": value, ...}, ...]} with at least one record.')
    errors = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InvalidInput(f"Record {i} must be a JSON object, got {type(rec).__name__}.")
        for c in columns:
            if c["kind"] in ("id", "empty"):
                continue
            name = c["name"]
            if name not in rec:
                errors.append(f"record {i}: field {name!r} is missing" + _look_alike(name, list(rec)))
                continue
            v = rec[name]
            if v is None:
                continue
            if c["kind"] == "numeric" and (isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real)) and not (
                    isinstance(v, str) and c.get("number_format")):  # '12.1 mm' for a column read with its unit
                errors.append(f"record {i}: field {name!r} must be a number or null, got {type(v).__name__} {str(v)[:40]!r}")
            elif c["kind"] == "numeric" and isinstance(v, str) and v.strip() and math.isnan(to_number(v, c["number_format"])):
                errors.append(f"record {i}: field {name!r} must be a number written as the column was imported "
                              f"({_format_example(c['number_format'])}), or a JSON number, or null; got {v[:40]!r}")
            elif c["kind"] in ("categorical", "text", "datetime") and (
                    not isinstance(v, (str, numbers.Real)) or (c["kind"] == "text" and isinstance(v, (bool, np.bool_)))):
                errors.append(f"record {i}: field {name!r} must be a string, got {type(v).__name__}")
            elif isinstance(v, str) and not _is_unicode(v):
                errors.append(f"record {i}: field {name!r} holds a broken character (a lone UTF-16 surrogate such "
                              "as \\ud83d, e.g. an emoji cut in half); send valid UTF-8 text")
            elif c["kind"] == "boolean" and not isinstance(v, (bool, np.bool_, numbers.Real, str)):
                errors.append(f"record {i}: field {name!r} must be a boolean, got {type(v).__name__}")
            elif c["kind"] == "datetime" and isinstance(v, str) and v.strip() and not _is_datetime_text(v):
                errors.append(f"record {i}: field {name!r} must be a date/time such as '2026-03-29 09:23:30', "
                              f"got {v[:40]!r}")
        if len(errors) >= 20:
            break
    if errors:
        missing = any("is missing" in e for e in errors)
        raise InvalidInput("; ".join(errors[:20]) + ".", hint=(
            "Send every input column of the model, with null for a value you do not know (GET /v1/models/NAME "
            "lists them; extra fields are ignored)." if missing else
            "Send numbers as JSON numbers and texts and categories as JSON strings; null for a missing value."))

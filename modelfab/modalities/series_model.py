"""Loaded time-series models: score series from files, DataFrames and JSON records.

REST: ``POST /v1/models/{name}/predict`` with ``{"records": [{"values": [1.0, 2.0, ...]}]}`` for
one-channel series, or ``{"records": [{"channels": [[...], [...]]}]}`` for several channels
(an optional ``"id"`` is echoed back). ``POST .../predict-file`` takes a ``.ts``/CSV/Parquet
file of series laid out as at import.
"""

from __future__ import annotations

import numbers
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidInput, TooLarge, UnsupportedFormat
from ..errors import describe_value as _describe
from ..settings import Settings
from .series.report import report_sections  # noqa: F401  (the modality registry finds it here)


CHUNK = 256  # series per transform call (a MultiRocket row is ~50k features)


class SeriesPredictor:
    def __init__(self, folder: Path, manifest: dict, settings: Settings | None = None) -> None:
        from .series.heads import SeriesEnsemble

        self.folder = Path(folder)
        self.manifest = manifest
        self.task = manifest["task"]
        self.labels = manifest.get("labels")
        spec = manifest.get("series") or {}
        self.n_channels = int(spec.get("n_channels", 1))
        self.channel_names = list(spec.get("channel_names") or [])
        self.options = spec.get("options") or {}
        self.lengths = (spec.get("min_length"), spec.get("max_length"))  # of the training series
        self.value_range = spec.get("value_range")  # per channel [1st, 99th percentile] of the training values
        self.settings = settings or Settings.from_env()
        self.threshold = None
        try:
            self.model = SeriesEnsemble.load(self.folder, spec.get("members") or [], self.task, len(self.labels or []))
        except (KeyError, ValueError) as exc:
            from ..errors import IntegrityError

            raise IntegrityError(f"The series model package is inconsistent ({exc}).") from None

    @property
    def input_columns(self) -> list[dict]:
        return [series_input(self.n_channels, self.channel_names)]

    # -- core -------------------------------------------------------------
    def _clean_one(self, s, where: str, fills: list | None = None) -> np.ndarray:
        """The series checked and cleaned (gaps filled); ``fills``: gets what the cleaning filled (a Fill)."""
        from .series.clean import clean_series_detail

        try:
            s = np.asarray(s, dtype=np.float64)
        except (TypeError, ValueError):
            bad = _first_non_number(s)
            got = _describe(s) if bad is None else f"{_describe(bad)} among the values"
            raise InvalidInput(f"{where}: expected numbers (a list of them, or one list per channel); got {got}.",
                               hint="Send numbers, or null/NaN for a gap.") from None
        if s.ndim == 2 and s.shape[0] != self.n_channels and s.shape[1] == self.n_channels:
            raise InvalidInput(f"{where}: an array of shape {s.shape} looks transposed (one row per time step); the "
                               f"model was trained on {self.n_channels} channel(s): expected (channels, length) = "
                               f"({self.n_channels}, {s.shape[0]}); pass array.T.",
                               hint="Send each series as one row per channel, in the order of training.")
        limit = self.settings.max_signal_samples
        if s.size > limit:  # the import's limit, per series: refused before its transform takes minutes
            raise TooLarge(f"{where}: {s.size:,} values ({s.shape[-1]:,} time steps); expected at most {limit:,} per "
                           "series (MODELFAB_MAX_SIGNAL_SAMPLES, as at import): send it in shorter parts or raise "
                           "the limit")
        s, fill = clean_series_detail(s, where)
        if fills is not None:
            fills.append(fill)
        if s.shape[0] != self.n_channels:
            names = f" ({', '.join(map(repr, self.channel_names))})" if self.channel_names else ""
            raise InvalidInput(f"{where} has {s.shape[0]} channel(s); the model was trained on "
                               f"{self.n_channels}{names}.", hint="Send the same channels, in the same order, as at "
                                                                  "training (a column missing from the file?).")
        return s

    def _limit(self, series: list[np.ndarray]) -> list[np.ndarray]:
        total = sum(s.size for s in series)
        if total > self.settings.max_signal_samples:
            raise TooLarge(f"{total:,} values to score; the limit is {self.settings.max_signal_samples:,}.")
        return series

    def check_request(self, series: list) -> None:
        """A request (REST or "Try it") holds at most ``max_series_values_per_request`` values in all: its CPU
        cost follows that number. Refused series (``InvalidInput`` in their place) do not count."""
        limit = self.settings.max_series_values_per_request
        total = sum(int(np.size(s)) for s in series if not isinstance(s, InvalidInput))
        if total > limit:
            raise TooLarge(f"{total:,} values (time steps x channels) in one request; the limit is {limit:,} "
                           "(MODELFAB_MAX_SERIES_VALUES_PER_REQUEST).",
                           hint="Send fewer or shorter series per request, or score a file with `modelfab predict`.")

    def _check(self, series: list[np.ndarray], where: str = "series") -> list[np.ndarray]:
        return self._limit([self._clean_one(s, f"{where} {i}") for i, s in enumerate(series)])

    def predict_raw(self, series: list[np.ndarray]) -> np.ndarray:
        """Probabilities (n, classes) or predictions (n,), in chunks so memory stays bounded."""
        return self._score(self._check(series))

    def _score(self, series: list[np.ndarray]) -> np.ndarray:
        """``predict_raw`` of series already cleaned and checked."""
        if not series:
            raise InvalidInput("No series to score.")
        parts = []
        for start in range(0, len(series), CHUNK):
            chunk = series[start:start + CHUNK]
            off = np.zeros(len(chunk) + 1, np.int64)
            off[1:] = np.cumsum([s.shape[1] for s in chunk])
            parts.append(self.model.predict_raw(np.ascontiguousarray(np.concatenate(chunk, axis=1)), off, chunk))
        return np.concatenate(parts, axis=0)

    def range_warning(self, s: np.ndarray) -> str:
        """Empty, or a warning when a channel's median lies far outside the training values (more than their
        1st..99th percentile span beyond it): a series of other data, or another unit; its answer may be sure
        and wrong."""
        if not self.value_range or len(self.value_range) != s.shape[0]:
            return ""
        said = []
        for c, (lo, hi) in enumerate(self.value_range):
            med = float(np.nanmedian(s[c]))
            span = max(hi - lo, 1e-9)
            if med < lo - span or med > hi + span:
                name = self.channel_names[c] if c < len(self.channel_names) else f"channel {c}"
                said.append(f"{name!r} (median {med:.4g}) is far outside the training values ({lo:.4g}..{hi:.4g})")
        return ("; ".join(said) + ": the answer is unreliable (other data, or another unit?)") if said else ""

    def length_warning(self, length: int) -> str:
        """Empty, or a warning when a series is far shorter or longer than every training series (the model
        has never seen such a series; its answer may be confident and wrong)."""
        lo, hi = self.lengths
        if lo and length < 0.5 * lo:
            return f"{length} time steps; the training series had {lo}..{hi}: far shorter, the answer is unreliable"
        if hi and length > 2 * hi:
            return f"{length} time steps; the training series had {lo}..{hi}: far longer, the answer is unreliable"
        return ""

    def predict_series(self, series: list, ids: list[str] | None = None, *, keep_going: bool = True,
                       where: list[str] | None = None) -> pd.DataFrame:
        """One row per series. ``keep_going`` (default): a series that cannot be scored (too short, empty, wrong
        channels, over the length limit; or an :class:`InvalidInput` in its place, a record refused before it
        became a series) gets its reason in an ``error`` column and no prediction, and the others are scored; none
        scorable: the (first) reason is raised. False: the first bad series fails the batch. ``where``: how each
        series is named in its reason (default ``series 'ID'``)."""
        if not len(series):
            raise InvalidInput("No series to score: the input is empty.",
                               hint="Send at least one series (one row of a DataFrame, or one list of numbers).")
        ids = ids if ids is not None else [str(i) for i in range(len(series))]
        errors = [""] * len(series)
        if keep_going:  # each series cleaned once, the unusable ones set aside with their reason
            good, cleaned, first, fills = [], [], None, []
            for i, one in enumerate(series):
                try:
                    if isinstance(one, InvalidInput):
                        raise one
                    cleaned.append(self._clean_one(one, where[i] if where else f"series {ids[i]!r}", fills))
                    good.append(i)
                except InvalidInput as exc:
                    errors[i] = exc.message.rstrip(".")
                    first = first or exc
            if not good:
                if len(series) == 1:
                    raise first
                shown = "; ".join(errors[:3]) + ("; ..." if len(errors) > 3 else "")
                raise InvalidInput(f"None of the {len(series)} series could be scored: {shown}.", hint=first.hint)
            raw_good = self._score(self._limit(cleaned))
        else:
            good, fills = list(range(len(series))), []
            raw_good = self.predict_raw(series)
        out = pd.DataFrame({"id": ids})
        if self.task == "regression":
            raw = np.full(len(series), np.nan)
            raw[good] = raw_good
            out["prediction"] = raw
        else:
            labels = self.labels or []
            raw = np.full((len(series), len(labels)), np.nan)
            raw[good] = raw_good
            out["prediction"] = [labels[int(np.argmax(r))] if np.isfinite(r).all() else None for r in raw]
            out["confidence"] = raw.max(axis=1)
            for j, lab in enumerate(labels):
                out[f"proba_{lab}"] = raw[:, j]
        clean_of = dict(zip(good, cleaned)) if keep_going else {}
        warn = []
        for i, one in enumerate(series):
            parts = [] if errors[i] else [self.length_warning(np.shape(one)[-1])]
            if not errors[i] and i in clean_of:
                parts.append(self.range_warning(clean_of[i]))
            warn.append("; ".join(p for p in parts if p))
        if any(warn):
            out["warning"] = warn
        filled = [""] * len(series)
        for i, fill in zip(good, fills):
            filled[i] = _fill_note(fill)
        if any(filled):  # gaps (null/NaN) the series came with: said per series, as the import says it per file
            out["note"] = filled
            out.attrs["notes"] = _fill_summary(fills)  # and for the whole answer (Python: attrs, a UserWarning)
        if any(errors):
            out["error"] = errors
        return out

    def predict(self, data) -> pd.DataFrame:
        """One row per series, ``id`` from 0 (a DataFrame: its index). ``data``: a DataFrame laid out as the
        training table (with its id column: long, one row per series and time step, or wide with ids; read as
        ``predict_file`` reads a file, ``id`` from the id column); a wide DataFrame (one row per
        one-channel series); a list of series (each a list or 1-D array of numbers, or a (channels, length) array);
        one list of numbers or a 1-D array (one one-channel series); a 2-D array (one row per series for a
        one-channel model, else one (channels, length) series); a 3-D array (series, channels, length); or the path
        of a file of series (str or Path: ``predict_file``)."""
        if isinstance(data, (str, os.PathLike)):
            return _warn_notes(self.predict_file(Path(data)))
        if isinstance(data, (list, tuple)) and data and all(
                isinstance(v, (int, float, np.number)) and not isinstance(v, bool) or v is None for v in data):
            data = np.asarray([np.nan if v is None else v for v in data], dtype=np.float64)
        if isinstance(data, np.ndarray):
            if data.ndim == 1 or (data.ndim == 2 and self.n_channels != 1):
                data = [data]
            elif data.ndim not in (2, 3):
                raise InvalidInput(f"Expected a 1-D array (one series), a 2-D array (one row per series) or a 3-D "
                                   f"array (series, channels, length); got a {data.ndim}-D array of shape "
                                   f"{data.shape}.")
        if isinstance(data, pd.DataFrame):
            opts = self._reading_options()
            if opts.id_column and opts.id_column in data.columns:  # the model's own layout (long, or wide with ids)
                return _warn_notes(self.predict_frame(data))
            if self.n_channels != 1 and opts.id_column:
                shown = ", ".join(repr(str(c)) for c in list(data.columns)[:8])
                raise InvalidInput(f"This model reads {opts.describe()}; the DataFrame has no column "
                                   f"{opts.id_column!r} (its columns: {shown}).",
                                   hint="Pass a DataFrame in that layout, its path, or a list of (channels, length) "
                                        "arrays.")
            if self.n_channels != 1:
                raise InvalidInput("A DataFrame holds one-channel series (one row each); this model needs "
                                   f"{self.n_channels} channels.", hint="Pass a list of (channels, length) arrays (one "
                                   "row per channel), or the path of a file laid out as the training file.")
            values = data.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
            out = self.predict_series(list(values), [str(i) for i in data.index])
            notes = out.attrs.get("notes")
            out = out.set_index(data.index)
            if notes:
                out.attrs["notes"] = notes
            return _warn_notes(out)
        if not isinstance(data, (list, tuple, np.ndarray)):
            raise InvalidInput(f"A series model scores series: expected a DataFrame (one row per series), a list of "
                               f"series, an array or the path of a file of series; got {_describe(data)}.",
                               hint="For JSON-like records use predictor.predict_records([{'values': [...]}]).")
        return _warn_notes(self.predict_series(list(data)))

    # -- REST -------------------------------------------------------------
    def _record(self, i: int, rec) -> np.ndarray:
        if not isinstance(rec, dict):
            raise InvalidInput(f"record {i}: expected an object like {{\"values\": [..]}} or {{\"channels\": [[..], ..]}}.")
        if "channels" in rec and "values" in rec:
            raise InvalidInput(f"record {i}: has both 'values' and 'channels'; expected one of them.")
        if "channels" in rec:
            chans = rec["channels"]
            if not isinstance(chans, list) or not chans or not all(isinstance(c, list) for c in chans):
                raise InvalidInput(f"record {i}: 'channels' must be a list of lists of numbers.")
            lengths = {len(c) for c in chans}
            if len(chans) != self.n_channels and lengths == {self.n_channels} and len(chans) > self.n_channels:
                raise InvalidInput(f"record {i}: 'channels' holds {len(chans)} lists of {self.n_channels} values: "
                                   f"it looks transposed; expected {self.n_channels} lists (one per channel) of the "
                                   "values over time.", hint="Send [[channel 1 over time], [channel 2 over time], ...].")
            if len(lengths) > 1:
                raise InvalidInput(f"record {i}: channels have different lengths ({sorted(lengths)}); expected equal.")
            raw = chans
        elif "values" in rec:
            raw = [rec["values"]]
            if not isinstance(rec["values"], list):
                raise InvalidInput(f"record {i}: 'values' must be a list of numbers.")
        else:
            raise InvalidInput(f"record {i}: expected a 'values' (one channel) or 'channels' key; "
                               f"got {', '.join(map(repr, list(rec)[:5])) or 'nothing'}.")
        bad = next((v for c in raw for v in c if v is not None and (isinstance(v, (bool, np.bool_))
                                                                   or not isinstance(v, numbers.Real))), None)
        if bad is not None:  # "1.5" and true are not numbers (a client sending strings has a bug worth seeing)
            raise InvalidInput(f"record {i}: series values must be JSON numbers (or null for a gap); got "
                               f"{type(bad).__name__} {str(bad)[:20]!r}.")
        return np.array([[np.nan if v is None else float(v) for v in c] for c in raw], dtype=np.float64)

    def predict_records(self, records: list[dict]) -> list[dict]:
        """One answer per record, in order (``id``: the record's, else its position from 0). A record that cannot
        be scored (not a series, too short, other channels, over the length limit) is refused alone: its answer
        has ``prediction`` null and the reason in ``error``, as ``predict-file`` and ``modelfab predict`` do; when
        no record can be scored, the request is refused (422)."""
        if not isinstance(records, (list, tuple)):
            raise InvalidInput(f"Expected a list of records like {{\"values\": [..]}} or {{\"channels\": [[..], ..]}}; "
                               f"got {_describe(records)}.")
        series = []
        for i, r in enumerate(records):
            try:
                series.append(self._record(i, r))
            except InvalidInput as exc:
                series.append(exc)
        self.check_request(series)
        ids = [str(r["id"]) if isinstance(r, dict) and r.get("id") is not None else str(i)
               for i, r in enumerate(records)]
        pred = self.predict_series(series, ids, where=[f"record {i}" for i in range(len(records))])
        out = []
        for i in range(len(pred)):
            row = pred.iloc[i]
            item: dict = {"id": ids[i], "prediction": _plain(row["prediction"])}
            if row.get("error"):
                if self.task == "classification":
                    item["probabilities"] = None
                item["error"] = row["error"]
                out.append(item)
                continue
            if self.task == "classification":
                item["confidence"] = float(row["confidence"])
                item["probabilities"] = {str(lab): float(row[f"proba_{lab}"]) for lab in self.labels or []}
            if row.get("warning"):
                item["warning"] = row["warning"]
            if row.get("note"):
                item["note"] = row["note"]
            out.append(item)
        return out

    def _reading_options(self):
        from ..series import SeriesOptions

        return SeriesOptions.from_dict(self.options).for_prediction()

    def _read_leniently(self, read):
        """``read()`` (a file's or a DataFrame's series) in lenient reading: a series that cannot be scored is
        refused alone (predict_series); a whole table refused says which layout the model reads."""
        from .series.io import lenient_reading

        try:
            with lenient_reading():
                return read()
        except InvalidInput as exc:
            if type(exc) is InvalidInput and ("(the layout the model" in exc.message or "non-number" in exc.message):
                exc.hint = f"This model reads {self._reading_options().describe()}. Give new series in that layout."
            raise

    def read_file(self, path: Path):
        from ..series import read_file

        return self._read_leniently(lambda: read_file(path, self.settings, self._reading_options(), with_labels=False))

    def predict_file(self, path: Path) -> pd.DataFrame:
        """One row per series of the file; when the file carries labels in its layout (a ``.ts`` file with class
        labels, a UCR table's first column), they are kept in a ``label`` column beside the prediction.
        ``attrs["notes"]``: what reading did to the values (gaps filled, ...), as the import says it."""
        return self._predict_set(self.read_file(path))

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """The series of a DataFrame laid out as the model's training table (its id column, and time and value
        columns for a long table), as :meth:`predict_file` reads a file of that layout."""
        from .series.io import read_frame

        opts = self._reading_options()
        frame = df.drop(columns=[opts.label_column] if opts.label_column in df.columns else []).reset_index(drop=True)
        return self._predict_set(self._read_leniently(
            lambda: read_frame(frame, "the DataFrame", self.settings, **opts.reading())))

    def _predict_set(self, sset) -> pd.DataFrame:
        from .series.mismatch import channel_note, label_note

        out = _with_labels(self.predict_series(sset.series, sset.ids), sset.labels)
        notes = list(sset.notes) + out.attrs.get("notes", [])
        notes += channel_note(sset.format, sset.channel_names, self.channel_names)  # a .ts file for a named table
        if self.task == "classification":
            notes += label_note(sset.labels, self.labels)  # other data than the model knows?
        if notes:
            out.attrs["notes"] = notes
        return out

    def predict_bytes(self, data: bytes, filename: str) -> dict:
        """Score an uploaded file of series (REST ``predict-file``)."""
        from .series.io import SERIES_EXTENSIONS

        suffix = Path(os.path.basename(filename or "")).suffix.lower()
        if suffix not in SERIES_EXTENSIONS:
            raise UnsupportedFormat(f"Upload a file of series ({', '.join(sorted(SERIES_EXTENSIONS))}); got {filename!r}.",
                                    hint="Send a .ts, CSV or Parquet file laid out as at training, or JSON records "
                                         "to /predict.")
        with tempfile.TemporaryDirectory(prefix="modelfab-upload-") as tmp:
            path = Path(tmp) / (re.sub(r"[^\w.\-]", "_", Path(os.path.basename(filename)).stem)[:100] + suffix)
            path.write_bytes(data)
            sset = self.read_file(path)
            self.check_request(sset.series)
            df = self._predict_set(sset)
        answer = {"predictions": [{k: _plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]}
        if df.attrs.get("notes"):  # gaps filled by interpolation, ...
            answer["notes"] = list(df.attrs["notes"])
        return answer




def _fill_note(fill) -> str:
    """What cleaning did to one series' missing values, in words; empty when nothing was missing."""
    parts = []
    if fill.inner:
        parts.append(f"{fill.inner} missing value(s) inside the series filled by linear interpolation")
    if fill.edge:
        parts.append(f"{fill.edge} missing value(s) at its start or end set to the nearest value")
    return "; ".join(parts) + ("; the answer rests partly on filled values" if parts else "")


def _fill_summary(fills) -> list[str]:
    """What cleaning filled in all the series of an answer, as an import says it for a file."""
    from .series.clean import Fill

    total = Fill()
    for fill in fills:
        total.add(fill)
    return total.notes()


def series_input(n_channels: int, channel_names=None) -> dict:
    """What a REST record of this model holds: ``values`` (one channel) or ``channels`` (a list per channel)."""
    n = int(n_channels or 1)
    out = {"name": "values" if n == 1 else "channels", "kind": "series", "channels": n}
    if n > 1 and channel_names:
        out["channel_names"] = [str(c) for c in channel_names]
    return out


def _first_non_number(v, depth: int = 0):
    """The first value of a (nested) list that is not a number, or None."""
    if isinstance(v, (list, tuple, np.ndarray)) and depth < 3:
        for item in v:
            bad = _first_non_number(item, depth + 1)
            if bad is not None:
                return bad
        return None
    try:
        float(v)
    except (TypeError, ValueError):
        return v
    return None


def _plain(v):
    v = v.item() if isinstance(v, np.generic) else v
    return None if isinstance(v, float) and not np.isfinite(v) else v  # JSON has no NaN: a series not scored


def load_series_predictor(folder: Path, manifest: dict) -> SeriesPredictor:
    return SeriesPredictor(folder, manifest)


def batch_predict(ws, model, paths: list[Path], out: Path) -> dict:
    """``modelfab predict MODEL FILE... -o out.csv``: one row per series, written atomically."""
    from ..batch import output_path, write_frame

    predictor = model.predictor
    out = output_path(out)
    frames, notes = [], []
    for p in paths:
        df = predictor.predict_file(Path(p))
        notes += [n if Path(p).name in n else f"{Path(p).name}: {n}" for n in df.attrs.get("notes", [])]
        df.insert(0, "file", Path(p).name)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    write_frame(df, out)
    res = {"model": model.ref, "output": str(out), "rows": len(df), "files": len(paths)}
    if notes:  # what reading did to the values (gaps filled by interpolation, ...): the CLI prints them
        res["notes"] = notes
    for col, key in (("error", "series_with_errors"), ("warning", "series_with_warnings")):
        if col in df:
            hit = df[col].fillna("").astype(str) != ""
            res[key] = int(hit.sum())
            res["first_" + col + "s"] = [f"{i}: {e}" for i, e in zip(df.loc[hit, "id"][:3], df.loc[hit, col][:3])]
    return res


def _warn_notes(out: pd.DataFrame) -> pd.DataFrame:
    """A UserWarning per note of the answer (as table models warn of values scored as missing)."""
    import warnings

    for note in out.attrs.get("notes", []):
        warnings.warn(note, UserWarning, stacklevel=3)
    return out


def _with_labels(out: pd.DataFrame, labels) -> pd.DataFrame:
    """The file's own labels (a .ts file's class labels, a UCR table's first column) in a ``label`` column beside
    the predictions, so that a user can score the model without parsing the file."""
    if labels is not None and any(v is not None for v in labels) and "label" not in out.columns:
        out.insert(1, "label", list(labels))
    return out

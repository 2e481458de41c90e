"""Loaded models: verify the package, then predict. Never unpickles."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .artifacts import verify_package
from .automl.learners import load_learner
from .errors import IntegrityError
from .modalities.tabular import TabularPreprocessor, check_records, unreadable_notes, unreadable_values


def _proba_col(label) -> str:
    return f"proba_{label}"


class TabularPredictor:
    """A tabular model package, loaded: ``predict(df)`` -> DataFrame."""

    def __init__(self, folder: Path, manifest: dict) -> None:
        self.folder = Path(folder)
        self.manifest = manifest
        self.task: str = manifest["task"]
        self.labels: list | None = manifest.get("labels")
        self.threshold: float | None = manifest.get("decision_threshold")
        pre_file = manifest.get("preprocessor", "preprocess.json")
        self.preprocessor = TabularPreprocessor.load(self.folder, json.loads((self.folder / pre_file).read_text("utf-8")))
        spec = manifest.get("learner") or {}
        if spec.get("format") == "text-scores":  # a text column's linear model alone (modalities/text/stage.py)
            from .modalities.text.stage import TextScoresLearner

            self.learner = TextScoresLearner.load(self.folder, spec, self.task, len(self.labels or []))
        else:
            self.learner = load_learner(self.folder, spec, self.task, len(self.labels or []))
        # One record of only numeric/boolean/categorical inputs is predicted in well under a millisecond
        # (transform_record + one tree pass): the server then answers it without a thread hop.
        self.fast_single = all(c["kind"] in ("numeric", "boolean", "categorical") for c in self.input_columns)

    @property
    def input_columns(self) -> list[dict]:
        return self.preprocessor.input_columns

    @property
    def used_columns(self) -> list[dict]:
        """The input columns the answer rests on: all of them, or only the text column whose model was kept alone."""
        if getattr(self.learner, "format", "") == "text-scores":
            return [c for c in self.input_columns if c["kind"] == "text"]
        return self.input_columns

    def _unused_filled(self, df):
        """``df`` with the input columns the answer does not rest on (a text model kept alone: every column but
        its text) added as missing when absent: a file of the text alone is enough."""
        if not isinstance(df, pd.DataFrame):
            return df
        used = {c["name"] for c in self.used_columns}
        absent = [c["name"] for c in self.input_columns if c["name"] not in used and c["name"] not in df.columns]
        return df.assign(**{name: None for name in absent}) if absent else df

    def predict_raw(self, df: pd.DataFrame) -> np.ndarray:
        return self._raw_and_evidence(df)[0]

    def _raw_and_evidence(self, df: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
        """(predict_raw's answer, per text column with a text model a bool per row: no term the model knows)."""
        df = self._unused_filled(df)
        if isinstance(df, pd.DataFrame) and len(df) == 0:  # a header-only file: no rows, no answers (learners refuse 0 rows)
            self.preprocessor.transform(df.head(0))  # the same column checks as for rows
            return np.zeros((0, len(self.labels or [])) if self.task == "classification" else 0, dtype=np.float64), []
        no_evidence: list[np.ndarray] = []  # per text column, from the same TF-IDF rows as its scores
        raw = self.learner.predict_raw(self.preprocessor.transform(df, no_evidence=no_evidence))
        return self._prior_without_evidence(raw, no_evidence), no_evidence

    def _unknown_words(self, df: pd.DataFrame, no_evidence: list[np.ndarray]) -> np.ndarray:
        """Rows whose texts (some given) hold no term the model knows (unseen words, a number): they score as an
        empty text does."""
        cols = [c["name"] for c in self.preprocessor.input_columns
                if c["kind"] == "text" and c["name"] in self.preprocessor.text_models]
        if not cols or len(no_evidence) != len(cols) or not isinstance(df, pd.DataFrame) or not len(df):
            return np.zeros(len(df) if hasattr(df, "__len__") else 0, bool)
        given = np.zeros(len(df), bool)
        for c in cols:
            s = df[c] if c in df.columns else pd.Series([None] * len(df))
            given |= (s.notna() & s.astype(str).str.strip().ne("")).to_numpy()
        return given & np.logical_and.reduce(no_evidence)

    def _prior_without_evidence(self, raw: np.ndarray, no_evidence: list[np.ndarray]) -> np.ndarray:
        """A model whose only inputs are texts answers a row none of whose texts holds a known term with the
        training rows' class shares: the trees on the text scores could be sure of one class for an empty text
        (0.75 on a 150-row set), having never seen a row without evidence."""
        pre = self.preprocessor
        cols = [c for c in pre.input_columns if c["kind"] not in ("id", "empty")]
        if (self.task != "classification" or not cols or not len(raw) or len(no_evidence) != len(cols)
                or not all(c["kind"] == "text" and c["name"] in pre.text_models for c in cols)):
            return raw
        prior = pre.text_models[cols[0]["name"]].prior
        if prior is None or len(prior) != raw.shape[1]:
            return raw  # packages from before the prior was kept
        empty = np.logical_and.reduce(no_evidence)
        if empty.any():
            raw = np.array(raw, dtype=np.float64, copy=True)
            raw[empty] = np.asarray(prior, dtype=np.float64)
        return raw

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """Predictions of the rows of ``df``. Inputs given but not readable ('abc' for a number, 'n/a' for a date,
        a word that is neither yes nor no) are scored as missing: ``attrs["notes"]`` of the answer says which,
        and a UserWarning says so too."""
        out = self._predict(df)
        found = unreadable_values(df, self.used_columns)
        notes = unreadable_notes(found, self.used_columns) if found else []
        unknown = out.attrs.pop("unknown_text", None)
        if unknown:
            notes.append(self.unknown_text_note(*unknown))
        if notes:
            out.attrs["notes"] = notes
            out.attrs["unreadable_values"] = {col: n for col, (n, _) in found.items()}
            for note in notes:
                warnings.warn(note, UserWarning, stacklevel=2)
        return out

    def unknown_text_note(self, n: int, column: str, examples: list[str]) -> str:
        """The note on ``n`` rows whose text holds no word the model knows (``_predict``'s attrs["unknown_text"])."""
        alone = sum(c["kind"] == "text" for c in self.input_columns) == len(self.used_columns)
        shown = ", ".join(repr(v) for v in examples)
        return (f"{n:,} row(s) have text in {column!r} but no word the model knows" + (f" (e.g. {shown})" if shown
                                                                                        else "")
                + ": their answers " + ("are only how often each class occurred in training" if alone else
                                        "rest on the other columns and are less reliable") + ", as for an empty text")

    def _predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """The answer rows; ``attrs["unknown_text"]``: (rows, text column, up to 3 examples) of rows whose text
        holds no word the model knows, when there are any."""
        raw, evidence = self._raw_and_evidence(df)
        out = self._answer_frame(df, raw)
        unknown = self._unknown_words(df, evidence)
        if unknown.any():
            texts = [c["name"] for c in self.input_columns if c["kind"] == "text"]
            col = next((c for c in texts if c in df.columns), texts[0])
            examples = [str(v)[:30] for v in df.loc[unknown, col].head(3)] if col in df.columns else []
            out.attrs["unknown_text"] = (int(unknown.sum()), col, examples)
        return out

    def _answer_frame(self, df: pd.DataFrame, raw: np.ndarray) -> pd.DataFrame:
        if self.task == "regression":
            return pd.DataFrame({"prediction": raw}, index=df.index)
        labels = self.labels or []
        if len(labels) == 2 and self.threshold is not None:
            codes = (raw[:, 1] >= self.threshold).astype(int)
        else:
            codes = raw.argmax(axis=1)
        out = pd.DataFrame({"prediction": [labels[c] for c in codes]}, index=df.index)
        for j, lab in enumerate(labels):
            out[_proba_col(lab)] = raw[:, j]
        out["confidence"] = raw[np.arange(len(codes)), codes]  # the probability of the predicted label
        return out

    def predict_records(self, records: list[dict]) -> list[dict]:
        """JSON records (validated against the input schema) -> one answer each, as ``predict`` gives them.
        Records of numeric/boolean/categorical inputs skip pandas (the serving path; same numbers, see tests)."""
        used = {c["name"] for c in self.used_columns}
        check_records(records, self.used_columns)  # a text model kept alone needs its text only
        if len(used) < len(self.input_columns):
            records = [{**{c["name"]: None for c in self.input_columns if c["name"] not in used},
                        **{k: v for k, v in r.items() if k in used}} for r in records]
        rows = None
        if self.fast_single:
            rows = [self.preprocessor.transform_record(r) for r in records]
        unknown = np.zeros(len(records), bool)
        if rows is not None and all(r is not None for r in rows):
            raw = self.learner.predict_raw(np.vstack(rows))
        else:
            frame = pd.DataFrame.from_records(records)
            raw, evidence = self._raw_and_evidence(frame)
            unknown = self._unknown_words(frame, evidence)
        out = self._outputs(raw)
        texts = [c["name"] for c in self.input_columns if c["kind"] == "text"]
        if texts:  # a text model asked without its text answers from the other columns, or the class shares
            alone = len(texts) == len(self.used_columns)
            for rec, row, unseen in zip(records, out, unknown):
                if all(not str(rec.get(t) if rec.get(t) is not None else "").strip() for t in texts):
                    row["warning"] = (f"no text in {', '.join(map(repr, texts))}: " + (
                        "the answer is only how often each class occurred in training" if alone else
                        "the answer rests on the other fields and is less reliable (the model learnt from rows with text)"))
                elif unseen:  # 'zzzz qqqq', '12345': scored as an empty text is, and said so
                    row["warning"] = (f"no word the model knows in {', '.join(map(repr, texts))}: " + (
                        "the answer is only how often each class occurred in training" if alone else
                        "the answer rests on the other fields and is less reliable"))
        return out

    def _outputs(self, raw) -> list[dict]:
        """The answers of ``predict_raw`` rows: prediction (and probabilities), as ``predict`` decides them."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.task == "regression":
            return [{"prediction": v} for v in raw.reshape(-1).tolist()]
        labels = self.labels or []
        if len(labels) == 2 and self.threshold is not None:
            codes = (raw[:, 1] >= self.threshold).astype(int)
        else:
            codes = raw.argmax(axis=1)
        plain, names = [_plain(lab) for lab in labels], [str(lab) for lab in labels]
        return [{"prediction": plain[c], "confidence": p[c], "probabilities": dict(zip(names, p))}
                for c, p in zip(codes.tolist(), raw.tolist())]


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def load_predictor(folder: Path, manifest: dict | None = None):
    """Verify a package folder and return the predictor for its modality."""
    manifest = manifest or verify_package(folder)
    modality = manifest.get("modality", "tabular")
    if modality == "tabular":
        return TabularPredictor(folder, manifest)
    from .modalities import registry as modality_registry

    loader = modality_registry.predictor_loader(modality)
    if loader is None:
        raise IntegrityError(f"Model package has modality {modality!r}, which this modelfab cannot load.",
                             hint="Upgrade modelfab.")
    return loader(folder, manifest)

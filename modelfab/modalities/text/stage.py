"""The text stage of tabular training, and the learner that passes a text model's scores through.

``fit_text_stage`` fits one model per text column on the training rows, within a
share of the budget, and returns out-of-fold scores to put in the training matrix.
``TextScoresLearner`` is the "linear model alone" candidate: when a table's only
input is one text column, the engine compares it with the tree learners and keeps
whichever validates better.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import IntegrityError
from .column import TextColumnModel, fit_text_column


@dataclass
class TextStage:
    models: dict[str, TextColumnModel]
    oof: dict[str, np.ndarray]  # column -> (n_train, s) out-of-fold scores
    leaderboard: list[dict] = field(default_factory=list)
    best_score: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def fit_text_stage(frame: pd.DataFrame, columns: list[str], y: np.ndarray, *, n_classes: int, labels: list | None,
                   metric: str, seconds: float, seed: int = 0, groups=None, on_candidate=None) -> TextStage:
    stage = TextStage({}, {})
    share = max(1.0, seconds / max(1, len(columns)))
    for col in columns:
        texts = frame[col].astype(str).where(frame[col].notna(), "").tolist()
        model, oof, board, best = fit_text_column(texts, y, column=col, n_classes=n_classes,
                                                  labels=[str(v) for v in labels or []], metric=metric,
                                                  seconds=share, seed=seed, groups=groups,
                                                  on_candidate=on_candidate)
        stage.models[col], stage.oof[col], stage.best_score[col] = model, oof, best
        stage.leaderboard += board
        if not np.isfinite(best):
            stage.notes.append(f"Too few rows to cross-validate the text model of {col!r}: its scores are in-sample.")
    return stage


class TextScoresLearner:
    """Predicts with the text model's own probabilities (or values): columns of the feature matrix."""

    format = "text-scores"
    classes = None

    def __init__(self, columns: list[int], task: str, n_classes: int) -> None:
        self.columns, self.task, self.n_classes = [int(c) for c in columns], task, n_classes
        self.obj = None

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        S = np.asarray(X, dtype=np.float64)[:, self.columns]
        if self.task != "classification":
            return S[:, 0]
        if self.n_classes == 2:
            return np.column_stack([1.0 - S[:, 0], S[:, 0]])
        total = S.sum(axis=1, keepdims=True)
        return S / np.where(total > 0, total, 1.0)

    def save(self, folder: Path, stem: str = "model") -> str:
        name = f"{stem}.text-scores.json"
        (folder / name).write_text(json.dumps({"columns": self.columns}), "utf-8")
        return name

    @classmethod
    def load(cls, folder: Path, spec: dict, task: str, n_classes: int) -> "TextScoresLearner":
        path = folder / str(spec.get("file") or "")
        if path.parent != folder or not path.is_file():
            raise IntegrityError("The text-scores learner file is missing from the package.")
        try:
            cols = json.loads(path.read_text("utf-8"))["columns"]
            return cls([int(c) for c in cols], task, n_classes)
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"The text-scores learner file is malformed ({exc}).") from None


def seconds_per_row(frame: pd.DataFrame, columns: list[str], sample: int = 300) -> float:
    """Measured cost of featurising one row's texts (normalise + analyzers), with a margin for counting."""
    import time

    from .tokens import AnalyzerConfig, char_terms, normalise, word_terms

    part = frame[columns].head(sample)
    if part.empty:
        return 0.0
    t0 = time.monotonic()
    for col in columns:
        texts = [normalise(t) for t in part[col].astype(str).where(part[col].notna(), "")]
        cfg = AnalyzerConfig.for_texts(texts)
        for t in texts:
            word_terms(t, cfg)
            char_terms(t, cfg)
    return 1.3 * (time.monotonic() - t0) / len(part)

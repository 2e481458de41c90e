"""The text parts of a model report: top terms per class and misclassified holdout examples."""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_EXAMPLES = 8
MAX_SHOWN_CHARS = 300


def _short(text) -> str:
    s = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    s = " ".join(s.split())
    if len(s) <= MAX_SHOWN_CHARS:
        return s
    half = (MAX_SHOWN_CHARS - 3) // 2  # its start and its end: a long report's conclusion is often at the end
    return s[:half] + " … " + s[-half:]


def holdout_examples(texts: pd.Series, y: np.ndarray, raw: np.ndarray, task: str, labels: list | None) -> list[dict]:
    """The holdout rows the model got most confidently wrong (classification) or furthest off (regression)."""
    texts = texts.reset_index(drop=True)
    if task == "classification":
        pred = raw.argmax(axis=1)
        conf = raw[np.arange(len(pred)), pred]
        wrong = np.flatnonzero(pred != y)
        order = wrong[np.argsort(-conf[wrong], kind="stable")][:MAX_EXAMPLES]
        return [{"text": _short(texts[i]), "true": str(labels[y[i]]), "predicted": str(labels[pred[i]]),
                 "confidence": round(float(conf[i]), 3)} for i in order]
    err = np.abs(raw - y)
    order = np.argsort(-err, kind="stable")[:MAX_EXAMPLES]
    return [{"text": _short(texts[i]), "true": float(y[i]), "predicted": round(float(raw[i]), 4),
             "error": round(float(err[i]), 4)} for i in order]


def text_sections(model) -> list:
    """Report sections of a table model with text columns (none for other table models)."""
    from ...evaluation.report import ReportSection

    if not model.manifest.get("text"):  # a table model without text models: nothing to add
        return []
    pre = getattr(model.predictor, "preprocessor", None)
    models = getattr(pre, "text_models", None) or {}
    if not models:
        return []
    rows = [r for m in models.values() for r in m.top_terms()]
    sections = [ReportSection(
        "Top terms per class",
        "The words and character sequences (in quotes) that push the text model most towards each class. "
        "They show what the model learned; check that they are real signs of the class and not an artefact "
        "of how the data was collected (a template phrase, a signature, a product code).",
        table=rows)]
    info = model.manifest.get("text") or {}
    examples = info.get("examples") or []
    if examples:
        what = "misclassified with the highest confidence" if model.task == "classification" else "with the largest errors"
        sections.append(ReportSection(
            "Held-out examples " + ("the model got wrong" if model.task == "classification" else "furthest off"),
            f"Texts of the holdout {what} (column {info.get('columns', ['?'])[0]!r}; a text over {MAX_SHOWN_CHARS} "
            "characters shows its start … its end). Wrong labels in the data often show up here.", table=examples))
    return sections

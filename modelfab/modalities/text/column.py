"""One text column's model: TF-IDF blocks + the linear model chosen by cross-validation.

``fit_text_column`` returns the fitted model and its out-of-fold scores for the
training rows (what the tree learners of the tabular engine are trained on, so
they never see scores the linear model made on its own training texts).
"""

from __future__ import annotations

import json
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import IntegrityError
from .linear import LinearState, calibrate_svm, fit_candidate
from .tokens import AnalyzerConfig, normalise
from .vectorizer import TfidfBlocks

# (model, C): tried in this order while the time share lasts
CANDIDATES = [("svm", 0.3), ("lr", 4.0), ("nblr", 4.0), ("nblr", 1.0), ("svm", 0.1), ("lr", 16.0),
              ("nblr", 16.0), ("lr", 64.0)]
REG_CANDIDATES = [("ridge", 1.0), ("ridge", 0.3), ("ridge", 3.0), ("ridge", 0.1)]
_LOWER_IS_BETTER = {"log_loss", "rmse", "mae", "mse", "mape"}


def score(metric: str, y: np.ndarray, out: np.ndarray, n_classes: int) -> float:
    """The engine's metric on out-of-fold outputs (probabilities or values)."""
    from sklearn import metrics as skm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n_classes == 0:
            fn = {"r2": skm.r2_score, "mae": skm.mean_absolute_error, "mse": skm.mean_squared_error,
                  "mape": skm.mean_absolute_percentage_error,
                  "rmse": lambda a, b: float(np.sqrt(skm.mean_squared_error(a, b)))}.get(metric, skm.r2_score)
            return float(fn(y, out))
        pred = out.argmax(axis=1)
        if metric == "log_loss":
            return float(skm.log_loss(y, np.clip(out, 1e-15, 1), labels=list(range(n_classes))))
        if metric in ("roc_auc", "ap") and len(np.unique(y)) == n_classes:
            if n_classes == 2:
                f = skm.roc_auc_score if metric == "roc_auc" else skm.average_precision_score
                return float(f(y, out[:, 1]))
            return float(skm.roc_auc_score(y, out, multi_class="ovr", labels=list(range(n_classes))))
        if metric == "balanced_accuracy":
            return float(skm.balanced_accuracy_score(y, pred))
        if metric in ("macro_f1", "micro_f1", "f1"):
            avg = {"macro_f1": "macro", "micro_f1": "micro", "f1": "binary"}[metric]
            return float(skm.f1_score(y, pred, average=avg))
        return float(skm.accuracy_score(y, pred))


def better(metric: str, a: float, b: float | None) -> bool:
    return b is None or (a < b if metric in _LOWER_IS_BETTER else a > b)


@dataclass
class TextColumnModel:
    column: str
    vectorizer: TfidfBlocks
    state: LinearState
    n_classes: int  # 0 for regression
    labels: list[str] = field(default_factory=list)
    candidate: str = ""
    # What a text with no term the model knows (empty, missing, only unseen words) scores: the training rows'
    # class shares (regression: their mean). Its TF-IDF row is all zeros, so the linear model would answer with
    # its intercepts alone, which after calibration can be near-certain of one class. None: packages from before.
    prior: np.ndarray | None = None

    @property
    def output_names(self) -> list[str]:
        if self.n_classes == 0:
            return [f"{self.column}.text_prediction"]
        if self.n_classes == 2:
            return [f"{self.column}.text_score"]
        return [f"{self.column}.text_score_{lab}" for lab in self.labels]

    def outputs(self, raw: np.ndarray) -> np.ndarray:
        """Feature columns from linear outputs: P(positive) for two classes, all k otherwise."""
        if self.n_classes == 0:
            return raw.reshape(-1, 1)
        return raw[:, 1:2] if self.n_classes == 2 else raw

    def scores(self, texts, empty_out: list | None = None) -> np.ndarray:
        """The feature columns of ``texts``; ``empty_out``: given a list, a bool per text is appended to it, True
        when the text holds no term the model knows (empty, missing, only unseen words)."""
        X = self.vectorizer.transform([normalise(t) for t in texts])
        empty = np.asarray(X.getnnz(axis=1)).ravel() == 0
        if empty_out is not None:
            empty_out.append(empty)
        return self.no_evidence_as_prior(X, self.outputs(self.state.predict(X)), empty)

    def no_evidence_as_prior(self, X, out: np.ndarray, empty: np.ndarray | None = None) -> np.ndarray:
        """``out`` (feature columns) with the rows of texts without a known term (``empty``, else read from the
        TF-IDF rows ``X``) set to the prior's."""
        if self.prior is None:
            return out
        if empty is None:
            empty = np.asarray(X.getnnz(axis=1)).ravel() == 0
        if empty.any():
            out = np.array(out, dtype=np.float64, copy=True)
            out[empty] = self.outputs(np.asarray(self.prior, dtype=np.float64)[None, :])
        return out

    def top_terms(self, k: int = 12) -> list[dict]:
        names = self.vectorizer.feature_names()
        rows = []

        def terms(w: np.ndarray, sign: int) -> str:
            shown: list[str] = []
            seen: set[str] = set()
            for i in np.argsort(-sign * w)[: 20 * k]:
                if sign * w[i] <= 0 or len(shown) >= k:
                    break
                block, _, t = names[i].partition(":")
                # character n-grams with punctuation or spaces, and repeats of a shown word, say nothing new
                if block == "c" and (not t.strip() or re.search(r"[^\w]", t.strip())):
                    continue
                # a lone Latin letter or digit ("m", "e": a piece of "5mm", "hmi") tells a reader nothing
                if re.fullmatch(r"[A-Za-z0-9]", t.strip()):
                    continue
                if t.strip() in seen:
                    continue
                seen.add(t.strip())
                shown.append(_show(names[i]))
            return ", ".join(shown)

        coef = self.state.coef
        if self.n_classes == 0:
            rows += [{"column": self.column, "class": "higher values", "top terms": terms(coef[0], 1)},
                     {"column": self.column, "class": "lower values", "top terms": terms(coef[0], -1)}]
        elif self.n_classes == 2:
            rows += [{"column": self.column, "class": self.labels[1], "top terms": terms(coef[0], 1)},
                     {"column": self.column, "class": self.labels[0], "top terms": terms(coef[0], -1)}]
        else:
            rows += [{"column": self.column, "class": lab, "top terms": terms(coef[j], 1)}
                     for j, lab in enumerate(self.labels)]
        return rows

    # -- files --------------------------------------------------------------
    def save(self, folder: Path, stem: str) -> None:
        meta, arrays = self.vectorizer.state()
        info = {"column": self.column, "n_classes": self.n_classes, "labels": self.labels, "candidate": self.candidate,
                "link": self.state.link, "vectorizer": meta,
                **({"prior": [float(v) for v in self.prior]} if self.prior is not None else {})}
        (folder / f"{stem}.json").write_text(json.dumps(info, ensure_ascii=False), "utf-8")
        np.savez_compressed(folder / f"{stem}.npz", **arrays, **self.state.arrays())

    @classmethod
    def load(cls, folder: Path, stem: str) -> "TextColumnModel":
        paths = [folder / f"{stem}.json", folder / f"{stem}.npz"]
        if any(p.parent != folder or not p.is_file() for p in paths):
            raise IntegrityError(f"Text model files {stem}.json/.npz are missing from the package.")
        try:
            info = json.loads(paths[0].read_text("utf-8"))
            with np.load(paths[1], allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError) as exc:
            raise IntegrityError(f"Text model {stem} cannot be read ({exc}).") from None
        vec = TfidfBlocks.from_state(info.get("vectorizer") or {}, arrays)
        state = LinearState.from_arrays(arrays, info.get("link"), vec.n_features)
        n_classes = int(info["n_classes"])
        prior = info.get("prior")
        if prior is not None:
            try:
                prior = np.asarray(prior, dtype=np.float64).ravel()
            except (TypeError, ValueError):
                prior = None
            if prior is None or len(prior) != max(1, n_classes) or not np.isfinite(prior).all():
                raise IntegrityError(f"Text model {stem}: 'prior' must be {max(1, n_classes)} finite number(s).")
        return cls(str(info["column"]), vec, state, n_classes, [str(v) for v in info.get("labels") or []],
                   str(info.get("candidate", "")), prior)


def _show(term: str) -> str:
    block, _, t = term.partition(":")
    return t if block == "w" else f"“{t}”"


def _folds(y: np.ndarray, n_classes: int, groups, seed: int, k: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    n = len(y)
    if groups is not None:
        k = min(k, len(np.unique(groups)))
        return list(GroupKFold(k).split(np.zeros(n), y, groups)) if k >= 2 else []
    if n_classes:
        k = int(min(k, max(2, np.bincount(y).max())))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    return list(KFold(min(k, n), shuffle=True, random_state=seed).split(np.zeros(n))) if n >= 2 else []


def fit_text_column(texts, y: np.ndarray, *, column: str, n_classes: int, labels: list[str], metric: str,
                    seconds: float, seed: int = 0, groups=None,
                    on_candidate=None) -> tuple[TextColumnModel, np.ndarray, list[dict], float]:
    """Fit on the training rows within ``seconds``; returns (model, out-of-fold outputs, leaderboard rows, best score)."""
    t0 = time.monotonic()
    norm = [normalise(t) for t in texts]
    vec = TfidfBlocks(AnalyzerConfig.for_texts(norm))
    X = vec.fit_transform(norm)
    # Five folds when there is time for them; three on large data or a short budget, two when very short.
    spent = time.monotonic() - t0
    left = seconds - spent
    k = 5 if (len(y) <= 5000 and left > 10 * spent) else 3 if left > 3 * spent else 2
    folds = _folds(y, n_classes, groups, seed, k=k)
    board, best, best_oof, best_dec, best_spec = [], None, None, None, None
    max_cost = 0.0
    for kind, C in (CANDIDATES if n_classes else REG_CANDIDATES):
        left = seconds - (time.monotonic() - t0)
        # the next candidate may cost as much as the dearest so far; keep time to refit the best on all rows
        if board and max_cost * (1.2 + 1.5 / max(1, len(folds))) > left:
            break
        c0 = time.monotonic()
        width = 1 if n_classes in (0, 2) else n_classes
        oof = np.zeros((len(y), n_classes)) if n_classes else np.zeros(len(y))
        dec = np.zeros((len(y), width))
        for tr, va in folds:
            st = fit_candidate(kind, C, X[tr], y[tr], n_classes, seed)
            if kind == "svm":
                dec[va] = st.decision(X[va])
            else:
                oof[va] = st.predict(X[va])
        if kind == "svm":
            cal = LinearState(np.zeros((width, 0)), np.zeros(width), "ovr", np.ones(width), np.zeros(width))
            calibrate_svm(cal, dec, y, n_classes)
            oof = LinearState(np.eye(width), np.zeros(width), "ovr", cal.a, cal.b).predict(dec)
        s = score(metric, y, oof, n_classes) if folds else float("nan")
        cost = time.monotonic() - c0
        max_cost = max(max_cost, cost)
        board.append({"learner": f"text:{kind}", "score": s, "metric": metric, "train_time_s": round(cost, 3),
                      "validation": f"{len(folds)}-fold cross-validation", "config": {"C": C, "column": column}})
        if not folds or better(metric, s, best):
            best, best_oof, best_dec, best_spec = s, oof, dec, (kind, C)
        if on_candidate is not None:  # live progress: one row per candidate tried
            on_candidate(board[-1], best)
        if not folds:
            break
    kind, C = best_spec
    state = fit_candidate(kind, C, X, y, n_classes, seed)
    if kind == "svm":
        calibrate_svm(state, best_dec, y, n_classes)
    prior = (np.bincount(y, minlength=n_classes) / max(1, len(y)) if n_classes
             else np.array([float(np.mean(y)) if len(y) else 0.0]))
    model = TextColumnModel(column, vec, state, n_classes, [str(v) for v in labels], f"{kind} C={C:g}",
                            prior.astype(np.float64))
    if not folds:  # too few rows to cross-validate: in-sample scores (noted by the caller)
        best_oof = state.predict(X)
    # the training rows' scores follow the same rule as prediction's: a text without a known term scores the prior
    oof = model.no_evidence_as_prior(X, model.outputs(best_oof))
    return model, oof, board, float(best if best is not None else np.nan)

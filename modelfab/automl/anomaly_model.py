"""The trained anomaly model and the file-level helpers it is built from.

Data: one row per window (~1 s of a recording), one feature vector per row,
and the file (group) every window came from. A file's score is its window
scores aggregated (:func:`aggregate`); a file is anomalous when that score is
above the model's threshold. :class:`AnomalyModel` is what
:func:`~modelfab.automl.anomaly_fit.fit_anomaly` returns and what gets
packaged: scaler + detector + aggregation + threshold, saved as JSON + ``.npz``
without pickle.

Threshold
---------
Set on out-of-fold normal *file* scores for the target false-alarm rate:
the larger of the empirical quantile (at most ``floor(rate * n)`` held-out
normal files above it) and a Gaussian-tail estimate (mean + z * sd) that
extrapolates when there are too few files to resolve the rate. The
out-of-fold scores are kept in the model so the threshold can be moved later
without retraining (:meth:`AnomalyModel.with_threshold`,
:meth:`AnomalyModel.with_false_alarm`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import IntegrityError, InvalidInput, TrainingError
from .detector_base import Detector, _jsonable
from .detectors import detector_from_state

__all__ = ["AGGREGATIONS", "AnomalyModel", "aggregate", "file_auc", "partial_auc", "auc_standard_error",
           "threshold_for_rate"]

AGGREGATIONS = ("mean", "median", "top3", "p90", "max")
STATE_VERSION = 1


# ----------------------------------------------------------------------------- file scores
def aggregate(scores: np.ndarray, how: str) -> float:
    """One file score from its window scores: mean, median, max, ``pNN``, ``topK`` (mean of the K highest)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return float("nan")
    if how == "mean":
        return float(s.mean())
    if how == "median":
        return float(np.median(s))
    if how == "max":
        return float(s.max())
    if how.startswith("p") and how[1:].replace(".", "", 1).isdigit():
        return float(np.percentile(s, float(how[1:])))
    if how.startswith("top") and how[3:].isdigit():
        k = max(1, min(int(how[3:]), s.size))
        return float(np.sort(s)[-k:].mean())
    raise InvalidInput(f"Unknown aggregation {how!r}; expected mean, median, max, pNN (e.g. p90) or topK (e.g. top3).")


def _group_index(groups: np.ndarray) -> tuple[list, np.ndarray]:
    """Unique groups in order of first appearance, and each row's group number."""
    groups = np.asarray(groups)
    _, first, inv = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keys = [_py(groups[first[i]]) for i in order]
    return keys, rank[inv.reshape(-1)]


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def file_auc(neg: Sequence[float], pos: Sequence[float]) -> float:
    """ROC AUC of positive (abnormal) vs negative (normal) scores, ties counted half."""
    neg, pos = np.asarray(neg, float).ravel(), np.asarray(pos, float).ravel()
    if neg.size == 0 or pos.size == 0:
        return float("nan")
    if neg.size * pos.size <= 4_000_000:
        gt = (pos[:, None] > neg[None, :]).sum()
        eq = (pos[:, None] == neg[None, :]).sum()
        return float((gt + 0.5 * eq) / (neg.size * pos.size))
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([neg, pos]))
    return float((r[neg.size:].sum() - pos.size * (pos.size + 1) / 2) / (neg.size * pos.size))


def partial_auc(neg: Sequence[float], pos: Sequence[float], max_fpr: float = 0.1) -> float:
    """DCASE-style pAUC: area under the ROC for FPR in [0, max_fpr], divided by max_fpr (not McClish-corrected)."""
    neg, pos = np.asarray(neg, float), np.asarray(pos, float)
    if neg.size == 0 or pos.size == 0:
        return float("nan")
    thr = np.unique(np.concatenate([neg, pos, [np.inf]]))[::-1]
    fpr = np.array([np.mean(neg >= t) for t in thr])
    tpr = np.array([np.mean(pos >= t) for t in thr])
    fpr = np.concatenate([[0.0], fpr])
    tpr = np.concatenate([[0.0], tpr])
    stop = np.searchsorted(fpr, max_fpr, side="right")
    xs, ys = list(fpr[:stop]), list(tpr[:stop])
    if stop < len(fpr) and fpr[stop - 1] < max_fpr:  # interpolate to the boundary
        x0, x1, y0, y1 = fpr[stop - 1], fpr[stop], tpr[stop - 1], tpr[stop]
        xs.append(max_fpr)
        ys.append(y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0) if x1 > x0 else y1)
    return float(np.trapezoid(ys, xs) / max_fpr) if len(xs) > 1 else 0.0


def auc_standard_error(auc: float, n_neg: int, n_pos: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC from n_neg negatives and n_pos positives."""
    if n_neg < 1 or n_pos < 1 or not math.isfinite(auc):
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_neg * n_pos)
    return float(math.sqrt(max(var, 0.0)))


def threshold_for_rate(normal_scores: Sequence[float], max_false_alarm: float) -> float:
    """Threshold on file scores (anomalous = score > threshold) for a target false-alarm rate.

    Larger of the empirical quantile and a Gaussian-tail extrapolation, so
    that a rate finer than the number of normal files can resolve is not
    silently read as "the largest score seen".
    """
    from scipy.stats import norm

    from ..evaluation.metrics import threshold_above_for_false_alarm

    s = np.sort(np.asarray(normal_scores, dtype=np.float64))
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise TrainingError("No held-out normal file scores to set a threshold on.")
    rate = float(max_false_alarm)  # in (0, 1): checked by training and with_false_alarm
    empirical = threshold_above_for_false_alarm(s, rate)  # at most floor(rate x n) files above it
    if s.size >= 3:
        sd = float(s.std(ddof=1))
        gauss = float(s.mean() + norm.isf(min(max(rate, 1e-6), 0.5)) * sd)
    else:
        gauss = empirical
    return max(empirical, gauss)


# ----------------------------------------------------------------------------- the model
@dataclass
class AnomalyModel:
    """Scaler + detector + file aggregation + threshold: the thing that gets packaged.

    A file is anomalous when its aggregated window score is **above** ``threshold``.
    """

    feature_names: list[str]
    detector: Detector
    aggregation: str
    threshold: float
    center: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    feature_index: np.ndarray
    ref_center: np.ndarray  # all features: mean of normal training windows (for explain)
    ref_scale: np.ndarray  # all features: held-out file-to-file spread (for explain)
    normal_file_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # out-of-fold
    scaling: str = "standard"
    max_false_alarm: float = 0.01
    meta: dict = field(default_factory=dict)

    # -- scoring --------------------------------------------------------------
    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise InvalidInput(f"Expected {len(self.feature_names)} features per window; got shape {X.shape}.",
                               hint="Extract features with the same settings the model was trained with.")
        if not np.all(np.isfinite(X)):
            raise InvalidInput("Feature matrix contains NaN or infinite values.")
        return X

    def transform(self, X) -> np.ndarray:
        from .anomaly_prep import standardise

        X = self._check(X)
        return standardise(X[:, self.feature_index], self.center, self.scale) * self.weights

    def window_scores(self, X) -> np.ndarray:
        """One anomaly score per window (higher = more anomalous)."""
        return self.detector.score(self.transform(X))

    def file_scores(self, X, groups) -> dict:
        """``{file id: aggregated score}`` in order of first appearance."""
        w = self.window_scores(X)
        groups = np.asarray(groups)
        if groups.shape != (len(w),):
            raise InvalidInput(f"groups must give one file id per window ({len(w)}); got shape {groups.shape}.")
        keys, gi = _group_index(groups)
        return {k: aggregate(w[gi == i], self.aggregation) for i, k in enumerate(keys)}

    def predict_files(self, X, groups) -> dict:
        """``{file id: True if anomalous}``."""
        return {k: bool(v > self.threshold) for k, v in self.file_scores(X, groups).items()}

    def file_score(self, X_file_windows) -> float:
        return aggregate(self.window_scores(X_file_windows), self.aggregation)

    # -- threshold ------------------------------------------------------------
    def false_alarm_rate(self, threshold: float | None = None) -> float | None:
        """Share of held-out normal files above ``threshold`` (the model's own when None)."""
        s = self.normal_file_scores
        if s.size == 0:
            return None
        t = self.threshold if threshold is None else float(threshold)
        return float(np.mean(s > t))

    def with_threshold(self, threshold: float) -> "AnomalyModel":
        """The same model with another threshold (no retraining)."""
        t = float(threshold)
        if not math.isfinite(t):
            raise InvalidInput(f"Threshold must be a finite number; got {threshold!r}.")
        rate = self.false_alarm_rate(t)
        return replace(self, threshold=t, max_false_alarm=rate if rate is not None else self.max_false_alarm,
                       meta=dict(self.meta, threshold_source="manual"))

    def with_false_alarm(self, max_false_alarm: float) -> "AnomalyModel":
        """The same model, threshold re-set on the stored held-out normal scores for a new rate."""
        if not 0 < float(max_false_alarm) < 1:
            raise InvalidInput(f"max_false_alarm must be between 0 and 1; got {max_false_alarm!r}.")
        if self.normal_file_scores.size == 0:
            raise InvalidInput("This model kept no held-out normal scores; set a threshold with with_threshold().")
        t = threshold_for_rate(self.normal_file_scores, max_false_alarm)
        return replace(self, threshold=t, max_false_alarm=float(max_false_alarm),
                       meta=dict(self.meta, threshold_source="held-out normal files"))

    # -- explanation ----------------------------------------------------------
    def explain(self, X_file_windows, *, times=None, top_windows: int = 3, top_features: int = 8) -> dict:
        """Why one file scores as it does.

        ``times``: optional per-window start seconds ``(n,)`` or ``(n, 2)`` start/end.
        Returns the file score and verdict, the highest-scoring windows (with
        time ranges when given), and the features that deviate most from the
        normal training distribution, as z-scores in units of the normal
        file-to-file spread, measured on the top windows and on the whole file.
        """
        X = self._check(X_file_windows)
        w = self.detector.score(self.transform(X))
        fscore = aggregate(w, self.aggregation)
        order = np.argsort(-w, kind="stable")[: max(1, int(top_windows))]
        t = None if times is None else np.asarray(times, dtype=np.float64)
        if t is not None and t.shape[0] != len(X):
            raise InvalidInput(f"times must have one entry per window ({len(X)}); got {t.shape[0]}.")
        windows = []
        for i in order:
            row = {"index": int(i), "score": float(w[i])}
            if t is not None:
                if t.ndim == 2:
                    row["start_s"], row["end_s"] = float(t[i, 0]), float(t[i, 1])
                else:
                    row["start_s"] = float(t[i])
            windows.append(row)
        from .anomaly_prep import standardise

        Z = standardise(X, self.ref_center, self.ref_scale)
        z_top = Z[order].mean(axis=0)
        z_file = Z.mean(axis=0)
        feats = np.argsort(-np.abs(z_top), kind="stable")[: max(1, int(top_features))]
        return {
            "file_score": float(fscore),
            "threshold": float(self.threshold),
            "anomalous": bool(fscore > self.threshold),
            "aggregation": self.aggregation,
            "window_scores": [float(v) for v in w],
            "top_windows": windows,
            "top_features": [{"feature": self.feature_names[j], "index": int(j), "z": float(z_top[j]),
                              "z_file": float(z_file[j])} for j in feats],
        }

    # -- state ------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        dparams, darrays = self.detector.to_state()
        params = {
            "kind": "anomaly", "version": STATE_VERSION, "feature_names": list(self.feature_names),
            "detector": dparams, "aggregation": self.aggregation, "threshold": float(self.threshold),
            "scaling": self.scaling, "max_false_alarm": float(self.max_false_alarm),
            "meta": _jsonable(self.meta, strict=True),
        }
        arrays = {"center": self.center, "scale": self.scale, "weights": self.weights,
                  "feature_index": self.feature_index.astype(np.int64), "ref_center": self.ref_center,
                  "ref_scale": self.ref_scale, "normal_file_scores": self.normal_file_scores}
        arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        arrays.update({f"det__{k}": v for k, v in darrays.items()})
        for k, v in arrays.items():
            if v.dtype.kind not in "biuf":
                raise IntegrityError(f"Array {k!r} has dtype {v.dtype}; only numeric arrays are stored.")
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> "AnomalyModel":
        if params.get("kind") != "anomaly" or int(params.get("version", -1)) > STATE_VERSION:
            raise IntegrityError(f"Not an anomaly model state of version <= {STATE_VERSION}.")
        try:
            det = detector_from_state(params["detector"],
                                      {k[5:]: v for k, v in arrays.items() if k.startswith("det__")})
            model = cls(feature_names=list(params["feature_names"]), detector=det,
                        aggregation=str(params["aggregation"]), threshold=float(params["threshold"]),
                        center=np.asarray(arrays["center"], float), scale=np.asarray(arrays["scale"], float),
                        weights=np.asarray(arrays["weights"], float),
                        feature_index=np.asarray(arrays["feature_index"], np.int64),
                        ref_center=np.asarray(arrays["ref_center"], float),
                        ref_scale=np.asarray(arrays["ref_scale"], float),
                        normal_file_scores=np.asarray(arrays["normal_file_scores"], float),
                        scaling=str(params.get("scaling", "standard")),
                        max_false_alarm=float(params.get("max_false_alarm", 0.01)),
                        meta=dict(params.get("meta", {})))
        except KeyError as exc:
            raise IntegrityError(f"Anomaly model state is missing {exc}.") from None
        n = len(model.feature_names)
        if model.ref_center.shape != (n,) or model.feature_index.max(initial=-1) >= n:
            raise IntegrityError("Anomaly model state does not match its feature names.")
        aggregate(np.zeros(1), model.aggregation)  # validates
        return model

    def save(self, folder: str | Path, stem: str = "anomaly") -> list[Path]:
        """Write ``<stem>.json`` + ``<stem>.npz`` (no pickle) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        params, arrays = self.to_state()
        pj, pz = folder / f"{stem}.json", folder / f"{stem}.npz"
        pj.write_text(json.dumps(params, indent=2, sort_keys=True), encoding="utf-8")
        with open(pz, "wb") as fh:
            np.savez(fh, **arrays)
        return [pj, pz]

    @classmethod
    def load(cls, folder: str | Path, stem: str = "anomaly") -> "AnomalyModel":
        folder = Path(folder)
        params = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
        try:
            with np.load(folder / f"{stem}.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ValueError as exc:
            raise IntegrityError(f"Anomaly model arrays could not be read without pickle: {exc}") from None
        return cls.from_state(params, arrays)

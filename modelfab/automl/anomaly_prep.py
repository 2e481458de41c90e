"""Feature preparation for anomaly detectors: scaling, feature choice, weights.

Detectors see features on a common scale. ``"standard"`` scaling divides by
the plain standard deviation of the normal training windows; ``"heldout"``
scaling divides by :func:`heldout_spread`, how far a feature strays on a
normal file the model has not seen (within-file plus file-to-file variation),
so that features that differ from machine to machine count for less.

With labelled abnormal files (semi-supervised), features are additionally
weighted, or restricted to the most separating ones, by how far the training
abnormals moved them (in normal spreads); the strength is a cross-validated
choice of :func:`~modelfab.automl.anomaly_fit.fit_anomaly`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .anomaly_fit import _Candidate

__all__ = ["heldout_spread"]


def _file_stats(X: np.ndarray, gi: np.ndarray, n_groups: int):
    S = np.zeros((n_groups, X.shape[1]))
    SS = np.zeros((n_groups, X.shape[1]))
    np.add.at(S, gi, X)
    np.add.at(SS, gi, X * X)
    N = np.bincount(gi, minlength=n_groups).astype(float)
    return S, SS, N


def heldout_spread(X: np.ndarray, gi: np.ndarray) -> np.ndarray:
    """Per feature, the RMS deviation of each file's windows from the mean of the *other* files.

    This is how far a feature strays on a normal file the model has not seen:
    within-file variation plus machine-to-machine (file-to-file) variation.
    Falls back to the plain standard deviation with a single file.
    """
    keys, g = np.unique(gi, return_inverse=True)
    if len(keys) < 2:
        return X.std(axis=0)
    S, SS, N = _file_stats(X, g, len(keys))
    tot_S, tot_N = S.sum(axis=0), N.sum()
    m_other = (tot_S - S) / (tot_N - N)[:, None]
    dev = SS - 2 * m_other * S + N[:, None] * m_other ** 2
    return np.sqrt(np.maximum(dev.sum(axis=0) / tot_N, 0.0))


RELATIVE_FLOOR = 1e-4  # a feature's spread counts as at least this share of its mean
Z_CLIP = 1e4           # deviations beyond this many spreads count as this many (a feature that hardly varied on
                       # clean training sound gave z = 6.5e12 and file scores of 1e25-1e28: useless to read, and one
                       # such window kept a smoothed live level over the threshold seconds after the fault)


def _floor_scale(scale: np.ndarray, center: np.ndarray) -> np.ndarray:
    return np.maximum(scale, np.maximum(RELATIVE_FLOOR * np.abs(center), 1e-12))


def standardise(X: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(X - center) / scale, bounded to +-``Z_CLIP`` (non-finite inputs are refused before this)."""
    return np.clip((X - center) / scale, -Z_CLIP, Z_CLIP)


@dataclass
class _Prep:
    """Scaling + feature choice + weights, fitted on normal training windows."""

    index: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return standardise(X[:, self.index], self.center, self.scale) * self.weights


def _separation(Xn_s: np.ndarray, Xa_s: np.ndarray) -> np.ndarray:
    """Per (scaled) feature, how far abnormal windows sit from normal ones, in normal spreads."""
    return np.abs(Xa_s.mean(axis=0) - Xn_s.mean(axis=0))


def _fit_prep(X: np.ndarray, gi: np.ndarray, cand: "_Candidate", Xa: np.ndarray | None) -> _Prep:
    center = X.mean(axis=0)
    scale = heldout_spread(X, gi) if cand.scaling == "heldout" else X.std(axis=0)
    scale = _floor_scale(scale, center)
    index = np.arange(X.shape[1])
    weights = np.ones(X.shape[1])
    if Xa is not None and len(Xa) and (cand.weighting > 0 or cand.keep < 1.0):
        sep = _separation((X - center) / scale, (Xa - center) / scale)
        if cand.keep < 1.0:
            m = max(1, int(round(cand.keep * X.shape[1])))
            index = np.sort(np.argsort(-sep)[:m])
        if cand.weighting > 0 and sep.max() > 0:
            weights = 1.0 + cand.weighting * sep / sep.max()
    return _Prep(index, center[index], scale[index], weights[index])

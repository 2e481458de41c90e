"""Linear models on TF-IDF: logistic regression, NB-weighted logistic regression and a
linear SVM with Platt-calibrated probabilities (ridge for regression).

Every candidate collapses to the same plain state: ``coef`` (k x d), ``intercept`` (k),
a link ("softmax", "ovr" or "identity") and Platt parameters ``a``, ``b`` per row, so a
package stores numbers only and prediction is a sparse matrix product.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ...errors import IntegrityError

LINKS = ("softmax", "ovr", "identity")


@dataclass
class LinearState:
    coef: np.ndarray  # (k, d)
    intercept: np.ndarray  # (k,)
    link: str
    a: np.ndarray  # (k,) Platt slope (1 for logistic regression)
    b: np.ndarray  # (k,) Platt offset

    def decision(self, X: sp.csr_matrix) -> np.ndarray:
        return np.asarray(X @ self.coef.T) + self.intercept

    def predict(self, X: sp.csr_matrix) -> np.ndarray:
        """(n, n_classes) probabilities, or (n,) values for regression."""
        z = self.decision(X)
        if self.link == "identity":
            return z[:, 0]
        if self.link == "softmax":
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        p = 1.0 / (1.0 + np.exp(-np.clip(self.a * z + self.b, -500, 500)))
        if p.shape[1] == 1:
            return np.column_stack([1.0 - p[:, 0], p[:, 0]])
        s = p.sum(axis=1, keepdims=True)
        return np.where(s > 0, p / np.where(s > 0, s, 1.0), 1.0 / p.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef, "intercept": self.intercept, "platt_a": self.a, "platt_b": self.b}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], link: str, n_features: int) -> "LinearState":
        if link not in LINKS:
            raise IntegrityError(f"Unknown link {link!r} in the text model; expected one of {LINKS}.")
        try:
            st = cls(*(np.asarray(arrays[k], dtype=np.float64) for k in ("coef", "intercept")), link,
                     *(np.asarray(arrays[k], dtype=np.float64) for k in ("platt_a", "platt_b")))
        except KeyError as exc:
            raise IntegrityError(f"Text model arrays lack {exc}.") from None
        k = st.coef.shape[0] if st.coef.ndim == 2 else -1
        if st.coef.ndim != 2 or st.coef.shape[1] != n_features or any(v.shape != (k,) for v in (st.intercept, st.a, st.b)):
            raise IntegrityError(f"Text model weights have shape {st.coef.shape}; expected (k, {n_features}).")
        return st


def _ones(k: int) -> np.ndarray:
    return np.ones(k)


def _nb_ratio(X: sp.csr_matrix, pos: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Log-count ratio of Wang & Manning (2012) on binarised features."""
    B = X.copy()
    B.data = np.ones_like(B.data)
    p = np.asarray(B[pos].sum(axis=0)).ravel() + alpha
    q = np.asarray(B[~pos].sum(axis=0)).ravel() + alpha
    return np.log(p / p.sum()) - np.log(q / q.sum())


def _binary_lr(X, y01: np.ndarray, C: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=C, solver="liblinear", dual=True, max_iter=1000, random_state=seed)
    m.fit(X, y01)
    return m.coef_.ravel(), float(m.intercept_[0])


def _platt(z: np.ndarray, y01: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y01)) < 2:
        return 1.0, 0.0
    m = LogisticRegression(C=1e4, solver="lbfgs").fit(z.reshape(-1, 1), y01)
    return float(m.coef_[0, 0]), float(m.intercept_[0])


def fit_candidate(kind: str, C: float, X: sp.csr_matrix, y: np.ndarray, n_classes: int, seed: int) -> LinearState:
    """Fit one candidate on (X, y). ``y`` holds class codes 0..k-1 (classification) or values (``n_classes == 0``)."""
    d = X.shape[1]
    if d == 0:  # no term in any training text: predict the training distribution
        return _prior_state(y, n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n_classes == 0:
            from sklearn.linear_model import Ridge

            m = Ridge(alpha=C, solver="sparse_cg" if sp.issparse(X) else "auto").fit(X, y)
            return LinearState(m.coef_.reshape(1, d), np.array([float(m.intercept_)]), "identity", _ones(1), np.zeros(1))
        present = np.unique(y)
        if kind == "lr" and n_classes > 2 and len(present) == n_classes:
            from sklearn.linear_model import LogisticRegression

            m = LogisticRegression(C=C, solver="lbfgs", max_iter=300, random_state=seed).fit(X, y)
            return LinearState(m.coef_, m.intercept_.astype(float), "softmax", _ones(n_classes), np.zeros(n_classes))
        rows = [1] if n_classes == 2 else list(range(n_classes))
        coef, icpt, a, b = np.zeros((len(rows), d)), np.zeros(len(rows)), _ones(len(rows)), np.zeros(len(rows))
        for j, cls in enumerate(rows):
            pos = y == cls
            if not pos.any() or pos.all():  # class absent from this fold: a constant score
                icpt[j] = -30.0 if not pos.any() else 30.0
                continue
            if kind == "nblr":
                r = _nb_ratio(X, pos)
                w, c0 = _binary_lr(X @ sp.diags(r), pos.astype(int), C, seed)
                coef[j], icpt[j] = w * r, c0
            elif kind == "svm":
                from sklearn.svm import LinearSVC

                m = LinearSVC(C=C, max_iter=2000, random_state=seed).fit(X, pos.astype(int))
                coef[j], icpt[j] = m.coef_.ravel(), float(m.intercept_[0])
            else:
                coef[j], icpt[j] = _binary_lr(X, pos.astype(int), C, seed)
        return LinearState(coef, icpt, "ovr", a, b)


def _prior_state(y: np.ndarray, n_classes: int) -> LinearState:
    if n_classes == 0:
        return LinearState(np.zeros((1, 0)), np.array([float(np.mean(y))]), "identity", _ones(1), np.zeros(1))
    prior = np.clip(np.bincount(y, minlength=n_classes) / max(1, len(y)), 1e-6, 1 - 1e-6)
    logit = np.log(prior / (1 - prior))
    rows = logit[1:] if n_classes == 2 else logit
    return LinearState(np.zeros((len(rows), 0)), rows, "ovr", _ones(len(rows)), np.zeros(len(rows)))


def calibrate_svm(state: LinearState, oof_decision: np.ndarray, y: np.ndarray, n_classes: int) -> None:
    """Platt scaling of each SVM row on out-of-fold decision values (in place)."""
    rows = [1] if n_classes == 2 else list(range(n_classes))
    for j, cls in enumerate(rows):
        state.a[j], state.b[j] = _platt(oof_decision[:, j], (y == cls).astype(int))

"""The parts of a series model and their pickle-free files.

* :class:`RocketRidge`: a ROCKET-family transform (``.npz`` of its arrays), standardisation and a ridge
  head (``.npz``: mean, scale, coefficients, intercept, softmax temperature).
* :class:`FeatureBoost`: summary features and LightGBM (text model).

Each has ``fit(series...)``, ``predict_raw(data, offsets, series) -> proba (n, K) | values (n,)``,
``save(folder, stem) -> files`` and ``load(folder, spec)``.
"""

from __future__ import annotations

import copy
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .features import summary_features
from .rocket import RocketTransform

ALPHAS = np.logspace(-3, 3, 10)
TEMPERATURES = np.logspace(-1.5, 2.5, 41)
KEEP_CELLS = 2.5e7  # training features (float32, ~100 MB) kept after a fit for RocketRidge.refit_with


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _as_logits(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    return np.column_stack([-d, d]) if d.ndim == 1 else d


def fit_temperature(decisions: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature that makes leave-one-out ridge scores the best probabilities (log loss)."""
    z = _as_logits(decisions)
    best, best_t = np.inf, 1.0
    for t in TEMPERATURES:
        p = softmax(z * t)
        loss = -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1)))
        if loss < best:
            best, best_t = loss, float(t)
    return best_t


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def blas_threads() -> int:
    """BLAS threads for the ridge head: one core is left free. On a 2-core machine with one other busy process,
    the eigendecomposition on both cores ran 2-4x slower than on one (40 s instead of 11 s at 4,000 x 3,360
    features), which no estimate made beforehand can foresee; on one core it takes the same time, busy or not."""
    return max(1, (os.cpu_count() or 1) - 1)


@contextmanager
def blas_limit():
    """The ridge head's BLAS thread count (:func:`blas_threads`) for the code inside."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=blas_threads(), user_api="blas"):
        yield


def _null_to_zero(s: np.ndarray) -> np.ndarray:
    """Eigenvalues that are zero up to rounding set to exactly 0 (and negatives clipped). The centred Gram matrix
    always has the constant vector in its null space; an eigensolver returns ~1e-13 there, and with a small penalty
    that rounding alone moved the leave-one-out residuals by 1e-5 (numpy 2.4's LAPACK)."""
    s = np.clip(s, 0.0, None)
    s[s <= s.max(initial=0.0) * len(s) * 16 * np.finfo(float).eps] = 0.0
    return s


def ridge_loo(Z: np.ndarray, Y: np.ndarray, alphas) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Ridge regression with an unpenalised intercept and its exact leave-one-out predictions, the penalty chosen
    from ``alphas`` by the mean squared leave-one-out error over all columns of ``Y`` (first best wins), as
    scikit-learn's RidgeCV / RidgeClassifierCV do by generalised cross-validation (the same mathematics, one
    eigendecomposition of the centred Gram matrix when series < features, else of the covariance; several times
    faster on wide ROCKET features). Returns (coef (features, targets), intercept (targets,), loo (n, targets), alpha).
    """
    n, f = Z.shape
    mu, ybar = Z.mean(axis=0), Y.mean(axis=0)
    Xc = Z - mu
    Yc = Y - ybar
    if n <= f:
        # G = (K + aI)^-1 over every eigenvector of the centred Gram matrix K: the leave-one-out residuals of ridge
        # with an unpenalised intercept are (G Yc)_i / (G_ii - 1/(a n)) (the constant vector is an eigenvector of K
        # with eigenvalue 0; subtracting its share of G_ii needs no guess of which eigenvector it is, which is
        # ambiguous when several series have the same features).
        s, U = np.linalg.eigh(Xc @ Xc.T)
        s = _null_to_zero(s)
        UtY = U.T @ Yc
        U2 = U * U
        best = None
        for a in alphas:
            w = 1.0 / (s + a)
            e = (U @ (w[:, None] * UtY)) / np.maximum(U2 @ w - 1.0 / (a * n), 1e-300)[:, None]  # leave-one-out residuals
            err = float(np.mean(e * e))
            if best is None or err < best[0] - 1e-12 * abs(best[0]):
                best = (err, float(a), e)
        _, alpha, e = best
        coef = Xc.T @ (U @ (UtY / (s + alpha)[:, None]))
    else:
        s, V = np.linalg.eigh(Xc.T @ Xc)
        s = _null_to_zero(s)
        P = Xc @ V
        PtY = P.T @ Yc
        P2 = P * P
        best = None
        for a in alphas:
            w = 1.0 / (s + a)
            r = Yc - P @ (w[:, None] * PtY)
            h = 1.0 / n + P2 @ w
            e = r / np.maximum(1.0 - h, 1e-12)[:, None]
            err = float(np.mean(e * e))
            if best is None or err < best[0] - 1e-12 * abs(best[0]):
                best = (err, float(a), e)
        _, alpha, e = best
        coef = V @ (PtY / (s + alpha)[:, None])
    intercept = ybar - mu @ coef
    return coef, intercept, Y - e, alpha


class RocketRidge:
    name_prefix = "rocket"

    def __init__(self, kind: str, task: str, n_classes: int, n_features: int | None = None, seed: int = 0) -> None:
        self.kind, self.task, self.n_classes = kind, task, n_classes
        self.transform = RocketTransform(kind, n_features, seed)
        self.mean = self.scale = self.coef = self.intercept = None
        self.temperature = 1.0
        self.alpha = None
        self.oof: np.ndarray | None = None  # leave-one-out proba / predictions on the training series
        self.fit_features: np.ndarray | None = None
        self.fit_seconds: tuple[float, float] | None = None  # (transform, head) of the last fit, for refit estimates

    @property
    def name(self) -> str:
        return f"{self.kind}_ridge"

    def _standardise(self, F: np.ndarray) -> np.ndarray:
        return (F - self.mean) / self.scale

    def fit(self, data, offsets, series, y: np.ndarray, deadline=None) -> "RocketRidge":
        t0 = time.perf_counter()
        self.transform.fit(data, offsets)
        F = self.transform.transform(data, offsets, deadline=deadline)
        t1 = time.perf_counter()
        self.fit_features = F if F.size <= KEEP_CELLS else None  # for refit_with: more rows, same transform
        self._fit_head(F.astype(np.float64), y)
        self.fit_seconds = (t1 - t0, time.perf_counter() - t1)
        return self

    def refit_with(self, data, offsets, y_all: np.ndarray, deadline=None) -> "RocketRidge":
        """A copy whose standardisation and ridge head are fitted again on the training series' features plus those
        of the series given (``y_all``: the training labels, then theirs); the transform is kept. Much cheaper
        than a new fit: only the new series are transformed."""
        if self.fit_features is None:
            raise ValueError("the training features were not kept")
        F = np.vstack([self.fit_features, self.transform.transform(data, offsets, deadline=deadline)])
        if deadline is not None and deadline():
            raise TimeoutError  # the head (one eigendecomposition) cannot be stopped once started
        m = copy.copy(self)
        m.fit_features = None
        m._fit_head(F.astype(np.float64), y_all)
        return m

    def _fit_head(self, F: np.ndarray, y: np.ndarray) -> None:
        mean = F.mean(axis=0) if self.kind == "multirocket" else np.zeros(F.shape[1])
        scale = F.std(axis=0)  # MiniRocket: StandardScaler(with_mean=False), i.e. divide by the std only
        scale[scale == 0] = 1.0
        Z = (F - mean) / scale
        del F
        if self.task == "classification":
            Y = np.where(y[:, None] == np.arange(self.n_classes)[None, :], 1.0, -1.0)
            if self.n_classes == 2:
                Y = Y[:, 1:]  # one column, as RidgeClassifierCV does for two classes
        else:
            Y = np.asarray(y, dtype=np.float64)[:, None]
        with blas_limit():
            coef, intercept, loo, alpha = ridge_loo(Z, Y, ALPHAS)
        if self.task == "classification":
            d = loo[:, 0] if loo.shape[1] == 1 else loo
            temperature = fit_temperature(d, y)
            oof = softmax(_as_logits(d) * temperature)
        else:
            temperature, oof = 1.0, loo[:, 0]
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef.T, intercept
        self.alpha, self.temperature, self.oof = alpha, temperature, oof

    def predict_raw(self, data, offsets, series=None) -> np.ndarray:
        F = self.transform.transform(data, offsets).astype(np.float64)
        d = self._standardise(F) @ self.coef.T + self.intercept
        if self.task != "classification":
            return d.reshape(-1)
        return softmax(_as_logits(d[:, 0] if d.shape[1] == 1 else d) * self.temperature)

    def save(self, folder: Path, stem: str) -> dict:
        np.savez_compressed(folder / f"{stem}_transform.npz", **self.transform.arrays())
        np.savez_compressed(folder / f"{stem}_head.npz", mean=self.mean, scale=self.scale, coef=self.coef,
                            intercept=self.intercept)
        return {"type": "rocket_ridge", "name": self.name, "kind": self.kind, "transform": self.transform.meta(),
                "files": {"transform": f"{stem}_transform.npz", "head": f"{stem}_head.npz"},
                "temperature": self.temperature, "alpha": self.alpha}

    @classmethod
    def load(cls, folder: Path, spec: dict, task: str, n_classes: int) -> "RocketRidge":
        m = cls(spec["kind"], task, n_classes)
        m.transform = RocketTransform.from_saved(spec["transform"], _load_npz(folder / spec["files"]["transform"]))
        head = _load_npz(folder / spec["files"]["head"])
        m.mean, m.scale, m.coef, m.intercept = head["mean"], head["scale"], head["coef"], head["intercept"]
        if m.coef.shape[1] != m.transform.n_outputs:
            raise ValueError("head and transform sizes differ")
        m.temperature, m.alpha = float(spec["temperature"]), spec.get("alpha")
        return m


SUMMARY_CHUNK = 2000  # series per summary-feature call when a deadline is checked between calls (~1 s)


def summary_features_until(series, deadline=None) -> np.ndarray:
    """:func:`summary_features` of every series; with ``deadline`` (True = out of time) done in chunks and
    ``TimeoutError`` raised between chunks once it says so (100,000 short series take ~40 s, in Python)."""
    if deadline is None or len(series) <= SUMMARY_CHUNK:
        return summary_features(series)
    parts = []
    for i in range(0, len(series), SUMMARY_CHUNK):
        if deadline():
            raise TimeoutError
        parts.append(summary_features(series[i:i + SUMMARY_CHUNK]))
    return np.vstack(parts)


class FeatureBoost:
    name = "features_lgbm"

    def __init__(self, task: str, n_classes: int, seed: int = 0) -> None:
        self.task, self.n_classes, self.seed = task, n_classes, seed
        self.booster = None
        self.fit_features = None  # (RocketRidge keeps its training features; nothing to keep here)
        self.oof: np.ndarray | None = None

    def _params(self, n: int) -> dict:
        p = {"learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": max(2, min(20, n // 20)),
             "feature_fraction": 0.7, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
             "verbose": -1, "seed": self.seed, "num_threads": 1, "deterministic": True}
        if self.task == "classification":
            p.update(objective="multiclass", num_class=self.n_classes) if self.n_classes > 2 else p.update(objective="binary")
        else:
            p.update(objective="regression")
        return p

    def _train(self, X, y, rounds: int):
        import lightgbm as lgb

        return lgb.train(self._params(len(y)), lgb.Dataset(X, y, params={"verbose": -1}), num_boost_round=rounds)

    def _raw(self, booster, X) -> np.ndarray:
        out = np.asarray(booster.predict(X), dtype=np.float64)
        if self.task == "classification" and out.ndim == 1:
            out = np.column_stack([1 - out, out])
        return out

    def fit(self, data, offsets, series, y: np.ndarray, *, folds: list | None = None, rounds: int = 300,
            deadline=None, enough=None) -> "FeatureBoost":
        """``folds`` may hold several k-fold splits one after the other (repeated k-fold): each series' out-of-fold
        predictions are averaged. ``deadline()`` True stops with TimeoutError; ``enough()`` True skips the folds
        left once every series has an out-of-fold prediction."""
        X = summary_features_until(series, deadline)
        if folds:
            oof = np.zeros((len(y), self.n_classes)) if self.task == "classification" else np.zeros(len(y))
            seen = np.zeros(len(y))
            for tr, va in folds:
                if seen.min() > 0 and enough is not None and enough():
                    break
                if deadline is not None and deadline():
                    raise TimeoutError
                oof[va] += self._raw(self._train(X[tr], y[tr], rounds), X[va])
                seen[va] += 1
            seen[seen == 0] = 1
            self.oof = oof / (seen[:, None] if oof.ndim == 2 else seen)
        self.booster = self._train(X, y, rounds)
        return self

    def predict_raw(self, data, offsets, series) -> np.ndarray:
        return self._raw(self.booster, summary_features(series))

    def save(self, folder: Path, stem: str) -> dict:
        (folder / f"{stem}.txt").write_text(self.booster.model_to_string(), encoding="utf-8")
        return {"type": "features_lgbm", "name": self.name, "files": {"model": f"{stem}.txt"}}

    @classmethod
    def load(cls, folder: Path, spec: dict, task: str, n_classes: int) -> "FeatureBoost":
        import lightgbm as lgb

        m = cls(task, n_classes)
        m.booster = lgb.Booster(model_str=(folder / spec["files"]["model"]).read_text(encoding="utf-8"))
        return m


class SeriesEnsemble:
    """Weighted mean of the members' probabilities (or predictions)."""

    def __init__(self, members: list, weights: list[float], task: str) -> None:
        self.members, self.weights, self.task = members, [float(w) for w in weights], task

    def predict_raw(self, data, offsets, series) -> np.ndarray:
        out = None
        for m, w in zip(self.members, self.weights):
            if w <= 0:
                continue
            p = m.predict_raw(data, offsets, series) * w
            out = p if out is None else out + p
        return out / sum(self.weights)

    def save(self, folder: Path) -> list[dict]:
        specs = []
        for i, (m, w) in enumerate(zip(self.members, self.weights)):
            spec = m.save(folder, f"member{i}_{m.name}")
            spec["weight"] = w
            specs.append(spec)
        return specs

    @classmethod
    def load(cls, folder: Path, specs: list[dict], task: str, n_classes: int) -> "SeriesEnsemble":
        types = {"rocket_ridge": RocketRidge, "features_lgbm": FeatureBoost}
        members = []
        for s in specs:
            if s.get("type") not in types:
                raise ValueError(f"unknown series model part {s.get('type')!r}")
            members.append(types[s["type"]].load(folder, s, task, n_classes))
        return cls(members, [s["weight"] for s in specs], task)

    def describe(self) -> str:
        return " + ".join(f"{m.name} x{w:g}" for m, w in zip(self.members, self.weights) if w > 0)

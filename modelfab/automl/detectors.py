"""Anomaly detectors trained on normal data only, saved without pickle.

Every detector follows one small protocol::

    det = make_detector("knn", k=5).fit(X_normal)
    s = det.score(X)                       # higher = more anomalous, one per row
    params, arrays = det.to_state()        # JSON-able dict + plain numeric arrays
    det2 = detector_from_state(params, arrays)   # same scores, no pickle involved

The arrays are numeric (never ``object`` dtype), so they can be written with
``np.savez`` and read back with ``allow_pickle=False``. Scoring is implemented
here with numpy from the stored arrays (scikit-learn is used to *fit* the GMM,
the covariance shrinkage, PCA and the isolation forest), so a saved model does
not depend on the private internals of a scikit-learn version.

Detectors expect features on comparable scales; :class:`~modelfab.automl.anomaly_model.AnomalyModel`
standardises before calling them. ``zmax`` and ``gmm`` and ``mahalanobis`` and
``ecod`` and ``iforest`` are invariant to per-feature scaling anyway; ``knn`` and
``pca`` are not.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..errors import IntegrityError, InvalidInput
from .detector_base import Detector, _Base

__all__ = [
    "DETECTORS",
    "Detector",
    "make_detector",
    "detector_from_state",
]


class ZMax(_Base):
    """Per-feature deviation: the mean of the ``k`` largest |z| in a row.

    A fault usually moves a few features (a frequency band, a modulation
    rate) far outside their normal range while the rest stay put; summing
    squares over all features (Mahalanobis, Gaussian likelihood) dilutes
    such a change with every harmless feature. With ``standardize=False``
    the features are taken as already scaled (the caller's scaler decides
    the unit, e.g. the spread between held-out normal files) and only the
    centre is learned.
    """

    name = "zmax"
    defaults = {"k": 1, "standardize": True}
    cost = 0.05

    def _fit(self, X: np.ndarray) -> None:
        self.center_ = X.mean(axis=0)
        if self.params["standardize"]:
            sd = X.std(axis=0)
            floor = max(1e-12, 1e-3 * float(np.median(sd)) if np.any(sd > 0) else 1e-12)  # see anomaly_prep.Z_CLIP
            self.scale_ = np.maximum(sd, floor)
        else:
            self.scale_ = np.ones(X.shape[1])

    def _score(self, X: np.ndarray) -> np.ndarray:
        z = np.abs((X - self.center_) / self.scale_)
        k = int(min(max(1, self.params["k"]), z.shape[1]))
        if k == 1:
            return z.max(axis=1)
        return np.partition(z, z.shape[1] - k, axis=1)[:, -k:].mean(axis=1)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"center": self.center_, "scale": self.scale_}

    def _load(self, a: dict[str, np.ndarray]) -> None:
        self.center_, self.scale_ = a["center"].astype(np.float64), a["scale"].astype(np.float64)


# --------------------------------------------------------------------------
class GMM(_Base):
    """Gaussian mixture; score = negative log-likelihood per feature.

    ``n_components=1, covariance_type="diag"`` is the classic per-feature
    Gaussian (mean squared z-score). Fitted with scikit-learn, scored here
    from the stored weights, means and Cholesky factors of the precisions.
    """

    name = "gmm"
    defaults = {"n_components": 1, "covariance_type": "diag", "reg_covar": 1e-3, "seed": 0}
    cost = 1.0

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.mixture import GaussianMixture

        k = int(max(1, min(self.params["n_components"], len(X) // 2)))
        ctype = self.params["covariance_type"]
        if ctype not in ("diag", "full", "spherical"):
            raise InvalidInput(f"gmm covariance_type must be diag, full or spherical; got {ctype!r}.")
        gm = GaussianMixture(n_components=k, covariance_type=ctype, reg_covar=float(self.params["reg_covar"]),
                             random_state=int(self.params["seed"]), max_iter=200, n_init=1)
        gm.fit(X)
        self.weights_ = np.asarray(gm.weights_, dtype=np.float64)
        self.means_ = np.asarray(gm.means_, dtype=np.float64)
        pc = np.asarray(gm.precisions_cholesky_, dtype=np.float64)
        if ctype == "spherical":  # store as diag
            pc = np.repeat(pc[:, None], X.shape[1], axis=1)
        self.prec_chol_ = pc
        self.ctype_ = "full" if ctype == "full" else "diag"

    def log_likelihood(self, X: np.ndarray) -> np.ndarray:
        d = X.shape[1]
        comps = []
        for j in range(len(self.weights_)):
            pc = self.prec_chol_[j]
            if self.ctype_ == "full":
                y = X @ pc - self.means_[j] @ pc
                log_det = float(np.sum(np.log(np.diag(pc))))
            else:
                y = (X - self.means_[j]) * pc
                log_det = float(np.sum(np.log(pc)))
            comps.append(-0.5 * (d * math.log(2 * math.pi) + np.sum(y * y, axis=1)) + log_det
                         + math.log(max(self.weights_[j], 1e-300)))
        L = np.stack(comps, axis=1)
        m = L.max(axis=1, keepdims=True)
        return (m + np.log(np.exp(L - m).sum(axis=1, keepdims=True))).ravel()

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self.log_likelihood(X) / X.shape[1]

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "means": self.means_, "prec_chol": self.prec_chol_,
                "full": np.array([self.ctype_ == "full"], dtype=np.int8)}

    def _load(self, a: dict[str, np.ndarray]) -> None:
        self.weights_ = a["weights"].astype(np.float64)
        self.means_ = a["means"].astype(np.float64)
        self.prec_chol_ = a["prec_chol"].astype(np.float64)
        self.ctype_ = "full" if int(a["full"][0]) else "diag"


# --------------------------------------------------------------------------
class Mahalanobis(_Base):
    """Squared Mahalanobis distance / n_features with a Ledoit-Wolf shrunk covariance."""

    name = "mahalanobis"
    defaults: ClassVar[dict] = {}
    cost = 0.3

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf().fit(X)
        self.location_ = np.asarray(lw.location_, dtype=np.float64)
        self.precision_ = np.asarray(lw.get_precision(), dtype=np.float64)

    def _score(self, X: np.ndarray) -> np.ndarray:
        D = X - self.location_
        return np.einsum("ij,jk,ik->i", D, self.precision_, D) / X.shape[1]

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"location": self.location_, "precision": self.precision_}

    def _load(self, a: dict[str, np.ndarray]) -> None:
        self.location_, self.precision_ = a["location"].astype(np.float64), a["precision"].astype(np.float64)


# --------------------------------------------------------------------------
class KNN(_Base):
    """Distance to the ``k`` nearest normal rows (mean of the k, or the k-th).

    Keeps up to ``max_train`` training rows (a seeded subsample beyond that).
    """

    name = "knn"
    defaults = {"k": 5, "method": "mean", "max_train": 5000, "seed": 0}
    cost = 1.0

    def _fit(self, X: np.ndarray) -> None:
        m = int(self.params["max_train"])
        if len(X) > m:
            idx = np.sort(np.random.default_rng(int(self.params["seed"])).choice(len(X), m, replace=False))
            X = X[idx]
        self.train_ = np.ascontiguousarray(X, dtype=np.float64)
        self._sq = np.einsum("ij,ij->i", self.train_, self.train_)

    def _score(self, X: np.ndarray) -> np.ndarray:
        k = int(min(max(1, self.params["k"]), len(self.train_)))
        out = np.empty(len(X))
        step = max(1, 4_000_000 // max(1, len(self.train_)))
        for a in range(0, len(X), step):
            B = X[a:a + step]
            d2 = np.einsum("ij,ij->i", B, B)[:, None] + self._sq[None, :] - 2.0 * (B @ self.train_.T)
            part = np.partition(d2, k - 1, axis=1)[:, :k]
            dist = np.sqrt(np.maximum(part, 0.0))
            out[a:a + step] = dist.max(axis=1) if self.params["method"] == "kth" else dist.mean(axis=1)
        return out

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"train": self.train_}

    def _load(self, a: dict[str, np.ndarray]) -> None:
        self.train_ = np.ascontiguousarray(a["train"], dtype=np.float64)
        self._sq = np.einsum("ij,ij->i", self.train_, self.train_)


# --------------------------------------------------------------------------
class PCADetector(_Base):
    """PCA subspace of normal data; score = residual (SPE) and optionally Hotelling T².

    ``mode="spe"``: squared reconstruction error / its training mean.
    ``mode="spe+t2"``: that plus T² / n_components (both ≈ 1 on normal rows).
    """

    name = "pca"
    defaults = {"variance": 0.9, "mode": "spe+t2"}
    cost = 0.3

    def _fit(self, X: np.ndarray) -> None:
        mean = X.mean(axis=0)
        Xc = X - mean
        _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
        var = s ** 2 / max(1, len(X) - 1)
        total = float(var.sum())
        if total <= 0:
            q = 1
        else:
            q = int(np.searchsorted(np.cumsum(var) / total, float(self.params["variance"])) + 1)
        q = int(min(max(1, q), len(var), max(1, X.shape[1] - 1)))
        self.mean_ = mean
        self.components_ = Vt[:q].copy()
        self.var_ = np.maximum(var[:q], 1e-12)
        spe = self._spe(X)
        self.spe_scale_ = np.array([max(float(spe.mean()), 1e-12)])

    def _spe(self, X: np.ndarray) -> np.ndarray:
        Xc = X - self.mean_
        T = Xc @ self.components_.T
        R = Xc - T @ self.components_
        return np.sum(R * R, axis=1)

    def _score(self, X: np.ndarray) -> np.ndarray:
        s = self._spe(X) / self.spe_scale_[0]
        if self.params["mode"] == "spe+t2":
            T = (X - self.mean_) @ self.components_.T
            s = s + np.sum(T * T / self.var_, axis=1) / len(self.var_)
        return s

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "components": self.components_, "var": self.var_, "spe_scale": self.spe_scale_}

    def _load(self, a: dict[str, np.ndarray]) -> None:
        self.mean_ = a["mean"].astype(np.float64)
        self.components_ = a["components"].astype(np.float64)
        self.var_ = a["var"].astype(np.float64)
        self.spe_scale_ = a["spe_scale"].astype(np.float64)


# --------------------------------------------------------------------------
def _avg_path_length(n: np.ndarray) -> np.ndarray:
    """Average path length of an unsuccessful BST search (Liu et al. 2008), as scikit-learn."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class IForest(_Base):
    """Isolation forest, fitted by scikit-learn; trees stored as flat arrays.

    Scores equal scikit-learn's ``-score_samples`` (the anomaly score in
    (0, 1], higher = more anomalous).
    """

    name = "iforest"
    defaults = {"n_estimators": 200, "max_samples": 256, "max_features": 1.0, "seed": 0}
    cost = 3.0

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.ensemble import IsolationForest

        ms = int(min(self.params["max_samples"], len(X)))
        f = IsolationForest(n_estimators=int(self.params["n_estimators"]), max_samples=ms,
                            max_features=float(self.params["max_features"]),
                            random_state=int(self.params["seed"])).fit(X)
        lefts, rights, feats, thrs, ns, offs = [], [], [], [], [], [0]
        for est, fidx in zip(f.estimators_, f.estimators_features_):
            t = est.tree_
            lefts.append(t.children_left.astype(np.int64))
            rights.append(t.children_right.astype(np.int64))
            feats.append(np.where(t.feature >= 0, np.asarray(fidx)[np.maximum(t.feature, 0)], -1).astype(np.int64))
            thrs.append(t.threshold.astype(np.float64))
            ns.append(t.n_node_samples.astype(np.int64))
            offs.append(offs[-1] + t.node_count)
        self.left_ = np.concatenate(lefts)
        self.right_ = np.concatenate(rights)
        self.feature_ = np.concatenate(feats)
        self.threshold_ = np.concatenate(thrs)
        self.n_node_samples_ = np.concatenate(ns)
        self.offsets_ = np.asarray(offs, dtype=np.int64)
        self.max_samples_ = np.array([int(f.max_samples_)], dtype=np.int64)
        self._prepare()

    def _prepare(self) -> None:
        # depth of every node + expected remaining path at leaves, per tree
        n_nodes = len(self.left_)
        depth = np.zeros(n_nodes)
        for t in range(len(self.offsets_) - 1):
            a, b = self.offsets_[t], self.offsets_[t + 1]
            for node in range(b - a):  # nodes are stored parent-before-child
                i = a + node
                if self.left_[i] >= 0:
                    depth[a + self.left_[i]] = depth[i] + 1
                    depth[a + self.right_[i]] = depth[i] + 1
        self._path_ = depth + _avg_path_length(self.n_node_samples_)

    def _score(self, X: np.ndarray) -> np.ndarray:
        # scikit-learn compares float32 inputs against float64 thresholds
        X32 = X.astype(np.float32).astype(np.float64)
        total = np.zeros(len(X))
        rows = np.arange(len(X))
        n_trees = len(self.offsets_) - 1
        for t in range(n_trees):
            a = self.offsets_[t]
            node = np.zeros(len(X), dtype=np.int64)
            while True:
                left = self.left_[a + node]
                inner = left >= 0
                if not inner.any():
                    break
                g = a + node[inner]
                go_left = X32[rows[inner], self.feature_[g]] <= self.threshold_[g]
                node[inner] = np.where(go_left, left[inner], self.right_[g])
            total += self._path_[a + node]
        depth = total / n_trees
        return 2.0 ** (-depth / _avg_path_length(self.max_samples_)[0])

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"left": self.left_, "right": self.right_, "feature": self.feature_, "threshold": self.threshold_,
                "n_node_samples": self.n_node_samples_, "offsets": self.offsets_, "max_samples": self.max_samples_}

    def _load(self, a: dict[str, np.ndarray]) -> None:
        self.left_ = a["left"].astype(np.int64)
        self.right_ = a["right"].astype(np.int64)
        self.feature_ = a["feature"].astype(np.int64)
        self.threshold_ = a["threshold"].astype(np.float64)
        self.n_node_samples_ = a["n_node_samples"].astype(np.int64)
        self.offsets_ = a["offsets"].astype(np.int64)
        self.max_samples_ = a["max_samples"].astype(np.int64)
        self._prepare()


# --------------------------------------------------------------------------
class ECOD(_Base):
    """Empirical-CDF outlier score (ECOD, Li et al. 2022), per row.

    For each feature the left and right tail probability of a value under
    the training ECDF (with +1 smoothing); the score is the largest of the
    summed -log left tails, -log right tails, and the skewness-chosen tails.
    PyOD's ``ECOD`` recomputes the ECDF on training *plus* the rows being
    scored, so a row's score there depends on its batch; here the ECDF is
    the training data's alone, so scores are per row and reproducible.
    """

    name = "ecod"
    defaults = {"max_train": 20000, "seed": 0}
    cost = 0.3

    def _fit(self, X: np.ndarray) -> None:
        m = int(self.params["max_train"])
        if len(X) > m:
            idx = np.random.default_rng(int(self.params["seed"])).choice(len(X), m, replace=False)
            X = X[idx]
        self.sorted_ = np.sort(X, axis=0)
        mu = X.mean(axis=0)
        sd = X.std(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            skew = np.where(sd > 0, ((X - mu) ** 3).mean(axis=0) / np.maximum(sd, 1e-300) ** 3, 0.0)
        self.skew_ = np.nan_to_num(skew)

    def _score(self, X: np.ndarray) -> np.ndarray:
        n = self.sorted_.shape[0]
        left = np.empty_like(X)
        right = np.empty_like(X)
        for j in range(X.shape[1]):
            col = self.sorted_[:, j]
            left[:, j] = np.searchsorted(col, X[:, j], side="right")   # count <= x
            right[:, j] = n - np.searchsorted(col, X[:, j], side="left")  # count >= x
        ul = -np.log((left + 1.0) / (n + 1.0))
        ur = -np.log((right + 1.0) / (n + 1.0))
        us = np.where(self.skew_ < 0, ul, ur)
        return np.maximum(np.maximum(ul.sum(axis=1), ur.sum(axis=1)), us.sum(axis=1)) / X.shape[1]

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"sorted": self.sorted_, "skew": self.skew_}

    def _load(self, a: dict[str, np.ndarray]) -> None:
        self.sorted_ = a["sorted"].astype(np.float64)
        self.skew_ = a["skew"].astype(np.float64)


# --------------------------------------------------------------------------
_CLASSES: dict[str, type[_Base]] = {c.name: c for c in (ZMax, GMM, Mahalanobis, KNN, PCADetector, IForest, ECOD)}

#: Names of every detector; ``make_detector(name, **params)`` builds one.
DETECTORS: tuple[str, ...] = ("zmax", "gmm", "mahalanobis", "knn", "pca", "iforest", "ecod")


def make_detector(name: str, **params: Any) -> _Base:
    if name not in _CLASSES:
        raise InvalidInput(f"Unknown detector {name!r}; expected one of {', '.join(DETECTORS)}.")
    return _CLASSES[name](**params)


def detector_from_state(params: dict, arrays: dict[str, np.ndarray]) -> _Base:
    name = params.get("name")
    if name not in _CLASSES:
        raise IntegrityError(f"Saved anomaly model names unknown detector {name!r}.")
    return _CLASSES[name].from_state(params, arrays)


def detector_cost(name: str) -> float:
    return _CLASSES[name].cost if name in _CLASSES else 1.0

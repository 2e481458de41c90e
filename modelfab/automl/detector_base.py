"""The protocol every anomaly detector follows and the base class that checks input, keeps parameters and saves
state as JSON-able parameters + plain numeric arrays (never pickle); the detectors are in :mod:`.detectors`."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..errors import IntegrityError, InvalidInput


@runtime_checkable
class Detector(Protocol):
    name: str

    def fit(self, X: np.ndarray) -> "Detector": ...

    def score(self, X: np.ndarray) -> np.ndarray: ...

    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]: ...

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> "Detector": ...


def _as_matrix(X: Any, n_features: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X.reshape(1, -1) if n_features and X.size == n_features else X.reshape(-1, 1)
    if X.ndim != 2:
        raise InvalidInput(f"Expected a 2-D feature matrix (windows x features); got shape {X.shape}.")
    if n_features is not None and X.shape[1] != n_features:
        raise InvalidInput(f"Expected {n_features} features per row; got {X.shape[1]}.",
                           hint="Score with the same feature set the model was trained on.")
    if not np.all(np.isfinite(X)):
        raise InvalidInput("Feature matrix contains NaN or infinite values.",
                           hint="Impute or drop those windows before fitting or scoring.")
    return X


class _Base:
    """Shared plumbing: parameters, feature count, state round trip."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}
    cost: ClassVar[float] = 1.0  # rough relative fit cost, for budget planning

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise InvalidInput(f"Detector {self.name!r} has no parameter(s) {sorted(unknown)}; "
                               f"it takes {sorted(self.defaults)}.")
        self.params = {**self.defaults, **params}
        self.n_features_: int | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def _check_fitted(self) -> None:
        if self.n_features_ is None:
            raise InvalidInput(f"Detector {self.name!r} is not fitted yet; call fit() first.")

    def fit(self, X: np.ndarray) -> "_Base":
        X = _as_matrix(X)
        if len(X) < 2:
            raise InvalidInput(f"Detector {self.name!r} needs at least 2 normal rows to fit; got {len(X)}.")
        self.n_features_ = X.shape[1]
        self._fit(X)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X = _as_matrix(X, self.n_features_)
        if len(X) == 0:
            return np.zeros(0)
        return np.asarray(self._score(X), dtype=np.float64).reshape(-1)

    # subclasses: _fit, _score, _arrays, _load
    def _fit(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        self._check_fitted()
        params = {"name": self.name, "params": _jsonable(self.params), "n_features": int(self.n_features_)}
        arrays = {k: np.ascontiguousarray(v) for k, v in self._arrays().items()}
        for k, v in arrays.items():
            if v.dtype == object or v.dtype.kind not in "biuf":
                raise IntegrityError(f"Detector array {k!r} has dtype {v.dtype}; only numeric arrays are stored.")
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> "_Base":
        if params.get("name") != cls.name:
            raise IntegrityError(f"State is for detector {params.get('name')!r}, not {cls.name!r}.")
        det = cls(**params.get("params", {}))
        det.n_features_ = int(params["n_features"])
        try:
            det._load({k: np.asarray(v) for k, v in arrays.items()})
        except KeyError as exc:
            raise IntegrityError(f"Saved {cls.name!r} detector is missing array {exc}.") from None
        return det


def _jsonable(obj: Any, *, strict: bool = False) -> Any:
    """A JSON-ready copy: dict keys as strings, tuples as lists, numpy scalars as Python numbers.

    ``strict`` (an anomaly model's free-form ``meta``) also turns arrays into
    lists and non-finite floats into None; detector parameters are converted
    without it.
    """
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, strict=strict) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, strict=strict) for v in obj]
    if strict and isinstance(obj, np.ndarray):
        return [_jsonable(v, strict=strict) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    if strict and isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj

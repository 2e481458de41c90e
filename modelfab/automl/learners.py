"""Fitted learners and their non-pickle file formats.

Every learner is saved as LightGBM text, XGBoost JSON, a network's arrays
(``.npz`` read with ``allow_pickle=False``, automl/neural.py), or skops with an
explicit list of trusted types. Loading never unpickles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import IntegrityError

# Types a skops file of ours may contain; anything else is refused.
SKOPS_TRUSTED = [
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.pipeline.Pipeline",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "numpy.int32",
    "numpy.float32",
    "numpy.bool_",
    "numpy.str_",
    "builtins.slice",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.bool",
    "builtins.NoneType",
]


def _skops_io():
    """``skops.io``. Its import lists every scikit-learn estimator by importing every scikit-learn module,
    including the array-API adapter for torch, which imports torch when it is installed (the image-backbone
    extra): 2.1 s instead of 0.5 s, paid inside a training budget. torch arrays never reach our models, so
    while skops is imported for the first time that adapter is a placeholder (removed again afterwards)."""
    import sys

    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io as sio

        return sio
    import types

    name = "sklearn.externals.array_api_compat.torch"
    stub = types.ModuleType(name)
    sys.modules.setdefault(name, stub)
    try:
        import skops.io as sio
    finally:
        if sys.modules.get(name) is stub:
            del sys.modules[name]
    return sio


def skops_types(path: Path) -> set[str]:
    """Every type a skops file would construct, read from its schema (no loading)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            schema = json.loads(zf.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IntegrityError(f"{path.name} is not a valid skops file ({exc}).") from None
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node:
                found.add(f"{node.get('__module__', '')}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found

SMALL_PREDICT_ROWS = 256  # up to this many rows LightGBM predicts on one thread (see predict_raw)
FORMAT_FILES = {"lightgbm-text": "model.txt", "xgboost-json": "model.json", "skops": "model.skops",
                "mlp-npz": "model.npz"}


class FittedLearner:
    """A fitted model behind one interface: ``predict_raw(X)``.

    For classification ``predict_raw`` returns class probabilities
    ``(n, n_classes)``; for regression, predictions ``(n,)``.
    """

    def __init__(self, fmt: str, obj, task: str, n_classes: int, classes: list[int] | None = None) -> None:
        self.format = fmt
        self.obj = obj
        self.task = task
        self.n_classes = n_classes
        self.classes = classes

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.format == "lightgbm-text":
            # Few rows: one thread. Waking LightGBM's thread pool costs more than the trees of a small request
            # (one row: 80 us on one thread, 300-450 us on all cores of a busy 2-core machine).
            out = self.obj.predict(X, num_threads=1) if len(X) <= SMALL_PREDICT_ROWS else self.obj.predict(X)
        elif self.format == "xgboost-json":
            import xgboost as xgb

            out = self.obj.predict(xgb.DMatrix(X, missing=np.nan))
        elif self.format == "mlp-npz":
            out = self.obj.predict(X)
        else:
            out = self.obj.predict_proba(X) if self.task == "classification" else self.obj.predict(X)
        out = np.asarray(out, dtype=np.float64)
        if self.task != "classification":
            return out.reshape(-1)
        if out.ndim == 1:  # binary, probability of class 1
            out = np.column_stack([1.0 - out, out])
        if out.shape[1] != self.n_classes:  # estimator saw a subset of classes
            full = np.zeros((len(out), self.n_classes))
            cls = self.classes if self.classes is not None else list(getattr(self.obj, "classes_", range(out.shape[1])))
            for j, c in enumerate(cls):
                full[:, int(c)] = out[:, j]
            out = full
        return out

    # -- save / load ------------------------------------------------------
    def save(self, folder: Path, stem: str = "model") -> str:
        path = folder / FORMAT_FILES[self.format].replace("model", stem, 1)
        if self.format == "lightgbm-text":
            path.write_text(self.obj.model_to_string(), encoding="utf-8")
        elif self.format == "xgboost-json":
            self.obj.save_model(str(path))
        elif self.format == "mlp-npz":
            self.obj.save(path)
        else:
            _skops_io().dump(self.obj, path)
        return path.name

    @classmethod
    def load(cls, folder: Path, fmt: str, task: str, n_classes: int, classes: list[int] | None,
             file: str | None = None) -> "FittedLearner":
        if fmt not in FORMAT_FILES:
            raise IntegrityError(f"Unknown model file format {fmt!r}; expected one of {sorted(FORMAT_FILES)}.")
        path = folder / (file or FORMAT_FILES[fmt])
        if path.parent != folder or not path.is_file():
            raise IntegrityError(f"Model file {file!r} is missing from the package.")
        if fmt == "lightgbm-text":
            import lightgbm as lgb

            obj = lgb.Booster(model_str=path.read_text(encoding="utf-8"))
        elif fmt == "xgboost-json":
            import xgboost as xgb

            obj = xgb.Booster()
            obj.load_model(str(path))
        elif fmt == "mlp-npz":
            from .neural import MLPModel

            obj = MLPModel.load(path)
        else:
            sio = _skops_io()
            untrusted = sorted(skops_types(path) - set(SKOPS_TRUSTED))
            if untrusted:
                raise IntegrityError(
                    f"{path.name} contains types that are not on modelfab's trusted list: {untrusted[:5]}. Refusing to load it."
                )
            obj = sio.load(path, trusted=SKOPS_TRUSTED)
        return cls(fmt, obj, task, n_classes, classes)


def from_flaml(learner_name: str, estimator, task: str, n_classes: int) -> FittedLearner:
    """Wrap the sklearn-API estimator that FLAML fitted into a FittedLearner."""
    classes = None
    if hasattr(estimator, "classes_"):
        classes = [int(c) for c in np.asarray(estimator.classes_)]
    if hasattr(estimator, "booster_"):  # LightGBM sklearn API
        return FittedLearner("lightgbm-text", estimator.booster_, task, n_classes, classes)
    if hasattr(estimator, "get_booster"):  # XGBoost sklearn API
        return FittedLearner("xgboost-json", estimator.get_booster(), task, n_classes, classes)
    return FittedLearner("skops", estimator, task, n_classes, classes)


class EnsembleLearner:
    """A weighted average of fitted learners' outputs (probabilities or values)."""

    format = "ensemble"

    def __init__(self, members: list[FittedLearner], weights: list[float], names: list[str], configs: list[dict]):
        total = float(sum(weights))
        self.members, self.weights = members, [w / total for w in weights]
        self.names, self.configs = names, configs
        self.task = members[0].task
        self.classes = None

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        out = None
        for m, w in zip(self.members, self.weights):
            p = m.predict_raw(X) * w
            out = p if out is None else out + p
        return out

    def save(self, folder: Path, stem: str = "model") -> str:
        specs = []
        for i, (m, w, name, cfg) in enumerate(zip(self.members, self.weights, self.names, self.configs)):
            file = m.save(folder, f"{stem}_{i}")
            specs.append({"name": name, "format": m.format, "file": file, "weight": w, "classes": m.classes, "config": cfg})
        self.specs = specs
        return ",".join(s["file"] for s in specs)

    @classmethod
    def load(cls, folder: Path, specs: list[dict], task: str, n_classes: int) -> "EnsembleLearner":
        if not isinstance(specs, list) or not specs:
            raise IntegrityError("Ensemble manifest lists no members.")
        members = [FittedLearner.load(folder, s["format"], task, n_classes, s.get("classes"), s["file"]) for s in specs]
        return cls(members, [float(s["weight"]) for s in specs], [s["name"] for s in specs], [s.get("config", {}) for s in specs])


def load_learner(folder: Path, spec: dict, task: str, n_classes: int):
    if spec.get("format") == "ensemble":
        return EnsembleLearner.load(folder, spec.get("members"), task, n_classes)
    return FittedLearner.load(folder, spec.get("format", ""), task, n_classes, spec.get("classes"), spec.get("file"))


def feature_importance(learner, feature_names: list[str]) -> dict[str, float]:
    if isinstance(learner, EnsembleLearner):
        total: dict[str, float] = {}
        for m, w in zip(learner.members, learner.weights):
            for k, v in feature_importance(m, feature_names).items():
                total[k] = total.get(k, 0.0) + w * v
        return dict(sorted(total.items(), key=lambda p: -p[1]))
    imp = None
    if learner.format == "lightgbm-text":
        imp = learner.obj.feature_importance(importance_type="gain")
    elif learner.format == "xgboost-json":
        scores = learner.obj.get_score(importance_type="gain")
        imp = np.array([scores.get(f"f{i}", 0.0) for i in range(len(feature_names))])
    elif hasattr(learner.obj, "feature_importances_"):
        imp = learner.obj.feature_importances_
    if imp is None or len(imp) != len(feature_names):
        return {}
    imp = np.asarray(imp, dtype=float)
    total = imp.sum() or 1.0
    pairs = sorted(zip(feature_names, imp / total), key=lambda p: -p[1])
    return {k: float(v) for k, v in pairs}

"""Large tables: a small neural network (MLP) as a third member beside the finished boosters.

Trees cut the feature space into boxes; a network draws smooth boundaries.
On tables where the classes differ along combinations of many numeric
sensors, averaging the two kinds is better than either alone (measured on
the 100k x 50 benchmark table: the boosters 0.9753 ROC AUC, the network
0.9752, their average 0.9759). The caller keeps the network only when a
blend with it validates better on the same rows.

The network is trained with scikit-learn (``MLPClassifier`` /
``MLPRegressor``, one ``partial_fit`` per epoch, early stopping on the
validation rows, a wall-clock deadline), then kept as plain arrays: saved
as an ``.npz`` read with ``allow_pickle=False``, predicted with numpy, and
exported to ONNX as MatMul/Add/Relu (modelfab/export/onnx_trees.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import IntegrityError

HIDDEN = (64, 32)
PATIENCE = 6         # epochs without a better validation loss before stopping
MIN_EPOCHS = 3       # a network whose (pessimistic) epoch time does not fit this many times is not tried
FLOPS_PER_S = 3e9    # a pessimistic speed of one training epoch (measured ~6e9 on a 2-core machine)
CLIP = 6.0           # standardised inputs are clipped to +-CLIP standard deviations


class MLPModel:
    """Fitted networks as arrays: median fill, standardisation, then for each network dense ReLU layers and an
    output layer; the outputs of several networks (different seeds) are averaged."""

    def __init__(self, fill, mean, scale, nets: list[tuple[list, list]], out: str, y_mean: float = 0.0,
                 y_scale: float = 1.0) -> None:
        if out not in ("logistic", "softmax", "identity"):
            raise IntegrityError(f"Unknown network output {out!r}; expected logistic, softmax or identity.")
        if not nets:
            raise IntegrityError("A network file holds no network.")
        self.fill, self.mean, self.scale = (np.asarray(a, dtype=np.float64) for a in (fill, mean, scale))
        self.nets = [([np.asarray(w, dtype=np.float64) for w in ws], [np.asarray(b, dtype=np.float64) for b in bs])
                     for ws, bs in nets]
        self.out, self.y_mean, self.y_scale = out, float(y_mean), float(y_scale)

    @property
    def n_outputs(self) -> int:
        return len(self.nets[0][1][-1])

    def standardise(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return np.clip((np.where(np.isnan(X), self.fill, X) - self.mean) / self.scale, -CLIP, CLIP)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (``n, k``; ``n,`` of class 1 for two classes) or values (``n,``)."""
        z0 = self.standardise(X)
        total = None
        for weights, biases in self.nets:
            h = z0
            for w, b in zip(weights[:-1], biases[:-1]):
                h = np.maximum(h @ w + b, 0.0)
            z = h @ weights[-1] + biases[-1]
            if self.out == "logistic":
                part = 1.0 / (1.0 + np.exp(-z[:, 0]))
            elif self.out == "softmax":
                z = np.exp(z - z.max(axis=1, keepdims=True))
                part = z / z.sum(axis=1, keepdims=True)
            else:
                part = z[:, 0] * self.y_scale + self.y_mean
            total = part if total is None else total + part
        return total / len(self.nets)

    def save(self, path: Path) -> None:
        arrays = {"fill": self.fill, "mean": self.mean, "scale": self.scale, "out": np.array(self.out),
                  "y": np.array([self.y_mean, self.y_scale]),
                  "layers": np.array([len(ws) for ws, _ in self.nets])}
        for n, (ws, bs) in enumerate(self.nets):
            for i, (w, b) in enumerate(zip(ws, bs)):
                arrays[f"w{n}_{i}"], arrays[f"b{n}_{i}"] = w, b
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> "MLPModel":
        try:
            with np.load(path, allow_pickle=False) as z:
                nets = [([z[f"w{n}_{i}"] for i in range(int(k))], [z[f"b{n}_{i}"] for i in range(int(k))])
                        for n, k in enumerate(np.atleast_1d(z["layers"]))]
                y_mean, y_scale = (float(v) for v in z["y"])
                model = cls(z["fill"], z["mean"], z["scale"], nets, str(z["out"]), y_mean, y_scale)
        except IntegrityError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt zip, a plain .npy, missing arrays, pickled objects
            raise IntegrityError(f"{path.name} is not a valid network file ({type(exc).__name__}: {exc}).") from None
        if not (model.fill.shape == model.scale.shape == model.mean.shape and model.mean.ndim == 1):
            raise IntegrityError(f"{path.name}: the network's input scaling arrays do not fit together.")
        for ws, bs in model.nets:
            width = len(model.mean)
            for w, b in zip(ws, bs):
                if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                    raise IntegrityError(f"{path.name}: the network's layer shapes do not fit together.")
                width = w.shape[1]
            if width != model.n_outputs or (model.out != "softmax" and width != 1):
                raise IntegrityError(f"{path.name}: the networks do not have the same outputs.")
        return model


def _scaling(X: np.ndarray):
    fill = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0) if len(X) else np.zeros(X.shape[1])
    fill = np.where(np.isfinite(fill), fill, 0.0)
    Z = np.where(np.isfinite(X), X, fill)
    mean, scale = Z.mean(axis=0), Z.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return fill, mean, scale


def epoch_seconds(n_rows: int, n_features: int, n_outputs: int = 1) -> float:
    """A pessimistic estimate of one training epoch (forward and backward pass over every row)."""
    sizes = (n_features,) + HIDDEN + (n_outputs,)
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 6.0 * n_rows * macs / FLOPS_PER_S + 0.02


class _Trainer:
    """One network fitted epoch by epoch on standardised rows."""

    def __init__(self, X, y, task: str, n_classes: int, seed: int, sample_weight=None) -> None:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        self.task, self.n_classes = task, n_classes
        self.fill, self.mean, self.scale = _scaling(X)
        self.y_mean, self.y_scale = 0.0, 1.0
        if task == "regression":
            self.y_mean, self.y_scale = float(np.mean(y)), float(np.std(y)) or 1.0
        self.Z = self._z(X)
        self.y = y if task == "classification" else (np.asarray(y, dtype=np.float64) - self.y_mean) / self.y_scale
        self.w = sample_weight
        self.cls = MLPClassifier if task == "classification" else MLPRegressor
        self.restart(seed)

    def restart(self, seed: int) -> None:
        """A new network (another seed) on the same rows."""
        self.net = self.cls(hidden_layer_sizes=HIDDEN, alpha=1e-4, batch_size=256, learning_rate_init=1e-3,
                            random_state=seed)

    def _z(self, X) -> np.ndarray:
        # training: an infinite value counts as missing (at prediction it is clipped to +-CLIP, as in ONNX)
        return np.clip((np.where(np.isfinite(X), X, self.fill) - self.mean) / self.scale, -CLIP, CLIP).astype(np.float32)

    def epoch(self) -> None:
        extra = {"classes": np.arange(self.n_classes)} if self.task == "classification" else {}
        if self.w is not None:  # partial_fit takes sample_weight from scikit-learn 1.7 on
            extra["sample_weight"] = self.w
        self.net.partial_fit(self.Z, self.y, **extra)

    def arrays(self) -> tuple[list, list]:
        return [c.copy() for c in self.net.coefs_], [b.copy() for b in self.net.intercepts_]

    def model(self, nets: list | None = None) -> MLPModel:
        """The model of this trainer's network (or of ``nets``, fitted on the same rows)."""
        out = "identity" if self.task == "regression" else ("logistic" if self.n_classes == 2 else "softmax")
        return MLPModel(self.fill, self.mean, self.scale, nets or [self.arrays()], out, self.y_mean, self.y_scale)


def _loss(task: str, n_classes: int, y, raw) -> float:
    if task == "regression":
        return float(np.mean((np.asarray(y, dtype=np.float64) - raw) ** 2))
    p = raw if raw.ndim == 2 else np.column_stack([1.0 - raw, raw])
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1.0))))


def _fit_one(trainer: _Trainer, X_val, y_val, task: str, n_classes: int, deadline: float):
    """Epochs until PATIENCE epochs bring no better validation loss or the next epoch would pass ``deadline``:
    (best arrays, best epoch, epochs run, stopped by the deadline)."""
    best, best_epoch, best_arrays, epochs = np.inf, 0, None, 0
    while epochs - best_epoch < PATIENCE:
        t = time.monotonic()
        trainer.epoch()
        epochs += 1
        arrays = trainer.arrays()
        loss = _loss(task, n_classes, y_val, trainer.model([arrays]).predict(X_val))
        if not np.isfinite(loss):
            break
        if loss < best:
            best, best_epoch, best_arrays = loss, epochs, arrays
        if time.monotonic() + (time.monotonic() - t) > deadline:
            return best_arrays, best_epoch, epochs, True
    return best_arrays, best_epoch, epochs, False


def finish_mlp(X_fit, y_fit, X_val, y_val, *, task: str, metric: str, n_classes: int, seconds: float, seed: int,
               sample_weight: np.ndarray | None = None):
    """Networks fitted on the fit rows with early stopping on the validation rows, within ``seconds``: one,
    and a second one (another seed) averaged with it when the time left holds it (two average out much of
    the luck of one). boost.Finished with name "mlp"; None when not even MIN_EPOCHS epochs fit or it cannot
    be scored."""
    from .boost import Finished, val_loss
    from .learners import FittedLearner

    outputs = 1 if task == "regression" or n_classes == 2 else n_classes
    if seconds < MIN_EPOCHS * epoch_seconds(len(X_fit), X_fit.shape[1], outputs) or len(X_fit) < 100:
        return None
    deadline = time.monotonic() + seconds
    trainer = _Trainer(X_fit, y_fit, task, n_classes, seed, sample_weight)
    nets, epochs, fit_s, stopped, loss, first_s, learner = [], [], 0.0, False, np.inf, 0.0, None
    for k in range(2):
        t0 = time.monotonic()
        if k:
            if t0 + first_s * 1.2 > deadline:  # the first one's whole time says a second one would not fit
                break
            trainer.restart(seed + k)
        arrays, best_epoch, ran, stopped = _fit_one(trainer, X_val, y_val, task, n_classes, deadline)
        if arrays is None:
            break
        candidate = FittedLearner("mlp-npz", trainer.model(nets + [arrays]), task, n_classes,
                                  list(range(n_classes)) if n_classes else None)
        try:
            new_loss = val_loss(metric, task, n_classes, y_val, candidate.predict_raw(X_val))
        except ValueError:
            return None
        if not new_loss < loss:  # a second network that does not make the average better is left out
            break
        nets.append(arrays)
        epochs.append(best_epoch)
        loss, learner = new_loss, candidate
        first_s = first_s or time.monotonic() - t0
        fit_s += (time.monotonic() - t0) * best_epoch / max(1, ran)  # the epochs a refit will run
        if stopped:
            break
    if learner is None:
        return None
    config = {"hidden": list(HIDDEN), "epochs": epochs, "seeds": [seed + k for k in range(len(nets))],
              "alpha": 1e-4, "batch_size": 256}
    return Finished(learner, config, loss, sum(epochs), fit_s, stopped, _Trainer, {"seed": seed}, "mlp")


def refit_mlp(done, X, y, *, task: str, n_classes: int, seconds: float, sample_weight=None, n_fit: int):
    """The networks of ``done`` fitted again on all rows for as many epochs each; None when their own time says
    they would not fit in ``seconds``, or they turn out slower than that."""
    from .learners import FittedLearner

    if done.fit_s * len(y) / max(1, n_fit) * 1.3 > seconds:
        return None
    deadline = time.monotonic() + seconds
    trainer = _Trainer(X, y, task, n_classes, int(done.config["seeds"][0]), sample_weight)
    nets = []
    for k, (seed, epochs) in enumerate(zip(done.config["seeds"], done.config["epochs"])):
        if k:
            trainer.restart(int(seed))
        last = 0.0
        for _ in range(int(epochs)):
            if time.monotonic() + last >= deadline:  # slower than its own time said: keep the fit rows' networks
                return None
            t = time.monotonic()
            trainer.epoch()
            last = time.monotonic() - t
        nets.append(trainer.arrays())
    return FittedLearner("mlp-npz", trainer.model(nets), task, n_classes, list(range(n_classes)) if n_classes else None)

"""Large tables: finish the search's best LightGBM and XGBoost with a lower learning rate and early stopping.

FLAML's cost-frugal search on a large table spends its time on small, fast
models (few trees, a high learning rate), because every trial is a full fit.
After the search, the best LightGBM configuration (and, with the time left,
the best XGBoost one) is fitted once more with a lower learning rate and as
many trees as the validation rows ask for (early stopping), stopped at a
wall-clock deadline; a small network (neural.py) is fitted beside them. The
caller keeps whichever of the search's best model, the finished models and
their averages scores best on the same validation rows (different kinds of
model averaged are usually a little better than either), and once the
holdout has been scored, the engine fits the chosen ones again on every row
(RefitPlan): a model that learns from the holdout rows too is better than
the one the holdout measured.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

from .learners import FittedLearner, from_flaml

VAL_FRACTION = 0.1   # validation rows held out of the search's training rows (FLAML's own holdout ratio)
MIN_TREES = 40       # a finishing fit that cannot reach this many trees in its time is not tried


def finish_share(search_s: float) -> float:
    """Share of the search time kept for the finishing fits and the refit of the chosen models on every row:
    60% of a short search (a minute), falling to 15% of a long one (early stopping usually ends the fits well
    before their time)."""
    if search_s <= 0:
        return 0.0
    return min(0.6 * search_s, max(30.0, 0.15 * search_s)) / search_s


def validation_split(y: np.ndarray, task: str, groups: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows) of the search's training rows: stratified, or by group."""
    from ..splits import holdout_split

    return holdout_split(y if task == "classification" and groups is None else None, len(y), groups=groups,
                         fraction=VAL_FRACTION, seed=seed)


def val_loss(metric: str, task: str, n_classes: int, y: np.ndarray, raw: np.ndarray) -> float:
    """The metric of ``raw`` (probabilities or values) on ``y`` as a loss (lower is better)."""
    from sklearn import metrics as m

    if task == "regression":
        funcs = {"r2": lambda: -m.r2_score(y, raw), "rmse": lambda: m.mean_squared_error(y, raw) ** 0.5,
                 "mse": lambda: m.mean_squared_error(y, raw), "mae": lambda: m.mean_absolute_error(y, raw),
                 "mape": lambda: m.mean_absolute_percentage_error(y, raw)}
        return float(funcs[metric]())
    labels = list(range(n_classes))
    pred = raw.argmax(axis=1)
    funcs = {
        "roc_auc": lambda: -(m.roc_auc_score(y, raw[:, 1]) if n_classes == 2
                             else m.roc_auc_score(y, raw, multi_class="ovr", labels=labels)),
        "log_loss": lambda: m.log_loss(y, np.clip(raw, 1e-15, 1), labels=labels),
        "accuracy": lambda: -m.accuracy_score(y, pred),
        "f1": lambda: -m.f1_score(y, pred),
        "macro_f1": lambda: -m.f1_score(y, pred, average="macro", labels=labels),
        "micro_f1": lambda: -m.f1_score(y, pred, average="micro", labels=labels),
        "ap": lambda: -m.average_precision_score(y, raw[:, 1]),
        "balanced_accuracy": lambda: -m.balanced_accuracy_score(y, pred),
    }
    return float(funcs[metric]())


class _StopRule:
    """LightGBM callback: early stopping on the first validation metric, and a wall-clock deadline."""

    def __init__(self, patience: int, deadline: float) -> None:
        self.patience, self.deadline = patience, deadline
        self.best, self.best_iter, self.best_list = np.inf, -1, None
        self.stopped_by_deadline = False

    def __call__(self, env) -> None:
        from lightgbm.callback import EarlyStopException

        _, _, value, greater = env.evaluation_result_list[0][:4]
        loss = -value if greater else value
        if loss < self.best:
            self.best, self.best_iter, self.best_list = loss, env.iteration, env.evaluation_result_list
        if env.iteration - self.best_iter >= self.patience:
            raise EarlyStopException(self.best_iter, self.best_list)
        if time.monotonic() >= self.deadline:
            self.stopped_by_deadline = True
            raise EarlyStopException(self.best_iter, self.best_list)


def _rate(params: dict, seconds: float, time_per_tree: float | None) -> tuple[float, int] | None:
    """(learning rate, early-stopping patience) for a finishing fit of ``seconds``; None when not even
    MIN_TREES trees fit."""
    lr0 = float(params.get("learning_rate", 0.1))
    affordable = seconds / time_per_tree if time_per_tree and time_per_tree > 0 else 1000.0
    if affordable < MIN_TREES:
        return None
    # Learning rate x trees of about 40 reach early stopping on most tables: the rate that lets that many trees
    # fit in the time, between 0.03 and the default 0.1 (or the searched rate, when that is higher).
    lr = float(np.clip(40.0 / affordable, 0.03, max(0.1, lr0)))
    return lr, int(np.clip(3.0 / lr, 20, 100))


def _eval_metric(task: str, metric: str, n_classes: int) -> str:
    if task == "classification":
        return "binary_logloss" if n_classes == 2 else "multi_logloss"
    return "l1" if metric in ("mae", "mape") else "l2"


@dataclass
class Finished:
    learner: FittedLearner
    config: dict
    val_loss: float
    trees: int
    fit_s: float
    stopped_by_deadline: bool
    estimator_class: type
    params: dict
    name: str = "lgbm"


def finish_lgbm(lgbm_class, config: dict, X_fit, y_fit, X_val, y_val, *, task: str, metric: str, n_classes: int,
                seconds: float, n_jobs: int, seed: int, time_per_tree: float | None,
                sample_weight: np.ndarray | None = None) -> Finished | None:
    """Fit ``config`` (FLAML's LightGBM config) with a learning rate the time allows and early stopping on the
    validation rows, within ``seconds``; None when not even MIN_TREES trees fit."""
    est = lgbm_class(task=task, n_jobs=n_jobs, **dict(config))
    params = dict(est.params)
    rate = _rate(params, seconds, time_per_tree)
    if rate is None:
        return None
    lr, patience = rate
    params.update(learning_rate=lr, n_estimators=100_000, random_state=seed)
    eval_metric = _eval_metric(task, metric, n_classes)
    rule = _StopRule(patience, time.monotonic() + seconds)
    model = est.estimator_class(**params)
    t0 = time.monotonic()
    with warnings.catch_warnings():  # LightGBM 4.6 deprecates eval_set for eval_X/eval_y; older ones lack those
        warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")
        model.fit(X_fit, y_fit, sample_weight=sample_weight, eval_set=[(X_val, y_val)], eval_metric=eval_metric,
                  callbacks=[rule])
    fit_s = time.monotonic() - t0
    best = max(1, rule.best_iter + 1)
    if best < 2 or (rule.stopped_by_deadline and best < MIN_TREES):
        # cut short at a few trees of a low learning rate: its probabilities hug the base rate (a 2M-row table
        # under load answered 0.22-0.32 for every row and never the rare class); the search's model stays
        return None
    import lightgbm as lgb

    booster = lgb.Booster(model_str=model.booster_.model_to_string(num_iteration=best))
    return _finished("lightgbm-text", booster, model, config, lr, best, X_val, y_val, task=task, metric=metric,
                     n_classes=n_classes, fit_s=fit_s, stopped=rule.stopped_by_deadline,
                     estimator_class=est.estimator_class, params=params, name="lgbm")


def _finished(fmt: str, booster, model, config: dict, lr: float, best: int, X_val, y_val, *, task: str, metric: str,
              n_classes: int, fit_s: float, stopped: bool, estimator_class: type, params: dict,
              name: str) -> Finished | None:
    """The Finished record of a booster trimmed to ``best`` trees, scored on the validation rows; None when it
    cannot be scored there (e.g. a class missing from the validation rows: no fair comparison)."""
    classes = [int(c) for c in np.asarray(model.classes_)] if task == "classification" else None
    learner = FittedLearner(fmt, booster, task, n_classes, classes)
    try:
        loss = val_loss(metric, task, n_classes, y_val, learner.predict_raw(X_val))
    except ValueError:
        return None
    cfg = {k: v for k, v in dict(config).items() if k != "FLAML_sample_size"}
    cfg.update(n_estimators=best, learning_rate=lr)
    return Finished(learner, cfg, loss, best, fit_s, stopped, estimator_class, dict(params, n_estimators=best), name)


def finish_xgb(xgb_class, name: str, config: dict, X_fit, y_fit, X_val, y_val, *, task: str, metric: str,
               n_classes: int, seconds: float, n_jobs: int, seed: int, time_per_tree: float | None,
               sample_weight: np.ndarray | None = None) -> Finished | None:
    """The same for FLAML's best XGBoost configuration (``name`` "xgboost" or "xgb_limitdepth")."""
    import xgboost as xgb

    est = xgb_class(task=task, n_jobs=n_jobs, **dict(config))
    params = dict(est.params)
    rate = _rate(params, seconds, time_per_tree)
    if rate is None:
        return None
    lr, patience = rate
    deadline = time.monotonic() + seconds

    class Deadline(xgb.callback.TrainingCallback):
        stopped = False

        def after_iteration(self, model, epoch, evals_log) -> bool:
            Deadline.stopped = time.monotonic() >= deadline
            return Deadline.stopped

    metric_name = {"binary_logloss": "logloss", "multi_logloss": "mlogloss", "l1": "mae", "l2": "rmse"}[
        _eval_metric(task, metric, n_classes)]
    params.update(learning_rate=lr, n_estimators=100_000, random_state=seed, early_stopping_rounds=patience,
                  eval_metric=metric_name, callbacks=[Deadline()])
    params.setdefault("tree_method", "hist")
    model = est.estimator_class(**params)
    t0 = time.monotonic()
    model.fit(X_fit, y_fit, sample_weight=sample_weight, eval_set=[(X_val, y_val)], verbose=False)
    fit_s = time.monotonic() - t0
    best = int(getattr(model, "best_iteration", 0) or 0) + 1
    if best < 2 or (Deadline.stopped and best < MIN_TREES):  # cut short: see finish_lgbm
        return None
    kept = {k: v for k, v in params.items() if k not in ("callbacks", "early_stopping_rounds", "eval_metric")}
    return _finished("xgboost-json", model.get_booster()[:best], model, config, lr, best, X_val, y_val, task=task,
                     metric=metric, n_classes=n_classes, fit_s=fit_s, stopped=Deadline.stopped,
                     estimator_class=est.estimator_class, params=kept, name=name)


def blend(members: list[Finished], X_val, y_val, *, task: str, metric: str, n_classes: int):
    """(EnsembleLearner of ``members`` with equal weights, its validation loss), or None when it cannot be
    scored."""
    learner = _average(members, [d.learner for d in members])
    try:
        return learner, val_loss(metric, task, n_classes, y_val, learner.predict_raw(X_val))
    except ValueError:
        return None


def choose(done: list[Finished], X_val, y_val, *, task: str, metric: str, n_classes: int):
    """(members, learner, validation loss) of the best of: each finished model alone, and every equal-weight
    average of two or more of them, all scored on the same validation rows (each model predicts them once)."""
    from itertools import combinations

    raw = [d.learner.predict_raw(X_val) for d in done]
    best = min(range(len(done)), key=lambda i: done[i].val_loss)
    picked, loss = (best,), done[best].val_loss
    for k in range(2, len(done) + 1):
        for members in combinations(range(len(done)), k):
            try:
                mixed = val_loss(metric, task, n_classes, y_val, sum(raw[i] for i in members) / k)
            except ValueError:
                continue
            if mixed < loss:
                picked, loss = members, mixed
    chosen = [done[i] for i in picked]
    if len(chosen) == 1:
        return chosen, chosen[0].learner, loss
    return chosen, _average(chosen, [d.learner for d in chosen]), loss


def _average(members: list[Finished], learners: list):
    """The equal-weight EnsembleLearner of ``learners`` (the fitted models of ``members``, or their refits)."""
    from .learners import EnsembleLearner

    return EnsembleLearner(learners, [1.0] * len(learners), [d.name for d in members], [d.config for d in members])


@dataclass
class RefitPlan:
    """The chosen finished models, to be fitted again on every row once the holdout has been scored."""

    members: list[Finished]
    n_fit: int  # rows the members were fitted on

    def run(self, X, y, *, task: str, n_classes: int, seconds: float,
            sample_weight: np.ndarray | None = None) -> tuple[object, int]:
        """(learner, members refit): each member is refit on all rows when its own fit time says it fits in
        what is left of ``seconds``; a member that does not fit stays as it was."""
        deadline = time.monotonic() + seconds
        learners, refit = [], 0
        for d in self.members:
            try:
                new = refit_all(d, X, y, task=task, n_classes=n_classes, seconds=deadline - time.monotonic(),
                                sample_weight=sample_weight, n_fit=self.n_fit)
            except Exception:  # noqa: BLE001 - e.g. out of memory or values a library refuses: keep the member
                log.warning("refit of %s on every row failed; the model fitted without the holdout is kept",
                            d.name, exc_info=True)
                new = None
            refit += new is not None
            log.info("refit %s on %d rows: %s", d.name, len(y), "done" if new is not None else "skipped")
            learners.append(new or d.learner)
        if len(learners) == 1:
            return learners[0], refit
        return _average(self.members, learners), refit


def refit_all(done: Finished, X, y, *, task: str, n_classes: int, seconds: float,
              sample_weight: np.ndarray | None = None, n_fit: int) -> FittedLearner | None:
    """Refit the finished model on all rows (fit + validation) with as many trees, scaled to the extra rows,
    when the time it took says it fits in ``seconds``; None otherwise."""
    if done.name == "mlp":
        from .neural import refit_mlp

        return refit_mlp(done, X, y, task=task, n_classes=n_classes, seconds=seconds, sample_weight=sample_weight,
                         n_fit=n_fit)
    per_tree = done.fit_s / max(1, done.trees)  # includes the trees after the best one: a safe estimate
    trees = int(round(done.trees * len(y) / max(1, n_fit)))
    # Each tree costs more on more rows, less than in proportion (measured: 1.39x the rows and trees, 1.5x the time).
    if per_tree * trees * (len(y) / max(1, n_fit)) ** 0.5 * 1.2 > seconds:
        return None
    deadline = time.monotonic() + seconds
    model = done.estimator_class(**dict(done.params, n_estimators=trees))
    if done.name == "lgbm":
        from lightgbm.callback import EarlyStopException

        def stop(env) -> None:
            if time.monotonic() >= deadline:
                raise EarlyStopException(env.iteration, [])

        model.fit(X, y, sample_weight=sample_weight, callbacks=[stop])
        if model.booster_.current_iteration() < trees:  # cut short by the deadline: keep the finished model
            return None
    else:
        import xgboost as xgb

        class Deadline(xgb.callback.TrainingCallback):
            def after_iteration(self, booster, epoch, evals_log) -> bool:
                return time.monotonic() >= deadline

        model.set_params(callbacks=[Deadline()])
        model.fit(X, y, sample_weight=sample_weight, verbose=False)
        if model.get_booster().num_boosted_rounds() < trees:
            return None
    return from_flaml(done.name, model, task, n_classes)

"""The AutoML search: FLAML over a small set of strong tree learners.

Search space and learners are chosen here; the caller passes a Budget and
gets back the fitted learner plus a leaderboard of every learner tried.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import TrainingError
from . import boost, neural
from .budget import Budget
from .learners import FittedLearner, from_flaml

log = logging.getLogger(__name__)

FLAML_LEARNERS = ("lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree")  # searched by FLAML
# "mlp": a small network fitted after the search on large tables (neural.py), beside the finished boosters
LEARNERS = FLAML_LEARNERS + ("mlp",)

# metric name (ours) -> (FLAML metric, greater is better)
CLASSIFICATION_METRICS = {
    "roc_auc": ("roc_auc", True),
    "accuracy": ("accuracy", True),
    "log_loss": ("log_loss", False),
    "f1": ("f1", True),
    "macro_f1": ("macro_f1", True),
    "micro_f1": ("micro_f1", True),
    "ap": ("ap", True),
    "balanced_accuracy": ("balanced_accuracy", True),
}
REGRESSION_METRICS = {
    "r2": ("r2", True),
    "rmse": ("rmse", False),
    "mae": ("mae", False),
    "mse": ("mse", False),
    "mape": ("mape", False),
}


def _balanced_accuracy(X_val, y_val, estimator, labels, X_train, y_train, weight_val=None, weight_train=None, *args):
    from sklearn.metrics import balanced_accuracy_score

    score = balanced_accuracy_score(y_val, estimator.predict(X_val))
    return 1.0 - score, {"balanced_accuracy": score}


@dataclass
class Progress:
    elapsed_s: float
    left_s: float
    trials: int
    best_score: float | None
    best_learner: str | None
    metric: str
    message: str = ""
    searched: bool = True  # False: a model fitted without a search (image anomaly): no trials to count


ProgressFn = Callable[[Progress], None]


@dataclass
class SearchResult:
    learner: FittedLearner
    learner_name: str
    config: dict
    leaderboard: list[dict]
    metric: str
    best_score: float
    trials: int
    ensemble: dict | None = None
    notes: list[str] = field(default_factory=list)
    execution: dict | None = None  # where the search ran (modelfab.execution), when not in this process
    refit: "boost.RefitPlan | None" = None  # models to fit again on every row after the holdout is scored


@dataclass
class Finishing:
    """What the finishing step of a large-table search chose (see _finish)."""

    learner: object
    name: str
    config: dict
    score: float
    plan: "boost.RefitPlan"
    scores: dict  # validation score of every finished model, by learner name
    configs: dict  # and its configuration


def _score_from_loss(loss: float, metric: str, greater: bool) -> float:
    # FLAML minimises: for a "greater is better" metric it reports 1 - score.
    return float(1.0 - loss) if greater else float(loss)


def _jsonable(cfg: dict) -> dict:
    out = {}
    for k, v in (cfg or {}).items():
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        out[k] = v
    return out


class _LogWatcher(threading.Thread):
    """Tails FLAML's trial log so the caller sees trials and the best score live."""

    def __init__(self, path: Path, budget: Budget, metric: str, greater: bool, progress: ProgressFn | None):
        super().__init__(daemon=True)
        self.path, self.budget, self.metric, self.greater, self.progress = path, budget, metric, greater, progress
        self.stop_event = threading.Event()
        self.trials = 0
        self.best: float | None = None
        self.best_learner: str | None = None
        self._pos = 0

    def poll(self) -> None:
        try:
            with open(self.path, "r", encoding="utf-8") as fh:
                fh.seek(self._pos)
                for line in fh:
                    if not line.endswith("\n"):
                        break
                    self._pos += len(line.encode("utf-8"))
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if "validation_loss" not in rec:
                        continue
                    self.trials += 1
                    score = _score_from_loss(rec["validation_loss"], self.metric, self.greater)
                    if self.best is None or (score > self.best if self.greater else score < self.best):
                        self.best, self.best_learner = score, rec.get("learner")
        except FileNotFoundError:
            pass

    def emit(self, message: str = "") -> None:
        if self.progress:
            self.progress(Progress(self.budget.elapsed(), self.budget.left(), self.trials, self.best,
                                   self.best_learner, self.metric, message))

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            self.poll()
            self.emit("searching")


def _refit_within_budget(automl, X, y, task: str, n_classes: int, budget: Budget, n_jobs: int):
    """Refit the best configuration on all rows if FLAML's own estimate says it fits the time left."""
    name = automl.best_estimator
    left = budget.left_for_search()
    try:
        estimate = automl._search_states[name].est_retrain_time(len(X))
    except Exception:  # no estimate: keep the model FLAML fitted during the search
        return None
    if estimate * 1.5 > left:
        return None
    est = automl._state.learner_classes[name](task=task, n_jobs=n_jobs, **dict(automl.best_config))
    est.fit(X, y, budget=max(1.0, left * 0.9))
    return from_flaml(name, est.estimator, task, n_classes)


def _per_tree(automl, name: str, config: dict, rows: int) -> float | None:
    """FLAML's estimate of one fit of ``config`` on ``rows`` rows, per tree."""
    try:
        return automl._search_states[name].est_retrain_time(rows) / max(1, int(config["n_estimators"]))
    except Exception:
        return None


def _best_xgb(automl) -> tuple[str, dict] | None:
    """The better of FLAML's best "xgboost" and "xgb_limitdepth" configurations, if the search tried one."""
    losses = automl.best_loss_per_estimator or {}
    configs = automl.best_config_per_estimator or {}
    found = [(losses[n], n) for n in ("xgboost", "xgb_limitdepth")
             if configs.get(n) and losses.get(n) is not None and np.isfinite(losses[n])]
    return (min(found)[1], configs[min(found)[1]]) if found else None


def _finish(automl, X, y, fit_idx, val_idx, searched: FittedLearner, *, task: str, metric: str, n_classes: int,
            budget: Budget, n_jobs: int, seed: int, sample_weight, learners: tuple[str, ...] = LEARNERS):
    """(learner, name, config, score, refit plan) of the best of: the LightGBM and XGBoost configurations
    finished with early stopping (boost.py), a small network (neural.py) and every average of them, compared
    on the validation rows with the search's best. None when the search's best model stays the best.

    FIT_SHARE of the time fits them on the fit rows; the rest is for the engine to refit the chosen ones on
    every row once the holdout has been scored (boost.RefitPlan)."""
    config = (automl.best_config_per_estimator or {}).get("lgbm")
    left = budget.left_for_search()
    if not config or left < 1.0:
        return None
    end = time.monotonic() + FIT_SHARE * left

    def room() -> float:
        return max(0.0, min(end - time.monotonic(), budget.left_for_search()))

    X_fit, y_fit, X_val, y_val = X[fit_idx], y[fit_idx], X[val_idx], y[val_idx]
    w_fit = None if sample_weight is None else sample_weight[fit_idx]
    xgb_best = _best_xgb(automl)
    kw = dict(task=task, metric=metric, n_classes=n_classes, seed=seed, sample_weight=w_fit)
    # LightGBM first (early stopping usually hands some of its time back), then the network, then XGBoost
    # with what is left: on the benchmark tables a booster and the network average best.
    done = [boost.finish_lgbm(automl._state.learner_classes["lgbm"], config, X_fit, y_fit, X_val, y_val,
                              seconds=0.4 * room(), n_jobs=n_jobs,
                              time_per_tree=_per_tree(automl, "lgbm", config, len(fit_idx)), **kw)]
    if "mlp" in learners:
        try:
            done.append(neural.finish_mlp(X_fit, y_fit, X_val, y_val, seconds=0.5 * room(), **kw))
        except Exception:  # noqa: BLE001 - e.g. a degenerate column or an older scikit-learn: the boosters stand
            log.warning("the network could not be fitted; the boosters stand", exc_info=True)
    if xgb_best and room() > 2.0:
        name, xcfg = xgb_best
        try:
            done.append(boost.finish_xgb(automl._state.learner_classes[name], name, xcfg, X_fit, y_fit, X_val, y_val,
                                         seconds=0.9 * room(), n_jobs=n_jobs,
                                         time_per_tree=_per_tree(automl, name, xcfg, len(fit_idx)), **kw))
        except Exception:  # noqa: BLE001 - e.g. a class missing from the fit rows: the others stand
            pass
    done = [d for d in done if d is not None]
    if not done:
        return None
    try:
        searched_loss = boost.val_loss(metric, task, n_classes, y_val, searched.predict_raw(X_val))
    except ValueError:  # e.g. a class missing from the validation rows: keep the search's choice
        return None
    _, greater = CLASSIFICATION_METRICS.get(metric) or REGRESSION_METRICS[metric]
    members, learner, loss = boost.choose(done, X_val, y_val, task=task, metric=metric, n_classes=n_classes)
    log.info("finished %s; searched loss %.5f; chose %s (loss %.5f)",
             ", ".join(f"{d.name}: loss {d.val_loss:.5f}, {d.trees} steps, {d.fit_s:.1f} s" for d in done),
             searched_loss, "+".join(d.name for d in members), loss)
    if not loss < searched_loss:
        return None
    plan = boost.RefitPlan(members, n_fit=len(fit_idx))
    scores = {d.name: (-d.val_loss if greater else d.val_loss) for d in done}
    configs = {d.name: _jsonable(d.config) for d in done}
    score = -loss if greater else loss
    if len(members) == 1:
        return Finishing(learner, members[0].name, _jsonable(members[0].config), score, plan, scores, configs)
    weight = 1.0 / len(members)
    config = {"members": [{"learner": d.name, "weight": weight, "config": _jsonable(d.config)} for d in members]}
    return Finishing(learner, "ensemble", config, score, plan, scores, configs)


FIT_SHARE = 0.6  # of the finishing time: fitting on the fit rows; the rest is for the refit on every row


def flaml_metric_for(task: str, metric: str, n_classes: int):
    """(FLAML metric name or function, greater is better) for one of our metric names."""
    table = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    flaml_metric, greater = table[metric]
    if flaml_metric == "balanced_accuracy":
        flaml_metric = _balanced_accuracy
    if task == "classification" and n_classes > 2 and flaml_metric == "roc_auc":
        flaml_metric = "roc_auc_ovr"
    return flaml_metric, greater


def search_share(X: np.ndarray, ensemble: bool, seconds: float) -> float:
    """Share of the ``seconds`` of search time kept back for the ensemble (small data: 10 %, and at least
    1.5 s up to a quarter of short budgets, since FLAML uses all the time it is given) or the final refit
    (large data)."""
    large = X.size >= 1_000_000
    if large:
        return 0.2
    return max(0.1, min(0.25, 1.5 / max(seconds, 1e-9))) if ensemble else 0.0


def threads_for(X: np.ndarray, load: float | None = None) -> int:
    """Threads per fit. Threads only pay off on larger data (on small data they slow every trial down), and
    only on cores nobody else is using: LightGBM's threads wait for each other at every tree, and one of
    them sharing a core with another busy process made 100-tree fits 2-8x slower than one thread."""
    cpus = max(1, os.cpu_count() or 1)
    if X.size < 1_000_000 or cpus == 1:
        return 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average (Windows): use every core
            return cpus
    others = max(0.0, load - 1.0)  # the 1-minute load average counts this process too
    return cpus if others < 0.5 * cpus else max(1, int(cpus - others))


def flaml_settings(X: np.ndarray, *, task: str, flaml_metric, seed: int, learners: tuple[str, ...],
                   groups: np.ndarray | None, sample_weight: np.ndarray | None) -> dict:
    """AutoML.fit arguments except time_budget and log_file_name (the same for every executor)."""
    # Cross-validation where it is affordable: a small holdout picks noise.
    eval_method = "cv" if len(X) <= 20_000 and X.size <= 2_000_000 else "holdout"
    n_jobs = threads_for(X)
    for name in ("flaml", "flaml.automl", "flaml.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)
    kwargs = dict(
        task=task, metric=flaml_metric, estimator_list=[x for x in learners if x in FLAML_LEARNERS],
        eval_method=eval_method, n_splits=5, seed=seed, log_type="all", n_jobs=n_jobs,
        verbose=0, force_cancel=True,
        # On large data the final refit of the best configuration on all rows can take long:
        # we do it ourselves below, only when it fits in the time left (_refit_within_budget).
        retrain_full=True if eval_method == "cv" else False, skip_transform=True, auto_augment=False,
    )
    if groups is not None:
        kwargs.update(split_type="group", groups=groups)
    elif task == "classification":
        kwargs.update(split_type="stratified")
    if sample_weight is not None:
        kwargs["sample_weight"] = sample_weight
    if "lgbm" in learners:
        # Also try LightGBM's own defaults: on small data they are often better calibrated than
        # anything the cost-frugal search reaches from its tiny starting model in the time given.
        kwargs["starting_points"] = {"lgbm": {"n_estimators": 100, "num_leaves": 31, "min_child_samples": 20,
                                              "learning_rate": 0.1, "log_max_bin": 8, "colsample_bytree": 1.0,
                                              "reg_alpha": 1 / 1024, "reg_lambda": 1 / 1024}}
    return kwargs


def quiet_small_classes() -> None:
    """Silence scikit-learn's per-split "least populated class" warning (hundreds of copies during a search
    on a small class); training says it once, in the notes (engine.prepare_target)."""
    warnings.filterwarnings("ignore", message="The least populated class in y has only", category=UserWarning)


def run_search(X: np.ndarray, y: np.ndarray, *, task: str, metric: str, budget: Budget, n_classes: int,
               seed: int = 0, groups: np.ndarray | None = None, sample_weight: np.ndarray | None = None,
               learners: tuple[str, ...] = LEARNERS, progress: ProgressFn | None = None,
               ensemble: bool = True, executor=None, max_trials: int | None = None) -> SearchResult:
    """Search within ``budget``; ``executor`` (modelfab.execution) with several slots runs independent
    searches side by side (see modelfab/execution/search.py); ``max_trials`` caps the trials of each
    search (a reproducible search when the budget is not the limit)."""
    quiet_small_classes()
    if executor is not None and (executor.name != "local" or executor.slots() > 1):  # Ray starts here, in the budget
        from ..execution.search import run_parallel_search

        parallel = run_parallel_search(X, y, task=task, metric=metric, budget=budget, n_classes=n_classes,
                                       seed=seed, groups=groups, sample_weight=sample_weight, learners=learners,
                                       progress=progress, ensemble=ensemble, executor=executor,
                                       max_trials=max_trials)
        if parallel is not None:
            return parallel
    fallback = [] if executor is None or executor.slots() <= 1 else [
        f"{executor.name} workers were not ready with enough of the budget left for parallel searches; the search "
        "ran in this process. Give a larger --budget."]
    from flaml import AutoML

    flaml_metric, greater = flaml_metric_for(task, metric, n_classes)
    # The reserve for evaluation and packaging is soft: a search of at least
    # one second still fits within the promise (budget + 10% + 5 s).
    # Small data: keep 10% for ensemble selection (cheap refits). Large data: no ensemble (out-of-fold
    # refits cost more than they return), but keep 10-40% (boost.finish_share) to finish the best LightGBM
    # with early stopping and refit it on all rows.
    large = X.size >= 1_000_000
    ensemble = ensemble and not large
    kwargs = flaml_settings(X, task=task, flaml_metric=flaml_metric, seed=seed, learners=learners, groups=groups,
                            sample_weight=sample_weight)
    eval_method, n_jobs = kwargs["eval_method"], kwargs["n_jobs"]
    # Holdout search without an ensemble: our own validation rows, so that the best LightGBM can be finished
    # with early stopping on them and compared with the search's best on the same rows (boost.py).
    finishing = (eval_method == "holdout" and not ensemble and "lgbm" in learners and not max_trials
                 and (groups is None or len(np.unique(groups)) >= 2))
    share = boost.finish_share(budget.left_for_search()) if finishing else search_share(X, ensemble, budget.left_for_search())
    time_budget = max(1.0, budget.left_for_search() * (1.0 - share))
    if not budget.can_start_search():
        raise TrainingError(
            f"The budget ({budget.total:.0f} s) was used up by data preparation before the model search could start.",
            hint="Give a larger --budget.",
        )
    if max_trials:
        kwargs["max_iter"] = int(max_trials)
    fit_idx = val_idx = None
    if finishing:
        fit_idx, val_idx = boost.validation_split(y, task, groups, seed)
        for key in ("split_type", "groups", "sample_weight"):
            kwargs.pop(key, None)
        kwargs.update(X_val=X[val_idx], y_val=y[val_idx])
        if sample_weight is not None:
            kwargs.update(sample_weight=sample_weight[fit_idx], sample_weight_val=sample_weight[val_idx])
    with tempfile.TemporaryDirectory(prefix="modelfab-search-") as tmp:
        log_path = Path(tmp) / "trials.jsonl"
        watcher = _LogWatcher(log_path, budget, metric, greater, progress)
        watcher.start()
        automl = AutoML()
        kwargs.update(time_budget=time_budget, log_file_name=str(log_path))
        try:
            if finishing:
                automl.fit(X[fit_idx], y[fit_idx], **kwargs)
            else:
                automl.fit(X, y, **kwargs)
        except Exception as exc:  # FLAML raises many kinds; surface one clear error
            raise TrainingError(f"The model search failed: {type(exc).__name__}: {exc}") from exc
        finally:
            watcher.stop_event.set()
            watcher.join(timeout=2)
            watcher.poll()
        if automl.model is None or automl.best_estimator is None:
            raise TrainingError("No trial finished within the budget.", hint="Give a larger --budget or fewer rows.")
        leaderboard = []
        for name, loss in (automl.best_loss_per_estimator or {}).items():
            if loss is None or not np.isfinite(loss):
                continue
            leaderboard.append({
                "learner": name,
                "score": _score_from_loss(loss, metric, greater),
                "metric": metric,
                "validation": "5-fold cross-validation" if eval_method == "cv" else "holdout",
                # the time its best configuration took to train and validate (every learner has one; it said 0 for
                # all but the best learner)
                "train_time_s": _trial_seconds(automl, name),
                "config": _jsonable((automl.best_config_per_estimator or {}).get(name) or {}),
            })
        leaderboard.sort(key=lambda r: r["score"], reverse=greater)
        learner = from_flaml(automl.best_estimator, automl.model.estimator, task, n_classes)
        learner_name, config = automl.best_estimator, _jsonable(automl.best_config)
        best_score = _score_from_loss(automl.best_loss, metric, greater)
        finished = ensemble_done = refit = None
        if finishing:
            watcher.emit("finishing the best models")
            finished = _finish(automl, X, y, fit_idx, val_idx, learner, task=task, metric=metric, n_classes=n_classes,
                               budget=budget, n_jobs=n_jobs, seed=seed, sample_weight=sample_weight,
                               learners=learners)
        if finished is not None:
            learner, learner_name, config, best_score = finished.learner, finished.name, finished.config, finished.score
            refit = finished.plan
            if learner_name == "ensemble":
                leaderboard.append({"learner": "ensemble", "score": best_score, "metric": metric,
                                    "validation": "holdout, early stopping", "train_time_s": None, "config": config})
                ensemble_done = {"members": config["members"], "validation": "holdout"}
            better = (lambda a, b: a > b) if greater else (lambda a, b: a < b)
            for name, score in finished.scores.items():
                rows = [r for r in leaderboard if r["learner"] == name]
                if not rows:
                    leaderboard.append({"learner": name, "score": score, "metric": metric, "train_time_s": None,
                                        "validation": "holdout, early stopping",
                                        "config": finished.configs.get(name, {})})
                elif better(score, rows[0]["score"]):
                    rows[0].update(score=score, validation="holdout, early stopping")
                if name == learner_name:
                    (rows or leaderboard[-1:])[0].update(config=config)
            leaderboard.sort(key=lambda r: r["score"], reverse=greater)
        elif eval_method == "holdout":
            learner = _refit_within_budget(automl, X, y, task, n_classes, budget, n_jobs) or learner
        ensemble_info = ensemble_done
        if ensemble and budget.left_for_search() > 0.5:
            watcher.emit("building ensemble")
            from .ensemble import build_ensemble

            ens = build_ensemble(automl, X, y, task=task, metric=metric, n_classes=n_classes, budget=budget,
                                 seed=seed, groups=groups)
            if ens is not None:
                from .ensemble import outcome

                learner, learner_name, config, ensemble_info, more, best_score = outcome(ens, leaderboard, best_score)
                fallback = fallback + more
        watcher.emit("search finished")
        return SearchResult(
            learner=learner, learner_name=learner_name, config=config,
            leaderboard=leaderboard, metric=metric, best_score=best_score,
            trials=watcher.trials, ensemble=ensemble_info, notes=fallback, refit=refit,
        )


def _trial_seconds(automl, name: str) -> float | None:
    """Seconds FLAML spent training and validating learner ``name``'s best configuration (None if unknown)."""
    state = (getattr(automl, "_search_states", None) or {}).get(name)
    value = getattr(state, "time2eval_best", None)
    if value is None or not np.isfinite(value) or value <= 0:
        return float(automl.best_config_train_time) if name == automl.best_estimator and automl.best_config_train_time \
            else None
    return round(float(value), 3)

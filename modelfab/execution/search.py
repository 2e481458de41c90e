"""AutoML on several workers: independent FLAML searches side by side, the best one wins.

Why not FLAML's own ``n_concurrent_trials`` on Ray Tune: it needs ``ray[tune]`` plus Optuna, and
on 2 cores it ran 4 trials in a 20 s budget (against 93 sequentially) and finished 9 s late
(measured, see bench/results/execution.md). Here each worker runs an ordinary sequential FLAML
search over its own share of the learners (and, when there are more slots than learners, the same
learners with another seed) until one shared wall-clock end; the driver merges the leaderboards,
takes the best configuration and, on small data, builds the Caruana ensemble as the local search
does. Every task is told the wall-clock time (``time.time()``) at which it must stop, so queueing,
worker start-up and imports shorten its search instead of making it late.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..automl.budget import Budget
from ..automl.search import (Progress, SearchResult, _jsonable, _LogWatcher, _refit_within_budget,
                             _score_from_loss, flaml_metric_for, flaml_settings, quiet_small_classes,
                             search_share)
from ..errors import TrainingError


def plan_searches(learners: tuple[str, ...], slots: int, seed: int) -> list[dict]:
    """Split the learners round-robin over the slots; spare slots repeat the split with other seeds."""
    learners = tuple(learners)
    k = max(1, min(int(slots), len(learners)))
    parts = [list(learners[i::k]) for i in range(k)]
    repeats = max(1, int(slots) // k)
    return [{"learners": part, "seed": seed + r} for r in range(repeats) for part in parts]


class _Until:
    """The part of the Budget interface _refit_within_budget needs, as a wall-clock end (any host)."""

    def __init__(self, end_wall: float) -> None:
        self.end_wall = end_wall

    def left_for_search(self) -> float:
        return max(0.0, self.end_wall - time.time())

    left = left_for_search


def search_task(shared: dict, task: dict) -> dict:
    """One sequential FLAML search (runs in a worker). Returns plain results, never raises."""
    import logging

    base = {"index": task["index"], "pid": os.getpid(), "host": socket.gethostname(), "learners": task["learners"],
            "seed": task["seed"]}
    left = task["search_end"] - time.time()
    if left < 0.5:
        return dict(base, error="started after the search time was over")
    try:
        from flaml import AutoML

        for name in ("flaml", "flaml.automl", "flaml.tune"):
            logging.getLogger(name).setLevel(logging.ERROR)
        quiet_small_classes()
        kwargs = dict(shared["kwargs"], estimator_list=list(task["learners"]), seed=task["seed"])
        if "starting_points" in kwargs:
            kwargs["starting_points"] = {k: v for k, v in kwargs["starting_points"].items() if k in task["learners"]}
            if not kwargs["starting_points"]:
                del kwargs["starting_points"]
        if shared.get("max_trials"):
            kwargs["max_iter"] = int(shared["max_trials"])
        t0 = time.monotonic()
        left = task["search_end"] - time.time()  # imports and queueing came out of this task's time
        if left < 0.5:
            return dict(base, error="started after the search time was over")
        with tempfile.TemporaryDirectory(prefix="modelfab-task-") as tmp:
            log = Path(tmp) / "trials.jsonl"
            kwargs.update(time_budget=min(task["time_budget"], left), log_file_name=str(log))
            automl = AutoML()
            automl.fit(shared["X"], shared["y"], **kwargs)
            counter = _LogWatcher(log, None, shared["metric"], shared["greater"], None)
            counter.poll()
        if automl.model is None or automl.best_estimator is None:
            return dict(base, error="no trial finished in time")
        from ..automl.learners import from_flaml

        learner = from_flaml(automl.best_estimator, automl.model.estimator, shared["task"], shared["n_classes"])
        if shared["kwargs"]["eval_method"] == "holdout":
            learner = _refit_within_budget(automl, shared["X"], shared["y"], shared["task"], shared["n_classes"],
                                           _Until(task["refit_end"]), 1) or learner
        return dict(
            base, best_estimator=automl.best_estimator, best_config=_jsonable(automl.best_config),
            best_loss=float(automl.best_loss), best_config_train_time=float(automl.best_config_train_time or 0.0),
            best_loss_per_estimator={k: (None if v is None else float(v))
                                     for k, v in (automl.best_loss_per_estimator or {}).items()},
            best_config_per_estimator={k: _jsonable(v) for k, v in (automl.best_config_per_estimator or {}).items()
                                       if v},
            learner_classes=dict(automl._state.learner_classes), learner=learner,
            estimator=automl.model.estimator, trials=counter.trials, seconds=round(time.monotonic() - t0, 3),
        )
    except Exception as exc:  # reported by the driver; the other searches still count
        return dict(base, error=f"{type(exc).__name__}: {exc}")


class _Heartbeat(threading.Thread):
    def __init__(self, budget: Budget, metric: str, progress, message: str) -> None:
        super().__init__(daemon=True)
        self.budget, self.metric, self.progress, self.message = budget, metric, progress, message
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            self.progress(Progress(self.budget.elapsed(), self.budget.left(), 0, None, None, self.metric, self.message))


def run_parallel_search(X: np.ndarray, y: np.ndarray, *, task: str, metric: str, budget: Budget, n_classes: int,
                        seed: int, groups, sample_weight, learners: tuple[str, ...], progress, ensemble: bool,
                        executor, max_trials: int | None) -> SearchResult | None:
    """Run the plan on ``executor``; None when there is too little time left to be worth it."""
    if hasattr(executor, "start") and executor.start(timeout=budget.left_for_search() / 2) is None:
        return None  # workers not warm within half the search time: search in this process instead
    slots = executor.slots()  # workers up and warm: their start-up came out of the budget, not the searches
    if slots < 2:
        return None
    startup = getattr(executor, "startup_s", None)
    flaml_metric, greater = flaml_metric_for(task, metric, n_classes)
    ensemble = ensemble and X.size < 1_000_000
    share = search_share(X, ensemble, budget.left_for_search())
    if not budget.can_start_search():
        raise TrainingError(
            f"The budget ({budget.total:.0f} s) was used up by data preparation"
            + (f" and {executor.name} start-up ({startup:.1f} s)" if startup else "")
            + " before the model search could start.", hint="Give a larger --budget.")
    left = budget.left_for_search()
    if left < 2.0:
        return None
    kwargs = flaml_settings(X, task=task, flaml_metric=flaml_metric, seed=seed, learners=tuple(learners),
                            groups=groups, sample_weight=sample_weight)
    kwargs["n_jobs"] = 1  # one CPU per task
    from ..automl.search import FLAML_LEARNERS

    tasks = plan_searches(tuple(x for x in learners if x in FLAML_LEARNERS), slots, seed)
    # End the searches a little early: FLAML's final refit and the trip back must land before the deadline.
    search_s = max(1.0, left * (1.0 - share) - min(5.0, 0.1 * left))
    now = time.time()
    for i, t in enumerate(tasks):
        t.update(index=i, time_budget=search_s, search_end=now + search_s, refit_end=now + left)
    shared = {"X": X, "y": y, "kwargs": kwargs, "task": task, "n_classes": n_classes, "metric": metric,
              "greater": greater, "max_trials": max_trials}
    beat = None
    if progress:
        beat = _Heartbeat(budget, metric, progress, f"{len(tasks)} searches on {executor.name}")
        beat.start()
    try:
        # A search still running when the whole budget is nearly over is dropped.
        results = list(executor.map(search_task, shared, tasks, window=len(tasks),
                                    deadline=time.monotonic() + max(left, budget.left() - 1.0)))
    finally:
        if beat:
            beat.stop_event.set()
            beat.join(timeout=2)
    return _merge(results, tasks, X, y, eval_method=kwargs["eval_method"], task=task, metric=metric, greater=greater, n_classes=n_classes,
                  budget=budget, seed=seed, groups=groups, ensemble=ensemble, executor=executor, slots=slots,
                  startup=startup, progress=progress)


def _merge(results, tasks, X, y, *, eval_method, task, metric, greater, n_classes, budget, seed, groups, ensemble, executor,
           slots, startup, progress) -> SearchResult:
    done = [r for r in results if r is not None and "error" not in r]
    failed = [r for r in results if r is not None and "error" in r]
    missed = sum(r is None for r in results)
    if not done:
        why = "; ".join(sorted({r["error"] for r in failed})) or "none finished within the budget"
        raise TrainingError(f"No model search finished on {executor.name} ({len(tasks)} searches: {why}).",
                            hint="Give a larger --budget, or use --executor local.")
    winner = min(done, key=lambda r: (r["best_loss"], r["index"]))
    loss_of, config_of, classes = {}, {}, {}
    for r in sorted(done, key=lambda r: r["index"]):
        classes.update(r["learner_classes"])
        for name, loss in r["best_loss_per_estimator"].items():
            if loss is None or not math.isfinite(loss) or name not in r["best_config_per_estimator"]:
                continue
            if name not in loss_of or loss < loss_of[name]:
                loss_of[name], config_of[name] = loss, r["best_config_per_estimator"][name]
    validation = "5-fold cross-validation" if eval_method == "cv" else "holdout"
    leaderboard = [{"learner": name, "score": _score_from_loss(loss, metric, greater), "metric": metric,
                    "validation": validation,
                    "train_time_s": winner["best_config_train_time"] if name == winner["best_estimator"] else None,
                    "config": config_of[name]} for name, loss in loss_of.items()]
    leaderboard.sort(key=lambda r: r["score"], reverse=greater)
    learner, learner_name, config = winner["learner"], winner["best_estimator"], winner["best_config"]
    notes = [f"The search ran as {len(tasks)} independent searches on {executor.name} ({slots} slots): "
             + ", ".join("+".join(t["learners"]) + f" (seed {t['seed']})" for t in tasks) + "."]
    if startup:
        notes.append(f"Starting {executor.name} took {startup:.1f} s of the budget.")
    if missed or failed:
        notes.append(f"{missed + len(failed)} of {len(tasks)} searches gave no result"
                     + (f" ({'; '.join(sorted({r['error'] for r in failed}))})" if failed else "") + ".")
    ensemble_info = None
    best_score = _score_from_loss(winner["best_loss"], metric, greater)
    if ensemble and budget.left_for_search() > 0.5:
        if progress:
            progress(Progress(budget.elapsed(), budget.left(), sum(r["trials"] for r in done),
                              best_score, learner_name, metric,
                              "building ensemble"))
        from ..automl.ensemble import build_ensemble

        merged = SimpleNamespace(best_loss_per_estimator=loss_of, best_config_per_estimator=config_of,
                                 best_estimator=winner["best_estimator"],
                                 model=SimpleNamespace(estimator=winner["estimator"]),
                                 _state=SimpleNamespace(learner_classes=classes))
        ens = build_ensemble(merged, X, y, task=task, metric=metric, n_classes=n_classes, budget=budget, seed=seed,
                             groups=groups)
        if ens is not None:
            from ..automl.ensemble import outcome

            learner, learner_name, config, ensemble_info, more, best_score = outcome(ens, leaderboard, best_score)
            notes.extend(more)
    result = SearchResult(learner=learner, learner_name=learner_name, config=config, leaderboard=leaderboard,
                          metric=metric, best_score=best_score,
                          trials=sum(r["trials"] for r in done), ensemble=ensemble_info, notes=notes,
                          execution=dict(executor.describe(), searches=[
                              {k: r.get(k) for k in ("index", "learners", "seed", "pid", "host", "trials", "seconds",
                                                     "best_estimator", "best_loss", "error")}
                              for r in results if r is not None]))
    if progress:
        progress(Progress(budget.elapsed(), budget.left(), result.trials, result.best_score, learner_name, metric,
                          "search finished"))
    return result

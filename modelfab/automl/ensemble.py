"""Ensemble selection over the best configuration of each learner.

After the search, the best configuration of each learner is refit in
k-fold cross-validation to get out-of-fold predictions on the same folds;
greedy forward selection with replacement (Caruana et al., 2004) picks
weights. The ensemble is kept only if its out-of-fold score beats the best
single learner's on the same folds. Every step asks the budget first.

When several learners tie for the best binary ROC AUC out of fold (it
reaches 1.0 on small, separable data for almost anything), the tied learner
with the best out-of-fold log loss is kept instead of whichever the search
reached first: a perfect ranking from a 7-tree model can still say "56 %"
for every row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .budget import Budget
from .learners import EnsembleLearner, from_flaml

N_FOLDS = 5
ROUNDS = 25


@dataclass
class EnsembleResult:
    learner: EnsembleLearner
    oof_single: float
    oof_ensemble: float
    members: list[dict]
    tie_break: dict | None = None  # set when ``learner`` is one tied single learner, not an average


def outcome(ens: EnsembleResult, leaderboard: list[dict],
            best_score: float) -> tuple[object, str, dict, dict | None, list[str], float]:
    """(learner, learner name, config, ensemble info, notes, best score) of a build_ensemble result for
    SearchResult; after a tie-break the score is the kept learner's own leaderboard score."""
    if ens.tie_break is not None:
        tb = ens.tie_break
        note = (f"Learners tied for the best score out of fold ({', '.join(tb['tied'])}; within one misranked "
                f"pair); kept {tb['learner']}, whose probabilities fit best: log loss {tb['log_loss']:.3f}, "
                f"against {tb['first_log_loss']:.3f} for the search's first choice, {tb['first']}.")
        score = next((r["score"] for r in leaderboard if r["learner"] == tb["learner"]), best_score)
        return ens.learner, tb["learner"], tb["config"], None, [note], score
    info = {"oof_loss_single": ens.oof_single, "oof_loss_ensemble": ens.oof_ensemble, "members": ens.members}
    return ens.learner, "ensemble", {"members": ens.members}, info, [], best_score


def _loss_fn(task: str, metric: str, n_classes: int):
    from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

    if task == "regression":
        if metric == "mae":
            return lambda y, p: mean_absolute_error(y, p)
        return lambda y, p: mean_squared_error(y, p)
    if metric == "roc_auc" and n_classes == 2:
        return lambda y, p: 1.0 - roc_auc_score(y, p[:, 1])
    def _log_loss(y, p):  # averaged members' rows sum to 1 only up to rounding: renormalise (sklearn warns)
        p = np.clip(p, 1e-12, 1)
        return log_loss(y, p / p.sum(axis=1, keepdims=True), labels=list(range(n_classes)))

    return _log_loss


def _folds(y, task, groups, seed):
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    idx = np.arange(len(y))
    if groups is not None:
        return list(GroupKFold(n_splits=min(N_FOLDS, len(np.unique(groups)))).split(idx, y, groups))
    if task == "classification":
        return list(StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed).split(idx, y))
    return list(KFold(N_FOLDS, shuffle=True, random_state=seed).split(idx))


def _new(automl, name: str, config: dict, task: str):
    cls = automl._state.learner_classes[name]
    return cls(task=task, n_jobs=1, **config)


def _tie_tolerance(y: np.ndarray) -> float:
    """How far below the best out-of-fold binary ROC AUC still counts as a tie: one misranked pair (it
    vanishes as the data grows)."""
    pos = int(np.sum(y == 1))
    return 1.0 / max(1, pos * (len(y) - pos)) + 1e-9


def _tie_break(automl, X, y, oof: dict, single: dict, configs: dict, fit_time: dict, *, task: str, metric: str,
               n_classes: int, budget: Budget, ensemble: tuple[float, np.ndarray] | None) -> EnsembleResult | None:
    """Of the learners (and the averaged ``ensemble``: its loss and out-of-fold predictions) tied for the best
    out-of-fold score, the one with the lowest out-of-fold log loss, refit on all rows when it is a single
    learner other than the search's own choice; None otherwise (the ensemble or the search's choice wins, no
    tie, or no time to refit)."""
    first = automl.best_estimator
    # Only where the out-of-fold loss is the user's metric and ignores confidence: a binary ROC AUC (the other
    # classification metrics are compared on log loss here already).
    if task != "classification" or metric != "roc_auc" or n_classes != 2 or first not in single:
        return None
    scores = dict(single)
    preds = dict(oof)
    if ensemble is not None:
        scores[" ensemble"], preds[" ensemble"] = ensemble
    tol = _tie_tolerance(y)
    top = min(scores.values())
    tied = [n for n in preds if scores[n] <= top + tol]
    probs = _loss_fn(task, "log_loss", n_classes)
    ll = {n: probs(y, preds[n]) for n in set(tied) | {first}}
    pick = min(tied, key=ll.get)
    fallback = " ensemble" if ensemble is not None else first
    # ``pick`` ranks within one pair of the best on these folds, so never worse than what would be kept
    if pick in (first, " ensemble") or ll[pick] >= ll[fallback] * (1 - 1e-2):
        return None
    tied = sorted(n for n in tied if n != " ensemble") + (["an ensemble"] if " ensemble" in tied else [])
    if fit_time.get(pick, 0) * 1.3 > budget.left_for_search():
        return None
    from .search import _jsonable

    est = _new(automl, pick, dict(configs[pick]), task)
    est.fit(X, y)
    learner = from_flaml(pick, est.estimator, task, n_classes)
    return EnsembleResult(learner=learner, oof_single=float(single[first]), oof_ensemble=float(single[pick]),
                          members=[{"learner": pick, "weight": 1.0, "oof_loss": float(single[pick])}],
                          tie_break={"learner": pick, "config": _jsonable(configs[pick]), "tied": tied,
                                     "first": "an ensemble" if fallback != first else first,
                                     "log_loss": float(ll[pick]), "first_log_loss": float(ll[fallback])})


def build_ensemble(automl, X: np.ndarray, y: np.ndarray, *, task: str, metric: str, n_classes: int,
                   budget: Budget, seed: int = 0, groups: np.ndarray | None = None, top_k: int = 4) -> EnsembleResult | None:
    """Return an ensemble that beats the best single learner out of fold, or the best-calibrated of tied
    single learners (``tie_break``), or None."""
    losses = {k: v for k, v in (automl.best_loss_per_estimator or {}).items() if v is not None and np.isfinite(v)}
    configs = automl.best_config_per_estimator or {}
    names = [n for n in sorted(losses, key=losses.get) if configs.get(n)][:top_k]
    if len(names) < 2 or len(X) < 4 * N_FOLDS:
        return None
    if task == "classification" and np.bincount(y, minlength=n_classes).min() < N_FOLDS and groups is None:
        return None
    folds = _folds(y, task, groups, seed)
    shape = (len(y), n_classes) if task == "classification" else (len(y),)
    oof: dict[str, np.ndarray] = {}
    fit_time: dict[str, float] = {}
    for name in names:
        pred = np.zeros(shape)
        t0 = time.monotonic()
        ok = True
        for k, (tr, va) in enumerate(folds):
            if k and (time.monotonic() - t0) / k * (len(folds) - k) > budget.left_for_search():
                ok = False
                break
            est = _new(automl, name, dict(configs[name]), task)
            est.fit(X[tr], y[tr])
            learner = from_flaml(name, est.estimator, task, n_classes)
            pred[va] = learner.predict_raw(X[va])
        if not ok:
            break
        oof[name] = pred
        fit_time[name] = (time.monotonic() - t0) / len(folds)
    if len(oof) < 2:
        return None
    loss = _loss_fn(task, metric, n_classes)
    single = {n: loss(y, p) for n, p in oof.items()}
    best_single = min(single.values())
    # greedy forward selection with replacement
    chosen: list[str] = []
    current = None
    best_loss = np.inf
    for _ in range(ROUNDS):
        trial = {n: loss(y, (p if current is None else (current * len(chosen) + p) / (len(chosen) + 1)))
                 for n, p in oof.items()}
        n_best = min(trial, key=trial.get)
        if trial[n_best] >= best_loss - 1e-9 and chosen:
            break
        best_loss = trial[n_best]
        current = oof[n_best] if current is None else (current * len(chosen) + oof[n_best]) / (len(chosen) + 1)
        chosen.append(n_best)
    counts = {n: chosen.count(n) for n in dict.fromkeys(chosen)}
    averaged = len(counts) >= 2 and best_loss < best_single * (1 - 1e-3)
    tie = _tie_break(automl, X, y, oof, single, configs, fit_time, task=task, metric=metric, n_classes=n_classes,
                     budget=budget, ensemble=(best_loss, current) if averaged else None)
    if tie is not None or not averaged:
        return tie
    # refit the members on all rows, if the budget allows
    members, weights, used = [], [], []
    for name, count in counts.items():
        if fit_time.get(name, 0) * 1.3 > budget.left_for_search() and name != automl.best_estimator:
            return None
        if name == automl.best_estimator and automl.model is not None:
            members.append(from_flaml(name, automl.model.estimator, task, n_classes))
        else:
            est = _new(automl, name, dict(configs[name]), task)
            est.fit(X, y)
            members.append(from_flaml(name, est.estimator, task, n_classes))
        weights.append(float(count))
        used.append({"learner": name, "weight": count / len(chosen), "oof_loss": float(single[name])})
    from .search import _jsonable

    learner = EnsembleLearner(members, weights, list(counts), [_jsonable(configs[n]) for n in counts])
    return EnsembleResult(learner=learner, oof_single=float(best_single), oof_ensemble=float(best_loss), members=used)

"""Ensemble selection and its tie-break, on the real FLAML learner classes (the search's results are given
as the plain record FLAML keeps: best configuration and loss per learner)."""

from types import SimpleNamespace

import numpy as np
import pytest
from flaml.automl.model import LGBMEstimator, RandomForestEstimator, XGBoostSklearnEstimator

from modelfab.automl.budget import Budget
from modelfab.automl.ensemble import build_ensemble, outcome

CLASSES = {"lgbm": LGBMEstimator, "xgboost": XGBoostSklearnEstimator, "rf": RandomForestEstimator}
# What a search reaches first on small data: a handful of shallow trees (the cost-frugal start).
TINY_XGB = {"n_estimators": 5, "max_leaves": 4, "min_child_weight": 1.0, "learning_rate": 0.05, "subsample": 1.0,
            "colsample_bylevel": 1.0, "colsample_bytree": 1.0, "reg_alpha": 1 / 1024, "reg_lambda": 1.0}
LGBM = {"n_estimators": 100, "num_leaves": 8, "min_child_samples": 5, "learning_rate": 0.1, "log_max_bin": 8,
        "colsample_bytree": 1.0, "reg_alpha": 1 / 1024, "reg_lambda": 1 / 1024}
RF = {"n_estimators": 50, "max_features": 0.5, "max_leaves": 8, "criterion": "gini"}


def _separable(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.normal(size=(n, 20))
    X[:, :5] += 4.0 * y[:, None]
    return X, y


def _searched(X, y, first: str, configs: dict):
    est = CLASSES[first](task="classification", n_jobs=1, **configs[first])
    est.fit(X, y)
    return SimpleNamespace(best_loss_per_estimator={n: 0.0 for n in configs}, best_config_per_estimator=configs,
                           best_estimator=first, model=SimpleNamespace(estimator=est.estimator),
                           _state=SimpleNamespace(learner_classes=CLASSES))


def test_a_tie_on_roc_auc_keeps_the_learner_whose_probabilities_fit_best():
    X, y = _separable()
    automl = _searched(X, y, "xgboost", {"xgboost": TINY_XGB, "lgbm": LGBM, "rf": RF})
    first = automl.model.estimator.predict_proba(X)
    assert np.max(first, axis=1).mean() < 0.7  # the search's first choice ranks well but says ~60 % everywhere
    ens = build_ensemble(automl, X, y, task="classification", metric="roc_auc", n_classes=2, budget=Budget(60))
    assert ens is not None and ens.tie_break is not None
    board = [{"learner": n, "score": 1.0} for n in ("xgboost", "lgbm", "rf")]
    learner, name, config, info, notes, score = outcome(ens, board, 1.0)
    assert name in ("lgbm", "rf") and config == ens.tie_break["config"] and info is None and score == 1.0
    assert ens.tie_break["log_loss"] < ens.tie_break["first_log_loss"]
    assert "xgboost" in notes[0] and name in notes[0] and "log loss" in notes[0]
    p = learner.predict_raw(X)
    assert np.max(p, axis=1).mean() > 0.8 and ((p[:, 1] > 0.5) == y).mean() == 1.0


def test_no_tie_break_when_the_search_choice_is_already_the_best_calibrated():
    X, y = _separable()
    automl = _searched(X, y, "lgbm", {"lgbm": LGBM, "xgboost": TINY_XGB})
    ens = build_ensemble(automl, X, y, task="classification", metric="roc_auc", n_classes=2, budget=Budget(60))
    assert ens is None or ens.tie_break is None


@pytest.mark.parametrize("metric", ["log_loss", "accuracy", "f1", "balanced_accuracy"])
def test_no_tie_break_for_other_metrics(metric):
    X, y = _separable()
    automl = _searched(X, y, "xgboost", {"xgboost": TINY_XGB, "lgbm": LGBM})
    ens = build_ensemble(automl, X, y, task="classification", metric=metric, n_classes=2, budget=Budget(60))
    assert ens is None or ens.tie_break is None  # compared on log loss already, or not a ranking metric

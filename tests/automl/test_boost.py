"""Large tables: the finishing LightGBM fit (automl/boost.py) and the thread choice of the search."""


import numpy as np
import pytest
from flaml.automl.model import LGBMEstimator

from modelfab.automl import boost
from modelfab.automl.search import threads_for


def _data(n=6000, seed=0, task="classification"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    score = X[:, 0] + 0.7 * X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + rng.normal(scale=0.5, size=n)
    y = (score > 0).astype(np.int64) if task == "classification" else score
    return X, y


def _split(X, y, task):
    fit, val = boost.validation_split(y, task, None, seed=0)
    return X[fit], y[fit], X[val], y[val]


@pytest.mark.parametrize("task,metric", [("classification", "roc_auc"), ("regression", "r2")])
def test_finishing_fit_beats_the_small_searched_model(task, metric):
    X, y = _data(task=task)
    Xf, yf, Xv, yv = _split(X, y, task)
    n_classes = 2 if task == "classification" else 0
    config = {"n_estimators": 4, "num_leaves": 8, "learning_rate": 0.3, "min_child_samples": 20}
    small = LGBMEstimator(task="binary" if task == "classification" else "regression", n_jobs=1, **config)
    small.fit(Xf, yf)
    from modelfab.automl.learners import from_flaml

    small_loss = boost.val_loss(metric, task, n_classes, yv, from_flaml("lgbm", small.estimator, task, n_classes)
                                .predict_raw(Xv))
    done = boost.finish_lgbm(LGBMEstimator, config, Xf, yf, Xv, yv, task=task, metric=metric, n_classes=n_classes,
                             seconds=30, n_jobs=1, seed=0, time_per_tree=0.01)
    assert done is not None and not done.stopped_by_deadline  # early stopping ended it, not the clock
    assert done.trees > 4 and done.config["n_estimators"] == done.trees
    assert done.val_loss < small_loss - 0.01
    assert done.learner.obj.num_trees() == done.trees  # trimmed to the best iteration
    full = boost.refit_all(done, X, y, task=task, n_classes=n_classes, seconds=60, n_fit=len(yf))
    assert full is not None and full.obj.num_trees() >= done.trees


def test_finishing_fit_stops_at_the_deadline_and_skips_when_too_short():
    X, y = _data(20_000)
    Xf, yf, Xv, yv = _split(X, y, "classification")
    config = {"n_estimators": 10, "num_leaves": 63, "learning_rate": 0.01, "min_child_samples": 5}
    # 1000 trees would be needed at the lowest rate; 0.05 s holds a few: a fit cut short under MIN_TREES trees of a
    # low rate hugs the base rate (a 2M-row table answered 0.22-0.32 for every row), so it is not kept
    assert boost.finish_lgbm(LGBMEstimator, config, Xf, yf, Xv, yv, task="classification", metric="log_loss",
                             n_classes=2, seconds=0.05, n_jobs=1, seed=0, time_per_tree=0.0001) is None
    done = boost.finish_lgbm(LGBMEstimator, config, Xf, yf, Xv, yv, task="classification", metric="log_loss",
                             n_classes=2, seconds=3.0, n_jobs=1, seed=0, time_per_tree=0.0001)
    assert done is not None and done.trees >= boost.MIN_TREES
    assert boost.finish_lgbm(LGBMEstimator, config, Xf, yf, Xv, yv, task="classification", metric="log_loss",
                             n_classes=2, seconds=1.0, n_jobs=1, seed=0, time_per_tree=0.1) is None
    # a refit that its own fit time says will not fit is not started
    assert boost.refit_all(done, X, y, task="classification", n_classes=2, seconds=0.0, n_fit=len(yf)) is None


@pytest.mark.parametrize("task,metric,name", [("classification", "roc_auc", "xgboost"),
                                               ("regression", "r2", "xgb_limitdepth")])
def test_finishing_xgboost_and_the_blend_of_two_boosters(task, metric, name, tmp_path):
    from flaml.automl.model import XGBoostLimitDepthEstimator, XGBoostSklearnEstimator

    from modelfab.automl.learners import load_learner

    X, y = _data(task=task)
    Xf, yf, Xv, yv = _split(X, y, task)
    n_classes = 2 if task == "classification" else 0
    cls = XGBoostSklearnEstimator if name == "xgboost" else XGBoostLimitDepthEstimator
    config = ({"n_estimators": 4, "max_leaves": 8, "learning_rate": 0.3} if name == "xgboost"
              else {"n_estimators": 4, "max_depth": 3, "learning_rate": 0.3})
    kw = dict(task=task, metric=metric, n_classes=n_classes, seconds=30, n_jobs=1, seed=0, time_per_tree=0.01)
    xgb_done = boost.finish_xgb(cls, name, config, Xf, yf, Xv, yv, **kw)
    assert xgb_done is not None and xgb_done.name == name and not xgb_done.stopped_by_deadline
    assert xgb_done.trees > 4 and xgb_done.learner.obj.num_boosted_rounds() == xgb_done.trees
    lgb_done = boost.finish_lgbm(LGBMEstimator, {"n_estimators": 4, "num_leaves": 8, "learning_rate": 0.3},
                                 Xf, yf, Xv, yv, **kw)
    learner, loss = boost.blend([lgb_done, xgb_done], Xv, yv, task=task, metric=metric, n_classes=n_classes)
    # the blend's loss is its own predictions' loss, and saved + loaded it predicts the same numbers
    assert loss == pytest.approx(boost.val_loss(metric, task, n_classes, yv, learner.predict_raw(Xv)))
    assert loss < max(lgb_done.val_loss, xgb_done.val_loss)
    learner.save(tmp_path)
    spec = {"format": "ensemble", "members": learner.specs}
    again = load_learner(tmp_path, spec, task, n_classes)
    np.testing.assert_allclose(again.predict_raw(Xv), learner.predict_raw(Xv), rtol=1e-6)
    full = boost.refit_all(xgb_done, X, y, task=task, n_classes=n_classes, seconds=60, n_fit=len(yf))
    assert full is not None and full.format == "xgboost-json"


def test_validation_split_keeps_classes_and_groups():
    y = np.array([0] * 950 + [1] * 50)
    fit, val = boost.validation_split(y, "classification", None, seed=0)
    assert len(val) == 100 and y[val].sum() == 5 and len(np.intersect1d(fit, val)) == 0
    groups = np.repeat(np.arange(100), 10)
    fit, val = boost.validation_split(y, "classification", groups, seed=0)
    assert not set(groups[fit]) & set(groups[val])


@pytest.mark.parametrize("metric,raw,expected", [
    ("roc_auc", [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], -1.0),
    ("accuracy", [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]], -0.75),
])
def test_val_loss_is_lower_for_better(metric, raw, expected):
    assert boost.val_loss(metric, "classification", 2, np.array([0, 1, 0, 1]), np.array(raw)) == pytest.approx(expected)


def test_threads_only_on_large_data_and_free_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    small, large = np.zeros((100, 10)), np.zeros((100_000, 10))
    assert threads_for(small, load=0.0) == 1
    assert threads_for(large, load=1.0) == 4      # only this process
    assert threads_for(large, load=3.5) == 1      # 2.5 other busy processes on 4 cores
    assert threads_for(large, load=9.0) == 1
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert threads_for(large, load=11.0) == 6


def test_large_search_finishes_lgbm_on_its_own_validation_rows(monkeypatch):
    from modelfab.automl.budget import Budget
    from modelfab.automl.search import run_search

    X, y = _data(25_000)
    X = np.hstack([X, np.random.default_rng(1).normal(size=(len(X), 32))])  # 25,000 x 40: a large table
    calls = []
    real = boost.finish_lgbm

    def spy(cls, config, X_fit, y_fit, X_val, y_val, **kw):
        calls.append((len(X_fit), len(X_val), kw["seconds"]))
        return real(cls, config, X_fit, y_fit, X_val, y_val, **kw)

    monkeypatch.setattr(boost, "finish_lgbm", spy)
    res = run_search(X, y, task="classification", metric="roc_auc", budget=Budget(8), n_classes=2,
                     learners=("lgbm", "rf"), ensemble=True)
    assert calls and calls[0][:2] == (22_500, 2_500) and calls[0][2] > 0
    assert res.learner_name in ("lgbm", "rf") and res.ensemble is None  # large data: no ensemble
    lgbm = [r for r in res.leaderboard if r["learner"] == "lgbm"]
    assert lgbm and 0.5 < lgbm[0]["score"] <= 1.0
    assert res.learner.predict_raw(X[:10]).shape == (10, 2)


def test_finish_share_is_large_for_short_searches_only():
    assert boost.finish_share(40) == pytest.approx(0.6)
    assert boost.finish_share(100) == pytest.approx(0.3)
    assert boost.finish_share(3600) == pytest.approx(0.15)
    assert boost.finish_share(0) == 0.0


def test_a_large_table_search_finishes_its_boosters_inside_the_budget(tmp_path, caplog):
    """The whole path of run_search on >= 1M cells: FLAML on 90% of the rows, then the finished LightGBM and
    XGBoost (and their average) against the search's best on the validation rows; the winner saves and loads."""
    from modelfab.automl.budget import Budget
    from modelfab.automl.learners import load_learner
    from modelfab.automl.search import run_search

    X, y = _data(26_000)
    X = np.hstack([X, np.random.default_rng(1).normal(size=(len(X), 32))])  # 40 columns: 1.04M cells
    caplog.set_level("INFO", logger="modelfab")
    budget = Budget(30)  # 20 s left the network no time when the search ran beside other tests on 2 cores
    result = run_search(X, y, task="classification", metric="roc_auc", budget=budget, n_classes=2, seed=0,
                        learners=("lgbm", "xgboost", "mlp"))
    assert budget.elapsed() <= 30 * 1.1 + 5
    names = {r["learner"] for r in result.leaderboard}
    assert {"lgbm", "xgboost", "mlp"} <= names, (budget.elapsed(), caplog.text[-3000:])
    assert result.learner_name in ("lgbm", "xgboost", "mlp", "ensemble")
    assert result.refit is not None or result.learner_name not in ("ensemble", "mlp")
    if result.learner_name == "ensemble":  # an average of the finished models won on the validation rows
        assert set(m["learner"] for m in result.ensemble["members"]) <= {"lgbm", "mlp", "xgboost"}
        assert any(r["learner"] == "ensemble" and "early stopping" in r["validation"] for r in result.leaderboard)
    spec_file = result.learner.save(tmp_path)
    spec = ({"format": "ensemble", "members": result.learner.specs} if result.learner_name == "ensemble"
            else {"format": result.learner.format, "file": spec_file, "classes": result.learner.classes})
    again = load_learner(tmp_path, spec, "classification", 2)
    np.testing.assert_allclose(again.predict_raw(X[:500]), result.learner.predict_raw(X[:500]), rtol=1e-6)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[:2000], result.learner.predict_raw(X[:2000])[:, 1]) > 0.9

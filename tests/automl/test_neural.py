"""The small network of large tables (automl/neural.py): training, its array file, the refit, the blend."""

import numpy as np
import pytest

from modelfab.automl import boost, neural
from modelfab.automl.learners import FittedLearner, load_learner
from modelfab.errors import IntegrityError


def _data(n=4000, seed=0, task="classification", k=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)) * np.array([1, 10, 0.1, 1, 1, 1000])  # very different scales
    X[rng.random(X.shape) < 0.05] = np.nan
    Z = np.nan_to_num(X / np.array([1, 10, 0.1, 1, 1, 1000]))
    score = Z[:, 0] + Z[:, 1] - Z[:, 2] + 0.5 * Z[:, 3] * Z[:, 4] + rng.normal(scale=0.3, size=n)
    if task == "regression":
        return X, 50.0 + 20.0 * score
    return X, np.searchsorted(np.quantile(score, np.linspace(0, 1, k + 1)[1:-1]), score)


@pytest.mark.parametrize("task,k,metric", [("classification", 2, "roc_auc"), ("classification", 3, "log_loss"),
                                           ("regression", 0, "r2")])
def test_network_learns_saves_and_loads_without_pickle(task, k, metric, tmp_path):
    X, y = _data(task=task, k=max(k, 2))
    fit, val = boost.validation_split(y, task, None, seed=0)
    done = neural.finish_mlp(X[fit], y[fit], X[val], y[val], task=task, metric=metric, n_classes=k, seconds=30,
                             seed=0)
    assert done is not None and done.name == "mlp" and done.trees >= 1 and not done.stopped_by_deadline
    # a second seed is averaged in only when the average validates better
    assert done.config["seeds"] == list(range(len(done.learner.obj.nets))) and len(done.config["seeds"]) in (1, 2)
    raw = done.learner.predict_raw(X[val])
    if task == "classification":
        assert raw.shape == (len(val), k) and np.allclose(raw.sum(axis=1), 1.0)
        assert (raw.argmax(axis=1) == y[val]).mean() > (0.85 if k == 2 else 0.75)
    else:
        assert 1 - np.mean((raw - y[val]) ** 2) / np.var(y[val]) > 0.8  # r2 on the original scale
    name = done.learner.save(tmp_path)
    assert name == "model.npz"
    with np.load(tmp_path / name, allow_pickle=False) as z:  # plain arrays: no object arrays inside
        assert all(z[key].dtype != object for key in z.files)
    again = load_learner(tmp_path, {"format": "mlp-npz", "file": name, "classes": done.learner.classes}, task, k)
    np.testing.assert_allclose(again.predict_raw(X[val]), raw, rtol=1e-12)


def test_forward_pass_is_scikit_learns():
    X, y = _data()
    trainer = neural._Trainer(X, y, "classification", 2, seed=0)
    for _ in range(3):
        trainer.epoch()
    ours = trainer.model().predict(X)
    theirs = trainer.net.predict_proba(trainer._z(X))[:, 1]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)  # sklearn's pass runs in float32


def test_a_network_file_that_does_not_fit_together_is_refused(tmp_path):
    X, y = _data(500)
    trainer = neural._Trainer(X, y, "classification", 2, seed=0)
    trainer.epoch()
    model = trainer.model()
    model.nets[0][0][1] = model.nets[0][0][1][:5]  # layer shapes no longer chain
    model.save(tmp_path / "model.npz")
    with pytest.raises(IntegrityError, match="shapes"):
        FittedLearner.load(tmp_path, "mlp-npz", "classification", 2, [0, 1])
    for junk in (b"not a zip", b"PK\x03\x04 a broken zip"):
        (tmp_path / "model.npz").write_bytes(junk)
        with pytest.raises(IntegrityError, match="not a valid network file"):
            FittedLearner.load(tmp_path, "mlp-npz", "classification", 2, [0, 1])
    np.save(tmp_path / "model.npz", np.zeros(3))  # a plain .npy under the name
    (tmp_path / "model.npz.npy").rename(tmp_path / "model.npz")
    with pytest.raises(IntegrityError, match="not a valid network file"):
        FittedLearner.load(tmp_path, "mlp-npz", "classification", 2, [0, 1])
    np.savez(tmp_path / "model.npz", fill=np.array([object()], dtype=object))  # pickled content is refused
    with pytest.raises(IntegrityError, match="not a valid network file"):
        FittedLearner.load(tmp_path, "mlp-npz", "classification", 2, [0, 1])


def test_no_network_when_its_epochs_cannot_fit_and_the_deadline_stops_it():
    X, y = _data(20_000)
    fit, val = boost.validation_split(y, "classification", None, seed=0)
    kw = dict(task="classification", metric="log_loss", n_classes=2, seed=0)
    assert neural.finish_mlp(X[fit], y[fit], X[val], y[val], seconds=0.01, **kw) is None
    done = neural.finish_mlp(X[fit], y[fit], X[val], y[val], seconds=1.0, **kw)
    assert done is not None and done.stopped_by_deadline
    # the refit on every row is not started when its own time says it would not fit
    assert neural.refit_mlp(done, X, y, task="classification", n_classes=2, seconds=0.0, n_fit=len(fit)) is None


def test_refit_plan_refits_every_member_on_all_rows_and_choose_takes_the_best_average():
    from flaml.automl.model import LGBMEstimator

    X, y = _data(6000)
    fit, val = boost.validation_split(y, "classification", None, seed=0)
    kw = dict(task="classification", metric="log_loss", n_classes=2, seed=0)
    net = neural.finish_mlp(X[fit], y[fit], X[val], y[val], seconds=30, **kw)
    trees = boost.finish_lgbm(LGBMEstimator, {"n_estimators": 4, "num_leaves": 8, "learning_rate": 0.3},
                              X[fit], y[fit], X[val], y[val], seconds=30, n_jobs=1, time_per_tree=0.01, **kw)
    members, learner, loss = boost.choose([trees, net], X[val], y[val], task="classification", metric="log_loss",
                                          n_classes=2)
    assert loss <= min(trees.val_loss, net.val_loss)
    assert loss == pytest.approx(boost.val_loss("log_loss", "classification", 2, y[val], learner.predict_raw(X[val])))
    plan = boost.RefitPlan([trees, net], n_fit=len(fit))
    refit, count = plan.run(X, y, task="classification", n_classes=2, seconds=60)
    assert count == 2 and refit.format == "ensemble" and [m.format for m in refit.members] == ["lightgbm-text",
                                                                                               "mlp-npz"]
    assert refit.members[0].obj.num_trees() == round(trees.trees * len(y) / len(fit))
    assert not np.allclose(refit.members[1].predict_raw(X[:50]), net.learner.predict_raw(X[:50]))
    assert len(refit.members[1].obj.nets) == len(net.learner.obj.nets)
    same, count = plan.run(X, y, task="classification", n_classes=2, seconds=0.0)  # no time: members stay
    assert count == 0 and same.members[0] is trees.learner and same.members[1] is net.learner


def test_infinite_values_count_as_missing_in_training():
    X, y = _data(3000)
    X[::7, 1] = np.inf
    X[::11, 2] = -np.inf
    fit, val = boost.validation_split(y, "classification", None, seed=0)
    done = neural.finish_mlp(X[fit], y[fit], X[val], y[val], task="classification", metric="roc_auc", n_classes=2,
                             seconds=30, seed=0)
    assert done is not None and np.isfinite(done.learner.predict_raw(X)).all()
    assert neural.refit_mlp(done, X, y, task="classification", n_classes=2, seconds=60, n_fit=len(fit)) is not None

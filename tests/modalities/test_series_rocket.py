"""ROCKET-family transforms and series model parts: the definition, determinism, rebuild from saved arrays."""

from __future__ import annotations

import numpy as np
import pytest

from modelfab.modalities.series.heads import FeatureBoost, RocketRidge, SeriesEnsemble
from modelfab.modalities.series.io import SeriesSet
from modelfab.modalities.series.rocket import KERNELS, RocketTransform
from tests.modalities.test_series_io import make_series


def _packed(series):
    return SeriesSet(series, [str(i) for i in range(len(series))]).packed()


def _reference_minirocket(t: RocketTransform, x: np.ndarray) -> np.ndarray:
    """MiniRocket PPV features of one univariate series, straight from the definition (slow, plain numpy)."""
    rep = t.reps[0]
    L = max(len(x), t.pad_to)
    x = np.r_[x, np.zeros(L - len(x))]
    feats, fi = [], 0
    for di, (d, nf) in enumerate(zip(rep.dilations, rep.n_per_dil)):
        pad = (8 * d) // 2
        for k in range(84):
            w = np.full(9, -1.0)
            w[KERNELS[k]] = 2.0
            c = np.zeros(L)
            for j in range(9):
                s = (j - 4) * d
                for i in range(L):
                    if 0 <= i + s < L:
                        c[i] += w[j] * x[i + s]
            seg = c[pad:L - pad] if (di + k) % 2 == 1 and L - 2 * pad > 0 else c
            for f in range(nf):
                feats.append(np.mean(seg > rep.biases[fi + f]))
            fi += nf
    return np.array(feats)


def test_minirocket_matches_the_definition():
    series, _, _ = make_series(6, 40, seed=5)
    t = RocketTransform("minirocket", n_features=840, seed=1).fit(*_packed(series))
    got = t.transform(*_packed(series[:2]))
    ref = _reference_minirocket(t, series[1][0])
    assert got.shape == (2, t.n_outputs) and np.allclose(got[1], ref, atol=1e-6)


@pytest.mark.parametrize("kind", ["minirocket", "multirocket"])
def test_rebuilt_from_saved_arrays_is_identical(kind):
    series, _, _ = make_series(10, 40, channels=3, seed=6, unequal=True)
    t = RocketTransform(kind, n_features=3360, seed=2).fit(*_packed(series))
    again = RocketTransform.from_saved(t.meta(), {k: v.copy() for k, v in t.arrays().items()})
    a, b = t.transform(*_packed(series)), again.transform(*_packed(series))
    assert np.array_equal(a, b) and np.isfinite(a).all()
    assert t.meta()["pad_to"] == max(s.shape[1] for s in series)
    other = RocketTransform(kind, n_features=3360, seed=3).fit(*_packed(series))
    assert not np.array_equal(a, other.transform(*_packed(series)))
    with pytest.raises(ValueError):
        t.transform(*_packed([s[:2] for s in series]))  # two channels where three were fitted


def test_model_parts_save_and_load(tmp_path):
    series, labels, target = make_series(24, 40, seed=7)
    y = np.array([0 if v == "bump" else 1 for v in labels])
    data, off = _packed(series)
    parts = [RocketRidge("minirocket", "classification", 2, 840, 0).fit(data, off, series, y),
             FeatureBoost("classification", 2, 0).fit(data, off, series, y, rounds=20)]
    ens = SeriesEnsemble(parts, [0.7, 0.3], "classification")
    specs = ens.save(tmp_path)
    loaded = SeriesEnsemble.load(tmp_path, specs, "classification", 2)
    p = ens.predict_raw(data, off, series)
    assert np.array_equal(p, loaded.predict_raw(data, off, series))
    assert np.allclose(p.sum(axis=1), 1) and parts[0].oof.shape == (24, 2)
    reg = RocketRidge("minirocket", "regression", 0, 840, 0).fit(data, off, series, np.array(target))
    assert reg.oof.shape == (24,) and reg.predict_raw(data, off).shape == (24,)


@pytest.mark.parametrize("n,f,k", [(30, 400, 2), (40, 300, 4), (120, 30, 3), (90, 20, 2)])
def test_ridge_loo_matches_scikit_learn(n, f, k):
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV

    from modelfab.modalities.series.heads import ALPHAS, ridge_loo

    rng = np.random.default_rng(n + f)
    Z = rng.normal(size=(n, f))
    score = Z @ rng.normal(size=f) + rng.normal(size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, k + 1)[1:-1]))
    Y = np.where(y[:, None] == np.arange(k)[None, :], 1.0, -1.0)[:, (1 if k == 2 else 0):]
    coef, intercept, loo, alpha = ridge_loo(Z, Y, ALPHAS)
    sel = RidgeClassifierCV(alphas=ALPHAS).fit(Z, y)
    ref = RidgeClassifierCV(alphas=[sel.alpha_], store_cv_results=True, scoring="accuracy").fit(Z, y)
    assert alpha == sel.alpha_
    assert np.allclose(coef.T, np.atleast_2d(sel.coef_), atol=1e-8) and np.allclose(intercept, sel.intercept_, atol=1e-8)
    assert np.allclose(loo, ref.cv_results_[:, :, 0], atol=1e-6)
    coef, _, loo, alpha = ridge_loo(Z, score[:, None], ALPHAS)
    reg = RidgeCV(alphas=ALPHAS, store_cv_results=True, scoring="neg_mean_squared_error").fit(Z, score)
    assert alpha == reg.alpha_ and np.allclose(coef[:, 0], reg.coef_, atol=1e-8)
    assert np.allclose(loo[:, 0], reg.cv_results_[:, list(ALPHAS).index(reg.alpha_)], atol=1e-6)


@pytest.mark.parametrize("n,f", [(18, 40), (60, 10)])
def test_ridge_loo_is_exact_leave_one_out_with_duplicate_series(n, f):
    """Series with identical features (duplicates, constant series) make the Gram matrix's null space more than
    the constant direction; the leave-one-out residuals must still be those of refitting without each series."""
    from modelfab.modalities.series.heads import ridge_loo

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(n, f))
    Z[6:12] = Z[5]  # seven copies of one series
    Y = np.sign(rng.normal(size=(n, 3)))
    for a in (1e-3, 1.0, 100.0):
        _, _, loo, _ = ridge_loo(Z, Y, [a])
        brute = np.zeros_like(Y)
        for i in range(n):
            keep = np.arange(n) != i
            mu, ybar = Z[keep].mean(0), Y[keep].mean(0)
            Xc = Z[keep] - mu
            coef = np.linalg.solve(Xc.T @ Xc + a * np.eye(f), Xc.T @ (Y[keep] - ybar))
            brute[i] = ybar + (Z[i] - mu) @ coef
        assert np.allclose(loo, brute, atol=1e-6), a



def test_transform_with_a_deadline_is_the_same_and_can_stop():
    series, _, _ = make_series(70, 40, channels=2, seed=8, unequal=True)
    t = RocketTransform("multirocket", n_features=3360, seed=0).fit(*_packed(series))
    assert np.array_equal(t.transform(*_packed(series)), t.transform(*_packed(series), deadline=lambda: False))
    with pytest.raises(TimeoutError):
        t.transform(*_packed(series), deadline=lambda: True)


def test_repeated_folds_average_out_of_fold_predictions():
    from modelfab.training_series import _folds

    series, labels, _ = make_series(30, 40, seed=9)
    y = np.array([0 if v == "bump" else 1 for v in labels])
    folds = _folds(y, "classification", 0, repeats=3)
    assert len(folds) == 15 and all(np.bincount(np.concatenate([va for _, va in folds]), minlength=30) == 3)
    m = FeatureBoost("classification", 2, 0).fit(*_packed(series), series, y, folds=folds, rounds=20)
    assert m.oof.shape == (30, 2) and np.allclose(m.oof.sum(axis=1), 1)


class _Fitted:
    def __init__(self, name, oof):
        self.name, self.oof = name, oof


def _oof(y, right, sure, k=3, seed=0):
    """Probabilities that put ``sure`` on the true class of the series where ``right`` is True, else on another."""
    rng = np.random.default_rng(seed)
    p = np.full((len(y), k), (1 - sure) / (k - 1))
    hit = np.where(right, y, (y + 1 + rng.integers(0, k - 1, len(y))) % k)
    p[np.arange(len(y)), hit] = sure
    return p


def test_choose_weights_keeps_the_rocket_average_unless_clearly_beaten():
    from modelfab.training_series import choose_weights

    y = np.arange(60) % 3
    wrong = lambda *ix: ~np.isin(np.arange(60), ix)
    mini = _oof(y, wrong(*range(0, 9)), 0.7, seed=1)
    multi = _oof(y, wrong(*range(5, 14)), 0.7, seed=2)
    lucky = _oof(y, wrong(0, 1, 2, 3, 9, 10, 11, 12), 0.7, seed=3)  # one series more right, on the same hard ones
    fitted = [_Fitted("minirocket_ridge", mini), _Fitted("multirocket_ridge", multi), _Fitted("features_lgbm", lucky)]
    w, why = choose_weights("classification", y, fitted)
    assert w == [0.5, 0.5, 0.0] and "Chosen: the default" in why
    strong = _oof(y, np.ones(60, bool), 0.95, seed=4)  # right on every series, confidently: clearly better
    w, why = choose_weights("classification", y, fitted[:2] + [_Fitted("features_lgbm", strong)])
    assert w[2] > 0.5 and "beat the default" in why


def test_feature_count_of_a_small_data_set_ignores_the_machine_speed(monkeypatch):
    from modelfab import training_series_plan as tp

    series, _, _ = make_series(80, 300, seed=10)
    data, off = _packed(series)
    monkeypatch.setattr(tp, "_flop_rate", lambda: 1.0)  # a probe on a hopelessly slow machine
    assert tp.rocket_features("minirocket", data, off, 20.0, 0) == 10_000
    assert tp.rocket_features("multirocket", data, off, 20.0, 0) == 50_000
    assert tp.rocket_features("multirocket", data, off, 0.01, 0) == 3_360  # no time at all: the floor


def test_no_speed_probe_when_the_probe_itself_would_not_fit(monkeypatch):
    """Very long series: timing even one of them would take much of the budget; the pessimistic static count is
    used without running any transform (a transform here would fail the test)."""
    from modelfab import training_series_plan as tp
    from modelfab.modalities.series import rocket

    n, length = 4, 400_000
    data, off = np.zeros((1, n * length), np.float32), np.arange(0, n * length + 1, length)
    assert tp._probe_count("minirocket", off, 1, 10_000, 1.0) == 0
    assert tp._probe_count("minirocket", np.arange(0, 80 * 300 + 1, 300), 1, 10_000, 1.0) == tp.PROBE

    def no_transform(*a, **k):
        raise AssertionError("the probe ran")

    monkeypatch.setattr(rocket.RocketTransform, "fit", no_transform)
    f = tp.rocket_features("minirocket", data, off, 10.0, 0)
    assert tp._features_for("minirocket", n)[1] <= f < 10_000


def test_refit_with_more_series_keeps_the_transform_and_refits_the_head():
    series, labels, _ = make_series(30, 40, seed=11)
    y = np.array([0 if v == "bump" else 1 for v in labels])
    m = RocketRidge("multirocket", "classification", 2, 3360, 0).fit(*_packed(series[:24]), series[:24], y[:24])
    assert m.fit_features.shape == (24, m.transform.n_outputs)
    r = m.refit_with(*_packed(series[24:]), y)
    assert r.transform is m.transform and r.oof.shape == (30, 2) and r.fit_features is None
    ref = RocketRidge("multirocket", "classification", 2, 3360, 0)
    ref.transform = m.transform
    ref._fit_head(m.transform.transform(*_packed(series)).astype(np.float64), y)
    data, off = _packed(series)
    assert np.allclose(r.predict_raw(data, off), ref.predict_raw(data, off))
    assert not np.allclose(r.coef, m.coef)

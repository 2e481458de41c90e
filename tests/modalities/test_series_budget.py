"""The time estimates behind a series training's budget on large sets, checked without timing anything: a ROCKET
method whose smallest feature count cannot fit is skipped before it starts (its ridge head cannot be stopped),
the refit estimate follows the measured ridge cost, and the ridge runs on the BLAS threads the rate is measured on."""

from __future__ import annotations

import numpy as np
import pytest

from modelfab import training_series as ts
from modelfab import training_series_plan as tp
from modelfab.automl.budget import Budget
from modelfab.modalities.series.heads import RocketRidge, blas_limit, blas_threads
from tests.modalities.test_series_io import make_series


def _packed(series):
    off = np.zeros(len(series) + 1, np.int64)
    off[1:] = np.cumsum([s.shape[1] for s in series])
    return np.ascontiguousarray(np.concatenate(series, axis=1)), off


def _many_short(n: int, length: int = 12, seed: int = 0):
    """``n`` short series: so many that the memory cap leaves MultiRocket only its floor of features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.arange(length)
    data = (np.sin(t[None, :] * (0.5 + y[:, None])) + 0.1 * rng.normal(size=(n, length))).reshape(1, -1)
    return data, np.arange(0, n * length + 1, length, dtype=np.int64), y


def test_the_floor_of_a_large_set_has_an_honest_estimate():
    data, off, _ = _many_short(20_000)
    full, floor = tp._features_for("multirocket", 20_000)
    assert full == floor == 3_360  # nothing to choose: before, the floor was returned as "fits" unexamined
    f, need, clear = tp.rocket_plan("multirocket", data, off, 1.0, 0, rate=1e10)
    assert f == floor and not clear
    # ridge on 20,000 x 3,360 features: 9e11 flops at the rate given + the per-cell copies, far above 1 s
    assert need >= tp._head_seconds(20_000, floor, 1e10) > 60
    assert tp.rocket_features("multirocket", data, off, 1.0, 0) == floor  # the count itself is unchanged


def test_a_rocket_fit_that_cannot_fit_is_skipped_before_it_starts():
    data, off, y = _many_short(20_000)
    series = [data[:, off[i]:off[i + 1]] for i in range(len(y))]
    with pytest.raises(ts._WontFit):
        ts._fit("multirocket", "classification", 2, data, off, series, y, 0, Budget(60), None, may_take=5.0,
                rate=1e10)


def test_a_small_set_is_never_skipped_by_the_estimate():
    series, labels, _ = make_series(40, 60, seed=3)
    y = np.array([0 if v == "bump" else 1 for v in labels])
    data, off = _packed(series)
    f, need, clear = tp.rocket_plan("multirocket", data, off, 20.0, 0)
    assert (f, clear) == (50_000, True) and need <= 20.0
    m = ts._fit("multirocket", "classification", 2, data, off, series, y, 0, Budget(60), None, may_take=1e-6)
    assert m.transform.n_outputs > 40_000 and m.oof.shape == (40, 2)
    assert m.fit_seconds is not None and min(m.fit_seconds) >= 0


def test_refit_estimate_follows_the_measured_ridge_cost():
    series, labels, _ = make_series(30, 40, seed=11)
    y = np.array([0 if v == "bump" else 1 for v in labels])
    m = RocketRidge("minirocket", "classification", 2, 840, 0).fit(*_packed(series[:24]), series[:24], y[:24])
    m.fit_seconds = (1.0, 10.0)  # a fit whose ridge head took most of the time
    n_tr, n_all = 20_000, 25_000
    cheap = ts._refit_seconds(m, 11.0, n_tr, n_all, True, 0.2)
    # the head on 25% more rows costs ~25% more (n > features: nearly linear in n); only the new rows transformed
    assert cheap >= 10.0 * 1.2 + 1.0 * 0.25
    assert cheap > 11.0 * (5_000 / 20_000 + 0.5)  # the estimate before: spent x (held-out share + 0.5)
    assert ts._refit_seconds(m, 11.0, n_tr, n_all, False, 0.2) >= cheap + 1.0  # all rows transformed again
    # wide features (n < f): the Gram matrix and its eigendecomposition grow faster than the rows
    assert ts._refit_seconds(m, 11.0, 300, 375, True, 0.2) > 10.0 * 1.4  # 300 -> 375 series, 840 features
    assert ts._refit_seconds(object(), 10.0, n_tr, n_all, True, 0.2) == pytest.approx(2.0)  # LightGBM part


def test_measured_rate_is_only_taken_from_a_long_enough_fit():
    assert tp.measured_rate(80_000, 840, 0.5) is None
    r = tp.measured_rate(80_000, 840, 10.0)
    head = tp._head_seconds(80_000, 840, r)
    assert head == pytest.approx(10.0)


def test_refit_stops_before_the_head_when_the_time_is_up():
    series, labels, _ = make_series(30, 40, seed=11)
    y = np.array([0 if v == "bump" else 1 for v in labels])
    m = RocketRidge("minirocket", "classification", 2, 840, 0).fit(*_packed(series[:24]), series[:24], y[:24])
    calls = []

    def stop():  # the transform of the 6 new series asks once (one chunk); the time is up right after
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(TimeoutError):
        m.refit_with(*_packed(series[24:]), y, stop)
    assert len(calls) == 2


def test_the_ridge_runs_on_the_blas_threads_it_is_timed_on():
    from threadpoolctl import threadpool_info

    assert blas_threads() == max(1, (__import__("os").cpu_count() or 1) - 1)
    with blas_limit():
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] <= blas_threads() for p in blas)


def test_lightgbm_on_many_series_is_skipped_when_its_features_alone_cannot_fit():
    from modelfab.modalities.series.heads import summary_features_until

    data, off, y = _many_short(ts.SUMMARY_PROBE + 50)
    series = [data[:, off[i]:off[i + 1]] for i in range(len(y))]
    assert ts._summary_seconds(series[:ts.SUMMARY_PROBE]) == 0.0 and ts._summary_seconds(series) > 0
    with pytest.raises(ts._WontFit):
        ts._fit("features", "classification", 2, data, off, series, y, 0, Budget(60), None, may_take=0.0)
    asks = []
    with pytest.raises(TimeoutError):  # the features of many series stop between chunks at the deadline
        summary_features_until(series * 10, lambda: asks.append(1) or len(asks) > 1)
    assert len(asks) == 2
    assert np.array_equal(summary_features_until(series * 10, lambda: False),
                          summary_features_until(series * 10))

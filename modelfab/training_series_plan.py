"""How many ROCKET features a series fit can afford: a cost model of the transform and the ridge head, from the
data size at pessimistic speeds first, then from timing the machine as it runs now (training_series asks it
with the time its budget leaves)."""

from __future__ import annotations

import time

import numpy as np

MAX_CELLS = 6e7  # series x features kept in memory per transform (float64: ~0.5 GB)


def _features_for(kind: str, n: int) -> tuple[int, int]:
    """(published default feature count capped by memory: series x features, floor)."""
    full = 10_000 if kind == "minirocket" else 50_000
    floor = 840 if kind == "minirocket" else 3_360
    return int(max(floor, min(full, MAX_CELLS // max(n, 1)))), floor


def _flop_rate() -> float:
    """Floating-point operations per second of a small matrix product, as the machine runs now (load included),
    on the BLAS threads the ridge head uses (heads.blas_limit)."""
    from .modalities.series.heads import blas_limit

    a = np.random.default_rng(0).normal(size=(300, 2000))
    with blas_limit():
        t0 = time.perf_counter()
        a @ a.T
        return 3.6e8 / max(time.perf_counter() - t0, 1e-4)


def _ridge_flops(n: int, f: int) -> float:
    small, big = min(n, f), max(n, f)
    # heads.ridge_loo: the Gram (or covariance) product, its eigendecomposition with vectors, and (covariance case)
    # the projection of the series on the eigenvectors
    return 4.0 * small * small * big + 9.0 * small ** 3


# Seconds per series x feature of a ridge fit besides its flops: the float64 copy of the features, the
# standardisation, the centred copy and the projection buffers (measured: ~14 s at 80,000 series x 3,360 features
# before the eigendecomposition started, on a busy 2-core machine).
CELL_SECONDS = 5e-8


def _head_seconds(n: int, f: int, rate: float) -> float:
    """Seconds of a ridge head fit (heads.RocketRidge._fit_head) on ``n`` series x ``f`` features."""
    return _ridge_flops(n, f) / rate + CELL_SECONDS * n * f


def measured_rate(n: int, f: int, head_s: float) -> float | None:
    """The matrix rate a ridge head fit of ``n`` x ``f`` features taking ``head_s`` seconds has shown (its
    per-cell part taken off); None when the fit was too short (< 1 s) to say."""
    if head_s < 1.0:
        return None
    return _ridge_flops(n, f) / max(head_s - CELL_SECONDS * n * f, 0.2 * head_s)


# Seconds per series x time step (padded length) x output feature x sqrt(channels) of the transform and the other
# per-feature work of a fit, about three times what an idle 2-core machine of 2026 needs; and a matrix-product rate
# (float operations per second) below a loaded one's. Used to tell "clearly fits" without timing anything.
SLOW_SECONDS = {"minirocket": 2.5e-9, "multirocket": 1.5e-9}
SLOW_FLOPS = 2e9


def _slow_transform_s(kind: str, steps: float, channels: int, f: int) -> float:
    """Seconds of a transform of ``steps`` time steps to ``f`` features at the pessimistic speed."""
    return SLOW_SECONDS[kind] * steps * np.sqrt(max(channels, 1)) * f


def _static_cost(kind: str, n: int, length: int, channels: int, f: int) -> float:
    return _slow_transform_s(kind, n * length, channels, f) + _ridge_flops(n, f) / SLOW_FLOPS


PROBE = 32  # series timed by the speed probe at most: one transform chunk (rocket.CHUNK); with 8 series of length
# 100 the per-call overhead made the estimate 10x the real transform time


def _probe_count(kind: str, offsets, channels: int, f: int, seconds: float) -> int:
    """How many of the first series (up to :data:`PROBE`) the speed probe may fit and time (a fit and three transforms) within
    ``seconds`` at the pessimistic speed; 0 when not even one: long recordings would make the probe itself cost
    more than the budget. Series are not cut shorter for it: the kernels' dilations grow with the length, and so
    does the cost per step."""
    lengths = np.diff(offsets[:PROBE + 1])
    probe = len(lengths)
    while probe and 4.0 * _slow_transform_s(kind, lengths[:probe].sum(), channels, f) > seconds:
        probe -= 1
    return probe


def rocket_features(kind: str, data, offsets, seconds: float, seed: int) -> int:
    """The largest feature count (<= the published default) whose transform + ridge fit should take ``seconds``
    (:func:`rocket_plan`)."""
    return rocket_plan(kind, data, offsets, seconds, seed)[0]


def rocket_plan(kind: str, data, offsets, seconds: float, seed: int, rate: float | None = None
                ) -> tuple[int, float, bool]:
    """(feature count, estimated seconds of its transform + ridge fit, whether the count clearly fits).

    The count is the largest (<= the published default) whose transform + ridge fit should take ``seconds``.
    First from the data size alone with pessimistic speeds (:data:`SLOW_SECONDS`): when the published default
    clearly fits, it is used as is, so a small data set gets the same model whatever the machine's load. Only
    otherwise is the machine timed as it runs now (the transform on a few series, best of two; a small matrix
    product, or ``rate``, measured on an earlier ridge fit of these series; skipped when even the transform
    timing would take a tenth of ``seconds``), and the larger of the two answers is used. The count never goes
    below the floor of the method, so the estimate may be more than ``seconds``: on a large set even the floor
    may not fit, and the caller may then skip the method."""
    from .modalities.series.rocket import RocketTransform

    n = len(offsets) - 1
    full, floor = _features_for(kind, n)
    length = int(np.diff(offsets).max()) if n else 1
    channels = int(data.shape[0])
    static = full
    while static > floor and _static_cost(kind, n, length, channels, static) > seconds:
        static = int(static * 0.7)
    if static >= full and _static_cost(kind, n, length, channels, full) <= seconds:
        return full, _static_cost(kind, n, length, channels, full), True
    probe = _probe_count(kind, offsets, channels, full, 0.1 * seconds)
    if not probe:
        f = max(static, floor)
        return f, _static_cost(kind, n, length, channels, f), False
    sub_off = offsets[:probe + 1]
    sub = data[:, :sub_off[-1]]
    t = RocketTransform(kind, full, seed).fit(sub, sub_off)
    t.transform(sub, sub_off)  # the first call may compile
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        t.transform(sub, sub_off)
        times.append(time.perf_counter() - t0)
    per = min(times) / probe / full  # seconds per series and feature
    rate = rate or _flop_rate()
    f = full
    while f > floor and per * f * n + _head_seconds(n, f, rate) > seconds:
        f = int(f * 0.7)
    f = max(f, static, floor)
    return f, per * f * n + _head_seconds(n, f, rate), False

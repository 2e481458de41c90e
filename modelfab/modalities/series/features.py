"""Interpretable summary features of a series (per channel), for gradient boosting.

A compact set in the spirit of catch22: distribution, trend, differences,
autocorrelation, crossings, peak positions and spectral shape. Plain numpy,
works on any length >= 3; every value is finite.
"""

from __future__ import annotations

import numpy as np

_BASE = ("length", "mean", "std", "min", "max", "median", "q05", "q25", "q75", "q95", "skew", "kurtosis",
         "slope", "diff_mean_abs", "diff_std", "acf_1", "acf_2", "acf_5", "acf_first_zero", "mean_crossings",
         "argmax_pos", "argmin_pos", "spec_low", "spec_mid", "spec_high", "spec_peak_pos", "energy_first_half",
         "longest_above_mean")
FEATURES_VERSION = 1


def feature_names(channels: list[str]) -> list[str]:
    return [f"{c}__{f}" for c in channels for f in _BASE]


def _acf(x: np.ndarray) -> np.ndarray:
    n = len(x)
    x = x - x.mean()
    f = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(f * np.conj(f))[:n]
    return ac / ac[0] if ac[0] > 0 else np.zeros(n)


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    m = np.r_[0, mask.astype(np.int8), 0]
    d = np.diff(m)
    return int((np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).max())


def _one(x: np.ndarray) -> list[float]:
    n = len(x)
    mu, sd = float(x.mean()), float(x.std())
    z = (x - mu) / sd if sd > 0 else np.zeros(n)
    q = np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95])
    t = np.arange(n, dtype=np.float64)
    slope = float(np.polyfit(t / max(n - 1, 1), x, 1)[0])
    d = np.diff(x)
    ac = _acf(x)
    zero = np.flatnonzero(ac <= 0)
    spec = np.abs(np.fft.rfft(x - mu)) ** 2
    total = spec[1:].sum()
    bands = np.array_split(spec[1:], 3) if len(spec) > 3 else [spec[1:]] * 3
    frac = [float(b.sum() / total) if total > 0 else 0.0 for b in bands]
    energy = np.cumsum((x - mu) ** 2)
    return [n, mu, sd, float(x.min()), float(x.max()), q[2], q[0], q[1], q[3], q[4],
            float((z ** 3).mean()), float((z ** 4).mean()), slope, float(np.abs(d).mean()), float(d.std()),
            float(ac[1]) if n > 1 else 0.0, float(ac[2]) if n > 2 else 0.0, float(ac[5]) if n > 5 else 0.0,
            (int(zero[0]) if len(zero) else n) / n, float((np.diff(np.sign(z)) != 0).mean()),
            float(np.argmax(x)) / n, float(np.argmin(x)) / n, *frac,
            float(np.argmax(spec[1:]) + 1) / len(spec) if len(spec) > 1 else 0.0,
            float(energy[n // 2] / energy[-1]) if energy[-1] > 0 else 0.5, _longest_run(z > 0) / n]


def summary_features(series: list[np.ndarray]) -> np.ndarray:
    """``(n_series, n_channels * len(_BASE))`` float64."""
    rows = []
    for s in series:
        rows.append([v for c in range(s.shape[0]) for v in _one(np.asarray(s[c], dtype=np.float64))])
    out = np.asarray(rows, dtype=np.float64)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

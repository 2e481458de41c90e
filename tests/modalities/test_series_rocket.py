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

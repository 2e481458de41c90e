"""The family calibration of an image anomaly model: good images of a family that always scores high (a rim, a
lighting) no longer outrank a faint defect on a family that scores low. Cell features are made up here (no
backbone needed): the calibration works on any cell vectors."""

from __future__ import annotations

import numpy as np
import pytest

from modelfab.automl.budget import Budget
from modelfab.errors import IntegrityError
from modelfab.modalities.image.padim import (CALIBRATED, KIND, GaussianAccumulator, PositionGaussian, size_norm_for)
from modelfab.training_image_calib import KeptFeatures, calibrate, ridge

H = W = 6
C = 6


def _images(n: int, seed: int, defect: bool = False):
    """Two families: narrow parts (100 px wide) with a quiet surface, wide ones (200 px) whose surface varies
    twice as much everywhere, so their good images score higher at their most deviating cell."""
    rng = np.random.default_rng(seed)
    wide = np.arange(n) % 2 == 1
    feats = rng.normal(size=(n, H, W, C)) * np.where(wide, 2.0, 1.0)[:, None, None, None]
    feats += np.where(wide, 3.0, 0.0)[:, None, None, None]  # the families also look different as a whole
    if defect:  # a faint spot in one cell
        feats[:, 2, 3, :2] += 4.0
    sizes = [(200 if w else 100, 100) for w in wide]
    return feats.astype(np.float32), sizes, wide


def _fitted(n: int = 320):
    feats, sizes, _ = _images(n, 0)
    acc = GaussianAccumulator(size_norm=size_norm_for([s[0] for s in sizes], [s[1] for s in sizes]))
    kept = KeptFeatures(n)
    for start in range(0, n, 8):
        acc.add(feats[start:start + 8], sizes=sizes[start:start + 8])
        kept.add(feats[start:start + 8], sizes[start:start + 8])
    channels = np.arange(C)
    model = PositionGaussian.fit(acc, channels, canvas=(W * 8, H * 8))
    return model, acc, kept


def test_scores_are_read_relative_to_the_family_and_the_sums_are_left_as_they_were(tmp_path):
    from sklearn.metrics import roc_auc_score

    model, acc, kept = _fitted()
    before = (acc.n, acc.s2.copy(), acc.sux.copy(), acc.suu.copy())
    notes: list[str] = []
    calibrate(model, acc, kept, Budget(120), notes, seed=0, fit_s=0.05, reserve_s=0.0)
    assert model.calib is not None and 2 <= len(model.calib) <= 14, notes
    assert "relative to the score a good image of the same family" in " ".join(notes)
    assert acc.n == before[0] and np.allclose(acc.s2, before[1]) and np.allclose(acc.sux, before[2])
    assert np.allclose(acc.suu, before[3])

    good, gs, wide = _images(200, 7)
    bad, bs, bwide = _images(200, 8, defect=True)
    factor = model.family_factor(good, gs)
    assert factor[wide].mean() < 0.8 * factor[~wide].mean()  # the noisy family is expected to score higher

    def scores(feats, sizes, calibrated):
        maps = model.cell_maps(feats, sizes) if calibrated else model.combine(*model.map_parts(feats, sizes))
        return maps.max(axis=(1, 2))

    raw_good, cal_good = scores(good, gs, False), scores(good, gs, True)
    assert np.median(raw_good[wide]) > 1.3 * np.median(raw_good[~wide])
    assert 0.8 < np.median(cal_good[wide]) / np.median(cal_good[~wide]) < 1.25
    # faint defects on the quiet family against every good image: the calibration ranks them higher
    y = np.r_[np.zeros(200), np.ones(int((~bwide).sum()))]
    auc_raw = roc_auc_score(y, np.r_[raw_good, scores(bad, bs, False)[~bwide]])
    auc_cal = roc_auc_score(y, np.r_[cal_good, scores(bad, bs, True)[~bwide]])
    assert auc_cal > auc_raw + 0.05, (auc_raw, auc_cal)

    spec = model.save(tmp_path)
    assert spec["kind"] == KIND + CALIBRATED and spec["calibration"]["covariates"] == len(model.calib) - 1
    loaded = _load(tmp_path, spec)
    assert np.allclose(loaded.cell_maps(good, gs), model.cell_maps(good, gs), atol=1e-5)

    def refused(changed, match, arrays=None):
        if arrays is not None:
            np.savez(tmp_path / "damaged.npz", **arrays)
            changed = dict(changed, file="damaged.npz")
        with pytest.raises(IntegrityError, match=match):
            _load(tmp_path, changed)

    refused(dict(spec, kind=KIND), "carries a family calibration")  # an older kind must not drop the factor
    arrays = dict(np.load(tmp_path / spec["file"], allow_pickle=False))
    refused(spec, "family calibration", dict(arrays, calib=np.full_like(arrays["calib"], np.nan)))
    refused(spec, "family calibration", dict(arrays, calib=np.zeros(40)))
    refused(spec, "family calibration", {k: v for k, v in arrays.items() if k != "calib"})


def _load(folder, spec):
    """PositionGaussian.load refuses to run without the backbone extra (a package always needs it to score)."""
    from modelfab.modalities.image import backbone

    if not backbone.available():
        pytest.skip("the image backbone extra is not installed")
    return PositionGaussian.load(folder, spec)


def test_no_calibration_without_enough_images_or_time():
    model, acc, kept = _fitted(320)
    notes: list[str] = []
    calibrate(model, acc, kept, Budget(1), notes, seed=0, fit_s=5.0, reserve_s=0.0)
    assert model.calib is None and "budget left too little time" in notes[0]
    small, acc_s, kept_s = _fitted(120)
    calibrate(small, acc_s, kept_s, Budget(120), notes, seed=0, fit_s=0.05, reserve_s=0.0)
    assert small.calib is None and len(notes) == 1  # under 300 good images: nothing to say, nothing done
    assert not KeptFeatures(120).on


def test_ridge_matches_scikit_learn():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 5)), rng.normal(size=80)
    r = Ridge(alpha=10.0).fit(x, y)
    assert np.allclose(ridge(x, y, 10.0), np.r_[r.intercept_, r.coef_])

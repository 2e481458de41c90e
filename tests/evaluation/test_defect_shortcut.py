"""The painted-out-defect shortcut check: the painting itself, and the check on scores that do and do not
depend on the image outside its defect."""

import numpy as np

from modelfab.evaluation.defect_shortcut import WARN_AUROC, grow_px, note, paint_out, painted_out_check
from modelfab.modalities.image.io import resize_mask


def _surface(seed, size=64, level=0.5):
    rng = np.random.default_rng(seed)
    return np.clip(level + 0.05 * rng.normal(size=(size, size)), 0, 1).astype(np.float32)


def _spot(size=64, cy=20, cx=30, r=4):
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def test_paint_out_replaces_the_grown_mask_only():
    from scipy import ndimage as ndi

    g, m = _surface(0), _spot()
    g[m] = 0.0  # a black hole
    out = paint_out(g, m, np.random.default_rng(0))
    grown = ndi.binary_dilation(m, iterations=grow_px(g.shape))
    assert out.shape == g.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert np.array_equal(out[~grown], g[~grown])
    assert abs(out[m].mean() - 0.5) < 0.05          # the hole is gone: the surrounding level with grain
    assert 0.02 < out[m].std() < 0.1
    assert np.array_equal(paint_out(g, np.zeros_like(m), np.random.default_rng(0)), g)


def test_resize_mask_keeps_a_borrowed_defect_where_it_was():
    m = resize_mask(_spot(64, 16, 48, 6), (128, 96))
    assert m.shape == (128, 96) and m.any()
    ys, xs = np.nonzero(m)
    assert abs(ys.mean() - 32) < 3 and abs(xs.mean() - 72) < 3


def _check(defect_level: float, n_def=12, n_good=10, seconds=60.0):
    # the score is the image's brightest 16x16 block: high for a bright spot and for a globally brighter image
    def score(g):
        return float(g.reshape(4, 16, 4, 16).mean((1, 3)).max())

    def load_defective(i):
        g, m = _surface(100 + i, level=defect_level), _spot(cy=10 + i, cx=12 + 2 * i)
        g[m] = 1.0
        return g, m

    return painted_out_check(score, load_defective, n_def, lambda i: _surface(i), n_good, seed=0, seconds=seconds)


def test_defects_found_by_the_defect_give_chance_level():
    res = _check(defect_level=0.5)
    assert res["n_defective"] == 12 and res["n_good"] == 10
    assert res["auroc"] < 0.8 and note(res) is None
    assert _check(defect_level=0.5, n_def=3) is None           # too few to say anything
    assert _check(defect_level=0.5, seconds=0.0) is None        # no time left


def test_defective_images_that_differ_everywhere_are_reported():
    res = _check(defect_level=0.6)
    assert res["auroc"] > WARN_AUROC
    assert "painted out" in note(res) and f"{res['auroc']:.2f}" in note(res)

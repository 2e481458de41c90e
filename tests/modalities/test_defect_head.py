"""The defect head (modalities/image/defect_head.py): synthetic regions change texture, not brightness, and leave
the rest of the image alone; a head learned from them on good surfaces only finds a real region of foreign
texture it never saw; packages with a head round-trip and damaged heads are refused."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from modelfab.errors import IntegrityError
from modelfab.modalities.image import backbone
from modelfab.modalities.image.defect_head import DefectHead, box_mean, synthesize

needs_backbone = pytest.mark.skipif(not backbone.available(), reason="the image-backbone extra is not installed")


def _surface(seed: int, band: bool = False, size: int = 96):
    """Brushed grain along x on a slow shading; ``band``: the top rows have the grain along y instead (same
    brightness and contrast), the 'uneven grinding' kind of defect. Returns (grey 0..1, band mask)."""
    rng = np.random.default_rng(seed)
    img = 0.5 + 0.06 * ndi.gaussian_filter(rng.normal(size=(size, size)), (0.7, 4)) / 0.1
    img += 0.05 * ndi.gaussian_filter(rng.normal(size=(size, size)), 12) / 0.02
    mask = np.zeros((size, size), bool)
    if band:
        rows = int(rng.integers(size // 4, size // 2))
        mask[:rows] = True
        other = 0.5 + 0.06 * ndi.gaussian_filter(rng.normal(size=(size, size)), (4, 0.7)) / 0.1
        img[mask] = (other - other.mean() + img[mask].mean())[mask]
    return np.clip(img, 0, 1).astype(np.float32), mask


def test_synthetic_regions_change_texture_not_level_and_leave_the_rest():
    rng = np.random.default_rng(0)
    sizes_seen = []
    for i in range(12):
        base, partner = _surface(i)[0], _surface(100 + i)[0]
        out, m = synthesize(base, partner, rng)
        assert out.shape == base.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
        assert 0 < m.mean() < 1
        sizes_seen.append(m.mean())
        far = ~ndi.binary_dilation(m, iterations=14)  # beyond the feathered border: untouched
        assert np.abs(out[far] - base[far]).max() < 0.01
        inner = ndi.binary_erosion(m, iterations=4)
        if inner.sum() > 50:
            assert abs(float(out[inner].mean() - base[inner].mean())) < 0.08  # the level is kept ...
            assert np.abs(out[inner] - base[inner]).mean() > 0.01               # ... the surface is not
    assert max(sizes_seen) > 0.1  # bands and blobs of various sizes, not specks only


def test_box_mean_averages_the_cells_inside_the_map():
    a = np.arange(2 * 5 * 6 * 3, dtype=np.float32).reshape(2, 5, 6, 3)
    got = box_mean(a, 3)
    assert np.allclose(got[1, 2, 3], a[1, 1:4, 2:5].reshape(-1, 3).mean(0))
    assert np.allclose(got[0, 0, 0], a[0, :2, :2].reshape(-1, 3).mean(0))  # the corner averages 4 cells, not 9


@needs_backbone
def test_head_learned_on_good_surfaces_finds_a_band_of_foreign_texture(tmp_path):
    from sklearn.metrics import roc_auc_score

    from modelfab.modalities.image.features import resize
    from modelfab.modalities.image.padim import (KIND, KIND_HEAD, GaussianAccumulator, PositionGaussian, canvas_for,
                                                 cell_features)
    from modelfab.modalities.image_model import load_anomaly_model

    canvas = canvas_for([96] * 40, [96] * 40)
    channels = PositionGaussian.channels_for(dims=48)
    goods = [_surface(i)[0] for i in range(40)]
    acc = GaussianAccumulator()
    acc.add(cell_features(goods, canvas, channels=channels))
    model = PositionGaussian.fit(acc, channels, canvas=canvas)
    gh, gw = model.mean.shape[:2]
    rng = np.random.default_rng(1)

    def batches():
        for start in range(0, 80, 16):
            ims, fracs = [], []
            for k in range(start, start + 16):
                im, m = synthesize(goods[k % 40], goods[(k * 7 + 3) % 40], rng)
                ims.append(im)
                fracs.append(resize(m.astype(np.float32), gw, gh))
            yield model.residuals(cell_features(ims, canvas, channels=channels)), np.stack(fracs)

    model.head = DefectHead.fit(batches(), model.sd, 80, seed=0)
    tests = [_surface(500 + i, band=True) for i in range(10)]
    feats = cell_features([t[0] for t in tests], canvas, channels=channels)
    dist, prob = model.map_parts(feats)
    cells = np.stack([resize(t[1].astype(np.float32), gw, gh) for t in tests]) > 0.5
    # the head never saw this kind of band: it was learned from synthetic regions on good surfaces only
    assert roc_auc_score(cells.ravel(), prob.ravel()) > 0.75
    model.head_weight = float(0.5 * np.median(model.combine(dist, None)))
    spec = model.save(tmp_path)
    assert spec["head"]["weight"] == model.head_weight
    again = PositionGaussian.load(tmp_path, spec)
    assert np.allclose(again.cell_maps(feats), model.cell_maps(feats), atol=1e-5)
    assert not np.allclose(model.combine(dist, None), model.cell_maps(feats))  # the head is part of the map

    assert spec["kind"] == KIND_HEAD  # a modelfab without defect heads refuses such a package instead of mis-scoring
    assert np.allclose(load_anomaly_model(tmp_path, spec).cell_maps(feats), model.cell_maps(feats), atol=1e-5)

    def refused(changed_spec, match, arrays=None):
        if arrays is not None:
            np.savez(tmp_path / "damaged.npz", **arrays)
            changed_spec = dict(changed_spec, file="damaged.npz")
        with pytest.raises(IntegrityError, match=match):
            PositionGaussian.load(tmp_path, changed_spec)

    for weight in (-1, float("nan"), 1e300, "x", True, None):
        refused(dict(spec, head={"kind": spec["head"]["kind"], "weight": weight}), "weight")
    refused(dict(spec, cells=[None, spec["cells"][1]]), "defect head")
    refused(dict(spec, kind=KIND), "carries a defect head")       # head arrays under the kind without a head
    good = dict(np.load(tmp_path / spec["file"], allow_pickle=False))
    for key, value in (("head_coef", good["head_coef"][:-2]), ("head_mu", np.full_like(good["head_mu"], np.nan)),
                       ("head_sg", np.full_like(good["head_sg"], np.inf)), ("head_sd", -good["head_sd"])):
        refused(spec, "defect head arrays", dict(good, **{key: value}))
    refused(spec, "defect head", {k: v for k, v in good.items() if k != "head_sd"})

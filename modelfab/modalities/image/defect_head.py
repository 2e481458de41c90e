"""A defect head for the per-position Gaussian (:mod:`.padim`), learned from synthetic defects on good images.

The Gaussian's Mahalanobis distance adds up the deviations of all 152 channels of a cell. A defect that moves
a cell along a few directions only (a band of finer grinding streaks, a patch of another surface) is diluted in
that sum, and the parts of a defective image around it often deviate as much in other directions. The head
learns which deviations look like a *region of foreign surface*: regions of good images are replaced by
another good image's surface at the same place, the same surface zoomed, shifted surface or fine stripes,
with the local brightness kept (:func:`synthesize`); a logistic regression then tells, per cell, the replaced
cells from the untouched ones, from each cell's standardised residual (what the Gaussian already measures, per
channel and as magnitudes) and its difference from the mean residual of its 9x9 neighbourhood (a region
that differs from its surroundings). Only defect-free images are used: no real defect is ever seen.

The head's probability map is added to the Gaussian's distance map, scaled to the median distance of
held-out good images (``weight``), so the map stays in the same units and the image score is still its maximum.
On magnetic tiles (bench/mtile.py, three splits of the good tiles) this raised the pixel AUROC from 0.842 /
0.841 / 0.842 to 0.867 / 0.861 / 0.861 and the image AUROC from 0.990 / 0.982 / 0.986 to 0.990 / 0.985 / 0.988
(bench/results/images.md).

Stored as plain arrays (``head_sd``, ``head_mu``, ``head_sg``, ``head_coef``) in the model's ``.npz``, read with
``allow_pickle=False``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

CONTEXT = 9              # cells in the neighbourhood a cell's residual is compared with
PER_IMAGE = 2            # synthetic images per good image
MAX_SOURCES = 500        # good images the synthetic ones are made from, at most
MIN_SOURCES = 20         # fewer good images: no head
CELLS = 200_000          # training cells sampled (of about 1,000 per synthetic image)
C_REG = 0.1              # inverse L2 strength of the logistic regression
WEIGHT = 0.5             # head probability x WEIGHT x median held-out good distance is added to the map


# ------------------------------------------------------------------ synthetic defects
def _region(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A boolean region: a band from any of the four edges with a wavy border (sometimes cut short), or a blob."""
    yy, xx = np.mgrid[0:h, 0:w]
    yy, xx = yy / h, xx / w
    if rng.integers(0, 3) < 2:
        side = int(rng.integers(0, 4))
        n = w if side < 2 else h
        t = np.linspace(0, 1, n)
        border = (rng.uniform(0.12, 0.5) + 0.04 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * t + rng.uniform()))
                  + rng.uniform(-0.08, 0.08) * (t - 0.5))
        depth, along = [(yy, xx), (1 - yy, xx), (xx, yy), (1 - xx, yy)][side]
        m = depth < (border[None, :] if side < 2 else border[:, None])
        if rng.uniform() < 0.4:
            a = rng.uniform(0, 0.7)
            m &= (along > a) & (along < a + rng.uniform(0.3, 1.0))
        return m
    cy, cx = rng.uniform(0.15, 0.85, 2)
    ry, rx = rng.uniform(0.06, 0.3, 2)
    th = rng.uniform(0, np.pi)
    u = ((xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)) / rx
    v = (-(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)) / ry
    wobble = ndi.gaussian_filter(rng.normal(size=(h, w)), 0.05 * min(h, w)) * 8
    return (u * u + v * v + wobble) < 1


def synthesize(base: np.ndarray, partner: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One good canvas image ``base`` (grey, 0..1) with a region of foreign surface, and the region's mask.
    ``partner`` is another good image on the same canvas."""
    h, w = base.shape
    m = _region(rng, h, w)
    if m.mean() < 0.01:
        m = _region(rng, h, w)
    how = int(rng.integers(0, 4))
    if how == 0:    # another part's surface at the same place
        src = partner
    elif how == 1:  # this surface, zoomed
        src = ndi.zoom(base, rng.uniform(1.3, 2.0), order=1)[:h, :w]
    elif how == 2:  # another part's surface, shifted
        src = np.roll(partner, (int(rng.integers(-h // 4, h // 4)), int(rng.integers(-w // 4, w // 4))), (0, 1))
    else:           # fine stripes along one axis, patchy in strength
        across = bool(rng.integers(0, 2))  # stripes running top to bottom (varying across) or side to side
        s = ndi.gaussian_filter1d(rng.normal(size=w if across else h), rng.uniform(0.6, 2.0))
        stripes = (s[None, :] if across else s[:, None]) * rng.uniform(0.03, 0.1)
        src = base + stripes * ndi.gaussian_filter(rng.uniform(0.3, 1.5, size=(h, w)), 0.08 * min(h, w))
    sigma = 0.08 * min(h, w)  # keep the local brightness: the region differs in texture, not only in level
    src = src - ndi.gaussian_filter(src, sigma) + ndi.gaussian_filter(base, sigma) + rng.uniform(-0.04, 0.04)
    alpha = ndi.gaussian_filter(m.astype(np.float32), rng.uniform(1, 4))
    return np.clip(base * (1 - alpha) + src * alpha, 0, 1).astype(np.float32), m


# ------------------------------------------------------------------ the head
def box_mean(a: np.ndarray, size: int = CONTEXT) -> np.ndarray:
    """Mean over each cell's ``size`` x ``size`` neighbourhood within the map (edges average fewer cells), for
    (N, h, w, C) arrays."""
    s = (1, size, size, 1)
    total = ndi.uniform_filter(a.astype(np.float32), s, mode="constant", cval=0.0)
    count = ndi.uniform_filter(np.ones(a.shape[1:3], np.float32), size, mode="constant", cval=0.0)
    return total / count[None, :, :, None]


def cell_inputs(z: np.ndarray) -> np.ndarray:
    """(N, h, w, 4C) head inputs from standardised residuals ``z`` (N, h, w, C)."""
    d = z - box_mean(z)
    return np.concatenate([z, np.abs(z), d, np.abs(d)], -1)


@dataclass
class DefectHead:
    sd: np.ndarray      # (h, w, C) residual standard deviation per cell and channel
    mu: np.ndarray      # (4C,) input centring
    sg: np.ndarray      # (4C,) input scaling
    coef: np.ndarray    # (4C + 1,) logistic regression weights, the intercept last

    def probability(self, resid: np.ndarray) -> np.ndarray:
        """(N, h, w) probability that each cell is foreign surface, from residuals (N, h, w, C)."""
        x = (cell_inputs(resid / self.sd) - self.mu) / self.sg
        logit = x @ self.coef[:-1] + self.coef[-1]
        return (1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))).astype(np.float32)

    @classmethod
    def fit(cls, batches, sd: np.ndarray, n_images: int, seed: int = 0, min_images: int = 1) -> "DefectHead":
        """``batches`` yields (residuals (N, h, w, C), region fractions (N, h, w)) of about ``n_images`` synthetic
        images. Cells mostly inside (> 0.8) or outside (< 0.05) a region are sampled (about CELLS of them, taken
        as the batches come); border cells are left out. ValueError when fewer than ``min_images`` images came or
        the cells are of one class only."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        xs, ys, seen = [], [], 0
        rng = np.random.default_rng(seed)
        keep_p = min(1.0, 1.4 * CELLS / max(n_images * sd.shape[0] * sd.shape[1], 1))
        for resid, frac in batches:
            seen += len(resid)
            x = cell_inputs(resid / sd).reshape(-1, 4 * resid.shape[-1])
            f = frac.reshape(-1)
            pick = np.flatnonzero(((f > 0.8) | (f < 0.05)) & (rng.uniform(size=f.size) < keep_p))
            xs.append(x[pick])
            ys.append(f[pick] > 0.5)
        if seen < max(min_images, 1):
            raise ValueError(f"{seen} synthetic images, fewer than the {min_images} needed")
        x, y = np.concatenate(xs), np.concatenate(ys)
        if len(x) > CELLS:
            sel = rng.choice(len(x), CELLS, replace=False)
            x, y = x[sel], y[sel]
        if y.all() or not y.any():
            raise ValueError("synthetic regions gave one class of cells only")
        mu, sg = x.mean(0), x.std(0) + 1e-6
        with warnings.catch_warnings():  # 200 iterations: converged (~110 on magnetic tiles) or close enough
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(C=C_REG, max_iter=200).fit((x - mu) / sg, y)
        coef = np.r_[clf.coef_[0], clf.intercept_[0]]
        return cls(sd.astype(np.float32), mu.astype(np.float32), sg.astype(np.float32), coef.astype(np.float32))

    def arrays(self) -> dict:
        return {"head_sd": self.sd, "head_mu": self.mu, "head_sg": self.sg, "head_coef": self.coef}

    @classmethod
    def from_arrays(cls, npz, shape: tuple[int, int, int]) -> "DefectHead":
        """From the arrays of :meth:`arrays`; ``shape`` (h, w, C) of the Gaussian they belong to. Raises ValueError
        on arrays of other shapes."""
        sd, mu, sg, coef = (np.asarray(npz[k], np.float32) for k in ("head_sd", "head_mu", "head_sg", "head_coef"))
        c4 = 4 * shape[2]
        if sd.shape != tuple(shape) or mu.shape != (c4,) or sg.shape != (c4,) or coef.shape != (c4 + 1,):
            raise ValueError(f"defect head arrays: expected sd {tuple(shape)}, mu/sg ({c4},), coef ({c4 + 1},); got "
                             f"{sd.shape}, {mu.shape}/{sg.shape}, {coef.shape}")
        if not all(np.isfinite(a).all() for a in (sd, mu, sg, coef)) or not ((sd > 0).all() and (sg > 0).all()):
            raise ValueError("defect head arrays hold non-finite values or non-positive scales")
        return cls(sd, mu, sg, coef)

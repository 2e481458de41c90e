"""Anomaly detection on aligned parts: one Gaussian per position over pretrained CNN features
(PaDiM-like), for images of one kind of part photographed the same way (tiles, castings, PCBs).

Every image is resized to one fixed ``canvas`` (so a cell means the same place on every part,
whatever the crop size), run through the packaged EfficientNet-Lite0 (:mod:`.backbone`), and two
intermediate feature maps (stride 8 and 16, the deeper one upsampled) are concatenated into one
vector per cell of 8 canvas pixels (each averaged over its 5x5 neighbourhood). Fitting keeps, for
every cell, the mean and the (shrunk) covariance of the defect-free images' vectors at that cell; a
cell's anomaly score is its Mahalanobis distance to its own position's Gaussian. So the tile's rim
is compared with the rims of good tiles, the middle with good middles. The smoothed cell map is the
heat map; its maximum is the image score.

**Conditional means.** Good parts differ as a whole (crop size, lighting, which product variant):
with enough defect-free images, a cell's mean is not one vector but a linear function of the
image's own covariates: its crop width and height (log, with squares and product) and the leading
principal components of its mean feature vector over all cells. A defect changes a few cells and
barely moves that whole-image mean, so a cell is compared with what good parts *like this one*
look like there. The covariance is that of the residuals. On magnetic tiles this took the image
AUROC from 0.978 to 0.990 (three splits: +0.011 on average; bench/results/images.md). The size
enters only through these covariates; it is not a score.

**Defect head.** With enough good images, a small head learned from synthetic defects on them
(:mod:`.defect_head`) adds, per cell, the probability that the cell is a region of foreign surface, scaled to
the held-out good images' distances: the map stays in distance units and the image score is its maximum.

**Family calibration.** Good parts of some families (a crop size, a product variant, a lighting) score higher
than others at their most deviating cell (rims, chamfers), so a faint defect on a low-scoring family ranked under
good parts of a high-scoring one. With enough good images, the image score is divided by the score a good image
*like this one* is expected to get: a ridge regression of the log of out-of-fold maximum scores of the fitted good
images (each scored by a model fitted without it) on the first covariates above (``calib``; the whole map is scaled
by the same factor). On magnetic tiles this took the image AUROC from 0.991 / 0.984 / 0.990 to 0.995 / 0.993 /
0.994 on three splits (bench/results/images.md); the factor alone does not tell defective from good tiles.

Stored as one plain ``.npz`` (arrays ``mean``, ``coef`` (covariates x cells x channels), ``transform``
(covariates from the raw per-image inputs) and the upper triangle of each cell's precision matrix,
``precision_upper``; loaded with ``allow_pickle=False``) plus JSON fields in the manifest, each file
with its sha256 in the package manifest. Packages without ``coef`` (older ones) use the plain mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import IntegrityError

KIND = "padim-efficientnet-lite0"
KIND_HEAD = "padim-efficientnet-lite0+defect-head"   # with a defect head: a modelfab without heads refuses it
CALIBRATED = "+family-calibrated"    # kind suffix of a model with a family calibration (older modelfabs refuse it)
KINDS = (KIND, KIND_HEAD, KIND + CALIBRATED, KIND_HEAD + CALIBRATED)
CANVAS = (256, 256)          # (width, height) every image is resized to, at most (see ``canvas_for``)
BLOCKS = (4, 10)             # EfficientNet-Lite0 blocks: 40 channels at stride 8, 112 at stride 16
DIMS = 152                   # channels kept (all; a fixed random subset when fewer, as PaDiM does)
POOL = 5                     # cells averaged around each cell (3: pixel AUROC 0.81, 5: 0.84 on magnetic tiles);
                             # 3 on canvases under 192 px (a 5x5 neighbourhood of an 8x8 grid blurs the heat map)
SHRINK = 0.01                # covariance shrinkage towards its mean variance (plain mean)
SHRINK_CONDITIONAL = 0.1     # the same with conditional means (0.01 / 0.03 / 0.1 / 0.3 on magnetic tiles:
                             # image AUROC 0.989 / 0.989 / 0.990 / 0.990; fewer residual dims, more shrinkage)
COND_PCS = 64                # principal components of the image's mean feature vector (16: 0.984, 64: 0.989,
                             # 128: 0.989 but pixel AUROC 0.83) ...
IMAGES_PER_COVARIATE = 6     # ... at most one covariate per 6 fitted images
MIN_CONDITIONAL = 30         # fewer fitted images: the plain mean
SIZE_TERMS = 5               # log width, log height, their squares and product
RIDGE = 1.0                  # on the (unit-variance) covariates, not the intercept
SMOOTH = 0.5                 # Gaussian smoothing of the cell map (cells)
BATCH = 8


def _channel_subset(total: int, dims: int, seed: int = 2) -> np.ndarray:
    if dims >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, dims, replace=False))


def canvas_for(widths, heights) -> tuple[int, int]:
    """The canvas for a dataset: its median width and height rounded to 32 pixels, within 64..CANVAS (small
    images are not blown up 16-fold; magnetic tiles, median 269x327, get the full 256x256)."""
    def side(v, top):
        return int(min(top, max(64, 32 * round(float(np.median(v)) / 32))))

    return side(widths, CANVAS[0]), side(heights, CANVAS[1])


def pool_for(canvas) -> int:
    return POOL if min(canvas) >= 192 else 3


def warm_up() -> None:
    """Import torch, read and check the packaged weights and run one tiny image: one-time costs (about 1.5 s
    on an idle machine, several times that under load) that must not enter the per-image time the training
    loop uses to decide how many images its budget allows."""
    cell_features([np.zeros((64, 64), np.float32)], (64, 64), pool=3)


def cell_features(grays: list[np.ndarray], canvas=CANVAS, blocks=BLOCKS, channels: np.ndarray | None = None,
                  pool: int | None = None) -> np.ndarray:
    """(N, h, w, C) float32 cell vectors of grey images (any sizes) in [0, 1]."""
    import torch
    import torch.nn.functional as F

    from . import backbone
    from .features import resize

    out, pool = [], pool or pool_for(canvas)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one image at a time on one thread: on a busy 2-core machine 8x faster than 2 threads
    try:
        with torch.no_grad():
            for g in grays:
                maps = backbone.forward(backbone.gray_batch([resize(g, canvas[0], canvas[1])]), tuple(blocks))
                size = maps[0].shape[-2:]
                parts = []
                for m in maps:
                    m = F.avg_pool2d(m, pool, 1, pool // 2, count_include_pad=False)
                    if m.shape[-2:] != size:
                        m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                    parts.append(m)
                f = torch.cat(parts, 1)[0].permute(1, 2, 0).numpy()
                out.append(f if channels is None else f[..., channels])
    finally:
        torch.set_num_threads(threads)
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def size_norm_for(widths, heights) -> tuple[float, float, float, float]:
    """Centre and scale of log width and log height (of the defect-free images), for the size covariates."""
    lw, lh = np.log(np.asarray(widths, float)), np.log(np.asarray(heights, float))
    return float(lw.mean()), float(max(lw.std(), 1e-3)), float(lh.mean()), float(max(lh.std(), 1e-3))


def raw_inputs(feats: np.ndarray, sizes, size_norm) -> np.ndarray:
    """(N, 1 + SIZE_TERMS + C) per-image inputs the covariates are made from: 1, the size terms (zeros without
    ``size_norm``) and the image's mean cell vector."""
    n = len(feats)
    size = np.zeros((n, SIZE_TERMS))
    if size_norm is not None and sizes is not None:
        wh = np.asarray(sizes, float).reshape(n, 2)
        a = (np.log(wh[:, 0]) - size_norm[0]) / size_norm[1]
        b = (np.log(wh[:, 1]) - size_norm[2]) / size_norm[3]
        size = np.c_[a, b, a * a, b * b, a * b]
    return np.c_[np.ones(n), size, feats.mean((1, 2), dtype=np.float64)]


@dataclass
class GaussianAccumulator:
    """Running sums (float64), fed a batch at a time: per cell the sum of outer products of the cell vectors,
    and the cross-products of every image's raw inputs (:func:`raw_inputs`) with its cell vectors and with each
    other (for conditional means). ``size_norm`` (:func:`size_norm_for`) turns on the size covariates."""
    size_norm: tuple | None = None
    n: int = 0
    s2: np.ndarray | None = None    # (h, w, C, C)
    sux: np.ndarray | None = None   # (K_raw, h*w*C)
    suu: np.ndarray | None = None   # (K_raw, K_raw)

    def add(self, feats: np.ndarray, sizes=None) -> None:
        """``feats`` (N, h, w, C); ``sizes`` the N (width, height) of the images before resizing."""
        n, h, w, c = feats.shape
        u = raw_inputs(feats, sizes, self.size_norm)
        if self.s2 is None:
            self.s2 = np.zeros((h, w, c, c))
            self.sux, self.suu = np.zeros((u.shape[1], h * w * c)), np.zeros((u.shape[1], u.shape[1]))
        f = np.ascontiguousarray(feats.reshape(n, h * w, c).transpose(1, 0, 2), dtype=np.float32)  # (cells, n, C)
        self.s2 += np.matmul(f.transpose(0, 2, 1), f).reshape(h, w, c, c)  # batched BLAS, summed in float64
        self.sux += u.T @ feats.reshape(n, -1).astype(np.float64)
        self.suu += u.T @ u
        self.n += n

    @property
    def s1(self) -> np.ndarray:
        return self.sux[0].reshape(self.s2.shape[:3])


def covariate_transform(acc: GaussianAccumulator, pcs: int | None = None, plan_n: int | None = None) -> np.ndarray:
    """(K, K_raw) matrix T with covariates z = T u: the intercept, the size terms (when the accumulator has
    ``size_norm`` and the sizes vary), and up to ``pcs`` whitened principal components of the standardised mean
    cell vector; as many as the number of images allows (one covariate per IMAGES_PER_COVARIATE images), none
    under MIN_CONDITIONAL images (then T picks the intercept: the plain mean). ``plan_n``: decide how many as if
    there were that many images (cross-fitted models: the kept model must be of the kind its folds were)."""
    k_raw, n = acc.suu.shape[0], acc.n
    plan = n if plan_n is None else min(int(plan_n), n)
    rows = [np.eye(k_raw)[0]]
    if plan < MIN_CONDITIONAL:
        return np.array(rows)
    room = plan // IMAGES_PER_COVARIATE - 1
    if acc.size_norm is not None:
        var = np.diag(acc.suu)[1:1 + SIZE_TERMS] / n - (acc.suu[0, 1:1 + SIZE_TERMS] / n) ** 2
        if var[:2].max() > 1e-6 and room >= SIZE_TERMS:
            rows += list(np.eye(k_raw)[1:1 + SIZE_TERMS])
            room -= SIZE_TERMS
    k = min(COND_PCS if pcs is None else pcs, room)
    if k > 0:
        g0 = 1 + SIZE_TERMS
        m = acc.suu[0, g0:] / n
        cov = acc.suu[g0:, g0:] / n - np.outer(m, m)
        sd = np.sqrt(np.maximum(np.diag(cov), 0)) + 1e-6
        lam, vec = np.linalg.eigh(cov / np.outer(sd, sd))
        order = np.argsort(lam)[::-1][:k]
        lam, vec = lam[order], vec[:, order]
        keep = lam > 1e-6 * max(lam[0], 1e-12)
        for lj, vj in zip(lam[keep], vec[:, keep].T):
            r = np.zeros(k_raw)
            r[g0:] = vj / sd / np.sqrt(lj)
            r[0] = -float(r[g0:] @ m)
            rows.append(r)
    return np.array(rows)


@dataclass
class PositionGaussian:
    mean: np.ndarray        # (h, w, C) mean over the fitted images
    precision: np.ndarray   # (h, w, C, C) inverse (residual) covariance per cell
    channels: np.ndarray    # (C,) indices into the concatenated backbone channels
    canvas: tuple = CANVAS
    blocks: tuple = BLOCKS
    smooth: float = SMOOTH
    threshold: float = float("inf")
    pool: int = POOL
    coef: np.ndarray | None = None       # (K, h, w, C): cell means = z @ coef; None: the plain mean
    transform: np.ndarray | None = None  # (K, K_raw): z = transform @ raw_inputs
    size_norm: tuple | None = None
    sd: np.ndarray | None = None         # (h, w, C) residual standard deviations (after fitting; feeds the head)
    head: object | None = None           # a DefectHead (defect_head.py), or None
    head_weight: float = 0.0             # head probability -> distance units
    calib: np.ndarray | None = None      # (1 + k,): expected log image score = calib[0] + z[1:1+k] @ calib[1:]

    @classmethod
    def channels_for(cls, blocks=BLOCKS, dims: int = DIMS) -> np.ndarray:
        from .backbone import STAGES, stage_ends

        ends = stage_ends()
        total = sum(STAGES[ends.index(b)][4] for b in blocks)
        return _channel_subset(total, dims)

    @classmethod
    def fit(cls, acc: GaussianAccumulator, channels: np.ndarray, *, canvas=CANVAS, shrink: float | None = None,
            pcs: int | None = None, plan_n: int | None = None) -> "PositionGaussian":
        """Cell means regressed on the covariates of :func:`covariate_transform` (ridge on all but the intercept)
        and the residual covariance, shrunk by ``shrink`` x its mean variance (default SHRINK_CONDITIONAL with
        covariates, SHRINK without); ``pcs=0`` keeps the size covariates only; ``plan_n``: see
        :func:`covariate_transform`."""
        if acc.n < 2:
            raise IntegrityError("A per-position Gaussian needs at least two images.")
        h, w, c, _ = acc.s2.shape
        T = covariate_transform(acc, pcs, plan_n)
        k = len(T)
        szz, szx = T @ acc.suu @ T.T, T @ acc.sux                         # (K, K), (K, hwC)
        a = szz + RIDGE * np.diag([0.0] + [1.0] * (k - 1))
        coef = np.linalg.solve(a, szx)                                     # (K, hwC)
        bt = np.ascontiguousarray(coef.reshape(k, h * w, c).transpose(1, 2, 0))   # (cells, C, K)
        zx = np.ascontiguousarray(szx.reshape(k, h * w, c).transpose(1, 0, 2))    # (cells, K, C)
        cross = np.matmul(bt, zx)                                          # sum_i mu_i x_i^T per cell
        quad = np.matmul(bt @ szz, np.ascontiguousarray(bt.transpose(0, 2, 1)))  # sum_i mu_i mu_i^T
        resid = acc.s2.reshape(h * w, c, c) - cross - cross.transpose(0, 2, 1) + quad
        cov = (resid / max(acc.n - k, 1)).reshape(h, w, c, c)
        shrink = (SHRINK if k == 1 else SHRINK_CONDITIONAL) if shrink is None else shrink
        avg_var = np.trace(cov, axis1=2, axis2=3)[..., None, None] / c
        cov = cov + (shrink * avg_var + 1e-3) * np.eye(c)
        sd = np.sqrt(np.diagonal(cov, axis1=2, axis2=3)).astype(np.float32)
        precision = np.linalg.inv(cov.astype(np.float32))  # shrunk: well conditioned; float32 inverts 2x faster
        precision = 0.5 * (precision + np.swapaxes(precision, -1, -2))
        canvas = tuple(int(v) for v in canvas)
        mean = (acc.s1 / acc.n).astype(np.float32)
        conditional = k > 1
        return cls(mean, precision.astype(np.float32), np.asarray(channels, np.int64), canvas, pool=pool_for(canvas),
                   coef=coef.reshape(k, h, w, c).astype(np.float32) if conditional else None,
                   transform=T if conditional else None, size_norm=acc.size_norm if conditional else None, sd=sd)

    @property
    def kind(self) -> str:
        """The package kind: with a defect head, one that a modelfab without heads refuses."""
        return (KIND if self.head is None else KIND_HEAD) + (CALIBRATED if self.calib is not None else "")

    @property
    def covariates(self) -> int:
        """Number of covariates besides the intercept (0: the plain mean)."""
        return 0 if self.coef is None else len(self.coef) - 1

    def cell_means(self, feats: np.ndarray, sizes=None) -> np.ndarray:
        if self.coef is None:
            return self.mean[None]
        z = raw_inputs(feats, sizes, self.size_norm) @ self.transform.T   # (N, K)
        k = len(self.coef)
        return (z.astype(np.float32) @ self.coef.reshape(k, -1)).reshape(feats.shape)

    def residuals(self, feats: np.ndarray, sizes=None) -> np.ndarray:
        """(N, h, w, C) cell vectors minus their (conditional) means; ``sizes`` the images' (width, height) before
        resizing (needed by a model with size covariates)."""
        if self.size_norm is not None and sizes is None:
            raise ValueError("This model's cell means depend on the image size: pass sizes.")
        return feats - self.cell_means(feats, sizes)

    def map_parts(self, feats: np.ndarray, sizes=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Unsmoothed (N, h, w) Mahalanobis distances and the defect head's probabilities (None without a head)."""
        d = self.residuals(feats, sizes)
        m = np.sqrt(np.maximum(np.einsum("nhwc,hwcd,nhwd->nhw", d, self.precision, d, optimize=True), 0.0))
        return m.astype(np.float32), (None if self.head is None else self.head.probability(d))

    def combine(self, dist: np.ndarray, prob: np.ndarray | None) -> np.ndarray:
        """The score maps from :meth:`map_parts`: distance + head_weight x probability, smoothed."""
        from scipy import ndimage as ndi

        m = dist if prob is None or self.head_weight <= 0 else dist + self.head_weight * prob
        if self.smooth > 0:
            m = np.stack([ndi.gaussian_filter(x, self.smooth, mode="nearest") for x in m])
        return np.asarray(m, np.float32)

    def family_factor(self, feats: np.ndarray, sizes=None) -> np.ndarray:
        """(N,) factors the score maps are multiplied by: 1 / the image score a good image of the same family is
        expected to get (ones without a calibration)."""
        if self.calib is None:
            return np.ones(len(feats), np.float32)
        z = raw_inputs(feats, sizes, self.size_norm) @ self.transform.T
        k = len(self.calib) - 1
        return np.exp(-(self.calib[0] + z[:, 1:1 + k] @ self.calib[1:])).astype(np.float32)

    def cell_maps(self, feats: np.ndarray, sizes=None) -> np.ndarray:
        """(N, h, w) score maps of (N, h, w, C) cell vectors: smoothed Mahalanobis distances, plus the defect
        head's share when the model has one, scaled by the family factor when it has a calibration; ``sizes`` the
        images' (width, height) before resizing."""
        return self.combine(*self.map_parts(feats, sizes)) * self.family_factor(feats, sizes)[:, None, None]

    def score_maps(self, grays: list[np.ndarray]) -> list[np.ndarray]:
        sizes = [(g.shape[1], g.shape[0]) for g in grays]
        return list(self.cell_maps(cell_features(grays, self.canvas, self.blocks, self.channels, self.pool), sizes))

    def score_image(self, gray: np.ndarray) -> tuple[float, np.ndarray]:
        m = self.score_maps([gray])[0]
        return float(m.max()), m

    def heatmap(self, score_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """The cell score map resized to an image ``shape`` (H, W) (bilinear)."""
        from PIL import Image

        im = Image.fromarray(np.ascontiguousarray(score_map, np.float32), mode="F")
        return np.asarray(im.resize((shape[1], shape[0]), Image.Resampling.BILINEAR), np.float32)

    # -- files ------------------------------------------------------------
    def save(self, folder: Path, stem: str = "image_anomaly") -> dict:
        iu = np.triu_indices(self.precision.shape[-1])  # symmetric: the upper triangle is enough
        arrays = {"mean": self.mean, "precision_upper": self.precision[..., iu[0], iu[1]]}
        if self.coef is not None:
            arrays.update(coef=self.coef, transform=self.transform)
        if self.head is not None:
            arrays.update(self.head.arrays())
        if self.calib is not None:
            arrays.update(calib=np.asarray(self.calib, np.float64))
        np.savez(Path(folder) / f"{stem}.npz", **arrays)
        from .backbone import NAME, WEIGHTS_PACKAGE, WEIGHTS_SHA256

        return {"kind": self.kind, "file": f"{stem}.npz",
                "canvas": list(self.canvas), "blocks": list(self.blocks), "channels": [int(c) for c in self.channels],
                "smooth": self.smooth, "pool": self.pool, "threshold": self.threshold, "cells": list(self.mean.shape[:2]),
                "dims": int(self.mean.shape[2]), "covariates": self.covariates,
                "size_norm": None if self.size_norm is None else [float(v) for v in self.size_norm],
                "head": None if self.head is None else {"kind": "synthetic-defect-logistic", "weight": self.head_weight},
                "calibration": None if self.calib is None else {"kind": "family-log-ridge",
                                                                "covariates": len(self.calib) - 1},
                "backbone": {"name": NAME, "weights_package": WEIGHTS_PACKAGE, "weights_sha256": WEIGHTS_SHA256}}

    @classmethod
    def load(cls, folder: Path, spec: dict) -> "PositionGaussian":
        from . import backbone

        if spec.get("backbone", {}).get("weights_sha256") != backbone.WEIGHTS_SHA256:
            raise IntegrityError("This image anomaly model was made with other backbone weights than this modelfab has.",
                                 hint="Use the modelfab that trained it.")
        if not backbone.available():
            from ...errors import InvalidInput

            raise InvalidInput("This image anomaly model runs a pretrained backbone that is not installed.",
                               hint=backbone.HINT)
        k = int(spec.get("covariates", 0)) + 1
        with np.load(Path(folder) / spec["file"], allow_pickle=False) as npz:
            mean, upper = npz["mean"], npz["precision_upper"]
            coef = npz["coef"] if k > 1 and "coef" in npz.files else None
            transform = npz["transform"] if k > 1 and "transform" in npz.files else None
            head = _load_head(npz, spec)
            calib = _load_calib(npz, spec, k)
        channels = np.asarray(spec["channels"], np.int64)
        h, w = spec["cells"]
        c = len(channels)
        if mean.shape != (h, w, c) or upper.shape != (h, w, c * (c + 1) // 2):
            raise IntegrityError(f"Image anomaly arrays: expected mean {(h, w, c)} and precision_upper "
                                 f"{(h, w, c * (c + 1) // 2)}, got {mean.shape} and {upper.shape}.")
        size_norm = spec.get("size_norm")
        if k > 1 and (coef is None or transform is None or coef.shape != (k, h, w, c)
                      or transform.shape != (k, 1 + SIZE_TERMS + c)
                      or (size_norm is not None and len(size_norm) != 4)):
            raise IntegrityError(f"Image anomaly arrays: expected coef {(k, h, w, c)} and transform "
                                 f"{(k, 1 + SIZE_TERMS + c)} for {k - 1} covariates, got "
                                 f"{None if coef is None else coef.shape} and "
                                 f"{None if transform is None else transform.shape}.",
                                 hint="The package is damaged: train again or restore it from a backup.")
        iu = np.triu_indices(c)
        precision = np.empty((h, w, c, c), np.float32)
        precision[..., iu[0], iu[1]] = upper
        precision[..., iu[1], iu[0]] = upper
        return cls(mean.astype(np.float32), precision.astype(np.float32), channels, tuple(spec["canvas"]),
                   tuple(spec["blocks"]), float(spec.get("smooth", SMOOTH)), float(spec["threshold"]), int(spec["pool"]),
                   coef=None if coef is None else coef.astype(np.float32),
                   transform=None if transform is None else transform.astype(np.float64),
                   size_norm=None if size_norm is None else tuple(float(v) for v in size_norm),
                   head=head, head_weight=_head_weight(spec) if head is not None else 0.0, calib=calib)


DAMAGED = "The package is damaged: train again or restore it from a backup."


def _load_head(npz, spec: dict):
    """The defect head of a package whose kind says it has one (None otherwise); head arrays in a package whose
    kind says it has none are refused too (they would change no score, but the threshold was set with them)."""
    has_arrays = any(k.startswith("head_") for k in npz.files)
    if not str(spec.get("kind", "")).startswith(KIND_HEAD):
        if has_arrays or spec.get("head"):
            raise IntegrityError(f"Image anomaly model {spec.get('kind')!r} carries a defect head it should not have.",
                                 hint=DAMAGED)
        return None
    from .defect_head import DefectHead

    try:
        cells = (int(spec["cells"][0]), int(spec["cells"][1]), len(spec["channels"]))
        return DefectHead.from_arrays(npz, cells)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise IntegrityError(f"Image anomaly arrays: the defect head: {e}.", hint=DAMAGED) from e


def _load_calib(npz, spec: dict, k: int) -> np.ndarray | None:
    """The family calibration of a package whose kind says it has one (at most as many covariates as the model
    has, all finite); its array in a package whose kind says none is refused (the threshold was set with it)."""
    kind = str(spec.get("kind", ""))
    if not kind.endswith(CALIBRATED):
        if "calib" in npz.files or spec.get("calibration"):
            raise IntegrityError(f"Image anomaly model {kind!r} carries a family calibration it should not have.",
                                 hint=DAMAGED)
        return None
    calib = npz["calib"] if "calib" in npz.files else None
    if calib is None or calib.ndim != 1 or not 2 <= len(calib) <= k or not np.isfinite(calib).all():
        raise IntegrityError(f"Image anomaly arrays: expected a finite family calibration of 2..{k} numbers, got "
                             f"{None if calib is None else calib.shape}.", hint=DAMAGED)
    return calib.astype(np.float64)


MAX_HEAD_WEIGHT = 1e6


def _head_weight(spec: dict) -> float:
    head = spec.get("head")
    try:
        w = float(head["weight"]) if isinstance(head, dict) and not isinstance(head.get("weight"), bool) else float("nan")
    except (TypeError, ValueError):
        w = float("nan")
    if not 0 <= w <= MAX_HEAD_WEIGHT:  # NaN fails too
        raise IntegrityError(f"Image anomaly manifest: the defect head's weight must be a number in 0..{MAX_HEAD_WEIGHT:g}, "
                             f"got {head!r}.", hint=DAMAGED)
    return w

"""Anomaly detection on aligned parts: one Gaussian per position over pretrained CNN features
(PaDiM-like), for images of one kind of part photographed the same way (tiles, castings, PCBs).

Every image is resized to one fixed ``canvas`` (so a cell means the same place on every part,
whatever the crop size), run through the packaged EfficientNet-Lite0 (:mod:`.backbone`), and two
intermediate feature maps (stride 8 and 16, 3x3 averaged, the deeper one upsampled) are
concatenated into one vector per cell of 8 canvas pixels (each averaged over its 5x5 neighbourhood). Fitting keeps, for every cell, the
mean and the (shrunk) covariance of the defect-free images' vectors at that cell; a cell's
anomaly score is its Mahalanobis distance to its own position's Gaussian. So the tile's rim is
compared with the rims of good tiles, the middle with good middles. The smoothed cell map is the
heat map; its maximum is the image score. Image size is not an input (every image is resized).

Stored as one plain ``.npz`` (arrays ``mean`` and the upper triangle of each cell's precision matrix,
``precision_upper``; loaded with ``allow_pickle=False``)
plus JSON fields in the manifest, each file with its sha256 in the package manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import IntegrityError

KIND = "padim-efficientnet-lite0"
CANVAS = (256, 256)          # (width, height) every image is resized to, at most (see ``canvas_for``)
BLOCKS = (4, 10)             # EfficientNet-Lite0 blocks: 40 channels at stride 8, 112 at stride 16
DIMS = 152                   # channels kept (all; a fixed random subset when fewer, as PaDiM does)
POOL = 5                     # cells averaged around each cell (3: pixel AUROC 0.81, 5: 0.84 on magnetic tiles);
                             # 3 on canvases under 192 px (a 5x5 neighbourhood of an 8x8 grid blurs the heat map)
SHRINK = 0.01                # covariance shrinkage towards its mean variance
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


@dataclass
class GaussianAccumulator:
    """Running sums for the per-cell mean and covariance (float64), fed a batch at a time."""
    n: int = 0
    s1: np.ndarray | None = None
    s2: np.ndarray | None = None

    def add(self, feats: np.ndarray) -> None:
        n, h, w, c = feats.shape
        if self.s1 is None:
            self.s1, self.s2 = np.zeros((h, w, c)), np.zeros((h, w, c, c))
        f = np.ascontiguousarray(feats.reshape(n, h * w, c).transpose(1, 0, 2), dtype=np.float32)  # (cells, n, C)
        self.s1 += feats.sum(0, dtype=np.float64)
        self.s2 += np.matmul(f.transpose(0, 2, 1), f).reshape(h, w, c, c)  # batched BLAS, summed in float64
        self.n += n


@dataclass
class PositionGaussian:
    mean: np.ndarray        # (h, w, C)
    precision: np.ndarray   # (h, w, C, C) inverse covariance per cell
    channels: np.ndarray    # (C,) indices into the concatenated backbone channels
    canvas: tuple = CANVAS
    blocks: tuple = BLOCKS
    smooth: float = SMOOTH
    threshold: float = float("inf")
    pool: int = POOL
    kind: str = field(default=KIND)

    @classmethod
    def channels_for(cls, blocks=BLOCKS, dims: int = DIMS) -> np.ndarray:
        from .backbone import STAGES, stage_ends

        ends = stage_ends()
        total = sum(STAGES[ends.index(b)][4] for b in blocks)
        return _channel_subset(total, dims)

    @classmethod
    def fit(cls, acc: GaussianAccumulator, channels: np.ndarray, *, canvas=CANVAS, shrink: float = SHRINK) -> "PositionGaussian":
        if acc.n < 2:
            raise IntegrityError("A per-position Gaussian needs at least two images.")
        mean = acc.s1 / acc.n
        cov = (acc.s2 - acc.n * np.einsum("hwc,hwd->hwcd", mean, mean)) / (acc.n - 1)
        c = cov.shape[-1]
        avg_var = np.trace(cov, axis1=2, axis2=3)[..., None, None] / c
        cov = cov + (shrink * avg_var + 1e-3) * np.eye(c)
        precision = np.linalg.inv(cov)
        precision = 0.5 * (precision + np.swapaxes(precision, -1, -2))
        canvas = tuple(int(v) for v in canvas)
        return cls(mean.astype(np.float32), precision.astype(np.float32), np.asarray(channels, np.int64), canvas,
                   pool=pool_for(canvas))

    def cell_maps(self, feats: np.ndarray) -> np.ndarray:
        """(N, h, w) Mahalanobis distances of (N, h, w, C) cell vectors, smoothed."""
        from scipy import ndimage as ndi

        d = feats - self.mean[None]
        m = np.sqrt(np.maximum(np.einsum("nhwc,hwcd,nhwd->nhw", d, self.precision, d, optimize=True), 0.0))
        if self.smooth > 0:
            m = np.stack([ndi.gaussian_filter(x, self.smooth, mode="nearest") for x in m])
        return m.astype(np.float32)

    def score_maps(self, grays: list[np.ndarray]) -> list[np.ndarray]:
        return list(self.cell_maps(cell_features(grays, self.canvas, self.blocks, self.channels, self.pool)))

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
        np.savez(Path(folder) / f"{stem}.npz", mean=self.mean, precision_upper=self.precision[..., iu[0], iu[1]])
        from .backbone import NAME, WEIGHTS_PACKAGE, WEIGHTS_SHA256

        return {"kind": self.kind, "file": f"{stem}.npz",
                "canvas": list(self.canvas), "blocks": list(self.blocks), "channels": [int(c) for c in self.channels],
                "smooth": self.smooth, "pool": self.pool, "threshold": self.threshold, "cells": list(self.mean.shape[:2]),
                "dims": int(self.mean.shape[2]),
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
        with np.load(Path(folder) / spec["file"], allow_pickle=False) as npz:
            mean, upper = npz["mean"], npz["precision_upper"]
        channels = np.asarray(spec["channels"], np.int64)
        h, w = spec["cells"]
        c = len(channels)
        if mean.shape != (h, w, c) or upper.shape != (h, w, c * (c + 1) // 2):
            raise IntegrityError(f"Image anomaly arrays: expected mean {(h, w, c)} and precision_upper "
                                 f"{(h, w, c * (c + 1) // 2)}, got {mean.shape} and {upper.shape}.")
        iu = np.triu_indices(c)
        precision = np.empty((h, w, c, c), np.float32)
        precision[..., iu[0], iu[1]] = upper
        precision[..., iu[1], iu[0]] = upper
        return cls(mean.astype(np.float32), precision.astype(np.float32), channels, tuple(spec["canvas"]),
                   tuple(spec["blocks"]), float(spec.get("smooth", SMOOTH)), float(spec["threshold"]), int(spec["pool"]))

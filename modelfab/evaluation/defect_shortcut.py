"""Do defective images score high *because of their defects*? A shortcut check for image anomaly models
trained with defect masks.

Each defective image is scored again with its marked defect painted out (the mask grown by a few pixels, filled
with the surrounding brightness plus the image's own fine-grain noise), and so is each held-out good image with
a defect mask borrowed from a defective one painted out the same way (so the painting itself is not what is
measured). If the painted-out defective images still score above the painted-out good ones, they differ from
good images beyond what the masks draw: how they were photographed or processed, or damage the masks leave out,
and the measured detection rate partly rests on that. Painting out, not just reading the map elsewhere: the
backbone's pooled features carry a strong defect tens of pixels into its surroundings.

On magnetic tiles painted-out blowholes and cracks still score above painted-out free tiles (bench/results/images.md).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

MAX_IMAGES = 40      # of each kind (defective with a mask, held-out good)
MIN_IMAGES = 5
WARN_AUROC = 0.9     # painted-out defective vs painted-out good images: above this, say so


def grow_px(shape: tuple[int, int]) -> int:
    return max(3, round(0.02 * min(shape)))


def paint_out(gray: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``gray`` (H, W, floats in [0, 1]) with the pixels of ``mask`` (grown by :func:`grow_px`) replaced by the
    smoothed brightness around them plus fine-grain residuals drawn from the rest of the image."""
    from scipy import ndimage as ndi

    g = np.asarray(gray, np.float32)
    m = ndi.binary_dilation(mask, iterations=grow_px(g.shape))
    if not m.any() or m.all():
        return g
    keep = (~m).astype(np.float32)
    sigma = max(4.0, 0.03 * min(g.shape))
    fill = ndi.gaussian_filter(g * keep, sigma) / np.maximum(ndi.gaussian_filter(keep, sigma), 1e-3)
    grain = (g - ndi.gaussian_filter(g, 2.0))[~m]
    out = g.copy()
    out[m] = fill[m] + rng.choice(grain, int(m.sum()))
    return np.clip(out, 0.0, 1.0)


def painted_out_check(score: Callable[[np.ndarray], float],
                      load_defective: Callable[[int], tuple[np.ndarray, np.ndarray]], n_defective: int,
                      load_good: Callable[[int], np.ndarray], n_good: int, *, seed: int, seconds: float) -> dict | None:
    """Score up to MAX_IMAGES defective images (``load_defective(i)`` gives the gray image and its defect mask)
    with their defects painted out, and as many good ones (``load_good(i)``) with a borrowed mask painted out,
    within ``seconds`` (one image loaded at a time). Returns {"auroc", "n_defective", "n_good"} (AUROC of the
    first against the second), or None with fewer than MIN_IMAGES of either."""
    from sklearn.metrics import roc_auc_score

    from ..modalities.image.io import resize_mask

    if n_defective < MIN_IMAGES or n_good < MIN_IMAGES:
        return None
    rng = np.random.default_rng(seed)
    order_d, order_g = list(rng.permutation(n_defective)), list(rng.permutation(n_good)[:MAX_IMAGES])
    t_end = time.monotonic() + seconds
    s_def, s_good, borrowed = [], [], []
    while (order_d or order_g) and time.monotonic() < t_end:  # alternate: a short budget still gives both kinds
        if order_d and len(s_def) < MAX_IMAGES:
            gray, mask = load_defective(int(order_d.pop(0)))
            if mask.any():
                s_def.append(score(paint_out(gray, mask, rng)))
                borrowed.append(mask)
        elif order_d:
            order_d = []
        if order_g and borrowed:
            gray = load_good(int(order_g.pop(0)))
            s_good.append(score(paint_out(gray, resize_mask(borrowed[len(s_good) % len(borrowed)], gray.shape), rng)))
        elif not order_d:
            break
    if len(s_def) < MIN_IMAGES or len(s_good) < MIN_IMAGES:
        return None
    y = np.r_[np.zeros(len(s_good)), np.ones(len(s_def))]
    return {"auroc": float(roc_auc_score(y, np.r_[s_good, s_def])), "n_defective": len(s_def), "n_good": len(s_good)}


def note(result: dict) -> str | None:
    if result is None or result["auroc"] <= WARN_AUROC:
        return None
    return (f"Shortcut check: with their marked defects painted out, defective images still score above good images "
            f"painted the same way (AUROC {result['auroc']:.2f}, {result['n_defective']} and {result['n_good']} "
            "images). They differ from good images beyond the masks (how they were photographed or processed, or "
            "damage the masks do not draw), so the detection rate partly rests on that: check it on new images of "
            "good and defective parts from the line.")

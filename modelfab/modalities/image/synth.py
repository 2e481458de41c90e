"""Synthetic inspection images made by code (for tests, docs and the demo): textured surfaces
with scratches, spots or nothing, and the pixel mask of each defect."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFECTS = ("good", "scratch", "spot")


def make_surface(size: int = 64, *, seed: int = 0, defect: str = "good", colour: bool = False,
                 height: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 (H, W) or (H, W, 3), defect mask bool (H, W)) of a brushed-metal-like surface."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    h, w = height or size, size
    base = ndi.gaussian_filter(rng.normal(size=(h, w)), (0.6, 3.0))  # brushed grain along x
    base = base / (base.std() + 1e-9) * 12 + 128 + rng.uniform(-10, 10)
    base += ndi.gaussian_filter(rng.normal(size=(h, w)), 8) * 40
    mask = np.zeros((h, w), bool)
    yy, xx = np.mgrid[:h, :w]
    if defect == "scratch":
        angle = rng.uniform(np.pi / 6, np.pi / 3) * rng.choice([-1, 1])
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        dist = np.abs((yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle))
        along = np.abs((yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle))
        mask = (dist < 1.2) & (along < 0.35 * min(h, w))
        base[mask] -= 70
    elif defect == "spot":
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
        r = rng.uniform(0.05, 0.09) * min(h, w)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        base[mask] += 80 if rng.random() < 0.5 else -80
    elif defect != "good":
        raise ValueError(f"defect must be one of {DEFECTS}, got {defect!r}")
    img = np.clip(base, 0, 255).astype(np.uint8)
    if colour:
        tint = np.array([1.0, 0.92, 0.8])
        img = np.clip(img[..., None] * tint, 0, 255).astype(np.uint8)
    return img, mask


def make_image_dataset(root: Path, *, n_per_class: int = 8, size: int = 48, seed: int = 0,
                       classes: tuple[str, ...] = DEFECTS, masks: bool = False, fmt: str = "png") -> Path:
    """Write ``root/<class>/<class>_<i>.<fmt>`` (and ``<stem>_mask.png`` for defects when ``masks``)."""
    from PIL import Image

    root = Path(root)
    for ci, cls in enumerate(classes):
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            img, mask = make_surface(size, seed=seed * 10_000 + ci * 1000 + i, defect=cls if cls in DEFECTS else "good")
            Image.fromarray(img).save(d / f"{cls}_{i}.{fmt}")
            if masks:
                Image.fromarray(mask.astype(np.uint8) * 255).save(d / f"{cls}_{i}_mask.png")
    return root

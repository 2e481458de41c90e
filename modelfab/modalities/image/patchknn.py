"""Anomaly detection on images from defect-free examples: k-nearest-neighbour distance of local
patch features to a memory of normal patches (PatchCore-like, on handcrafted features).

Each image is resized by one dataset-wide ``scale`` (texture scale stays comparable across
images of different sizes), cut into cells of ``cell`` pixels, and every cell is described by
``features.patch_features``. A cell's anomaly score is its distance to the nearest normal cell
(standardised features); the score map, lightly smoothed, is the heat map and its maximum is
the image score. Stored as plain ``.npz`` (no pickle) plus JSON fields in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import IntegrityError


def work_image(gray: np.ndarray, scale: float) -> np.ndarray:
    from .features import resize

    if scale == 1.0:
        return gray
    h, w = gray.shape
    return resize(gray, max(16, int(round(w * scale))), max(16, int(round(h * scale))))


def image_patches(gray: np.ndarray, scale: float, cell: int) -> np.ndarray:
    from .features import patch_features

    return patch_features(work_image(gray, scale), cell)


def nearest_sq_dist(queries: np.ndarray, memory: np.ndarray, mem_sq: np.ndarray | None = None,
                    chunk: int = 1024) -> np.ndarray:
    """Squared Euclidean distance of each query row to its nearest memory row (float32, chunked)."""
    q = np.ascontiguousarray(queries, np.float32)
    m = np.ascontiguousarray(memory, np.float32)
    msq = (m * m).sum(1) if mem_sq is None else mem_sq
    out = np.empty(len(q), np.float32)
    for i in range(0, len(q), chunk):
        b = q[i:i + chunk]
        d = (b * b).sum(1)[:, None] - 2.0 * (b @ m.T) + msq[None, :]
        out[i:i + chunk] = np.maximum(d.min(axis=1), 0.0)
    return out


@dataclass
class PatchKNN:
    memory: np.ndarray      # (M, D) standardised normal cell features
    mean: np.ndarray        # (D,)
    std: np.ndarray         # (D,)
    scale: float
    cell: int
    smooth: float = 1.0
    threshold: float = float("inf")
    margin: int = 0         # cells at the image edge left out of the image score (tile rims vary a lot)

    def __post_init__(self) -> None:
        self._msq = (self.memory.astype(np.float32) ** 2).sum(1)

    @classmethod
    def fit(cls, patch_sets: list[np.ndarray], *, scale: float, cell: int, max_memory: int, seed: int) -> "PatchKNN":
        flat = np.concatenate([p.reshape(-1, p.shape[-1]) for p in patch_sets]).astype(np.float32)
        mean = flat.mean(0)
        std = flat.std(0) + 1e-6
        z = (flat - mean) / std
        if len(z) > max_memory:
            z = _spread_subsample(z, max_memory, seed)
        return cls(z.astype(np.float32), mean.astype(np.float32), std.astype(np.float32), float(scale), int(cell))

    def score_map(self, patches: np.ndarray) -> np.ndarray:
        """(h, w) anomaly score per cell (distance to the nearest normal cell)."""
        from scipy import ndimage as ndi

        h, w, d = patches.shape
        z = (patches.reshape(-1, d) - self.mean) / self.std
        s = np.sqrt(nearest_sq_dist(z, self.memory, self._msq)).reshape(h, w)
        return ndi.gaussian_filter(s, self.smooth, mode="nearest") if self.smooth > 0 else s

    def score_image(self, gray: np.ndarray) -> tuple[float, np.ndarray]:
        m = self.score_map(image_patches(gray, self.scale, self.cell))
        k = self.margin if min(m.shape) > 2 * self.margin + 2 else 0
        return float((m[k:m.shape[0] - k, k:m.shape[1] - k] if k else m).max()), m

    def heatmap(self, score_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """The cell score map resized to an image ``shape`` (H, W)."""
        from .features import resize

        return resize(score_map.astype(np.float32), shape[1], shape[0])

    # -- files ------------------------------------------------------------
    def save(self, folder: Path, stem: str = "image_anomaly") -> dict:
        np.savez_compressed(Path(folder) / f"{stem}.npz", memory=self.memory, mean=self.mean, std=self.std)
        return {"kind": "patch-knn", "file": f"{stem}.npz", "scale": self.scale, "cell": self.cell, "smooth": self.smooth, "margin": self.margin,
                "threshold": self.threshold, "memory_size": int(len(self.memory)), "dims": int(self.memory.shape[1])}

    @classmethod
    def load(cls, folder: Path, spec: dict) -> "PatchKNN":
        path = Path(folder) / spec["file"]
        with np.load(path, allow_pickle=False) as npz:
            memory, mean, std = npz["memory"], npz["mean"], npz["std"]
        if memory.ndim != 2 or mean.shape != (memory.shape[1],) or std.shape != mean.shape:
            raise IntegrityError(f"{spec['file']}: expected a (M, D) memory with D-long mean/std, got "
                                 f"{memory.shape}, {mean.shape}, {std.shape}.")
        return cls(memory, mean, std, float(spec["scale"]), int(spec["cell"]), float(spec.get("smooth", 1.0)),
                   float(spec["threshold"]), int(spec.get("margin", 0)))


def _spread_subsample(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k rows that cover the feature space better than a plain random sample: half random, half the
    rows farthest from that random half (rare but normal patterns are kept)."""
    rng = np.random.default_rng(seed)
    first = rng.choice(len(z), size=k // 2, replace=False)
    rest = np.setdiff1d(np.arange(len(z)), first)
    if len(rest) > 3 * (k - len(first)):
        rest = rng.choice(rest, size=3 * (k - len(first)), replace=False)
    d = nearest_sq_dist(z[rest], z[first])
    far = rest[np.argsort(-d)[: k - len(first)]]
    return z[np.concatenate([first, far])]

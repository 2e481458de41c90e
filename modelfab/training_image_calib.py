"""The family calibration of an image anomaly model (``modalities/image/padim.py``): what image score a good image
like this one (its size, its overall look) gets from a model that never saw it, learned from the fitted good
images out of fold, so a new image's score can be read relative to it."""

from __future__ import annotations

import time

import numpy as np

CALIBRATE_FROM = 300     # fitted good images at least (200: -0.017..+0.022 image AUROC on three tile splits; 319: +0.005..+0.018)
KEPT_MAX = 500           # good images whose features are kept for it (float32, ~0.6 MB each at 32x32 cells x 152:
                         # float16 copies made a fold's sums differ from what the model's sums added, and the residual
                         # covariance is a small difference of large sums)
FOLDS = 5
COVARIATES = 13          # the model's first covariates used (its 5 size terms and 8 leading components)
ALPHA = 10.0             # ridge on the covariates (unit variance), not the intercept


class KeptFeatures:
    """Cell features (as added to the sums) and sizes of up to :data:`KEPT_MAX` fitted good images, gathered batch by batch while
    the model's sums are added up (only when there will be enough images to calibrate)."""

    def __init__(self, planned: int) -> None:
        self.on = planned >= CALIBRATE_FROM
        self.feats: list[np.ndarray] = []
        self.sizes: list[tuple[int, int]] = []

    def add(self, feats: np.ndarray, sizes: list[tuple[int, int]]) -> None:
        room = KEPT_MAX - len(self.sizes)
        if self.on and room > 0:
            self.feats.append(np.array(feats[:room], dtype=np.float32))
            self.sizes += list(sizes[:room])

    def __len__(self) -> int:
        return len(self.sizes)


def calibrate(model, acc, kept: KeptFeatures, budget, notes: list[str], seed: int, fit_s: float, reserve_s: float,
              say=lambda _m: None) -> None:
    """Set ``model.calib`` when the model is conditional, at least :data:`CALIBRATE_FROM` good images were fitted
    and :data:`FOLDS` more fits (each like the model's own, ``fit_s`` seconds) fit in what the budget leaves after
    ``reserve_s``. ``acc`` (the model's sums) is left as it was."""
    from .modalities.image.padim import BATCH, GaussianAccumulator, PositionGaussian, raw_inputs

    if model.coef is None or acc.n < CALIBRATE_FROM or len(kept) < 2 * FOLDS:
        return
    need = FOLDS * (1.1 * fit_s + 1.0)
    if 0.9 * budget.left_for_search() - reserve_s < need:
        notes.append(f"Image scores are not calibrated by family (the score a good image like each one is expected "
                     f"to get): the budget left too little time ({need:.0f} s needed); a longer budget adds it.")
        return
    feats = np.concatenate(kept.feats)
    kept.feats.clear()  # one copy of them, not two
    sizes = np.asarray(kept.sizes, float)
    order = np.random.default_rng(seed + 11).permutation(len(sizes))
    target = np.zeros(len(sizes))
    t0 = time.monotonic()
    for k, fold in enumerate(np.array_split(order, FOLDS)):
        say(f"calibrating scores by family {k + 1}/{FOLDS}")
        part = GaussianAccumulator(size_norm=acc.size_norm)
        for start in range(0, len(fold), BATCH):
            idx = fold[start:start + BATCH]
            part.add(feats[idx], sizes=[tuple(v) for v in sizes[idx]])
        _shift(acc, part, -1)
        try:
            other = PositionGaussian.fit(acc, model.channels, canvas=model.canvas)
        finally:
            _shift(acc, part, +1)
        for start in range(0, len(fold), BATCH):
            idx = fold[start:start + BATCH]
            dist, _ = other.map_parts(feats[idx], [tuple(v) for v in sizes[idx]])
            target[idx] = np.log(np.maximum(other.combine(dist, None).max(axis=(1, 2)), 1e-6))
        if k == 0 and 0.9 * budget.left_for_search() - reserve_s < (FOLDS - 1) * (time.monotonic() - t0) * 1.2:
            notes.append("Image scores are not calibrated by family: the budget ran short after the first of "
                         f"{FOLDS} out-of-fold fits; a longer budget adds it.")
            return
    z = raw_inputs(feats, sizes, model.size_norm) @ model.transform.T
    x = z[:, 1:1 + min(COVARIATES, z.shape[1] - 1)]
    model.calib = ridge(x, target, ALPHA)
    spread = float(np.std(x @ model.calib[1:]))
    notes.append(f"Image scores are relative to the score a good image of the same family (crop size, overall look) "
                 f"is expected to get, learned out of fold on {len(sizes)} good images ({FOLDS} fits): a faint defect "
                 f"on a part whose good images score low is not outranked by good parts that always score high (the "
                 f"expected score varies by +-{100 * (np.exp(spread) - 1):.0f} % between families here).")


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """[intercept, weights] of a ridge regression of ``y`` on ``x`` (the intercept not penalised)."""
    mx, my = x.mean(axis=0), y.mean()
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - my))
    return np.r_[my - mx @ w, w]


def _shift(acc, part, sign: int) -> None:
    """Add (+1) or take away (-1) the sums of ``part`` from ``acc`` in place (a fold's model is the full sums
    without that fold's images: no second pass over the images)."""
    acc.s2 += sign * part.s2
    acc.sux += sign * part.sux
    acc.suu += sign * part.suu
    acc.n += sign * part.n

"""The defect head of an image anomaly model: synthetic defects made on the fitted good images within the time
the budget leaves, and the per-cell model that learns to find them (``modalities/image/defect_head.py``)."""

from __future__ import annotations

import time

import numpy as np


def fit_head(ws, model, fitted, paths, budget, notes, seed, scoring_s: float, say=lambda _m: None) -> None:
    """Learn the defect head from synthetic defects on (up to MAX_SOURCES of) the fitted good images, if at least
    MIN_SOURCES of them get made within the time that scoring the held-out images (``scoring_s``) leaves."""
    from .modalities.image import defect_head as dh
    from .modalities.image.features import resize
    from .modalities.image.io import read_image
    from .modalities.image.padim import BATCH, cell_features

    if len(fitted) < dh.MIN_SOURCES or model.sd is None:
        return
    t0 = time.monotonic()
    rng = np.random.default_rng(seed + 7)
    sources = [fitted[i] for i in rng.permutation(len(fitted))[:dh.MAX_SOURCES]]
    w, h = model.canvas
    gh, gw = model.mean.shape[:2]
    # the regression: ~5 s on CELLS cells of 608 inputs on an idle 2-core machine; reserved twice over, plus 2 s
    regression_s = 2.0 + 10.0 * min(1.0, len(sources) * dh.PER_IMAGE * gh * gw / dh.CELLS)
    room = 0.9 * budget.left_for_search() - scoring_s - regression_s
    made = 0

    def batches():
        nonlocal made
        canvases, sizes = [], []
        for r in sources:
            if time.monotonic() - t0 > room / 3:
                break
            g = read_image(paths[r], ws.settings, r).gray
            canvases.append(np.clip(resize(g, w, h), 0, 1))
            sizes.append((g.shape[1], g.shape[0]))
        if len(canvases) < 2:
            return
        order = [(i, k) for k in range(dh.PER_IMAGE) for i in range(len(canvases))]
        for start in range(0, len(order), BATCH):
            elapsed = time.monotonic() - t0
            if elapsed > room or (made and elapsed / made * (made + BATCH) > room):
                return
            ims, fracs, szs = [], [], []
            for i, _ in order[start:start + BATCH]:
                partner = canvases[(i + 1 + int(rng.integers(len(canvases) - 1))) % len(canvases)]
                im, m = dh.synthesize(canvases[i], partner, rng)
                ims.append(im)
                fracs.append(resize(m.astype(np.float32), gw, gh))  # the region's share of each cell
                szs.append(sizes[i])
            feats = cell_features(ims, model.canvas, model.blocks, model.channels, model.pool)
            made += len(ims)
            say(f"learning synthetic defects {made}/{len(order)}")
            yield model.residuals(feats, szs), np.stack(fracs)

    why = (f"the budget left too little time for it ({max(room, 0.0):.0f} s to make synthetic defects, after "
           f"keeping {scoring_s:.0f} s to score the held-out images, {regression_s:.0f} s to fit the head and a "
           "reserve to write the model)")
    if room > 0:
        try:
            model.head = dh.DefectHead.fit(batches(), model.sd, len(sources) * dh.PER_IMAGE, seed=seed,
                                           min_images=dh.MIN_SOURCES)
        except ValueError as exc:  # too few synthetic images in the time, or cells of one class
            model.head = None
            why = (f"only {made} synthetic defects could be made in the {max(room, 0.0):.0f} s the budget left for "
                   f"them (after keeping {scoring_s + regression_s:.0f} s to score the held-out images and fit the "
                   "head)" if made
                   < dh.MIN_SOURCES * dh.PER_IMAGE else f"it could not be fitted ({exc})")
    if model.head is None:
        notes.append(f"No defect head (learned from synthetic defects on the good images): {why}; a longer budget "
                     "sharpens the heat maps.")
    else:
        notes.append(f"A defect head learned from {made} synthetic defects on {len(sources)} good images adds to "
                     "the heat map where a region looks like foreign surface (no real defect is used).")

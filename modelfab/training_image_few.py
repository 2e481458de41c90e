"""Image anomaly detection from few good images: every good image scored out of fold.

With a few dozen good images, holding a fifth of them out leaves the threshold to two to eight scores, and the
model fitted on the rest: a tester's 10 good images gave a threshold that flagged 70 % of new good images while
training said 0 %. Below ``CROSSFIT_BELOW`` good images, the per-position Gaussian is fitted ``FOLDS`` times, each
time without one fold, and scores that fold; the threshold is set on these out-of-fold scores of *all* good images,
and the model that is kept is fitted on all of them (so a new good image scores a little lower than the out-of-fold
ones did: the false-alarm rate is at or under the one asked for). The features of each image are computed once.
"""

from __future__ import annotations

import numpy as np

CROSSFIT_BELOW = 300    # fewer good images than this: cross-fitted threshold, final model on all of them (a fifth
                        # held out left 8-19 scores to set the threshold: one 40-image set flagged 45 % of new good
                        # images; 150 good parts: 2 of 200 new good ones flagged at a 1 % rate, cross-fitted 0, with
                        # the 95 % bound 9.5 % -> 3.1 %); more keep the usual fifth held out (60+ scores, and the
                        # features of every image would be held in memory, ~0.6 MB each)
FOLDS = 5
MIN_GOOD = 6            # fewer: refused (a Gaussian per position needs a few images in every fold's fit)


def crossfit_padim(ws, normal_files, abnormal_files, paths, masks, budget, notes, seed, canvas, size_norm,
                   say=lambda _m: None):
    """(model fitted on every good image, number of good images, rows of (score, sampled heat-map pixels, their
    mask values) for ``normal_files`` (out of fold) then ``abnormal_files`` (the final model), (the last fold's
    model, the good images it did not see) for checks that need unseen good images); None when the budget cannot
    hold the extra fits (the caller holds out a part of the good images instead)."""
    from .modalities.image.io import read_image, read_mask
    from .modalities.image.padim import BATCH, GaussianAccumulator, PositionGaussian, cell_features, warm_up

    channels = PositionGaussian.channels_for()
    warm_up()
    n = len(normal_files)
    k = min(FOLDS, n // 2)
    fit_s = 5.0 * (canvas[0] // 8) * (canvas[1] // 8) / 1024 * (len(channels) / 152) ** 3  # one fit, idle machine
    t0 = budget.elapsed()
    feats, sizes, shapes = [], [], []
    for start in range(0, n, BATCH):
        grays = [read_image(paths[r], ws.settings, r).gray for r in normal_files[start:start + BATCH]]
        feats.append(cell_features(grays, canvas, channels=channels))
        sizes += [(g.shape[1], g.shape[0]) for g in grays]
        shapes += [g.shape for g in grays]
        say(f"learning good images {len(sizes)}/{n}")
    per_image = (budget.elapsed() - t0) / n
    # k + 1 fits (1.5 x the idle time: a busy machine) and scoring the defective images must fit in the budget:
    # as many folds as it allows, at least 3
    room = 0.9 * budget.left_for_search() - 1.3 * per_image * len(abnormal_files) - 5.0
    k = min(k, int(room // (1.5 * fit_s)) - 1)
    if k < 3:
        notes.append(f"The budget left too little time to score each of the {n} good images out of fold; a fifth "
                     "was held out to set the threshold instead (a longer --budget sets it on all of them).")
        return None
    X = np.concatenate(feats)
    fold = np.random.default_rng(seed).permutation(n) % k
    # every fit is of the kind the smallest fold fit is (plain or conditional, as many covariates): the kept
    # model on all n images would otherwise be another kind than the models whose scores set its threshold
    # (30-37 good images: folds of 24-30 were plain, the kept model conditional, its threshold 3x too high)
    plan_n = min(int((fold != j).sum()) for j in range(k))

    def fit(idx: np.ndarray):
        acc = GaussianAccumulator(size_norm=size_norm)
        acc.add(X[idx], sizes=[sizes[i] for i in idx])
        return PositionGaussian.fit(acc, channels, canvas=canvas, plan_n=plan_n)

    dist: list = [None] * n   # each good image's distance map and residuals, from the fold model that did not see it
    resid: list = [None] * n
    m = test = None
    for j in range(k):
        say(f"scoring held-out images: the good ones out of fold {j + 1}/{k}")
        started = budget.elapsed()
        test = np.flatnonzero(fold == j)
        m = fit(np.flatnonzero(fold != j))
        szs = [sizes[i] for i in test]
        d, _ = m.map_parts(X[test], szs)
        for i, di, ri in zip(test, d, m.residuals(X[test], szs)):
            dist[i], resid[i] = di, ri
        took = budget.elapsed() - started
        # the fit time above is a guess for an idle machine: on a busy one a fit took 10-15 s, not 5, and 5 fits
        # overran --budget 60 by 27 %. Each fold's real time decides whether the other folds and the kept model
        # still fit; else a fifth is held out (one more fit; not worth it when only the kept model is left)
        if j < k - 1 and not rest_fits(took, k - j, per_image * len(abnormal_files), budget.left_for_search()):
            notes.append(f"The budget left too little time to score each of the {n} good images out of fold (a fit "
                         f"took {took:.0f} s here, {k - j} more were needed); a fifth was held out to set the "
                         "threshold instead (a longer --budget sets it on all of them).")
            return None
    say(f"fitting one Gaussian per position on all {n} good images")
    model = fit(np.arange(n))
    from .training_image_notes import covariates_note

    notes += covariates_note(model, n)
    # the defect head (from 20 good images), learned on the kept model; the folds' maps get it too, on their scale
    from .modalities.image.defect_head import WEIGHT
    from .training_image_head import fit_head

    fit_head(ws, model, list(normal_files), paths, budget, notes, seed,
              per_image * 1.3 * (len(abnormal_files) + min(len(abnormal_files), 80)) + 5.0, say)
    if model.head is not None:
        model.head_weight = float(WEIGHT * np.median(model.combine(np.stack(dist), None)))
        m.head, m.head_weight = model.head, model.head_weight  # the painted-out check's model scores alike
    maps = [model.combine(dist[i][None], None if model.head is None else model.head.probability(resid[i][None]))[0]
            for i in range(n)]
    notes.append(f"With {n} good images, none was held out: each was scored by a model fitted on the others "
                 f"({k}-fold), the threshold was set on those {n} scores, and the model kept was fitted on all of "
                 "them (new good images score a little lower than these out-of-fold scores, so fewer of them are "
                 "flagged than the scores say).")
    rows = [_row(model, maps[i], shapes[i], masks.get(r), ws, seed + i, read_mask, r)
            for i, r in enumerate(normal_files)]
    for start in range(0, len(abnormal_files), BATCH):
        say(f"scoring defective images {start}/{len(abnormal_files)}")
        chunk = abnormal_files[start:start + BATCH]
        ims = [read_image(paths[r], ws.settings, r).gray for r in chunk]
        smaps = model.cell_maps(cell_features(ims, model.canvas, model.blocks, model.channels, model.pool),
                                [(g.shape[1], g.shape[0]) for g in ims])
        rows += [_row(model, sm, g.shape, masks.get(r), ws, seed + n + start + i, read_mask, r)
                 for i, (r, sm, g) in enumerate(zip(chunk, smaps, ims))]
    return model, n, rows, (m, [normal_files[i] for i in test])


def rest_fits(took: float, fits: int, scoring_s: float, left: float) -> bool:
    """Whether, a fold fitted in ``took`` seconds, ``fits`` more fits (the folds left and the kept model, as long
    each) and scoring the defective images (``scoring_s`` measured, with a margin) fit in the ``left`` seconds."""
    return took * fits + 1.3 * scoring_s + 5.0 <= 0.9 * left


def _row(model, smap, shape, mask_path, ws, seed: int, read_mask, rel: str):
    score = float(smap.max())
    if mask_path is None:
        return score, None, None
    m = read_mask(mask_path, ws.settings, shape, rel)
    hm = model.heatmap(smap, shape)
    idx = np.random.default_rng(seed).choice(hm.size, size=min(hm.size, 5000), replace=False)
    return score, hm.ravel()[idx], m.ravel()[idx]

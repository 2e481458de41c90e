"""Training on images: defect classification, or anomaly detection from defect-free images only.

Classification: the cached image features of the import (LBP, GLCM, Gabor, spectrum, gradient
orientation, random convolutions, ...) go through the AutoML engine (FLAML over LightGBM & co.)
within the budget; one row per image, so the holdout is by image.
Anomaly: fitted on normal images only: per-position Gaussians over the packaged EfficientNet-Lite0's
features (``modalities/image/padim.py``) when the ``image-backbone`` extra is installed, else a patch
k-NN on handcrafted features (``modalities/image/patchknn.py``); images with another label are used
only to measure it; the threshold is set on held-out normal
images for ``max_false_alarm``. Both check for shortcuts (image size or brightness alone
predicting the label) and say so in the model's notes.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .errors import InvalidInput, TrainingError
from .images import load_image_tables
from .training import (add_arrays, base_manifest, choose_task, data_lineage, finish, package_folder,
                       resolve_normal_label, training_info, write_learner)
from .training_image_notes import (anomaly_shortcuts, covariates_note, marked_defects, orientation_note,
                                   positive, spelling_notes)

IMAGE_TASKS = ("auto", "classification", "anomaly")
WORK_SHORT_SIDE = 128   # anomaly: images are scaled so that the median short side is about this
CELL = 8
MARGIN = 3              # anomaly: edge cells left out of the image score (on magnetic tiles: AUROC 0.52 -> 0.67)
MAX_MEMORY = 80_000      # normal cells kept (MT: 20k -> 80k took image AUROC 0.67 -> 0.75 in a prototype)


def train_image(ws, ds, *, target: str | None = None, task: str, budget, metric: str | None, name: str, seed: int,
                progress, normal_label: str, max_false_alarm: float):
    """Train on a dataset of images (``target`` is unused: labels come from the import)."""
    feats, files = load_image_tables(ws, ds)
    labels = {str(v) for v in files["label"].dropna()}
    normal_label = resolve_normal_label(labels, normal_label)
    task = choose_task(task, IMAGE_TASKS, "images", labels,
                       normal_label=normal_label, max_false_alarm=max_false_alarm)
    said = spelling_notes(files, task, normal_label)
    if task == "classification":
        return _classify(ws, ds, feats, files, budget=budget, metric=metric, name=name, seed=seed, progress=progress,
                         said=said)
    return _anomaly(ws, ds, files, budget=budget, name=name, seed=seed, progress=progress,
                    normal_label=normal_label, max_false_alarm=max_false_alarm, said=said)


def image_manifest_part(ds, files: pd.DataFrame | None = None, **extra) -> dict:
    part = {"features_version": ds.schema.get("features_version"), "feature_names": ds.schema.get("feature_names"),
            "colour": ds.schema.get("colour", False)}
    if files is not None and len(files):  # the pixel counts trained on: prediction notes images far outside them
        area = (files["width"] * files["height"]).to_numpy(float)
        part["pixels"] = [int(area.min()), int(area.max())]
        if "bits" in files and "mode" in files:  # 12-bit frames in 16-bit files: prediction notes them if none here
            bits = pd.to_numeric(files["bits"], errors="coerce")
            low = (bits > 8) & (bits <= 12) & files["mode"].astype(str).str.startswith("I;16")
            part["low_bit_images"], part["images"] = int(low.sum()), int(len(files))
    return dict(part, **extra)


# ------------------------------------------------------------------ shortcuts
def shortcut_notes(files: pd.DataFrame, y: np.ndarray, seed: int) -> tuple[list[str], dict]:
    """Can image size or mean brightness alone predict the label? (a shortcut the model could learn)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    counts = np.bincount(y)
    if len(counts) < 2 or counts[counts > 0].min() < 3:
        return [], {}
    majority = counts.max() / counts.sum()
    folds = StratifiedKFold(min(3, int(counts[counts > 0].min())), shuffle=True, random_state=seed)
    found, notes = {}, []
    for what, cols in (("image size", ["width", "height"]), ("mean brightness", ["mean_intensity"])):
        X = files[cols].to_numpy(float)
        if np.ptp(X, axis=0).max() == 0:
            found[what] = float(majority)
            continue
        acc = float(cross_val_score(DecisionTreeClassifier(max_depth=3, random_state=seed), X, y, cv=folds).mean())
        found[what] = round(acc, 4)
        if acc > majority + 0.15:
            notes.append(f"Shortcut check: {what} alone predicts the label {acc:.0%} of the time (always guessing the "
                         f"largest class: {majority:.0%}). The model may partly rely on it; make sure new images are "
                         "taken the same way, or even this out in the data.")
    found["majority"] = round(float(majority), 4)
    return notes, found


# ------------------------------------------------------------------ classification
def _classify(ws, ds, feats: pd.DataFrame, files: pd.DataFrame, *, budget, metric, name, seed, progress,
              said: list[str]):
    from .automl.engine import train_tabular

    names = ds.schema["feature_names"]
    keep = feats["label"].notna().to_numpy()
    labelled = feats[keep].reset_index(drop=True)
    boxed = int(positive(files, "n_boxes").sum())
    marked = (f"{boxed} image(s) have boxes marking defects: give each image its class with --labels FILE.csv "
              "(file,label) or label them in the browser (an anomaly model would learn the boxed images as normal)."
              if boxed else "")
    if labelled.empty:
        raise InvalidInput(f"Dataset {ds.ref} has no labelled images; classification needs labels.",
                           hint=marked or "Import with --labels folder|FILE.csv, or train with --task anomaly.")
    counts = labelled["label"].astype(str).value_counts()
    if len(counts) < 2:
        raise InvalidInput(f"Classification needs at least two labels; {ds.ref} has only {list(counts.index)}.",
                           hint=marked or "Train with --task anomaly to learn from good images only.")
    if counts.min() < 2:
        raise InvalidInput(f"Each label needs at least two images; {counts.idxmin()!r} has {counts.min()}.",
                           hint="Add images of that class, or move its folder out (a stray sub-folder is a class of "
                                "its own) and import again; the import notes name nested folders.")
    lab_files = files.set_index("file").loc[labelled["file"]].reset_index()
    codes = pd.Categorical(labelled["label"].astype(str)).codes
    notes, found = shortcut_notes(lab_files, np.asarray(codes), seed)
    table = labelled[names + ["label"]]
    schema = {"columns": [{"name": n, "kind": "numeric"} for n in names] + [{"name": "label", "kind": "categorical"}]}
    result = train_tabular(table, schema, target="label", task="classification", budget=budget, metric=metric,
                           seed=seed, progress=progress, check_copies=False)
    result.notes = said + notes + [n.replace("rows: treat its metrics", "images: treat its metrics") for n in result.notes]
    holdout_files = labelled["file"].to_numpy()[result.holdout_index]
    with package_folder(ws) as folder:
        spec = write_learner(folder, result)
        manifest = base_manifest(ds, result, budget, seed, spec, modality="image")
        manifest.update(target="label", image=image_manifest_part(ds, lab_files, shortcuts=found))
        manifest["input_schema"] = {"columns": [{"name": "image", "kind": "file"}]}
        manifest["data"]["holdout_files"] = [str(f) for f in holdout_files]
        return finish(ws, folder, manifest, result, name=name, ds=ds)


# ------------------------------------------------------------------ anomaly
CHUNK = 48


def _pool(n_images: int):
    """Worker processes for features and scoring (our own objects travel between them, never user files)."""
    import os

    from joblib import Parallel

    return Parallel(n_jobs=1 if n_images < 40 else min(os.cpu_count() or 1, 4))


def _delayed(fn):
    from joblib import delayed

    return delayed(fn)


def _patch_job(path, rel: str, scale: float, settings):
    from .modalities.image.io import read_image
    from .modalities.image.patchknn import image_patches

    return image_patches(read_image(path, settings, rel).gray, scale, CELL)


def _score_job(model, path, rel: str, mask_path, settings, seed: int):
    """(image score, sampled heat-map pixels, their mask values) of one held-out image."""
    from .modalities.image.io import read_image, read_mask

    gray = read_image(path, settings, rel).gray
    score, smap = model.score_image(gray)
    if mask_path is None:
        return score, None, None
    m = read_mask(mask_path, settings, gray.shape, rel)
    hm = model.heatmap(smap, gray.shape)
    idx = np.random.default_rng(seed).choice(hm.size, size=min(hm.size, 5000), replace=False)
    return score, hm.ravel()[idx], m.ravel()[idx]


def _anomaly(ws, ds, files: pd.DataFrame, *, budget, name, seed, progress, normal_label, max_false_alarm,
             said: list[str]):
    from .automl.engine import reserve_for
    from .evaluation.metrics import anomaly_metrics

    budget.reserve(reserve_for(budget.total))
    lab = files["label"]
    if lab.notna().any():
        normal = (lab.astype(str) == normal_label).to_numpy()
        abnormal = (lab.notna() & (lab.astype(str) != normal_label)).to_numpy()
        if not normal.any():
            raise InvalidInput(f"No images labelled {normal_label!r} to learn good surfaces from; labels are "
                               f"{sorted({str(v) for v in lab.dropna()})}.",
                               hint="Pass --normal-label with the label of defect-free images.")
        marked_note = ""
    else:  # no labels: the images whose boxes or mask mark a defect are the known defects, the others the good ones
        abnormal = marked_defects(files)
        normal = ~abnormal
        marked_note = (f"{int(abnormal.sum())} unlabelled image(s) with boxes or a mask marking a defect were not "
                       "learnt as good: they are the known defects the model is checked on." if abnormal.any() else "")
    from .training_image_few import CROSSFIT_BELOW, MIN_GOOD, crossfit_padim

    if normal.sum() < MIN_GOOD:
        what = f"labelled {normal_label!r}" if lab.notna().any() else "without boxes or a mask marking a defect"
        raise InvalidInput(f"Anomaly detection needs at least {MIN_GOOD} defect-free images to learn from and set a "
                           f"threshold on; got {int(normal.sum())} {what}.",
                           hint="Add good images (a few hundred make a threshold you can trust).")
    rng = np.random.default_rng(seed)
    normal_files = files["file"][normal].to_numpy()
    perm = rng.permutation(len(normal_files))
    n_hold = max(2, int(round(0.2 * len(normal_files))))
    hold_normal, fit_files = normal_files[perm[:n_hold]], normal_files[perm[n_hold:]]
    abnormal_files = files["file"][abnormal].to_numpy()
    short = np.minimum(files["width"][normal], files["height"][normal]).median()
    scale = float(min(1.0, WORK_SHORT_SIDE / float(short)))
    refs = ws.meta.blob_refs(f"datasets:{ds.id}")
    notes: list[str] = said + ([marked_note] if marked_note else [])
    # fit on as many normal images as the budget allows (the first chunks time the rest)
    paths = {rel: ws.blob_path(refs[f"file:{rel}"]) for rel in files["file"]}
    masks = {rel: ws.blob_path(refs[f"mask:{rel}"]) for rel in files["file"] if f"mask:{rel}" in refs}
    n_eval = len(hold_normal) + len(abnormal_files)
    eval_files = list(hold_normal) + list(abnormal_files)
    y_true = np.r_[np.zeros(len(hold_normal)), np.ones(len(abnormal_files))].astype(int)
    from .modalities.image import backbone

    def say(message: str) -> None:  # the CLI's progress line: what the fit is doing now
        if progress is not None:
            from .automl.search import Progress

            progress(Progress(elapsed_s=budget.elapsed(), left_s=budget.left(), trials=0, best_score=None,
                              best_learner=None, metric="", message=message, searched=False))

    few = None
    if backbone.available():
        from .modalities.image.padim import canvas_for, size_norm_for

        canvas = canvas_for(files["width"][normal], files["height"][normal])
        size_norm = size_norm_for(files["width"][normal], files["height"][normal])
        few = (crossfit_padim(ws, list(normal_files), list(abnormal_files), paths, masks, budget, notes, seed,
                              canvas, size_norm, say) if len(normal_files) < CROSSFIT_BELOW else None)
        if few is not None:  # every good image scored out of fold; the model kept is fitted on all of them
            model, n_fitted, rows, (check_model, check_good) = few
            hold_normal = normal_files
            eval_files = list(hold_normal) + list(abnormal_files)
            y_true = np.r_[np.zeros(len(hold_normal)), np.ones(len(abnormal_files))].astype(int)
        else:
            model, n_fitted, rows = _fit_padim(ws, fit_files, eval_files, paths, masks, budget, notes, seed, canvas,
                                               size_norm, say, n_hold_normal=len(hold_normal))
        learner = {"name": model.kind, "format": "image-anomaly-npz",
                   "config": {"canvas": list(model.canvas), "blocks": list(model.blocks), "dims": len(model.channels),
                              "covariates": model.covariates, "defect_head": model.head is not None}}
    else:
        notes.append("The pretrained backbone is not installed (pip install -e \".[image-backbone]\"): the heat maps "
                     "come from handcrafted filter responses (patch k-NN), which is much weaker on aligned parts.")
        model, n_fitted, rows = _fit_patchknn(ws, fit_files, eval_files, paths, masks, budget, notes, seed, scale,
                                              n_eval, len(files), say)
        learner = {"name": "patch-knn", "format": "image-anomaly-npz",
                   "config": {"scale": scale, "cell": CELL, "memory": int(len(model.memory))}}
    notes += orientation_note(files[normal])
    scores = [r[0] for r in rows]
    pix_s = [r[1] for r in rows if r[1] is not None]
    pix_y = [r[2] for r in rows if r[2] is not None]
    scores = np.asarray(scores, float)
    s_norm = scores[: len(hold_normal)]
    model.threshold = threshold_at_rate(s_norm, max_false_alarm)
    metrics = anomaly_metrics(y_true, scores, model.threshold) if len(abnormal_files) else {
        "n_normal": int(len(s_norm)), "false_alarm_rate": float((s_norm > model.threshold).mean())}
    metrics["expected_false_alarm"] = float((s_norm > model.threshold).mean())
    if few is not None:  # no good image was held out: each was scored by a model fitted without it (the report says so)
        metrics["good_scored_out_of_fold"] = True
    from .evaluation.metrics import false_alarm_upper_bound

    n_above = int((s_norm > model.threshold).sum())
    metrics["false_alarm_upper_95"] = false_alarm_upper_bound(n_above, len(s_norm))
    if pix_s:
        yy = np.concatenate(pix_y)
        if 0 < yy.mean() < 1:
            from sklearn.metrics import roc_auc_score

            metrics["pixel_auroc"] = float(roc_auc_score(yy, np.concatenate(pix_s)))
    if not len(abnormal_files):
        notes.append("No defective images were given: the detection rate is unknown until some are labelled. "
                     "The threshold was set on held-out defect-free images for the chosen false-alarm rate.")
    else:
        notes += anomaly_shortcuts(files, normal, abnormal)
        say("shortcut check (defects painted out)")
        if few is None:
            painted = _painted_out(ws, model, paths, masks, hold_normal, abnormal_files, seed, budget)
        else:  # the kept model has seen every good image: the last fold's model and the good images it did not see
            painted = _painted_out(ws, check_model, paths, masks, check_good, abnormal_files, seed, budget)
        if painted is not None:
            metrics["painted_out_auroc"] = painted["auroc"]
            metrics["painted_out_images"] = [painted["n_defective"], painted["n_good"]]
            from .evaluation.defect_shortcut import note

            notes += [n for n in [note(painted)] if n]
    from .training_threshold import rate_precision_note

    notes += [n for n in [rate_precision_note(len(s_norm), max_false_alarm, "defect-free images", n_above)] if n]
    with package_folder(ws) as folder:
        spec = model.save(folder)
        np.savez_compressed(folder / "holdout.npz", y_true=y_true, scores=scores)
        if len(eval_files) == len(scores):  # the image behind each held-out score (the web's confusion cells)
            add_arrays(folder / "holdout.npz", {"file": np.asarray([str(f) for f in eval_files])})
        manifest = {
            "modality": "image", "task": "anomaly", "labels": ["normal", "anomaly"], "normal_label": normal_label,
            "threshold": float(model.threshold), "max_false_alarm": float(max_false_alarm),
            "image": image_manifest_part(ds, files, anomaly=spec), "input_schema": {"columns": [{"name": "image", "kind": "file"}]},
            "metrics": metrics, "metric": "auc",
            "learner": learner,
            "leaderboard": [],
            "data": data_lineage(ds, n_normal_files=n_fitted, n_abnormal_files=int(len(abnormal_files)),
                                 holdout_files=[str(f) for f in eval_files]),
            "training": training_info(budget, seed, 1, notes, threshold_source="held-out defect-free images"),
        }
        return finish(ws, folder, manifest, None, name=name, ds=ds)


def threshold_at_rate(s_norm, max_false_alarm: float) -> float:
    """The score threshold (anomalous = score > threshold) for a false-alarm rate on held-out defect-free scores:
    at most floor(rate x n) of them above it (the quantile rule used before left one more out: 3.75 % asked 5 %)."""
    from .evaluation.metrics import threshold_above_for_false_alarm

    return threshold_above_for_false_alarm(np.asarray(s_norm, float), float(max_false_alarm))


def _fit_patchknn(ws, fit_files, eval_files, paths, masks, budget, notes, seed, scale, n_eval, n_files,
                  say=lambda _m: None):
    """The fallback without a backbone: patch k-NN on handcrafted local filter responses."""
    from .modalities.image.patchknn import PatchKNN

    t0, patches = time.monotonic(), []
    with _pool(n_files) as par:
        for start in range(0, len(fit_files), CHUNK):
            chunk = fit_files[start:start + CHUNK]
            patches += par(_delayed(_patch_job)(paths[r], r, scale, ws.settings) for r in chunk)
            say(f"learning good images {len(patches)}/{len(fit_files)}")
            per = (time.monotonic() - t0) / len(patches)
            left = len(fit_files) - len(patches)
            if left and per * (min(left, CHUNK) + 1.3 * n_eval) > 0.9 * budget.left_for_search():
                notes.append(f"The budget allowed features of {len(patches)} of {len(fit_files)} defect-free training "
                             "images; a longer budget uses all of them.")
                break
        if len(patches) < 4:
            raise TrainingError("The budget ran out before the model saw enough images.",
                                hint="Train with a longer --budget.")
        say("fitting")
        model = PatchKNN.fit(patches, scale=scale, cell=CELL, max_memory=MAX_MEMORY, seed=seed)
        model.margin = MARGIN
        say(f"scoring {len(eval_files)} held-out images")
        rows = par(_delayed(_score_job)(model, paths[r], r, masks.get(r), ws.settings, seed + i)
                   for i, r in enumerate(eval_files))
    return model, len(patches), rows


def _fit_padim(ws, fit_files, eval_files, paths, masks, budget, notes, seed, canvas, size_norm, say=lambda _m: None,
               n_hold_normal: int = 0):
    """Per-position Gaussians over the packaged backbone's features (``modalities/image/padim.py``), their means
    conditioned on each image's size and overall appearance when there are enough images, and a defect head
    learned from synthetic defects on the good images (``modalities/image/defect_head.py``) when the budget allows.
    The first ``n_hold_normal`` of ``eval_files`` are held-out good images (they scale the head's share)."""
    from .modalities.image.io import read_image, read_mask
    from .modalities.image.padim import BATCH, GaussianAccumulator, PositionGaussian, cell_features, warm_up
    from .training_image_calib import KeptFeatures, calibrate

    channels = PositionGaussian.channels_for()
    kept = KeptFeatures(len(fit_files))  # features of good images for the family calibration
    warm_up()  # one-time costs (torch import, weights read) are not per-image time
    acc, n_eval = GaussianAccumulator(size_norm=size_norm), len(eval_files)
    # the fit itself (a regression and a 152x152 inversion per cell): ~5 s for 32x32 cells on an idle 2-core
    # machine, several times that under load; reserved twice over
    fit_s = 2 * 5.0 * (canvas[0] // 8) * (canvas[1] // 8) / 1024 * (len(channels) / 152) ** 3
    work = 0.0  # seconds spent per image: reading, features and adding up, without the first add's one-time cost
    for start in range(0, len(fit_files), BATCH):
        t1 = time.monotonic()
        grays = [read_image(paths[r], ws.settings, r).gray for r in fit_files[start:start + BATCH]]
        feats = cell_features(grays, canvas, channels=channels)
        t2 = time.monotonic()
        acc.add(feats, sizes=[(g.shape[1], g.shape[0]) for g in grays])
        kept.add(feats, [(g.shape[1], g.shape[0]) for g in grays])
        # the first add allocates and pages in the sums (~0.3 GB for 32x32 cells: 1-4 s); the adds after it take
        # ~10 ms an image. Timing the first batch with it stopped training after 8 of 457 tiles at --budget 60.
        work += (t2 - t1) + (time.monotonic() - t2 if start else 0.01 * len(grays))
        say(f"learning good images {acc.n}/{len(fit_files)}")
        per = work / acc.n
        left = len(fit_files) - acc.n
        if left and per * (min(left, BATCH) + 1.2 * n_eval) + 5.0 + fit_s > 0.9 * budget.left_for_search():
            notes.append(f"The budget allowed features of {acc.n} of {len(fit_files)} defect-free training "
                         "images; a longer budget uses all of them.")
            break
    if acc.n < 4:
        raise TrainingError("The budget ran out before the model saw enough images.", hint="Train with a longer --budget.")
    say(f"fitting one Gaussian per position on {acc.n} good images")
    t_fit = time.monotonic()
    model = PositionGaussian.fit(acc, channels, canvas=canvas)
    t_fit = time.monotonic() - t_fit
    notes += covariates_note(model, acc.n)
    fitted = list(fit_files[:acc.n])
    # what must still fit after the calibration and the head: scoring the held-out images, then the painted-out
    # check (<= 80 more)
    scoring_s = per * 1.3 * (n_eval + min(n_eval, 80)) + 5.0
    calibrate(model, acc, kept, budget, notes, seed, t_fit, scoring_s, say)
    n_fit = acc.n
    del kept, acc  # the sums (~0.3 GB) and kept features are not needed any more
    if n_hold_normal >= 2:
        from .training_image_head import fit_head

        fit_head(ws, model, fitted, paths, budget, notes, seed, scoring_s, say)
    parts, shapes, factors = [], [], []
    for start in range(0, n_eval, BATCH):
        say(f"scoring held-out images {start}/{n_eval}")
        ims = [read_image(paths[r], ws.settings, r).gray for r in eval_files[start:start + BATCH]]
        feats = cell_features(ims, model.canvas, model.blocks, model.channels, model.pool)
        szs = [(g.shape[1], g.shape[0]) for g in ims]
        dist, prob = model.map_parts(feats, szs)
        parts += list(zip(dist, prob)) if prob is not None else [(d, None) for d in dist]
        factors += list(model.family_factor(feats, szs))
        shapes += [g.shape for g in ims]
    if model.head is not None:  # the head's share in distance units: the median distance on held-out good images
        good = model.combine(np.stack([d for d, _ in parts[:n_hold_normal]]), None)
        from .modalities.image.defect_head import WEIGHT

        model.head_weight = float(WEIGHT * np.median(good))
    rows = []
    for i, (r, (dist, prob), shape, fac) in enumerate(zip(eval_files, parts, shapes, factors)):
        smap = model.combine(dist[None], None if prob is None else prob[None])[0] * fac
        score = float(smap.max())
        if masks.get(r) is None:
            rows.append((score, None, None))
            continue
        m = read_mask(masks[r], ws.settings, shape, r)
        hm = model.heatmap(smap, shape)
        idx = np.random.default_rng(seed + i).choice(hm.size, size=min(hm.size, 5000), replace=False)
        rows.append((score, hm.ravel()[idx], m.ravel()[idx]))
    return model, n_fit, rows


def _painted_out(ws, model, paths, masks, hold_normal, abnormal_files, seed, budget) -> dict | None:
    """The painted-out-defect shortcut check (``evaluation/defect_shortcut.py``) on the held-out images, within
    most of what is left of the budget (it re-scores at most 80 images)."""
    from .evaluation.defect_shortcut import painted_out_check
    from .modalities.image.io import read_image, read_mask

    with_mask = [r for r in abnormal_files if masks.get(r) is not None]

    def load_defective(i):
        r = with_mask[i]
        gray = read_image(paths[r], ws.settings, r).gray
        return gray, read_mask(masks[r], ws.settings, gray.shape, r)

    def load_good(i):
        return read_image(paths[hold_normal[i]], ws.settings, hold_normal[i]).gray

    return painted_out_check(lambda g: model.score_image(g)[0], load_defective, len(with_mask), load_good,
                             len(hold_normal), seed=seed, seconds=max(0.0, 0.8 * budget.left_for_search()))

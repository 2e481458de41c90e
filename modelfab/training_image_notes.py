"""What image training says about its data: class spellings, covariates, orientations, marked defects and
shortcuts (size or brightness alone telling defective from good images)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def spelling_notes(files: pd.DataFrame, task: str, normal_label: str | None) -> list[str]:
    """Classes written several ways ('good' / 'Good'), said again at training: for anomaly detection the other
    spellings of the normal label are learnt as defects."""
    from collections import Counter

    from .modalities.image.labels import class_spelling_notes

    counts = Counter(str(v) for v in files["label"].dropna())
    notes = class_spelling_notes(counts, "Classes")
    if notes and task == "anomaly" and normal_label is not None:
        fold = normal_label.strip().casefold()
        twins = sorted(lab for lab in counts if lab != normal_label and lab.strip().casefold() == fold)
        if twins:
            notes.append(f"Only images labelled {normal_label!r} are learnt as good: those labelled "
                         f"{', '.join(repr(t) for t in twins)} ({sum(counts[t] for t in twins)}) count as defective. "
                         "If they are good too, give them one spelling and import again")
    return notes


def covariates_note(model, n: int) -> list[str]:
    """What a conditional per-position model says of its covariates (none for a plain mean)."""
    if not model.covariates:
        return []
    return [f"Each position's normal appearance is predicted from {model.covariates} covariates of the image as a "
            "whole (its crop size and the leading components of its mean features), fitted on "
            f"{n} defect-free images: a part is compared with good parts like it."]


def orientation_note(good: pd.DataFrame) -> list[str]:
    """Good images taken both ways up (portrait and landscape, each at least a tenth): the per-position model
    compares each place of a part with the same place of good parts, so mixed orientations blur what is normal."""
    w, h = good["width"].to_numpy(float), good["height"].to_numpy(float)
    portrait, landscape = int((h > 1.2 * w).sum()), int((w > 1.2 * h).sum())
    if min(portrait, landscape) < max(2, 0.1 * len(good)):
        return []
    return [f"The good images come in two shapes: {portrait} portrait and {landscape} landscape. The model compares "
            "each place of a part with the same place on good parts: if these are the same parts photographed "
            "turned, rotate the images to one orientation (and new ones the same way); if they are different parts, "
            "one model per kind of part learns each better. A new image of a shape no good image had is compared "
            "with the wrong places."]


def positive(files: pd.DataFrame, column: str) -> np.ndarray:
    """Rows whose ``column`` is a number above 0 (none when the table has no such column)."""
    if column not in files:
        return np.zeros(len(files), bool)
    return pd.to_numeric(files[column], errors="coerce").fillna(0).to_numpy() > 0


def marked_defects(files: pd.DataFrame) -> np.ndarray:
    """Images whose boxes or mask mark a defect (an unlabelled COCO/YOLO/VOC set keeps its boxes)."""
    return positive(files, "n_boxes") | positive(files, "defect_fraction")


def anomaly_shortcuts(files: pd.DataFrame, normal: np.ndarray, abnormal: np.ndarray) -> list[str]:
    from sklearn.metrics import roc_auc_score

    notes = []
    sel = normal | abnormal
    y = abnormal[sel].astype(int)
    for what, v in (("image area", (files["width"] * files["height"]).to_numpy(float)),
                    ("mean brightness", files["mean_intensity"].to_numpy(float))):
        auc = roc_auc_score(y, v[sel])
        auc = max(auc, 1 - auc)
        if auc > 0.75:
            notes.append(f"Shortcut check: {what} alone separates defective from good images with AUROC {auc:.2f}; "
                         "the detector does not use it directly, but the test images differ in it.")
    return notes

"""NEU-DET steel surface defects: 6-class image classification on held-out images.

    .venv/bin/python bench/neu.py [--budget 300] [--seed 0] [--test-fraction 0.25]

Uses ../shared/data/neu_det (see its README). A stratified part of the images of each class
(``--test-fraction``) is held out before anything is imported; the rest (with their Pascal VOC
box files, which were made on a 200x200 copy and are rescaled at import) is imported as a
dataset through the public Python API and trained with the budget; the held-out images are
then predicted with ``modelfab predict``'s code path. A HOG+LBP logistic regression on the
same split is the reference. Also checks shortcuts (image size, brightness alone).
Writes bench/out/neu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import modelfab as mf

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "neu_det"
OUT = Path(__file__).resolve().parent / "out"


def split(seed: float, frac: float) -> tuple[list[Path], list[Path]]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for d in sorted((DATA / "images").iterdir()):
        files = sorted(d.glob("*.jpg"))
        perm = rng.permutation(len(files))
        n_test = int(round(frac * len(files)))
        test += [files[i] for i in perm[:n_test]]
        train += [files[i] for i in perm[n_test:]]
    return train, test


def copy(files: list[Path], dest: Path, with_boxes: bool) -> None:
    for f in files:
        (dest / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest / f.parent.name / f.name)
        xml = DATA / "annotations" / (f.stem + ".xml")
        if with_boxes and xml.is_file():
            (dest / "annotations").mkdir(exist_ok=True)
            shutil.copyfile(xml, dest / "annotations" / xml.name)


def hog_lbp_baseline(train: list[Path], test: list[Path]) -> float:
    from PIL import Image
    from skimage.feature import hog, local_binary_pattern
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def feat(f):
        g = np.asarray(Image.open(f).convert("L").resize((128, 128)), dtype=np.uint8)
        h = hog(g, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2))
        lbp = local_binary_pattern(g, 8, 1, "uniform")
        return np.r_[h, np.bincount(lbp.astype(int).ravel(), minlength=10) / lbp.size]

    Xtr, Xte = np.array([feat(f) for f in train]), np.array([feat(f) for f in test])
    ytr, yte = [f.parent.name for f in train], [f.parent.name for f in test]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(Xtr, ytr)
    return float((clf.predict(Xte) == np.array(yte)).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-fraction", type=float, default=0.25)
    args = ap.parse_args()
    train, test = split(args.seed, args.test_fraction)
    res = {"bench": "neu_det", "machine": platform.machine(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
           "load_before": os.getloadavg(), "budget_s": args.budget, "seed": args.seed,
           "n_train": len(train), "n_test": len(test)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        copy(train, tmp / "train", with_boxes=True)
        copy(test, tmp / "test", with_boxes=False)
        ws = mf.Workspace.init(tmp / "ws")
        t0 = time.monotonic()
        ds = ws.import_images(tmp / "train", "neu").dataset
        res["import_s"] = round(time.monotonic() - t0, 1)
        res["import_stats"] = {k: ds.stats[k] for k in ("files", "labels", "boxes", "box_formats", "boxes_rescaled_images", "sizes")}
        t0 = time.monotonic()
        model = ws.train(ds, task="classification", budget=args.budget, seed=args.seed, name="neu")
        res["train_s"] = round(time.monotonic() - t0, 1)
        res["load_after_train"] = os.getloadavg()
        res["internal_holdout_accuracy"] = model.metrics.get("accuracy")
        res["learner"] = model.manifest["learner"]["name"]
        res["shortcuts"] = model.manifest["image"].get("shortcuts")
        res["notes"] = model.manifest["training"]["notes"]
        t0 = time.monotonic()
        out = model.predictor.predict_files([tmp / "test"])
        res["predict_s"] = round(time.monotonic() - t0, 1)
        truth = out["file"].str.split("/").str[0]
        res["test_accuracy"] = float((out["label"] == truth).mean())
        res["per_class_accuracy"] = {c: float((out["label"][truth == c] == c).mean()) for c in sorted(set(truth))}
        res["errors"] = [f"{f}: {p}" for f, p, t in zip(out["file"], out["label"], truth) if p != t][:20]
    t0 = time.monotonic()
    res["baseline_hog_lbp_logreg_accuracy"] = hog_lbp_baseline(train, test)
    res["baseline_s"] = round(time.monotonic() - t0, 1)
    OUT.mkdir(exist_ok=True)
    (OUT / "neu.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

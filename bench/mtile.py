"""Magnetic-tile surface defects: anomaly detection trained on defect-free tiles (MT_Free) only.

    .venv/bin/python bench/mtile.py [--budget 300] [--seed 0] [--max-false-alarm 0.05]

Uses ../shared/data/magnetic_tile (see its README). The whole folder is imported through the
public Python API (labels = folder, masks = the ``X.png`` beside each ``X.jpg``); training uses
``--normal-label MT_Free``: the model is fitted on 80% of the free tiles only; the other 20% and
every defective tile are scored. Reports image AUROC (held-out free vs all defective, and per
defect type), pixel AUROC against the masks, the false-alarm rate and detection rate at the
threshold, and shortcut checks (image size / brightness alone; each defect type against free tiles of
the same sizes; score vs image area on free tiles). Writes bench/out/mtile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import modelfab as mf

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "magnetic_tile"
OUT = Path(__file__).resolve().parent / "out"


def pd_spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def painted_out_by_type(model, files, y, kinds) -> dict:
    """The product's painted-out-defect check (modelfab/evaluation/defect_shortcut.py) per defect type: each
    type's tiles with their defects painted out against held-out free tiles painted out with the type's masks."""
    from modelfab.evaluation.defect_shortcut import painted_out_check
    from modelfab.modalities.image.io import read_image, read_mask
    from modelfab.settings import Settings

    settings, pred = Settings(), model.predictor
    good = [f for f, v in zip(files, y) if v == 0]
    out = {}
    for k in sorted(set(kinds[y == 1])):
        tiles = [f for f, kk in zip(files, kinds) if kk == k]

        def load_defective(i, tiles=tiles):
            gray = read_image(DATA / tiles[i], settings, tiles[i]).gray
            return gray, read_mask((DATA / tiles[i]).with_suffix(".png"), settings, gray.shape, tiles[i])

        def load_good(i):
            return read_image(DATA / good[i], settings, good[i]).gray

        out[k] = painted_out_check(lambda g: pred.anomaly.score_image(g)[0], load_defective, len(tiles), load_good,
                                   len(good), seed=0, seconds=600)
    return out


def main() -> None:
    from sklearn.metrics import roc_auc_score

    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-false-alarm", type=float, default=0.05)
    args = ap.parse_args()
    res = {"bench": "magnetic_tile", "machine": platform.machine(), "cpus": os.cpu_count(),
           "date": time.strftime("%Y-%m-%d %H:%M"), "load_before": os.getloadavg(), "budget_s": args.budget,
           "seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        ws = mf.Workspace.init(Path(tmp) / "ws")
        t0 = time.monotonic()
        ds = ws.import_images(DATA, "mtile").dataset
        res["import_s"] = round(time.monotonic() - t0, 1)
        res["import_stats"] = {k: ds.stats[k] for k in ("files", "labels", "masks", "sizes")}
        t0 = time.monotonic()
        model = ws.train(ds, task="anomaly", normal_label="MT_Free", budget=args.budget, seed=args.seed,
                         max_false_alarm=args.max_false_alarm, name="mtile")
        res["train_s"] = round(time.monotonic() - t0, 1)
        res["load_after_train"] = os.getloadavg()
        m = model.metrics
        res["image_auroc"] = m.get("auc")
        res["pixel_auroc"] = m.get("pixel_auroc")
        res["threshold_metrics"] = {k: m.get(k) for k in ("recall", "false_alarm_rate", "expected_false_alarm", "precision")}
        res["model"] = model.manifest["learner"]
        res["notes"] = model.manifest["training"]["notes"]
        files = model.manifest["data"]["holdout_files"]
        hold = model.holdout()
        y, s = hold["y_true"], hold["scores"]
        kinds = np.array([f.split("/")[0] for f in files])
        res["per_type_auroc"] = {k: float(roc_auc_score(y[(kinds == k) | (y == 0)], s[(kinds == k) | (y == 0)]))
                                 for k in sorted(set(kinds[y == 1]))}
        # shortcut check: blowhole crops are smaller; compare each type only with free tiles of its sizes too
        from PIL import Image

        area = np.array([np.prod(Image.open(DATA / f).size) for f in files], float)
        res["size_matched_auroc"] = {}
        for k in sorted(set(kinds[y == 1])):
            lo, hi = np.quantile(area[kinds == k], [0.1, 0.9])
            sel = (kinds == k) | ((y == 0) & (area >= lo) & (area <= hi))
            if (y[sel] == 0).sum() >= 5:
                res["size_matched_auroc"][k] = {"auroc": float(roc_auc_score(y[sel], s[sel])),
                                                "n_free": int((y[sel] == 0).sum())}
        res["painted_out_auroc"] = m.get("painted_out_auroc")
        res["painted_out_by_type"] = painted_out_by_type(model, files, y, kinds)
        res["score_vs_area_spearman_free"] = float(pd_spearman(area[y == 0], s[y == 0]))
        res["n_eval_normal"], res["n_eval_defective"] = int((y == 0).sum()), int((y == 1).sum())
    OUT.mkdir(exist_ok=True)
    (OUT / "mtile.json").write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()

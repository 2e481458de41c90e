"""Moving an anomaly model's threshold: a new model version, same detector, no retraining."""

from __future__ import annotations

import shutil

import numpy as np

from .training import finish, package_folder


def rethreshold(model, *, threshold: float | None, max_false_alarm: float | None):
    from .evaluation.metrics import anomaly_metrics

    pred = model.predictor
    am = pred.anomaly.with_false_alarm(max_false_alarm) if max_false_alarm is not None else pred.anomaly.with_threshold(threshold)
    hold = model.holdout()
    manifest = {k: v for k, v in model.manifest.items() if k not in ("files", "format", "format_version")}
    manifest["threshold"] = float(am.threshold)
    manifest["max_false_alarm"] = float(am.max_false_alarm)
    if "scores" in hold and len(hold["scores"]):
        metrics = anomaly_metrics(np.asarray(hold["y_true"], int), np.asarray(hold["scores"], float), am.threshold)
        metrics["expected_false_alarm"] = am.false_alarm_rate()
        manifest["metrics"] = metrics
    manifest["derived_from"] = {"model": model.ref, "package_sha": model.row["package_sha"],
                                "change": f"threshold {pred.threshold:.6g} -> {am.threshold:.6g}"}
    ds = model.ws.meta.get_dataset_by_id(model.row["dataset_id"]) if model.row.get("dataset_id") else None
    with package_folder(model.ws) as folder:
        for rel in model.manifest["files"]:
            dst = folder.joinpath(*rel.split("/"))
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model.folder / rel, dst)
        return finish(model.ws, folder, manifest, None, name=model.name, ds=_DsRef(ds))


class _DsRef:
    def __init__(self, row):
        self.id = row["id"] if row else None

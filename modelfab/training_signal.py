"""Training on recordings: fault classification or anomaly detection from normal files.

Windows are the rows, files are the groups: every split, cross-validation
fold and metric is by file, so no recording leaks between train and test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InvalidInput
from .recordings import load_signal_tables
from .training import base_manifest, data_lineage, finish, package_folder, training_info, write_learner

SIGNAL_TASKS = ("auto", "classification", "anomaly")


def train_signal(ws, ds, *, target: str | None = None, task: str, budget, metric: str | None, name: str, seed: int,
                 progress, normal_label: str, max_false_alarm: float):
    """Train on a dataset of recordings (``target`` is unused: the labels come from the import)."""
    if task not in SIGNAL_TASKS:
        raise InvalidInput(f"Task for recordings must be one of {', '.join(SIGNAL_TASKS)}; got {task!r}.")
    if not 0 < float(max_false_alarm) < 1:
        raise InvalidInput(f"--max-false-alarm must be between 0 and 1 (e.g. 0.01); got {max_false_alarm!r}.")
    feats, files = load_signal_tables(ws, ds)
    labels = {str(v) for v in files["label"].dropna()}
    if task == "auto":
        task = "anomaly" if (not labels or labels <= {normal_label} or labels == {normal_label, "abnormal"}) else "classification"
    if task == "classification":
        return _classify(ws, ds, feats, budget=budget, metric=metric, name=name, seed=seed, progress=progress)
    return _anomaly(ws, ds, feats, files, budget=budget, name=name, seed=seed, progress=progress,
                    normal_label=normal_label, max_false_alarm=max_false_alarm)


def signal_manifest_part(ds) -> dict:
    return {"options": ds.options, "sample_rate": ds.schema.get("sample_rate"),
            "feature_names": ds.schema.get("feature_names")}


def _classify(ws, ds, feats: pd.DataFrame, *, budget, metric, name, seed, progress):
    from .automl.engine import train_tabular
    from .evaluation.metrics import classification_metrics

    names = ds.schema["feature_names"]
    labelled = feats[feats["label"].notna()].reset_index(drop=True)
    if labelled.empty:
        raise InvalidInput(f"Dataset {ds.ref} has no labelled recordings; classification needs labels.",
                           hint="Import with --labels folder|regex:...|FILE.csv, or train with --task anomaly.")
    notes = []
    per_class = labelled.groupby("label")["file"].nunique()
    thin = per_class[per_class < 2]
    if len(thin):
        labelled, groups = _time_blocks(labelled)
        notes.append(f"{len(thin)} class(es) have a single recording ({', '.join(map(str, thin.index[:5]))}): each "
                     f"recording was cut into {N_BLOCKS} contiguous time blocks (windows crossing a block edge dropped) "
                     "and whole blocks were held out instead of whole files. Expect lower accuracy on other machines "
                     "than the holdout shows; test on recordings of another machine or load.")
    else:
        groups = labelled["file"].to_numpy()
    if labelled.groupby("label")[["file"]].size().min() < 2:
        raise InvalidInput("Each class needs at least two windows to learn from and test on.",
                           hint="Import longer recordings or use a shorter --window.")
    table = labelled[names + ["label"]]
    schema = {"columns": [{"name": n, "kind": "numeric"} for n in names] + [{"name": "label", "kind": "categorical"}]}
    result = train_tabular(table, schema, target="label", task="classification", budget=budget, metric=metric,
                           seed=seed, groups=groups, progress=progress)
    result.notes = notes + result.notes
    # file-level view of the same holdout: mean of window probabilities per file
    test_files = labelled["file"].to_numpy()[result.holdout_index]
    per_file = pd.DataFrame(result.proba_holdout).groupby(test_files, sort=False).mean()
    code = {str(v): i for i, v in enumerate(result.labels)}
    file_truth = labelled.drop_duplicates("file").set_index("file")["label"].map(lambda v: code[str(v)])
    y_file = file_truth.loc[per_file.index].to_numpy()
    file_metrics = classification_metrics(y_file, per_file.to_numpy(), [str(v) for v in result.labels])
    result.metrics["window_accuracy"] = result.metrics.get("accuracy")
    result.metrics["file_accuracy"] = file_metrics.get("accuracy")
    result.metrics["files"] = {k: file_metrics[k] for k in ("n", "accuracy", "balanced_accuracy", "confusion_matrix")
                               if k in file_metrics}
    with package_folder(ws) as folder:
        spec = write_learner(folder, result)
        manifest = base_manifest(ds, result, budget, seed, spec, modality="signal")
        manifest.update(target="label", signal=signal_manifest_part(ds), aggregation="mean")
        manifest["data"]["holdout_files"] = list(per_file.index.astype(str))
        return finish(ws, folder, manifest, result, name=name, ds=ds)


N_BLOCKS = 5


def _time_blocks(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Groups = (file, time block) so that one recording can give train and holdout parts without overlap."""
    parts = []
    for _, block in frame.groupby("file", sort=False):
        length = float(block["t1"].max()) / N_BLOCKS
        first = np.floor(block["t0"].to_numpy() / length).astype(int)
        last = np.floor((block["t1"].to_numpy() - 1e-9) / length).astype(int)
        keep = block[first == last].copy()
        keep["_group"] = keep["file"] + "#" + np.minimum(first[first == last], N_BLOCKS - 1).astype(str)
        parts.append(keep)
    out = pd.concat(parts, ignore_index=True)
    return out, out.pop("_group").to_numpy()


def _anomaly(ws, ds, feats: pd.DataFrame, files: pd.DataFrame, *, budget, name, seed, progress, normal_label,
             max_false_alarm):
    from .automl.anomaly import fit_anomaly
    from .automl.engine import reserve_for
    from .evaluation.metrics import anomaly_metrics

    budget.reserve(reserve_for(budget.total))
    names = ds.schema["feature_names"]
    labels = feats["label"]
    has_labels = labels.notna().any()
    if has_labels:
        normal = (labels.astype(str) == normal_label).to_numpy()
        abnormal = (labels.notna() & (labels.astype(str) != normal_label)).to_numpy()
        if not normal.any():
            found = sorted({str(v) for v in labels.dropna()})
            raise InvalidInput(f"No recordings labelled {normal_label!r} to learn normal sound from; labels are {found}.",
                               hint="Pass --normal-label with the label of good machines.")
    else:
        normal = np.ones(len(feats), bool)
        abnormal = np.zeros(len(feats), bool)
    keep = normal | abnormal
    data = feats[keep].reset_index(drop=True)
    X = data[names].to_numpy(dtype=np.float64)
    groups = data["file"].to_numpy()
    y = abnormal[keep].astype(int)
    model, board, info = fit_anomaly(X, groups, y if y.any() else None, feature_names=names, budget=budget,
                                     max_false_alarm=max_false_alarm, seed=seed, progress=progress)
    oof_n = np.asarray(info.get("oof_normal_scores", []), float)
    oof_a = np.asarray(info.get("oof_abnormal_scores", []), float)
    y_true = np.r_[np.zeros(len(oof_n)), np.ones(len(oof_a))].astype(int)
    scores = np.r_[oof_n, oof_a]
    metrics = anomaly_metrics(y_true, scores, model.threshold)
    metrics["expected_false_alarm"] = info.get("expected_false_alarm_oof")
    notes = list(info.get("notes", []))
    if not len(oof_a):
        notes.append("No abnormal recordings were given: the detection rate is unknown until some are labelled. "
                     "The threshold was set on held-out normal recordings for the chosen false-alarm rate.")
    with package_folder(ws) as folder:
        model.save(folder, "anomaly")
        np.savez_compressed(folder / "holdout.npz", y_true=y_true, scores=scores)
        manifest = {
            "modality": "signal", "task": "anomaly", "labels": ["normal", "anomaly"],
            "normal_label": normal_label, "threshold": float(model.threshold),
            "max_false_alarm": float(max_false_alarm), "aggregation": model.aggregation,
            "anomaly_model": "anomaly", "signal": signal_manifest_part(ds),
            "input_schema": {"columns": [{"name": "recording", "kind": "file"}]},
            "metrics": metrics, "metric": "auc",
            "learner": {"name": model.meta.get("candidate", "anomaly"), "format": "anomaly-npz",
                        "config": {"selection": info.get("selection"), "criterion": info.get("criterion")}},
            "leaderboard": [_board_row(r) for r in board[:30]],
            "data": data_lineage(ds, n_normal_files=info.get("n_normal_files"),
                                 n_abnormal_files=info.get("n_abnormal_files")),
            "training": training_info(budget, seed, len(board), notes, selection=info.get("selection"),
                                      threshold_source=info.get("threshold_source")),
        }
        return finish(ws, folder, manifest, None, name=name, ds=ds)


def _board_row(r: dict) -> dict:
    return {"learner": r.get("detector"), "score": r.get("cv_score"), "metric": "file AUC (cross-validated)",
            "aggregation": r.get("aggregation"), "status": r.get("status"), "train_time_s": r.get("fit_time_s"),
            "config": {"params": r.get("params"), "scaling": r.get("scaling"),
                       "feature_weighting": r.get("feature_weighting")}}

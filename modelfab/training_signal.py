"""Training on recordings: fault classification or anomaly detection from normal files.

Windows are the rows, files are the groups: every split, cross-validation
fold and metric is by file, so no recording leaks between train and test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InvalidInput
from .recordings import load_signal_tables
from .training import (add_arrays, base_manifest, choose_task, data_lineage, finish, package_folder,
                       resolve_normal_label, training_info, write_learner)

SIGNAL_TASKS = ("auto", "classification", "anomaly")


def train_signal(ws, ds, *, target: str | None = None, task: str, budget, metric: str | None, name: str, seed: int,
                 progress, normal_label: str, max_false_alarm: float):
    """Train on a dataset of recordings (``target`` is unused: the labels come from the import)."""
    feats, files = load_signal_tables(ws, ds)
    labels = {str(v) for v in files["label"].dropna()}
    normal_label = resolve_normal_label(labels, normal_label)
    task = choose_task(task, SIGNAL_TASKS, "recordings", labels,
                       normal_label=normal_label, max_false_alarm=max_false_alarm)
    if task == "classification":
        return _classify(ws, ds, feats, files, budget=budget, metric=metric, name=name, seed=seed, progress=progress)
    return _anomaly(ws, ds, feats, files, budget=budget, name=name, seed=seed, progress=progress,
                    normal_label=normal_label, max_false_alarm=max_false_alarm)


def signal_manifest_part(ds, files: pd.DataFrame | None = None) -> dict:
    """What prediction needs to read recordings as the training ones were read; ``median_duration_s`` (the
    training recordings' median length) lets it score a much longer file in segments of that length."""
    part = {"options": ds.options, "sample_rate": ds.schema.get("sample_rate"),
            "feature_names": ds.schema.get("feature_names")}
    if files is not None and len(files) and "duration_s" in files:
        part["median_duration_s"] = round(float(files["duration_s"].median()), 4)
    return part


def _classify(ws, ds, feats: pd.DataFrame, files: pd.DataFrame, *, budget, metric, name, seed, progress):
    from .automl.engine import train_tabular
    from .evaluation.metrics import classification_metrics

    names = ds.schema["feature_names"]
    labelled = feats[feats["label"].notna()].reset_index(drop=True)
    if labelled.empty:
        raise InvalidInput(f"Dataset {ds.ref} has no labelled recordings; classification needs labels.",
                           hint="Import with --labels folder|regex:...|FILE.csv, or train with --task anomaly.")
    notes = []
    learners = None
    per_class = labelled.groupby("label")["file"].nunique()
    thin = per_class[per_class < 2]
    if len(thin):
        labelled, groups = _time_blocks(labelled)
        learners = BAGGED_LEARNERS
        notes.append(f"{len(thin)} class(es) have a single recording ({', '.join(map(str, thin.index[:5]))}): each "
                     f"recording was cut into up to {N_BLOCKS} contiguous time blocks (windows crossing a block edge dropped) "
                     "and whole blocks were held out instead of whole files. Such a holdout cannot tell which model "
                     "carries over to other recordings, so only bagged trees (extra trees) were "
                     "searched: boosted trees latch onto a few features that differ between recordings. Expect "
                     "lower accuracy on other machines than the holdout shows; test on recordings of another "
                     "machine or load.")
    else:
        groups = labelled["file"].to_numpy()
    if labelled.groupby("label")["file"].size().reindex(per_class.index, fill_value=0).min() < 2:
        raise InvalidInput("Each class needs at least two windows to learn from and test on.",
                           hint="Import longer recordings or use a shorter --window.")
    table = labelled[names + ["label"]]
    schema = {"columns": [{"name": n, "kind": "numeric"} for n in names] + [{"name": "label", "kind": "categorical"}]}
    search_budget = budget
    if learners == BAGGED_LEARNERS:  # the search ends a little earlier, to leave time for growing its forest
        from .automl.budget import Budget

        search_budget = Budget(max(1.0, budget.left() - GROW_SHARE * budget.total))
    result = train_tabular(table, schema, target="label", task="classification", budget=search_budget, metric=metric,
                           seed=seed, groups=groups, progress=progress, learners=learners, check_copies=False,
                           ensemble=learners is None)  # thin data: one grown forest is the ensemble
    if learners == BAGGED_LEARNERS:
        grown = _grow_forest(result, table, schema, budget)
        if grown:
            notes.append(grown)
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
        # the recording of each held-out window (the UI shows a confusion-matrix cell's recordings from it)
        spec = write_learner(folder, result)
        add_arrays(folder / "holdout.npz", {"file": test_files.astype(str)})
        manifest = base_manifest(ds, result, budget, seed, spec, modality="signal")
        manifest.update(target="label", signal=signal_manifest_part(ds, files), aggregation="mean")
        manifest["data"]["holdout_files"] = list(per_file.index.astype(str))
        return finish(ws, folder, manifest, result, name=name, ds=ds)


N_BLOCKS = 5
# Learners searched when every class has one recording only. Measured on CWRU (train on one motor load, test
# on another; bench/results/cwru.md): bagged trees classify 100% of the fault files either way, boosted trees
# (LightGBM, XGBoost) often far less, and an in-load holdout cannot tell them apart. Of the bagged trees, extra
# trees (random split thresholds: smoother boundaries) kept >= 99.4% of the windows in every configuration
# tried at the default windows (1 s sound, 0.25 s vibration), random forests down to 97.1%.
BAGGED_LEARNERS = ("extra_tree",)
# The cost-frugal search starts forests at 4 trees and, when the in-recording holdout is already perfect, keeps
# them that small; averaged over 4 trees, CWRU's other load loses 10-20% of its windows, over 32+ trees none.
MIN_TREES = 100
GROW_SHARE = 0.05  # of the budget, kept from the search for growing the forest (it takes well under a second on CWRU)


def _grow_forest(result, table: pd.DataFrame, schema: dict, budget) -> str | None:
    """Add trees (same configuration, same training rows) to a small winning forest while the budget allows."""
    import time

    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    from .automl.engine import prepare_target
    from .automl.learners import feature_importance
    from .evaluation.metrics import classification_metrics

    forest = getattr(result.learner, "obj", None)
    if not isinstance(forest, (ExtraTreesClassifier, RandomForestClassifier)) or forest.n_estimators >= MIN_TREES:
        return None
    df, y, _, _, _ = prepare_target(table, schema, "label", "classification")
    train = np.setdiff1d(np.arange(len(df)), result.holdout_index)
    X = result.preprocessor.transform(df)[train]
    before, start = forest.n_estimators, time.monotonic()
    # Growing uses its share of the budget, what the search left and, if need be, part of the time kept back for
    # the report (written only if time is left); 1 s stays for packaging.
    floor = 1.0
    forest.set_params(warm_start=True)
    step_s = 0.0
    while forest.n_estimators < MIN_TREES and budget.left() - floor > 2.0 * step_s:
        t0 = time.monotonic()
        step = min(MIN_TREES, 2 * forest.n_estimators) - forest.n_estimators
        forest.set_params(n_estimators=forest.n_estimators + step).fit(X, y[train])
        step_s = time.monotonic() - t0  # the next step adds as many trees or more
    forest.set_params(warm_start=False)
    if forest.n_estimators == before:
        return None
    result.config = dict(result.config or {}, n_estimators=int(forest.n_estimators))
    proba = result.learner.predict_raw(result.X_holdout)
    primary = result.metrics.get("primary")
    result.metrics = classification_metrics(result.y_holdout, proba, [str(v) for v in result.labels])
    result.metrics["primary"] = primary
    result.proba_holdout = proba
    result.feature_importance = feature_importance(result.learner, result.preprocessor.feature_names)
    return (f"The chosen forest was grown from {before} to {forest.n_estimators} trees (same settings and rows, "
            f"{time.monotonic() - start:.1f} s): "
            "a handful of trees is enough for a holdout cut from the training recordings, not for other ones.")


def _time_blocks(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Groups = (file, time block) so that one recording can give train and holdout parts without overlap."""
    parts = []
    for _, block in frame.groupby("file", sort=False):
        end, win = float(block["t1"].max()), float((block["t1"] - block["t0"]).max())
        n_blocks = max(2, min(N_BLOCKS, int(end // (2 * win))))  # a block holds at least two windows if it can
        length = end / n_blocks
        first = np.floor(block["t0"].to_numpy() / length).astype(int)
        last = np.floor((block["t1"].to_numpy() - 1e-9) / length).astype(int)
        keep = block[first == last].copy()
        keep["_group"] = keep["file"] + "#" + np.minimum(first[first == last], n_blocks - 1).astype(str)
        parts.append(keep)
    out = pd.concat(parts, ignore_index=True)
    return out, out.pop("_group").to_numpy()


def _anomaly(ws, ds, feats: pd.DataFrame, files: pd.DataFrame, *, budget, name, seed, progress, normal_label,
             max_false_alarm):
    from .automl.anomaly import fit_anomaly
    from .automl.engine import reserve_for
    from .evaluation.metrics import anomaly_metrics

    budget.reserve(reserve_for(budget.total))
    train_files = files
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
    from .modalities.signal.naming import machines_note

    pooled = machines_note(sorted(set(data["file"])), "This model was trained on")
    if pooled:
        notes.append(pooled)
    if not len(oof_a):
        notes.append("No abnormal recordings were given: the detection rate is unknown until some are labelled. "
                     "The threshold was set on held-out normal recordings for the chosen false-alarm rate.")
    with package_folder(ws) as folder:
        model.save(folder, "anomaly")
        np.savez_compressed(folder / "holdout.npz", y_true=y_true, scores=scores)
        files = list(info.get("oof_normal_files", [])) + list(info.get("oof_abnormal_files", []))
        if len(files) == len(scores):  # the recording behind each held-out score (the web's confusion cells)
            add_arrays(folder / "holdout.npz", {"file": np.asarray([str(f) for f in files])})
        manifest = {
            "modality": "signal", "task": "anomaly", "labels": ["normal", "anomaly"],
            "normal_label": normal_label, "threshold": float(model.threshold),
            "max_false_alarm": float(max_false_alarm), "aggregation": model.aggregation,
            "anomaly_model": "anomaly", "signal": signal_manifest_part(ds, train_files),
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

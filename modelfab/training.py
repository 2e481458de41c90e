"""``Workspace.train``: data version in, registered model version out.

Order: search within the budget, package (non-pickle files, manifest with
hashes, written last), load the package back and compare its predictions,
register (blobs first, row last), report.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .artifacts import library_versions, write_package
from .automl.budget import Budget, parse_duration
from .datasets import DatasetVersion, current_user
from .registry import check_name, register_package
from .storage.metadata import utcnow


def train(ws, dataset: "str | DatasetVersion", *, target: str | None, task: str, budget: float | str,
          metric: str | None, name: str | None, seed: int, progress=None, budget_clock=None,
          normal_label: str = "normal", max_false_alarm: float = 0.01, learners: tuple[str, ...] | None = None,
          ensemble: bool = True, executor=None, exclude: tuple[str, ...] = ()):
    seconds = parse_duration(budget)
    clock = budget_clock or Budget(seconds)
    ds = ws.dataset(dataset)
    name = check_name(name or ds.name)
    from .modalities import registry as modality_registry

    trainer = modality_registry.trainer(ds.kind)
    if trainer is not None and target and target != "label":
        from .errors import InvalidInput

        raise InvalidInput(f"--target names a column of a table; {ds.name!r} holds {ds.kind}, whose labels come from "
                           f"the import (got --target {target!r}).", hint="Leave out --target; choose --task instead.")
    if trainer is not None and exclude:
        from .errors import InvalidInput

        raise InvalidInput(f"--exclude leaves out columns of a table; {ds.name!r} holds {ds.kind}.",
                           hint="Leave out --exclude.")
    if trainer is not None:  # recordings, images, series, ...: see modalities/registry.py
        from .execution import require_local

        require_local(executor, f"Training on {ds.kind} data")
        model = trainer(ws, ds, target=target, task=task, budget=clock, metric=metric, name=name, seed=seed,
                        progress=progress, normal_label=normal_label, max_false_alarm=max_false_alarm)
    else:
        if not target:
            from .errors import InvalidInput

            raise InvalidInput("Training on a table needs --target COLUMN (the column to predict).")
        from .execution import open_executor

        with open_executor(executor) as ex:  # Ray starts lazily inside the search: its start-up counts
            model = _train_table(ws, ds, target=target, task=task, clock=clock, metric=metric, name=name, seed=seed,
                                 progress=progress, learners=learners, ensemble=ensemble, executor=ex,
                                 exclude=exclude)
    if clock.left() > 0.5:
        model.write_report()
    return model


def _train_table(ws, ds, *, target, task, clock, metric, name, seed, progress, learners, ensemble, executor=None,
                 exclude: tuple[str, ...] = ()):
    from .automl.engine import train_tabular

    df = ws.load_frame(ds)
    result = train_tabular(df, ds.schema, target=target, task=task, budget=clock, metric=metric, seed=seed,
                           progress=progress, learners=learners, ensemble=ensemble, executor=executor,
                           exclude=exclude)
    result.notes = [n.replace("models threshold MODEL ", f"models threshold {name} ") for n in result.notes]
    kinds = ds.column_kinds()
    with package_folder(ws) as folder:
        # which dataset rows form the holdout (the UI shows a confusion-matrix cell's rows from it)
        kept = np.flatnonzero(df[target].notna().to_numpy())
        learner_spec = write_learner(folder, result, extra_holdout={"row": kept[result.holdout_index].astype(np.int64)})
        manifest = base_manifest(ds, result, clock, seed, learner_spec, modality="tabular")
        manifest["target"] = target
        manifest.update(result.manifest_extra)  # e.g. "text": misclassified holdout examples for the report
        manifest["input_schema"]["ignored"] = [c["name"] for c in ds.schema["columns"] if c["name"] != target and (
            kinds.get(c["name"]) in ("id", "empty") or c["name"] in exclude)]
        return finish(ws, folder, manifest, result, name=name, ds=ds)


def resolve_normal_label(labels: set[str], normal_label: str) -> str:
    """The label of good items when the default 'normal' names none of the dataset's labels: its only label (a
    folder of good parts only), or its only label that reads as good (ok, good, pass, 合格, ...)."""
    if normal_label in labels or normal_label != "normal" or not labels:
        return normal_label
    if len(labels) == 1:
        return next(iter(labels))
    from .automl.engine import NORMAL_CLASS_NAMES

    good = sorted(lab for lab in labels if lab.strip().lower() in NORMAL_CLASS_NAMES)
    return good[0] if len(good) == 1 else normal_label


def choose_task(task: str, allowed: tuple[str, ...], what: str, labels: set[str], *, normal_label: str,
                max_false_alarm: float) -> str:
    """The task for a dataset of files (recordings, images): checked, and ``auto`` decided from the labels
    (none, only normal, or normal/abnormal: anomaly detection; anything else: classification)."""
    from .errors import InvalidInput

    if task not in allowed:
        raise InvalidInput(f"Task for {what} must be one of {', '.join(allowed)}; got {task!r}.")
    if not 0 < float(max_false_alarm) < 1:
        raise InvalidInput(f"--max-false-alarm must be a fraction strictly between 0 and 1 (e.g. 0.01: one false "
                           f"alarm in a hundred good items); got {max_false_alarm!r}.")
    if task == "auto":  # normal items and "abnormal" (or DCASE/MIMII's "anomaly") ones: a detector
        return "anomaly" if (not labels or labels <= {normal_label} or labels == {normal_label, "abnormal"}
                             or labels == {normal_label, "anomaly"}) else "classification"
    return task


@contextmanager
def package_folder(ws):
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        folder = Path(tmp) / "package"
        folder.mkdir()
        yield folder


def add_arrays(path, arrays: dict) -> None:
    """Add arrays to an .npz (np.savez cannot name one ``file``: that is its own first parameter)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(value), allow_pickle=False)
            z.writestr(f"{key}.npy", buf.getvalue())


def write_learner(folder: Path, result, extra_holdout: dict | None = None) -> dict:
    """Preprocessor, learner files and holdout arrays of a supervised result."""
    result.preprocessor.save(folder, "preprocess.json")  # JSON state (+ text models' vocabulary/weights files)
    model_file = result.learner.save(folder)
    spec = {"name": result.learner_name, "format": result.learner.format, "config": result.config}
    if result.learner.format == "ensemble":
        spec["members"] = result.learner.specs
    else:
        spec.update(file=model_file, classes=result.learner.classes)
    arrays = {"y_true": np.asarray(result.y_holdout)}
    if result.proba_holdout is not None:
        arrays["proba"] = np.asarray(result.proba_holdout, dtype=np.float64)
    if result.pred_holdout is not None:
        arrays["y_pred"] = np.asarray(result.pred_holdout, dtype=np.float64)
    arrays.update(extra_holdout or {})
    np.savez_compressed(folder / "holdout.npz", **arrays)
    return spec


def base_manifest(ds, result, clock: Budget, seed: int, learner_spec: dict, modality: str) -> dict:
    return {
        "modality": modality,
        "task": result.task,
        "labels": result.labels,
        "input_schema": {"columns": [{"name": c["name"], "kind": c["kind"]} for c in result.preprocessor.input_columns]},
        "preprocessor": "preprocess.json",
        "learner": learner_spec,
        "metrics": result.metrics,
        "metric": result.metric,
        "feature_importance": dict(list(result.feature_importance.items())[:50]),
        "leaderboard": result.leaderboard,
        "data": data_lineage(ds, n_train=result.n_train, n_holdout=result.n_holdout),
        "training": training_info(clock, seed, result.trials, result.notes, ensemble=result.ensemble),
    }


def data_lineage(ds, **extra) -> dict:
    return dict({"dataset": ds.name, "version": ds.version, "dataset_id": ds.id, "data_sha": ds.data_sha,
                 "content_sha": ds.content_sha}, **extra)


def training_info(clock: Budget, seed: int, trials: int, notes: list[str], **extra) -> dict:
    from .automl.search import LEARNERS

    return dict({"budget_s": clock.total, "elapsed_s": round(clock.elapsed(), 3), "seed": seed, "trials": trials,
                 "search_space": list(LEARNERS), "notes": notes}, **extra)


def finish(ws, folder: Path, manifest: dict, result=None, *, name: str, ds):
    """Stamp, write the manifest, check the package loads and agrees, register."""
    from .model import Model

    manifest.update(library_versions=library_versions(manifest.get("modality")), created_at=utcnow(), created_by=current_user())
    note = kind_change_note(ws.meta.list_models(name), manifest)
    if note:
        manifest.setdefault("training", {}).setdefault("notes", []).append(note)
    write_package(folder, manifest)
    if result is not None:
        check_loads(folder, result)
    row = register_package(ws.meta, ws.blobs, folder, name=name, dataset_id=ds.id, created_by=current_user())
    return Model(ws, row)


def kind_change_note(rows: list[dict], manifest: dict) -> str | None:
    """A note when this version of a name does another job than the version before it (a classifier, then an
    anomaly detector: `predict NAME` now answers with scores, not labels)."""
    if not rows:
        return None
    last = rows[-1]
    before = ((last.get("manifest") or {}).get("modality", "tabular"), last.get("task"))
    now = (manifest.get("modality", "tabular"), manifest.get("task"))
    if before == now:
        return None
    data = {"tabular": "tables", "signal": "recordings", "image": "images", "series": "time series"}
    what = lambda m, t: f"{'an' if t[:1] in 'aeiou' else 'a'} {t} model of {data.get(m, m)}"  # noqa: E731
    return (f"This version is {what(*now)}; {last['name']}:{last['version']} before it is {what(*before)}. "
            f"`predict {last['name']}` and its REST route now answer as this one does; give another --name to keep "
            "both.")


def check_loads(folder: Path, result) -> None:
    """Load the package as a user would and compare with what training saw."""
    from .errors import TrainingError
    from .predictor import load_predictor

    loaded = load_predictor(folder)
    expected = getattr(result, "check_raw", None)
    if expected is None:
        expected = result.proba_holdout if result.proba_holdout is not None else result.pred_holdout
    got = loaded.learner.predict_raw(result.X_holdout)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-6, equal_nan=True):
        raise TrainingError("The saved model does not reproduce the trained model's predictions; nothing was registered.",
                            hint="Please report this with --debug output.")

"""``Workspace.train``: data version in, registered model version out.

Order: search within the budget, package (non-pickle files, manifest with
hashes, written last), register (blobs first, row last), report.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from .artifacts import library_versions, write_package
from .automl.budget import Budget, parse_duration
from .datasets import DatasetVersion, current_user
from .registry import check_name, register_package
from .storage.metadata import utcnow


def train(ws, dataset: "str | DatasetVersion", *, target: str, task: str, budget: float | str, metric: str | None,
          name: str | None, seed: int, progress=None, budget_clock=None):
    from .automl.engine import train_tabular
    from .model import Model

    seconds = parse_duration(budget)
    clock = budget_clock or Budget(seconds)
    ds = ws.dataset(dataset)
    name = check_name(name or ds.name)
    df = ws.load_frame(ds)
    result = train_tabular(df, ds.schema, target=target, task=task, budget=clock, metric=metric, seed=seed,
                           progress=progress)
    kinds = ds.column_kinds()
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        folder = Path(tmp) / "package"
        folder.mkdir()
        (folder / "preprocess.json").write_text(json.dumps(result.preprocessor.to_dict(), indent=1), "utf-8")
        model_file = result.learner.save(folder)
        learner_spec = {"name": result.learner_name, "format": result.learner.format, "config": result.config}
        if result.learner.format == "ensemble":
            learner_spec["members"] = result.learner.specs
        else:
            learner_spec.update(file=model_file, classes=result.learner.classes)
        arrays = {"y_true": np.asarray(result.y_holdout)}
        if result.proba_holdout is not None:
            arrays["proba"] = np.asarray(result.proba_holdout, dtype=np.float64)
        if result.pred_holdout is not None:
            arrays["y_pred"] = np.asarray(result.pred_holdout, dtype=np.float64)
        np.savez_compressed(folder / "holdout.npz", **arrays)
        manifest = {
            "modality": "tabular",
            "task": result.task,
            "target": target,
            "labels": result.labels,
            "input_schema": {
                "columns": [{"name": c["name"], "kind": c["kind"]} for c in result.preprocessor.input_columns],
                "ignored": [c["name"] for c in ds.schema["columns"]
                            if c["name"] != target and kinds.get(c["name"]) in ("id", "empty")],
            },
            "preprocessor": "preprocess.json",
            "learner": learner_spec,
            "metrics": result.metrics,
            "metric": result.metric,
            "feature_importance": dict(list(result.feature_importance.items())[:50]),
            "leaderboard": result.leaderboard,
            "data": {"dataset": ds.name, "version": ds.version, "dataset_id": ds.id, "data_sha": ds.data_sha,
                     "content_sha": ds.content_sha, "n_train": result.n_train, "n_holdout": result.n_holdout},
            "training": {"budget_s": seconds, "elapsed_s": round(clock.elapsed(), 3), "seed": seed,
                         "trials": result.trials, "search_space": list_learners(), "notes": result.notes,
                         "ensemble": result.ensemble},
            "library_versions": library_versions(),
            "created_at": utcnow(),
            "created_by": current_user(),
        }
        write_package(folder, manifest)
        _check_loads(folder, result)
        row = register_package(ws.meta, ws.blobs, folder, name=name, dataset_id=ds.id, created_by=current_user())
    model = Model(ws, row)
    if clock.left() > 0.5:
        model.write_report()
    return model


def _check_loads(folder: Path, result) -> None:
    """Load the package as a user would and compare with what training saw."""
    from .errors import TrainingError
    from .predictor import load_predictor

    loaded = load_predictor(folder)
    expected = result.proba_holdout if result.proba_holdout is not None else result.pred_holdout
    got = loaded.learner.predict_raw(result.X_holdout)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-6, equal_nan=True):
        raise TrainingError("The saved model does not reproduce the trained model's predictions; nothing was registered.",
                            hint="Please report this with --debug output.")


def list_learners() -> list[str]:
    from .automl.search import LEARNERS

    return list(LEARNERS)

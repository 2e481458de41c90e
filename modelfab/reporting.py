"""Build the evaluation report of a registered model from its package alone."""

from __future__ import annotations

from pathlib import Path


def write_model_report(model, out_dir: Path) -> tuple[Path, Path]:
    from .evaluation.report import ReportInput, write_report

    m = model.manifest
    hold = model.holdout()
    data = m.get("data", {})
    training = m.get("training", {})
    labels = m.get("labels")
    inp = ReportInput(
        model=model.name, version=model.version, task=m["task"],
        dataset=data.get("dataset", "?"), dataset_version=data.get("version", 0),
        dataset_hash=data.get("data_sha", ""), budget_s=training.get("budget_s", 0.0),
        elapsed_s=training.get("elapsed_s", 0.0), metrics=m.get("metrics", {}),
        labels=[str(v) for v in labels] if labels else None,
        y_true=hold.get("y_true"), proba=hold.get("proba"), y_pred=hold.get("y_pred"),
        scores=hold.get("scores"), threshold=m.get("threshold"),
        feature_importance=m.get("feature_importance"), leaderboard=m.get("leaderboard"),
        chosen={"learner": m.get("learner", {}).get("name"), "config": m.get("learner", {}).get("config")},
        library_versions=m.get("library_versions"), notes=training.get("notes"), created_at=m.get("created_at"),
    )
    return write_report(inp, Path(out_dir))

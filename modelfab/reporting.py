"""Build the evaluation report of a registered model from its package (and, for
recordings, the dataset it was trained on: spectrograms of the worst cases)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np


def write_model_report(model, out_dir: Path) -> tuple[Path, Path]:
    from .evaluation.report import ReportInput, write_report

    m = model.manifest
    hold = model.holdout()
    data = m.get("data", {})
    training = m.get("training", {})
    labels = m.get("labels")
    notes = list(training.get("notes") or [])
    worst = None
    if m.get("modality") == "signal":
        if m["task"] == "anomaly":
            worst = _worst_cases(model)
        else:
            fa = m.get("metrics", {}).get("file_accuracy")
            if fa is not None:
                notes.insert(0, f"Per recording (mean of its windows' probabilities): {fa:.1%} of held-out recordings "
                                "classified correctly. The figures below count windows.")
    from .modalities import registry as modality_registry

    sections = None
    extra_sections = modality_registry.report_sections(m.get("modality", "tabular"))
    if extra_sections is not None:
        sections = extra_sections(model)
    inp = ReportInput(
        model=model.name, version=model.version, task=m["task"],
        dataset=data.get("dataset", "?"), dataset_version=data.get("version", 0),
        dataset_hash=data.get("content_sha") or data.get("data_sha", ""), budget_s=training.get("budget_s", 0.0),
        elapsed_s=training.get("elapsed_s", 0.0), metrics=m.get("metrics", {}),
        labels=[str(v) for v in labels] if labels and m["task"] != "anomaly" else None,
        y_true=hold.get("y_true"), proba=hold.get("proba"), y_pred=hold.get("y_pred"),
        scores=hold.get("scores"), threshold=m.get("threshold"),
        feature_importance=m.get("feature_importance"), leaderboard=m.get("leaderboard"),
        chosen={"learner": m.get("learner", {}).get("name"), "config": m.get("learner", {}).get("config")},
        library_versions=m.get("library_versions"), notes=notes, created_at=m.get("created_at"),
        worst_cases=worst, sections=sections,
        items={"image": "images", "series": "series", "signal": "windows"}.get(m.get("modality", "tabular"), "rows"),
    )
    return write_report(inp, Path(out_dir))


def _worst_cases(model, k: int = 4) -> list[dict] | None:
    """The highest-scoring recordings of the training data, with their deviating time ranges."""
    from .recordings import load_signal_tables, recording_blob

    ws = model.ws
    data = model.manifest.get("data", {})
    try:
        ds = ws.dataset(f"{data['dataset']}:{data['version']}")
    except Exception:  # the dataset may have been removed; the report still builds
        return None
    pred = model.predictor
    feats, _ = load_signal_tables(ws, ds)
    names = pred.feature_names
    scored = []
    for file, block in feats.groupby("file", sort=False):
        times = block[["t0", "t1"]].to_numpy()
        ex = pred.anomaly.explain(block[names].to_numpy(np.float64), times=times, top_windows=2, top_features=3)
        scored.append((ex["file_score"], file, ex))
    scored.sort(key=lambda t: -t[0])
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for score, file, ex in scored[:k]:
            src = recording_blob(ws, ds, file)
            copy = Path(tmp) / ("rec" + Path(file).suffix)
            shutil.copyfile(src, copy)
            rec = pred.read(copy, file)
            out.append({"file": file, "score": float(score), "samples": rec.samples, "sample_rate": rec.sample_rate,
                        "highlight": [(w["start_s"], w["end_s"]) for w in ex["top_windows"]]})
    return out

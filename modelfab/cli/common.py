"""Shared CLI pieces: options every command takes, output helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option("--workspace", "-w", envvar="MODELFAB_HOME", show_envvar=True,
                 help="Workspace folder (default: $MODELFAB_HOME, else the current folder)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts) instead of tables.")]

def _width(stream) -> int | None:
    # Piped output (logs, scripts) gets wide tables instead of Rich's 80-column default.
    return None if stream.isatty() or "COLUMNS" in __import__("os").environ else 160


console = Console(stderr=False, highlight=False, width=_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, width=_width(sys.stderr))


def open_ws(path: Optional[Path]):
    from ..workspace import Workspace

    return Workspace.open(path)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_default, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    return str(o)


def fmt_num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        text = f"{v:.{digits}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0000"
    return str(v)


def dataset_dict(ds) -> dict:
    return {"name": ds.name, "version": ds.version, "ref": ds.ref, "kind": ds.kind, "rows": ds.n_rows,
            "columns": ds.n_cols, "content_sha256": ds.content_sha, "data_sha256": ds.data_sha,
            "source": ds.source_name, "created_at": ds.created_at, "created_by": ds.created_by}


def model_dict(m, full: bool = False) -> dict:
    man = m.manifest
    d = {"model": m.name, "version": m.version, "ref": m.ref, "task": m.task, "stage": m.stage,
         "metric": man.get("metric"), "learner": man.get("learner", {}).get("name"),
         "dataset": f"{man.get('data', {}).get('dataset')}:{man.get('data', {}).get('version')}",
         "created_at": m.row["created_at"], "created_by": m.row["created_by"],
         "package_sha256": m.row["package_sha"], "metrics": _headline(m.metrics)}
    if full:
        d.update(metrics=m.metrics, leaderboard=man.get("leaderboard"), labels=man.get("labels"),
                 input_schema=man.get("input_schema"), target=man.get("target"),
                 training=man.get("training"), data=man.get("data"), learner_config=man.get("learner", {}).get("config"),
                 library_versions=man.get("library_versions"), feature_importance=man.get("feature_importance"))
    return d


HEADLINE = ("accuracy", "balanced_accuracy", "roc_auc", "f1_macro", "log_loss", "r2", "rmse", "mae", "auc", "pauc")


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in HEADLINE if k in metrics and metrics[k] is not None}


def add_row(table, *cells) -> None:
    """Add a table row of plain text: names like 'x [y]' are not Rich markup."""
    from rich.markup import escape

    table.add_row(*(escape(str(c)) for c in cells))

"""``modelfab train``, ``models``, ``report``, ``predict``."""

from __future__ import annotations

import contextlib

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import app
from .common import JsonOpt, WorkspaceOpt, console, emit_json, err_console, fmt_num, model_dict, open_ws, add_row

ExecutorOpt = Annotated[str, typer.Option("--executor", help="Where the work runs: local (this process), process "
                                          "(a local process pool) or ray (needs the ray extra of modelfab; see docs/execution.md).")]
RayAddressOpt = Annotated[Optional[str], typer.Option("--ray-address", help="With --executor ray: a running cluster "
                                                      "(HOST:6379, ray://HOST:10001 or auto); default: start a private "
                                                      "Ray on 127.0.0.1.")]

models_app = typer.Typer(help="Registered models: list, show.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@app.command("train")
def train_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset NAME or NAME:VERSION.")],
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict (tables).")] = None,
    task: Annotated[str, typer.Option("--task", help="auto | classification | regression (tables, series) | anomaly (recordings, images).")] = "auto",
    budget: Annotated[str, typer.Option("--budget", "-b", help="Wall-clock budget for the whole command: 60, 90s, 2m.")] = "60",
    metric: Annotated[Optional[str], typer.Option("--metric", help="Search metric, e.g. roc_auc, accuracy, log_loss, macro_f1, balanced_accuracy, r2, rmse, mae.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Model name (default: the dataset's name).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    normal_label: Annotated[str, typer.Option("--normal-label", help="Anomaly: the label of good recordings or images.")] = "normal",
    max_false_alarm: Annotated[float, typer.Option("--max-false-alarm", help="Anomaly: target false-alarm rate on held-out normal recordings or images.")] = 0.01,
    learners: Annotated[Optional[str], typer.Option("--learners", help="Comma-separated subset of lgbm,xgboost,xgb_limitdepth,rf,extra_tree,mlp (mlp: a small network fitted beside the boosters on large tables).")] = None,
    ensemble: Annotated[bool, typer.Option("--ensemble/--no-ensemble", help="Try an ensemble of the best learners.")] = True,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="Tables: input columns to leave out, comma-separated or the option repeated (e.g. one that copies the target; training notes name such columns).")] = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a model with AutoML within a wall-clock budget, register it and write its report."""
    from ..automl.budget import Budget, parse_duration
    from ..execution import get_executor

    seconds = parse_duration(budget)
    clock = Budget(seconds)
    runner = get_executor(executor, ray_address=ray_address)  # started lazily, inside the budget
    ws = open_ws(workspace)
    show = not json_out
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(bar_width=24),
        TextColumn("{task.fields[spent]:>4.0f}s spent, {task.fields[left]:>4.0f}s left"),
        TextColumn("{task.fields[trials]}"), TextColumn("{task.fields[best]}"), console=err_console,
        transient=False, disable=not show,
    )
    with progress, runner:
        bar = progress.add_task("training", total=seconds, left=seconds, spent=0.0, trials="", best="")

        def on_progress(p) -> None:  # fitted models (anomaly) report no trials: nothing is shown for them
            best = (f"best {p.metric} {p.best_score:.4f}" + (f" ({p.best_learner})" if p.best_learner else "")
                    if p.best_score is not None else "")
            progress.update(bar, completed=min(seconds, p.elapsed_s), left=p.left_s, spent=p.elapsed_s,
                            trials=f"trials {p.trials}" if p.trials else "", best=best,
                            description=(p.message or "training")[:36])

        model = ws.train(dataset, target=target, task=task, budget=seconds, metric=metric, name=name, seed=seed,
                         normal_label=normal_label, max_false_alarm=max_false_alarm,
                         learners=tuple(x.strip() for x in learners.split(",") if x.strip()) if learners else None,
                         ensemble=ensemble, progress=on_progress, budget_clock=clock, executor=runner,
                         exclude=tuple(x.strip() for e in exclude or () for x in e.split(",") if x.strip()))
        progress.update(bar, completed=seconds, left=clock.left(), spent=clock.elapsed(), description="trained")
    elapsed = clock.elapsed()
    report = ws.root / "reports" / f"{model.name}-v{model.version}" / "report.html"
    if json_out:
        emit_json(dict(model_dict(model), metrics=model.metrics, budget_s=seconds, elapsed_s=round(elapsed, 3),
                       report=str(report) if report.exists() else None,
                       notes=list(model.manifest.get("training", {}).get("notes", []))))
        return
    console.print(f"Registered [bold]{model.ref}[/] ({model.task}, {model.manifest['learner']['name']}) "
                  f"in {elapsed:.1f}s of a {seconds:.0f}s budget")
    _metrics_table(model.metrics)
    for note in model.manifest.get("training", {}).get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
    if report.exists():
        console.print(f"Report: {report}")
    else:
        console.print(f"Report: not written, the budget was used up (make it with: modelfab report {model.ref})")
    console.print(f"Serve it: [cyan]modelfab serve {model.name}[/]")


def _metrics_table(metrics: dict) -> None:
    t = Table(title="Holdout metrics")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            add_row(t, k, fmt_num(v))
    console.print(t)
    n, acc = metrics.get("n"), metrics.get("accuracy")
    if isinstance(n, int) and isinstance(acc, (int, float)) and 0 < n < 1000:  # as the report says it
        from ..evaluation.metrics import wilson_interval

        lo, hi = wilson_interval(round(acc * n), n)
        console.print(f"accuracy on {n:,} held-out items: {acc:.1%}; on new items likely between {lo:.0%} and "
                      f"{hi:.0%} (95 % range)")


@models_app.command("list")
def models_list(workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """List model versions with their main holdout metric."""
    ws = open_ws(workspace)
    items = ws.models()
    aliases: dict[int, list[str]] = {}
    for a in ws.meta.list_aliases():
        aliases.setdefault(a["model_id"], []).append(a["alias"])
    if json_out:
        emit_json({"models": [dict(model_dict(m), aliases=aliases.get(m.row["id"], [])) for m in items]})
        return
    if not items:
        console.print("No models yet. Train one: [cyan]modelfab train DATASET --target COLUMN[/]")
        return
    t = Table(title="Models")
    for col in ("model", "version", "task", "learner", "metric", "holdout", "dataset", "stage", "aliases", "created"):
        t.add_column(col)
    for m in items:
        d = model_dict(m)
        metric = d["metric"]
        val = m.metrics.get(metric) if metric in m.metrics else next(iter(d["metrics"].values()), None)
        add_row(t, m.name, str(m.version), m.task, str(d["learner"]), str(metric), fmt_num(val), d["dataset"], m.stage,
                  ", ".join(aliases.get(m.row["id"], [])), m.row["created_at"])
    console.print(t)


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="NAME (latest), NAME:VERSION or NAME@ALIAS.")],
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Leaderboard, chosen model, holdout metrics, data version, library versions."""
    ws = open_ws(workspace)
    m = ws.model(model)
    d = dict(model_dict(m, full=True), aliases=m.aliases)
    if json_out:
        emit_json(d)
        return
    data = d["data"] or {}
    if m.manifest.get("modality") == "signal":
        sig = m.manifest.get("signal", {})
        what = (f"{data.get('n_normal_files')} normal / {data.get('n_abnormal_files')} abnormal recordings"
                if m.task == "anomaly" else f"{data.get('n_train')} train / {data.get('n_holdout')} holdout windows")
        console.print(f"{m.ref}  task {m.task} on recordings ({sig.get('sample_rate')} Hz), trained on {d['dataset']} "
                      f"({what}), stage {m.stage}", markup=False)
        if m.task == "anomaly":
            console.print(f"threshold {m.manifest.get('threshold'):.4g} for max false alarm "
                          f"{m.manifest.get('max_false_alarm')}, file score = {m.manifest.get('aggregation')} of windows",
                          markup=False)
    elif m.manifest.get("modality") == "image" and m.task == "anomaly":
        console.print(f"{m.ref}  task anomaly on images, trained on {d['dataset']} ({data.get('n_normal_files')} "
                      f"good images fitted; {data.get('n_abnormal_files')} defective images only measured it), "
                      f"stage {m.stage}", markup=False)
        console.print(f"threshold {m.manifest.get('threshold'):.4g} for max false alarm "
                      f"{m.manifest.get('max_false_alarm')} (flagged: score above it)", markup=False)
    else:
        what = "images" if m.manifest.get("modality") == "image" else (
            "series" if m.manifest.get("modality") == "series" else "rows")
        target = "" if m.manifest.get("modality") in ("image", "series") else f", target {d['target']!r}"
        console.print(f"{m.ref}  task {m.task}{target}, trained on {d['dataset']} "
                      f"({data.get('n_train')} train / {data.get('n_holdout')} holdout {what}), stage {m.stage}",
                      markup=False)
    if d["aliases"]:
        console.print("aliases: " + ", ".join(f"{m.name}@{a}" for a in d["aliases"]), markup=False)
    console.print(f"chosen: {d['learner']} {d['learner_config']}", markup=False)
    if d["leaderboard"]:  # anomaly models of images are fitted, not searched: no leaderboard
        lb = Table(title="Leaderboard (validation during search)")
        for col in ("learner", "metric", "score", "validation"):
            lb.add_column(col)
        for r in d["leaderboard"]:
            add_row(lb, r["learner"], r["metric"], fmt_num(r["score"]), r.get("validation") or r.get("aggregation") or "")
        console.print(lb)
    _metrics_table(m.metrics)
    tr = d["training"] or {}
    trials = f", trials {tr.get('trials')}" if d["leaderboard"] else ""
    console.print(f"budget {tr.get('budget_s')}s, elapsed {tr.get('elapsed_s')}s{trials}, seed {tr.get('seed')}")
    console.print("inputs: " + ", ".join(f"{c['name']} ({c['kind']})" for c in d["input_schema"]["columns"]), markup=False)
    console.print("libraries: " + ", ".join(f"{k} {v}" for k, v in (d["library_versions"] or {}).items()), markup=False)


@models_app.command("threshold")
def models_threshold(
    model: Annotated[str, typer.Argument(help="An anomaly model or a two-class classifier of a table: NAME (latest) or NAME:VERSION.")],
    max_false_alarm: Annotated[Optional[float], typer.Option("--max-false-alarm", help=(
        "Anomaly: re-set the threshold for this false-alarm rate on held-out normal items. Two-class classifier: "
        "the lowest threshold that flags at most this share (0.01 = 1 in 100) of the held-out rows of the first "
        "label as the second label."))] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help=(
        "Anomaly: this score threshold. Two-class classifier: a row is predicted as the second label "
        "(labels[1], e.g. 'defect') when its probability is >= this value (0..1; 0.5 is the default)."))] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Move an anomaly model's or a two-class classifier's threshold without retraining (registers a new version)."""
    ws = open_ws(workspace)
    m = ws.model(model)
    new = m.with_threshold(threshold=threshold, max_false_alarm=max_false_alarm)
    key = "threshold" if new.task == "anomaly" else "decision_threshold"
    unchanged = new.ref == m.ref
    if json_out:
        emit_json(dict(model_dict(new), threshold=new.manifest.get(key, 0.5), derived_from=None if unchanged else m.ref,
                       unchanged=unchanged))
        return
    if unchanged:
        console.print(f"{m.ref} already has threshold {new.manifest.get(key, 0.5):.4g}: nothing registered.")
        return
    if new.task == "anomaly":
        expected = new.metrics.get("expected_false_alarm")
        console.print(f"Registered [bold]{new.ref}[/] from {m.ref}: threshold {m.manifest.get('threshold'):.4g} -> "
                      f"{new.manifest['threshold']:.4g} (expected false alarms {expected})")
        if isinstance(expected, (int, float)) and expected >= 0.5:
            err_console.print(f"[yellow]warning[/] this threshold flags {expected:.0%} of the held-out normal items: "
                              f"most good parts would be called defective. {m.ref} is unchanged; promote "
                              f"{new.ref} only if that is meant.", highlight=False)
        return
    labels = [str(v) for v in new.manifest.get("labels") or []]
    pc = new.metrics.get("per_class") or {}
    fa, miss = (_miss_share(pc.get(lab)) for lab in labels)
    old = m.manifest.get("decision_threshold")
    console.print(f"Registered {new.ref} from {m.ref}: {labels[1]!r} when its probability >= "
                  f"{new.manifest['decision_threshold']:.4g} (was {0.5 if old is None else old:.4g}). On held-out rows: "
                  f"{_pct(fa)} of {labels[0]!r} flagged as {labels[1]!r}, {_pct(miss)} of {labels[1]!r} missed.",
                  markup=False)


def _miss_share(per_class: dict | None) -> float | None:
    recall = (per_class or {}).get("recall")
    return None if recall is None else 1.0 - recall


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


@app.command("report")
def report_cmd(
    model: Annotated[str, typer.Argument(help="NAME (latest) or NAME:VERSION.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for report.html and report.json, or a file "
                                                "name ending in .html (the JSON is written beside it).")] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write the self-contained HTML (and JSON) evaluation report of a model."""
    ws = open_ws(workspace)
    m = ws.model(model)
    html, js = m.write_report(out)
    if json_out:
        emit_json({"model": m.name, "version": m.version, "html": str(html), "json": str(js)})
        return
    console.print(f"Report of {m.ref}: {html}")


@app.command("predict")
def predict_cmd(
    model: Annotated[str, typer.Argument(help="NAME (latest), NAME:VERSION or NAME@ALIAS.")],
    paths: Annotated[list[Path], typer.Argument(help="Input file(s): CSV/Parquet/Excel for table and text models; files or folders of recordings or images; .ts or CSV/Parquet series files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (.csv, .parquet, or .xlsx for Excel).")],
    sheet: Annotated[Optional[str], typer.Option("--sheet", help="Excel input: the sheet to read (default: the one with the most cells).")] = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Batch prediction with probabilities, in chunks so memory stays bounded."""
    from ..batch import predict_table_file
    from ..errors import InvalidInput
    from ..execution import get_executor, require_local

    runner = get_executor(executor, ray_address=ray_address)
    ws = open_ws(workspace)
    m = ws.model(model)
    if m.manifest.get("modality", "tabular") != "tabular":
        from ..modalities import registry

        require_local(runner, f"Batch prediction of {m.manifest['modality']} models")
        if sheet is not None and m.manifest["modality"] != "series":
            raise InvalidInput(f"--sheet picks the sheet of an Excel table; {m.ref} is a model of "
                               f"{m.manifest['modality']} data.", hint="Leave out --sheet.")
        from ..modalities.series.tables import reading_sheet

        runner = registry.batch_predictor(m.manifest["modality"])
        # a long recording or a folder of big images can take minutes: show that it is working
        with err_console.status(f"predicting {m.manifest['modality']} with {m.ref} ...", spinner="dots") \
                if not json_out else contextlib.nullcontext(), reading_sheet(sheet):
            result = runner(ws, m, paths, out)
    else:
        if len(paths) != 1:
            raise InvalidInput(f"A table model predicts one file at a time; got {len(paths)} paths.")
        t0 = time.monotonic()
        with Progress(TextColumn("predicting"), BarColumn(), TextColumn("{task.fields[rows]:,} rows"),
                      TimeElapsedColumn(), console=err_console, disable=json_out) as prog:
            bar = prog.add_task("predict", total=None, rows=0)

            def on_chunk(rows: int, _total: int) -> None:
                prog.update(bar, rows=rows)

            with runner:
                result = predict_table_file(m, paths[0], out, settings=ws.settings, progress=on_chunk,
                                            executor=runner, sheet=sheet)
            prog.update(bar, total=1.0, completed=1.0)
        result["elapsed_s"] = round(time.monotonic() - t0, 3)
    if json_out:
        emit_json(result)
        return
    bad = int(result.get("files_with_errors") or 0)
    if bad:
        err_console.print(f"[yellow]{bad:,} of {result['rows']:,} files could not be predicted[/] (see the error "
                          "column), e.g.: " + escape("; ".join(result.get("first_errors", []))), highlight=False)
    for key, examples, what in (
            ("series_with_errors", "first_errors", "could not be predicted (see the error column)"),
            ("series_with_warnings", "first_warnings",
             "are far shorter or longer than the training series (see the warning column)")):
        if result.get(key):
            err_console.print(f"[yellow]{result[key]:,} of {result['rows']:,} series {what}[/], e.g.: "
                              + escape("; ".join(result.get(examples, []))), highlight=False)
    for note in result.get("notes", []):
        err_console.print(f"note: {note}", markup=False, highlight=False)
    if bad and bad == result["rows"]:
        raise InvalidInput(f"No file could be predicted by {m.ref}; the errors are in {result['output']}.",
                           hint="Check that the files are the kind of data the model was trained on.")
    console.print(f"Wrote {result['rows']:,} predictions of {m.ref} to {result['output']}")


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[str, typer.Argument(help="NAME (latest), NAME:VERSION or NAME@ALIAS.")],
    path: Annotated[Path, typer.Argument(help="Labelled data the model did not see: a table with the target column "
                                              "filled in, a folder or zip of images or recordings in class folders, "
                                              "a series file with its labels.")],
    label_column: Annotated[Optional[str], typer.Option("--label-column", help="Tables and series tables: the column of true values (default: the model's target / label column).")] = None,
    normal_label: Annotated[Optional[str], typer.Option("--normal-label", help="Anomaly models: the folder (label) of the good items (default: the model's normal label, else the one that reads as good: good, ok, 合格, ...).")] = None,
    workspace: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Measure a model on new labelled data: accuracy and confusion matrix, error measures, or detection and
    false-alarm rates at its threshold."""
    from ..evaluation.new_data import evaluate_on

    ws = open_ws(workspace)
    m = ws.model(model)
    with err_console.status(f"evaluating {m.ref} on {path.name} ...", spinner="dots") \
            if not json_out else contextlib.nullcontext():
        res = evaluate_on(m, path, label_column=label_column, normal_label=normal_label)
    if json_out:
        emit_json(res)
        return
    met = res["metrics"]
    console.print(f"[bold]{m.ref}[/] on {escape(str(path))}: {res['n']:,} labelled item(s)")
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    keys = {"classification": ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"),
            "regression": ("mae", "rmse", "r2"),
            "anomaly": ("auc", "pauc", "recall", "false_alarm_rate", "precision", "threshold")}[res["task"]]
    for k in keys:
        if met.get(k) is not None:
            table.add_row(k, fmt_num(met[k]))
    console.print(table)
    cm, labels = met.get("confusion_matrix"), met.get("labels")
    if cm and labels:
        grid = Table(title="confusion matrix (rows: true, columns: predicted)", show_header=True)
        grid.add_column("")
        for lab in labels:
            grid.add_column(escape(str(lab)), justify="right")
        for lab, row in zip(labels, cm):
            grid.add_row(escape(str(lab)), *[str(v) for v in row])
        console.print(grid)
    for note in res["notes"]:
        err_console.print(f"note: {note}", markup=False, highlight=False)

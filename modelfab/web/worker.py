"""A job's worker process: ``python -m modelfab.web.worker WORKSPACE JOB_ID``.

Reads the job's parameters from its row, does the work through the Python
API, and writes progress, result or error back to the row.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from pathlib import Path

from ..errors import Cancelled, ModelfabError


class Reporter:
    """Progress callback: throttled writes to the job row, and the cancel check."""

    def __init__(self, ws, job_id: int, budget_s: float | None = None) -> None:
        self.ws, self.job_id, self.budget_s = ws, job_id, budget_s
        self.last_write = 0.0
        self.last_check = 0.0
        self.cancelled = False
        self.live: dict = {}
        self.lock = threading.Lock()
        self.exit_timer: threading.Timer | None = None
        self.board = None  # a leaderboard.LiveBoard while a training runs

    def check_cancel(self) -> None:
        if self.cancelled or self.ws.meta.get_job(self.job_id)["state"] == "cancelling":
            self.cancelled = True
            raise Cancelled("The job was cancelled; nothing was registered.")

    def _cancel_from_any_thread(self) -> None:
        try:
            self.check_cancel()
        except Cancelled:
            if threading.current_thread() is threading.main_thread():
                raise
            # The search reports from a watcher thread: interrupt the main thread. Libraries may
            # swallow one interrupt (XGBoost's ctypes callbacks do), so the watcher stays alive and
            # sends it again on every tick; a process that still runs after 8 s exits hard
            # (a killed worker never leaves a half-registered model: blobs first, row last).
            import _thread
            import os

            _thread.interrupt_main()
            if self.exit_timer is None:
                self.exit_timer = threading.Timer(8.0, lambda: os._exit(3))
                self.exit_timer.daemon = True
                self.exit_timer.start()

    def __call__(self, p) -> None:
        get = (lambda k, d=None: p.get(k, d)) if isinstance(p, dict) else (lambda k, d=None: getattr(p, k, d))
        now = time.monotonic()
        with self.lock:
            self.live = {"elapsed_s": round(float(get("elapsed_s", 0.0) or 0.0), 1),
                         "left_s": round(max(0.0, float(get("left_s", 0.0) or 0.0)), 1),
                         "trials": int(get("trials", 0) or 0), "best_score": get("best_score"),
                         "best_learner": get("best_learner"), "metric": get("metric"),
                         "message": get("message", "") or "", "searched": bool(get("searched", True))}
            if self.board is not None:
                live = self.live
                self.board.update(elapsed_s=live["elapsed_s"], trials=live["trials"], best_score=live["best_score"],
                                  best_learner=live["best_learner"], metric=live["metric"], message=live["message"])
                self.live["leaderboard"] = self.board.rows()
            write = now - self.last_write >= 0.5
            if write:
                self.last_write = now
        if write:
            total = self.budget_s or (self.live["elapsed_s"] + self.live["left_s"]) or 1.0
            self.ws.meta.update_job(self.job_id, progress=min(0.99, self.live["elapsed_s"] / total),
                                    message=self.live["message"] or "running", result={"live": self.live})
        if self.cancelled or now - self.last_check >= 0.5:
            self.last_check = now
            self._cancel_from_any_thread()

    def files(self, i: int, n: int, rel: str, message: str = "importing", progress: float | None = None) -> None:
        """Import progress: file i of n (``progress``: the share of the whole job, when it is not i / n)."""
        now = time.monotonic()
        if now - self.last_write >= 0.5 or i == n:
            self.last_write = now
            share = progress if progress is not None else ((i / n) if n else 0.0)
            self.ws.meta.update_job(self.job_id, progress=share, message=message,
                                    result={"live": {"files_done": i, "files_total": n}})
            self.check_cancel()


def _guard_registration(reporter: Reporter) -> None:
    """Check the cancel flag once more right before a model version is registered."""
    from .. import training

    real = getattr(training, "register_package", None)
    if real is None:  # pragma: no cover - the training module changed; the callback check still applies
        return

    def guarded(*args, **kwargs):
        reporter.check_cancel()
        return real(*args, **kwargs)

    training.register_package = guarded


def _two_passes(reporter: "Reporter"):
    """The image import's progress counts every image twice (checked, then read: ``n`` is twice the images):
    the job shows images, 'checking' then 'importing', so 40 images read 40 / 40, not 80 / 80."""
    def report(i: int, n: int, rel: str) -> None:
        half = max(1, n // 2)
        if i < half:
            reporter.files(i, half, rel, message="checking", progress=i / n if n else 0.0)
        else:
            reporter.files(min(i - half, half) if i < n else half, half, rel, progress=i / n if n else 0.0)
    return report


def run_train(ws, job_id: int, params: dict, reporter: Reporter) -> dict:
    from ..automl.budget import Budget, parse_duration

    import tempfile

    from .leaderboard import LiveBoard

    seconds = parse_duration(params.get("budget", 60))
    reporter.budget_s = seconds
    clock = Budget(seconds)
    _guard_registration(reporter)
    reporter.check_cancel()
    # The search keeps its trial log in a temporary folder: put that folder where the live leaderboard
    # can read it (this process only runs this job).
    scratch = ws.tmp_dir / "web-jobs" / f"{int(job_id)}.scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(scratch)
    reporter.board = LiveBoard(scratch)
    try:
        model = _train(ws, params, reporter, seconds, clock)
    finally:
        tempfile.tempdir = None
        _remove_scratch(scratch)
    board = (model.manifest or {}).get("leaderboard") or []
    # the job's final elapsed time is the model's "time used" (its own clock), so that the two pages agree
    used = ((model.manifest or {}).get("training") or {}).get("elapsed_s")
    elapsed = used if isinstance(used, (int, float)) else round(clock.elapsed(), 1)
    return {"model": model.ref, "name": model.name, "version": model.version, "task": model.task,
            "elapsed_s": elapsed, "live": dict(reporter.live or {}, elapsed_s=elapsed),
            "final_board": _final_board(board)}


def _remove_scratch(scratch) -> None:
    """Remove the job's temp folder; helper processes of the search may still be deleting their own
    files in it, so retry briefly instead of leaving a half-removed folder behind."""
    import shutil
    import time

    import atexit

    # A trial FLAML cancelled at the deadline may still be finishing in a thread and write there:
    # try now, and once more when the worker process exits.
    atexit.register(shutil.rmtree, scratch, True)
    for _ in range(20):
        shutil.rmtree(scratch, ignore_errors=True)
        if not scratch.exists():
            return
        time.sleep(0.25)


def _final_board(board: list) -> list[dict]:
    """The leaderboard the model's manifest keeps, trimmed for the job page."""
    rows = []
    for r in board[:15]:
        if not isinstance(r, dict):
            continue
        name = r.get("learner") or r.get("detector") or ""
        score = r.get("score", r.get("cv_score"))
        rows.append({"learner": str(name)[:80], "score": score if isinstance(score, (int, float)) else None,
                     "detail": str(r.get("aggregation") or r.get("validation") or r.get("status") or "")[:60],
                     "selected": bool(r.get("selected"))})
    return rows


def _train(ws, params: dict, reporter: Reporter, seconds: float, clock):
    return ws.train(params["dataset"], target=params.get("target") or None, task=params.get("task") or "auto",
                     budget=seconds, metric=params.get("metric") or None, name=params.get("name") or None,
                     normal_label=params.get("normal_label") or "normal",
                     max_false_alarm=float(params.get("max_false_alarm") or 0.01),
                     progress=reporter, budget_clock=clock)


def run_import(ws, job_id: int, params: dict, reporter: Reporter) -> dict:
    from .config import WebSettings
    from .uploads import ZipLimits, extract_zip, upload_dir, upload_file_name
    from .views import SERIES_SUFFIXES

    cfg = WebSettings.from_env(ws.settings)
    source = params["source"]
    try:
        if source == "folder":
            res = _import_folder(ws, Path(params["path"]), params.get("name") or None, params, reporter)
        else:
            folder = upload_dir(ws, params["upload"])
            upload = folder / "f000"
            if source == "table":
                # the uploaded file's name, reduced to letters, digits, '_', '-' and '.' (so that the dataset's
                # source reads as what the person uploaded), else the checked dataset name
                path = folder / upload_file_name(params.get("filename"), params["name"], params["suffix"])
                upload.rename(path)
                if params["suffix"] in SERIES_SUFFIXES:  # a UCR/UEA time-series archive file
                    res = ws.import_series(path, params["name"])
                elif params.get("series"):  # a table of time series (the preview's "these are time series")
                    opts = params["series"]
                    res = ws.import_series(path, params["name"], id_column=opts.get("id_column"),
                                           time_column=opts.get("time_column"),
                                           label_column=opts.get("label_column"))
                elif params.get("kinds"):  # column kinds corrected in the preview
                    from ..datasets import import_table

                    res = import_table(ws, path, params["name"], kinds=params["kinds"])
                else:
                    res = ws.import_table(path, name=params["name"])
            else:
                dest = folder / "zip" / params["name"]  # a checked dataset name, never the uploaded file's name
                limits = ZipLimits(cfg.max_zip_entries, cfg.max_unzipped_bytes, cfg.max_zip_ratio)
                extract_zip(upload, dest, limits)
                upload.unlink()
                root = dest
                entries = [p for p in root.iterdir()]
                while len(entries) == 1 and entries[0].is_dir() and any(q.is_dir() for q in entries[0].iterdir()):
                    root = entries[0]  # one wrapping folder (fan.zip -> fan/normal, fan/abnormal)
                    entries = list(root.iterdir())
                res = _import_folder(ws, root, params["name"], params, reporter)
    finally:
        if source != "folder":
            import shutil

            shutil.rmtree(upload_dir(ws, params["upload"]), ignore_errors=True)
    ds = res.dataset
    out = {"dataset": ds.ref, "name": ds.name, "version": ds.version, "created": res.created, "kind": ds.kind}
    if params.get("target"):
        out["target"] = params["target"]
    return out


def _import_folder(ws, root: Path, name: str | None, params: dict, reporter: Reporter):
    """A folder of images or of recordings (told apart as `modelfab data import --kind auto` does)."""
    from ..modalities.registry import detect_kind

    labels, skip_bad = params.get("labels") or "folder", bool(params.get("skip_bad"))
    if detect_kind(root) == "images":
        return ws.import_images(root, name, labels=labels, skip_bad=skip_bad, progress=_two_passes(reporter))
    return ws.import_recordings(root, name, labels=labels, skip_bad=skip_bad, progress=reporter.files)


def run_relabel(ws, job_id: int, params: dict, reporter: Reporter) -> dict:
    """A new version of a dataset (recordings, images, series or a table) with the labels of the labels layer
    applied. Items keep their names (rows their positions): the layer carries over to the new version, so
    labelling goes on there."""
    from ..images import relabel_images
    from ..series import relabel_series
    from .store import CARRIED, WebStore

    ds = ws.dataset(params["dataset"])
    store = WebStore(ws.meta)
    layer = store.current_labels(ds.id)
    if ds.kind == "table":
        res = _relabel_table(ws, ds, layer)
    elif ds.kind == "image":  # the images, masks and boxes stay the same blobs, nothing is read again
        res = relabel_images(ws, ds, dict(layer))
    elif ds.kind == "series":  # the values stay the same blob
        res = relabel_series(ws, ds, dict(layer))
    else:
        res = _relabel_recordings(ws, ds, layer, reporter)
    new = res.dataset
    if res.created:
        for item, label in layer.items():
            store.add_label(new.id, item, label, params.get("user", "ui") + CARRIED)
    return {"dataset": new.ref, "name": new.name, "version": new.version, "created": res.created, "kind": new.kind}


def _relabel_recordings(ws, ds, layer: dict, reporter: Reporter):
    """The recordings imported again with a labels file (their features are recomputed)."""
    import csv
    import shutil
    import tempfile

    from ..recordings import load_signal_tables, recording_blob

    _, files = load_signal_tables(ws, ds)
    opts = ds.options or {}
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        root = Path(tmp) / ds.name
        root.mkdir()
        labels_csv = Path(tmp) / "labels.csv"
        with open(labels_csv, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "label"])
            for i, rel in enumerate(files["file"]):
                target = root.joinpath(*rel.split("/"))
                if not target.resolve().is_relative_to(root.resolve()):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(recording_blob(ws, ds, rel), target)
                label = layer[rel] if rel in layer else files["label"].iloc[i]
                if label is not None and label == label and str(label) != "":
                    w.writerow([rel, str(label)])
        return ws.import_recordings(root, ds.name, labels=str(labels_csv), channel=opts.get("channel"),
                                    sample_rate=opts.get("sample_rate"), variable=opts.get("variable"),
                                    window_s=opts.get("window_s"), hop_s=opts.get("hop_s"), progress=reporter.files)


def _relabel_table(ws, ds, layer: dict):
    """The table with the labels layer's values ("ROW:COLUMN" items) written into its columns."""
    import tempfile

    df = ws.load_frame(ds)
    changes: dict[str, dict[int, object]] = {}
    for item, label in layer.items():
        row, _, column = item.partition(":")
        if row.isdigit() and column in df.columns and int(row) < len(df):
            changes.setdefault(column, {})[int(row)] = label
    for column, values in changes.items():
        col = df[column].astype(object)
        for row, label in values.items():
            col.iat[row] = label
        # labels are names: the labelled column is written as text (missing stays missing)
        df[column] = col.map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v))
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        path = Path(tmp) / f"{ds.name}.parquet"
        df.to_parquet(path, index=False)
        return ws.import_table(path, name=ds.name)


def run_threshold(ws, job_id: int, params: dict, reporter: Reporter) -> dict:
    """A new version of an anomaly model or a two-class table classifier with another threshold (no retraining)."""
    model = ws.model(params["model"]).with_threshold(threshold=float(params["threshold"]))
    return {"model": model.ref, "name": model.name, "version": model.version, "task": model.task}


RUNNERS = {"train": run_train, "import": run_import, "relabel": run_relabel, "threshold": run_threshold}


def main(argv: list[str]) -> int:
    from ..workspace import Workspace

    root, job_id = argv[0], int(argv[1])
    ws = Workspace.open(root)
    job = ws.meta.get_job(job_id)
    reporter = Reporter(ws, job_id)
    if job["state"] != "queued":
        return 0
    ws.meta.update_job(job_id, state="running", message="starting")
    try:
        runner = RUNNERS[job["kind"]]
        result = runner(ws, job_id, job["params"], reporter)
    except (Cancelled, KeyboardInterrupt):
        ws.meta.update_job(job_id, state="cancelled", message="cancelled")
        return 0
    except ModelfabError as exc:
        if reporter.cancelled:
            ws.meta.update_job(job_id, state="cancelled", message="cancelled")
            return 0
        ws.meta.update_job(job_id, state="failed", message="failed", error=str(exc))
        return 1
    except Exception as exc:  # an internal error: the traceback goes to the job log
        traceback.print_exc()
        ws.meta.update_job(job_id, state="failed", message="failed",
                           error=f"internal error: {type(exc).__name__}: {exc}")
        return 1
    ws.meta.update_job(job_id, state="done", progress=1.0, message="done", result=result)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

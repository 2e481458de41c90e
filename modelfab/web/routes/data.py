"""Home, import, dataset pages and their media (thumbnails, audio)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInput, NotFound
from ..jobs import ACTIVE
from ..site import Site
from ..kinds import (LARGE_IMAGE_PX, LARGE_SERIES_PX, SERIES_THUMB_PX, THUMB_PX, image_thumb, image_view,
                     series_thumb, series_view)
from ..uploads import ZipLimits, check_table_upload, check_zip, safe_suffix
from ...modalities.tabular import KINDS
from ..views import (PAGE, SERIES_SUFFIXES, TABLE_SUFFIXES, _check_ds_name, _default_name, _job_view, _latest_by_name, _model_view,
                     _signal_view, _table_view)

CACHE_A_DAY = {"Cache-Control": "private, max-age=86400"}  # thumbnails and audio never change for a version


def router(site: Site) -> APIRouter:
    r = APIRouter()
    ws, store, runner, cfg, t_of = site.ws, site.store, site.runner, site.cfg, site.t_of

    # -- home --------------------------------------------------------------------
    @r.get("/", response_class=HTMLResponse)
    def home(request: Request):
        datasets = _latest_by_name(ws.datasets())
        models = _latest_by_name(ws.models())
        jobs = [_job_view(runner.get(j["id"]) if j["state"] in ACTIVE else j) for j in ws.meta.list_jobs(limit=10)]
        return site.render(request, "home.html", nav="home", datasets=datasets, models=[_model_view(m) for m in models],
                           deployments=site.deployments.list(),
                           jobs=jobs)

    # -- import ------------------------------------------------------------------
    @r.get("/import", response_class=HTMLResponse)
    def import_page(request: Request):
        site.require(request, "labeler")
        from ..uploads import list_folders

        return site.render(request, "import.html", nav="import", folders=list_folders(cfg.import_root),
                           import_root=cfg.import_root is not None, max_mib=f"{cfg.max_upload_bytes / 2**20:,.0f}")

    @r.post("/import")
    async def import_post(request: Request):
        user = site.require(request, "labeler")
        request.state.back = "/import"  # an error page offers the way back to the form
        form = await site.form_of(request, files=True)
        try:
            source = str(form.get("source"))
            name = str(form.get("name")).strip()
            labels = "none" if str(form.get("labels")) == "none" else "folder"
            skip_bad = str(form.get("skip_bad")) == "1"
            if source == "folder":
                from ..uploads import resolve_in_root

                path = resolve_in_root(cfg.import_root, str(form.get("folder")))
                params = {"source": "folder", "path": str(path), "name": _check_ds_name(name or path.name),
                          "labels": labels, "skip_bad": skip_bad}
                form.cleanup()
            else:
                up = form.file("file")
                t = t_of(request)
                if up is None:
                    empty = form.empty_file("file")
                    raise InvalidInput(t("upload.empty_file", file=empty.filename) if empty else t("import.no_file"))
                if source == "table":
                    suffix = safe_suffix(up.raw_name, TABLE_SUFFIXES + SERIES_SUFFIXES)
                    check_table_upload(up, suffix, t)
                    params = {"source": "table", "suffix": suffix}
                    if str(form.get("preview")) == "1" and suffix not in SERIES_SUFFIXES:  # columns first, then confirm
                        token = form.folder.name
                        (form.folder / "upload.json").write_text(json.dumps({
                            "suffix": suffix, "filename": up.filename, "user": user["name"],
                            "name": _check_ds_name(name or _default_name(up.filename))}))
                        form.folder = None  # kept until confirmed or cancelled
                        return site.done(request, f"/import/preview/{token}", preview=token)
                elif source == "zip":
                    safe_suffix(up.raw_name, (".zip",))
                    await run_in_threadpool(check_zip, up.path, ZipLimits(cfg.max_zip_entries, cfg.max_unzipped_bytes,
                                                                          cfg.max_zip_ratio))
                    params = {"source": "zip", "labels": labels, "skip_bad": skip_bad}
                else:
                    raise InvalidInput(f"Unknown import source {source!r}.")
                default = _default_name(up.filename)
                params.update(upload=form.folder.name, filename=up.filename,
                              name=_check_ds_name(name or default))
                form.folder = None  # the worker owns (and removes) the upload now
        except BaseException:
            form.cleanup()
            raise
        job_id = runner.start("import", params, user["name"])
        return site.done(request, f"/jobs/{job_id}", job=job_id)

    # -- import preview: confirm column kinds and the target ------------------------------
    def read_preview(request: Request, folder: Path, meta: dict) -> dict:
        """The preview of an upload; if the file cannot be read the upload is removed (nothing to confirm) and the
        error page offers the way back to the Import page."""
        from ..importing import preview

        try:
            return preview(ws, folder, meta)
        except Exception:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            request.state.back = "/import"
            raise

    def upload_meta(token: str) -> tuple[Path, dict]:
        from ..uploads import upload_dir

        folder = upload_dir(ws, token)
        try:
            meta = json.loads((folder / "upload.json").read_text())
        except (OSError, ValueError):
            raise NotFound("This upload is gone (imported or cancelled already); upload the file again.") from None
        return folder, meta

    @r.get("/import/preview/{token}", response_class=HTMLResponse)
    def import_preview(request: Request, token: str):
        site.require(request, "labeler")
        folder, meta = upload_meta(token)
        view = read_preview(request, folder, meta)
        return site.render(request, "import_preview.html", nav="import", token=token, meta=meta, view=view,
                           kinds=KINDS)

    @r.post("/import/preview/{token}")
    async def import_confirm(request: Request, token: str):
        user = site.require(request, "labeler")
        form = await site.form_of(request)
        folder, meta = upload_meta(token)
        if str(form.get("action")) == "cancel":  # cancelled: the upload goes, read or not
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            return site.done(request, "/import")
        view = await run_in_threadpool(read_preview, request, folder, meta)
        kinds = {}
        for i, col in enumerate(view["columns"]):
            chosen = str(form.get(f"kind_{i}") or col["kind"])
            if chosen not in KINDS:
                raise InvalidInput(f"Unknown column kind {chosen!r}; expected one of {', '.join(KINDS)}.")
            if chosen != col["kind"]:
                kinds[col["name"]] = chosen
        target = str(form.get("target") or "")
        if target and target not in [c["name"] for c in view["columns"]]:
            raise InvalidInput(f"The target {target!r} is not a column of the file.")
        series = None
        if form.get("series"):  # "these rows are time series": long (an id column) or wide (a row each)
            names = [c["name"] for c in view["columns"]]
            sid, stime = str(form.get("series_id") or ""), str(form.get("series_time") or "")
            for col in (sid, stime):
                if col and col not in names:
                    raise InvalidInput(f"{col!r} is not a column of the file.")
            if stime and not sid:
                raise InvalidInput("A time column orders the rows of each series: choose the column naming the "
                                   "series too (or no time column for one series per row).")
            if target and target in (sid, stime):
                raise InvalidInput(f"The label {target!r} cannot also be the series' id or time column.")
            series = {"id_column": sid or None, "time_column": stime or None, "label_column": target or None}
        name = _check_ds_name(str(form.get("name") or "").strip() or meta["name"])
        (folder / "upload.json").unlink(missing_ok=True)
        (folder / view["link"]).unlink(missing_ok=True)
        params = {"source": "table", "suffix": meta["suffix"], "upload": token, "filename": meta["filename"],
                  "name": name, "kinds": kinds, "target": target}
        if series:
            params["series"] = series
        job_id = runner.start("import", params, user["name"])
        return site.done(request, f"/jobs/{job_id}", job=job_id)

    # -- datasets ----------------------------------------------------------------
    @r.get("/datasets/{name}", response_class=HTMLResponse)
    def dataset_latest(request: Request, name: str):
        ds = ws.dataset(name)
        return RedirectResponse(f"/datasets/{ds.name}/{ds.version}", status_code=303)

    @r.get("/datasets/{name}/{version}", response_class=HTMLResponse)
    def dataset_page(request: Request, name: str, version: int, page: int = 1, label: str = ""):
        ds = site.dataset_or_404(name, version)
        versions = [d for d in ws.datasets() if d.name == ds.name]
        ctx: dict[str, Any] = dict(nav="data", ds=ds, versions=versions, page=max(1, page), label_filter=label)
        if ds.kind == "table":
            ctx.update(_table_view(ws, ds, max(1, page)))
        elif ds.kind == "image":
            ctx.update(image_view(site, ds, page, label, PAGE))
        elif ds.kind == "series":
            ctx.update(series_view(site, ds, page, label, PAGE))
        else:
            ctx.update(_signal_view(store, ds, site.signal_tables(ds), max(1, page), label))
        return site.render(request, "dataset.html", **ctx)

    def recording(ds, idx: int) -> tuple[str, str]:
        """(file, blob sha) of recording ``idx`` of a recordings dataset, else 404."""
        files = site.signal_tables(ds) if ds.kind == "signal" else None
        if files is None or not 0 <= idx < len(files) or not files["sha"].iloc[idx]:
            raise NotFound("No such recording.")
        return files["file"].iloc[idx], files["sha"].iloc[idx]

    @r.get("/datasets/{name}/{version}/thumb/{idx}.png")
    def thumb(request: Request, name: str, version: int, idx: int, size: str = ""):
        """The picture of item ``idx``: waveform + spectrogram of a recording, an image with its mask and
        boxes, or a line plot of a series (rendered once, then cached). ``size=large``: the bigger picture of
        an image or series the labelling page shows."""
        from ..media import thumbnail

        ds = site.dataset_or_404(name, version)
        large = size == "large"
        if ds.kind == "image":
            path = image_thumb(site, ds, idx, LARGE_IMAGE_PX if large else THUMB_PX)
        elif ds.kind == "series":
            path = series_thumb(site, ds, idx, LARGE_SERIES_PX if large else SERIES_THUMB_PX)
        else:
            path = thumbnail(ws, ds, *recording(ds, idx))
        return FileResponse(path, media_type="image/png", headers=CACHE_A_DAY)

    @r.get("/datasets/{name}/{version}/audio/{idx}")
    def audio(request: Request, name: str, version: int, idx: int):
        from ..media import AUDIO_TYPES

        rel, sha = recording(site.dataset_or_404(name, version), idx)
        suffix = Path(rel).suffix.lower()
        if suffix not in AUDIO_TYPES:
            raise NotFound("This recording is not an audio file.")
        return FileResponse(ws.blob_path(sha), media_type=AUDIO_TYPES[suffix], headers=CACHE_A_DAY)

    return r

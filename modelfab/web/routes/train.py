"""The train page and jobs: start, live progress (server-sent events), cancel."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInput
from ..jobs import TERMINAL
from ..site import Site
from ..views import LOWER_IS_BETTER, BUDGETS, _check_model_name, _job_view, _latest_by_name, _train_info


def router(site: Site) -> APIRouter:
    r = APIRouter()
    ws, runner, t_of = site.ws, site.runner, site.t_of

    # -- training ----------------------------------------------------------------
    @r.get("/train", response_class=HTMLResponse)
    def train_page(request: Request, dataset: str = "", target: str = ""):
        site.require(request, "admin")
        all_ds = ws.datasets()
        info = {d.ref: _train_info(d) for d in all_ds}
        latest = _latest_by_name(all_ds)
        by_name = {d.name: d.ref for d in latest}  # ?dataset=plates (no version): its newest version
        chosen = dataset if dataset in info else by_name.get(dataset) or (latest[0].ref if latest else "")
        return site.render(request, "train.html", nav="train", datasets=all_ds, chosen=chosen,
                           js={"datasets": info, "target": target[:200], "messages": t_of(request).subset("train.js.")}, budgets=BUDGETS)

    @r.post("/train")
    async def train_post(request: Request):
        user = site.require(request, "admin")
        form = await site.form_of(request)
        ds = ws.dataset(str(form.get("dataset")))
        task = str(form.get("task") or "auto")
        if task not in ("auto", "classification", "regression", "anomaly"):
            raise InvalidInput(f"Unknown task {task!r}.")
        budget = str(form.get("budget") or "60")
        from ...automl.budget import parse_duration

        seconds = parse_duration(budget)
        if not 5 <= seconds <= 24 * 3600:
            raise InvalidInput("The budget must be between 5 seconds and 24 hours.")
        params = {"dataset": ds.ref, "task": task, "budget": seconds,
                  "name": _check_model_name(str(form.get("name") or "").strip() or ds.name)}
        metric = str(form.get("metric") or "")
        if metric:  # optional (not on the form): the measure the search optimises, as `modelfab train --metric`
            from ...automl.search import CLASSIFICATION_METRICS, REGRESSION_METRICS

            if metric not in CLASSIFICATION_METRICS and metric not in REGRESSION_METRICS:
                raise InvalidInput(f"Unknown metric {metric!r}; expected one of "
                                   f"{', '.join(list(CLASSIFICATION_METRICS) + list(REGRESSION_METRICS))}.")
            params["metric"] = metric
        if ds.kind == "table":
            target = str(form.get("target") or "")
            if target not in ds.column_kinds():
                t = t_of(request)
                raise InvalidInput(t("train.need_target"))
            params["target"] = target
        else:
            normal = str(form.get("normal_label") or "").strip()[:100]
            labels = sorted(str(k) for k in (ds.stats.get("labels") or {}))
            if not normal and task == "anomaly" and labels:  # the form asks rather than guessing
                t = t_of(request)
                raise InvalidInput(t("train.need_normal_label", labels=", ".join(labels[:20])))
            params["normal_label"] = normal or "normal"
            try:
                mfa = float(form.get("max_false_alarm") or 0.01)
            except ValueError:
                raise InvalidInput("The false-alarm rate must be a number such as 0.01.") from None
            if not 0 < mfa < 1:
                raise InvalidInput("The false-alarm rate must be between 0 and 1.")
            params["max_false_alarm"] = mfa
        job_id = runner.start("train", params, user["name"])
        return site.done(request, f"/jobs/{job_id}", job=job_id)

    # -- jobs --------------------------------------------------------------------
    @r.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: int):
        job = _job_view(runner.get(job_id), t_of(request))
        nav = {"train": "train", "import": "import", "threshold": "models"}.get(job["kind"], "home")
        return site.render(request, "job.html", nav=nav, job=job,
                           js={"job": job, "events": f"/jobs/{job_id}/events", "lower_is_better": sorted(LOWER_IS_BETTER),
                           "messages": t_of(request).subset("job.js.") | t_of(request).subset("metric.")})

    @r.get("/jobs/{job_id}/events")
    async def job_events(request: Request, job_id: int):
        await run_in_threadpool(runner.get, job_id)  # 404 before the stream starts
        t = t_of(request)

        async def stream():
            last = None
            started = time.monotonic()
            yield "retry: 2000\n\n"
            while time.monotonic() - started < 3600:
                job = _job_view(await run_in_threadpool(runner.get, job_id), t)
                data = json.dumps(job, default=str)
                if data != last:
                    last = data
                    yield f"event: job\ndata: {data}\n\n"
                if job["state"] in TERMINAL:
                    yield "event: end\ndata: {}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @r.post("/jobs/{job_id}/cancel")
    async def job_cancel(request: Request, job_id: int):
        site.require(request, "labeler")
        await site.form_of(request)
        job = await run_in_threadpool(runner.get, job_id)
        if job["kind"] == "train":
            site.require(request, "admin")
        await run_in_threadpool(runner.cancel, job_id)
        return site.done(request, f"/jobs/{job_id}", job=job_id)

    return r

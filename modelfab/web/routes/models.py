"""Models: versions, the evaluate page, report, threshold, promote, tokens, compare, deployments."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInput
from ..site import Site
from ..evaluate import binary_holdout, is_binary_table
from ..views import _model_view, _safe_next


REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"


def router(site: Site) -> APIRouter:
    r = APIRouter()
    ws, runner, t_of = site.ws, site.runner, site.t_of

    # -- models ------------------------------------------------------------------
    def aliases_by_model(name: str | None = None) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        for a in ws.meta.list_aliases(name):
            out.setdefault(a["model_id"], []).append(a)
        return out

    def models_ctx(request: Request, token=None) -> dict:
        groups: dict[str, list] = {}
        aliases = aliases_by_model()
        for m in ws.models():
            groups.setdefault(m.name, []).append(dict(_model_view(m), aliases=aliases.get(m.row["id"], [])))
        for v in groups.values():
            v.reverse()
        deployments = site.deployments.list()
        from ..snippets import served_model, snippets

        deploy_snippets, serving = {}, {}
        for d in deployments:
            served = served_model(ws, d) if d.get("state") in ("running", "starting") else None
            if served is not None:
                deploy_snippets[d["port"]] = snippets(ws, served, base=d["url"])
                serving.setdefault(served.name, d)
        port = request.url.port
        free_port = _suggest_port(port)
        if token and token.get("model"):
            # The snippets call the server that runs this model, or the port its server would be started on.
            d = serving.get(token["model"])
            serve_port = d["port"] if d else free_port
            base = d["url"] if d else f"http://127.0.0.1:{free_port}"
            token = dict(token, serve_port=serve_port, running=bool(d),
                         snippets=snippets(ws, ws.model(token["model"]), base=base, token=token["value"]))
        return dict(nav="models", groups=groups, token=token, deployments=deployments, deploy_snippets=deploy_snippets,
                    free_port=free_port, ui_port=port,
                    any_production=bool(ws.meta.models_in_stage("production")),
                    js={"messages": t_of(request).subset("models.js."), "deployments": deployments})

    @r.get("/models", response_class=HTMLResponse)
    def models_page(request: Request):
        return site.render(request, "models.html", **models_ctx(request))

    # -- compare two versions -------------------------------------------------------
    @r.get("/compare", response_class=HTMLResponse)
    def compare_page(request: Request, a: str = "", b: str = ""):
        from ..compare import page_view

        refs = [m.ref for m in ws.models()]
        view = None
        if a and b:
            view = page_view(ws.model(a), ws.model(b))
        elif refs:
            a = a or (refs[-2] if len(refs) > 1 else refs[-1])
            b = b or refs[-1]
        return site.render(request, "compare.html", nav="models", refs=list(reversed(refs)), a=a, b=b, view=view)

    # -- deployments (admin) ------------------------------------------------------------
    @r.get("/deployments")
    def deployments_list(request: Request):
        return JSONResponse({"deployments": site.deployments.list()})

    @r.post("/deployments")
    async def deployment_start(request: Request):
        user = site.require(request, "admin")
        form = await site.form_of(request)
        try:
            port = int(str(form.get("port") or "").strip())
        except ValueError:
            t = t_of(request)
            raise InvalidInput(t("deploy.bad_port")) from None
        model = str(form.get("model") or "").strip() or None
        if model is None and not ws.meta.models_in_stage("production"):  # the server would start, then stop
            t = t_of(request)
            raise InvalidInput(t("deploy.no_production", promote=t("models.promote")))
        dep = await run_in_threadpool(site.deployments.start, port=port, model=model, user=user["name"])
        return site.done(request, "/models#deployments", deployment=dep)

    @r.post("/deployments/{port}/stop")
    async def deployment_stop(request: Request, port: int):
        site.require(request, "admin")
        await site.form_of(request)
        dep = await run_in_threadpool(site.deployments.stop, port)
        return site.done(request, "/models#deployments", deployment=dep)

    @r.get("/models/{name}", response_class=HTMLResponse)
    def model_latest(request: Request, name: str):
        m = ws.model(name)
        return RedirectResponse(f"/models/{m.name}/{m.version}", status_code=303)

    @r.get("/models/{name}/{version}", response_class=HTMLResponse)
    def model_page(request: Request, name: str, version: int):
        m = site.model_or_404(name, version)
        view = dict(_model_view(m, full=True), aliases=aliases_by_model(m.name).get(m.row["id"], []))
        js: dict[str, Any] = {"messages": t_of(request).subset("model.js.")}
        if view["modality"] == "image":  # the slider counts images, not recordings
            t = t_of(request)
            js["messages"].update({"model.js.fa": t("model.js.fa_images"), "model.js.miss": t("model.js.miss_images"),
                                   "model.js.no_abnormal": t("model.js.no_abnormal_images")})
        from ..evaluate import anomaly_confusion, anomaly_holdout, confusion

        anomaly = anomaly_holdout(m)  # the slider's data and the 2x2 matrix read the holdout once
        if anomaly is not None:
            js["holdout"] = {"y_true": anomaly["y_true"].tolist(), "scores": anomaly["scores"].tolist(),
                             "threshold": anomaly["threshold"]}
        binary = binary_holdout(m)
        if binary is not None:
            js["holdout"] = binary
        cm = confusion(m) or (anomaly_confusion(m, hold=anomaly) if anomaly is not None else None)
        if cm is not None:
            js["confusion"] = {"url": f"/models/{m.name}/{m.version}/confusion", "labels": cm["labels"],
                               "base": f"/datasets/{view['dataset']}/{view['dataset_version']}"}
            if cm.get("anomaly"):  # follows the threshold slider; the cells are asked for at its threshold
                t = t_of(request)
                js["confusion"].update(anomaly=True, examples=cm["examples"],
                                       names=[t("model.cm_normal"), t("model.cm_anomaly")])
            elif binary is not None and len(cm["labels"]) == 2 and cm["unit"] == "rows":  # follows the slider too
                js["confusion"].update(binary=True, examples=cm["examples"])
        from ..snippets import snippets

        from ..snippets import served_model

        running = next((d for d in site.deployments.list() if d.get("state") in ("running", "starting")
                        and getattr(served_model(ws, d), "name", None) == m.name), None)
        serve_port = running["port"] if running else _suggest_port(request.url.port)
        base = running["url"] if running else f"http://127.0.0.1:{serve_port}"  # the server that runs it, if one does
        return site.render(request, "model.html", nav="models", m=view, js=js, cm=cm, binary=binary,
                           serve_port=serve_port, snippet=snippets(ws, m, base=base))

    @r.get("/models/{name}/{version}/confusion/{i}/{j}")
    def model_confusion_cell(request: Request, name: str, version: int, i: int, j: int, threshold: str = ""):
        """The held-out examples of a cell; for anomaly models at ``?threshold=`` (default: the model's)."""
        from ..evaluate import anomaly_cell_examples, cell_examples, parse_threshold

        m = site.model_or_404(name, version)
        if m.task == "anomaly":
            return JSONResponse(anomaly_cell_examples(site, m, i, j, parse_threshold(threshold, t_of(request))))
        thr = parse_threshold(threshold, t_of(request)) if is_binary_table(m) else None
        return JSONResponse(cell_examples(site, m, i, j, thr))

    @r.get("/models/{name}/{version}/report")
    def model_report(request: Request, name: str, version: int):
        m = site.model_or_404(name, version)
        path = ws.root / "reports" / f"{m.name}-v{m.version}" / "report.html"
        if not path.is_file():
            path, _ = m.write_report()
        return FileResponse(path, media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": REPORT_CSP})

    @r.post("/models/{name}/{version}/threshold")
    async def model_threshold(request: Request, name: str, version: int):
        user = site.require(request, "admin")
        form = await site.form_of(request)
        m = site.model_or_404(name, version)
        if m.task != "anomaly" and not is_binary_table(m):
            raise InvalidInput(f"{m.ref} is a {m.task} model; only anomaly models and two-class classifiers of "
                               "tables have a threshold to move.")
        try:
            value = float(form.get("threshold"))
        except (TypeError, ValueError):
            raise InvalidInput("The threshold must be a number.") from None
        if not math.isfinite(value):
            raise InvalidInput("The threshold must be a finite number.")
        if m.task != "anomaly" and not 0.0 <= value <= 1.0:
            raise InvalidInput(f"The threshold of a classifier is a probability in [0, 1]; got {value!r}.")
        # a worker process registers the new version (so that it is recorded as made by this user)
        job_id = runner.start("threshold", {"model": m.ref, "threshold": value}, user["name"])
        return site.done(request, f"/jobs/{job_id}", job=job_id)

    @r.post("/models/{name}/{version}/promote")
    async def model_promote(request: Request, name: str, version: int):
        site.require(request, "admin")
        await site.form_of(request)
        m = site.model_or_404(name, version)
        for other in ws.models(m.name):
            if other.stage == "production" and other.version != m.version:
                ws.meta.set_model_stage(other.row["id"], "archived")
        ws.meta.set_model_stage(m.row["id"], "production")
        return site.done(request, f"/models/{m.name}/{m.version}", model=m.ref)

    # -- aliases (admin): NAME@ALIAS names a version, as `modelfab models alias|unalias` --------------
    @r.post("/models/{name}/aliases")
    async def model_alias_set(request: Request, name: str):
        from ...registry import set_alias

        user = site.require(request, "admin")
        form = await site.form_of(request)
        try:
            version = int(str(form.get("version") or "").strip())
        except ValueError:
            t = t_of(request)
            raise InvalidInput(t("alias.bad_version", name=repr(name),
                                 got=repr(str(form.get("version") or "")[:20]))) from None
        m = site.model_or_404(name, version)
        alias = str(form.get("alias") or "").strip()
        a = set_alias(ws.meta, m.row, alias, set_by=user["name"])
        nxt = _safe_next(str(form.get("next") or "")) if form.get("next") else f"/models/{m.name}/{m.version}"
        return site.done(request, nxt, model=m.ref, alias=a["alias"], ref=f"{m.name}@{a['alias']}",
                         version=m.version, previous_version=a["previous_version"])

    @r.post("/models/{name}/aliases/{alias}/remove")
    async def model_alias_remove(request: Request, name: str, alias: str):
        from ...registry import remove_alias

        site.require(request, "admin")
        form = await site.form_of(request)
        old = remove_alias(ws.meta, name, alias)
        nxt = _safe_next(str(form.get("next") or "")) if form.get("next") else f"/models/{name}/{old['version']}"
        return site.done(request, nxt, model=name, alias=alias, removed=True, version=old["version"])

    @r.post("/tokens")
    async def token_create(request: Request):
        site.require(request, "admin")
        form = await site.form_of(request)
        name = str(form.get("name") or "").strip()[:100] or "ui"
        scope = str(form.get("scope") or "predict")
        token_id, plain = ws.create_token(name, scope)
        model = str(form.get("model") or "")
        groups: dict[str, list] = {}
        for m in ws.models():
            groups.setdefault(m.name, []).append(_model_view(m))
        for v in groups.values():
            v.reverse()
        return site.render(request, "models.html", **models_ctx(request, token={
                           "id": token_id, "name": name, "scope": scope, "value": plain,
                           "model": model if model in groups else next(iter(groups), "")}))

    return r


def _suggest_port(ui_port: int | None) -> int:
    """8000 (the model server's usual port) unless the UI itself holds it, then the next one free."""
    from ..deploy import port_is_free

    for port in range(8000, 8100):
        if port != ui_port and port_is_free(port):
            return port
    return 8000

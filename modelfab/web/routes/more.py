"""Try a model on a file, and the users page."""

from __future__ import annotations


from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInput
from ..site import Site
from ..store import ROLES
from ..views import _form_inputs, _model_view, _predict_file, _predict_record


def router(site: Site) -> APIRouter:
    r = APIRouter()
    ws, store, t_of = site.ws, site.store, site.t_of

    # -- try it --------------------------------------------------------------------
    @r.get("/predict", response_class=HTMLResponse)
    def predict_page(request: Request, model: str = ""):
        if model and ":" not in model:  # a name alone (?model=parts): the version `ws.model` gives, as the CLI does
            try:
                model = ws.model(model).ref
            except Exception:  # an unknown name: the page opens on the first model, as for any other unknown value
                pass
        return site.render(request, "predict.html", nav="predict", models=[_model_view(m) for m in ws.models()],
                           chosen=model, result=None)

    @r.post("/predict", response_class=HTMLResponse)
    async def predict_post(request: Request):
        site.require(request, "viewer")
        form = await site.form_of(request, files=True)
        try:
            ref = str(form.get("model"))
            m = ws.model(ref)
            up = form.file("file")
            fields = {k[len("field:"):]: v for k, v in form.fields.items() if k.startswith("field:")}
            if up is None and fields and _form_inputs(m.manifest or {}) and not form.empty_file("file"):  # a text model: the typed record
                result = await run_in_threadpool(_predict_record, m, fields)
            elif up is None:
                t = t_of(request)
                empty = form.empty_file("file")
                raise InvalidInput(t("predict.empty_file", file=empty.filename) if empty else t("predict.no_file"))
            else:
                result = await run_in_threadpool(_predict_file, ws, m, up)
        finally:
            form.cleanup()
        return site.render(request, "predict.html", nav="predict", models=[_model_view(x) for x in ws.models()],
                           chosen=m.ref, result=result)

    # -- users (admin) ---------------------------------------------------------------
    @r.get("/users", response_class=HTMLResponse)
    def users_page(request: Request):
        site.require(request, "admin")
        return site.render(request, "users.html", nav="users", users=store.list_users(), roles=ROLES)

    @r.post("/users")
    async def users_create(request: Request):
        site.require(request, "admin")
        form = await site.form_of(request)
        await run_in_threadpool(store.create_user, str(form.get("name")).strip(), str(form.get("password")),
                                str(form.get("role")))
        return site.done(request, "/users")

    @r.post("/users/{name}/disable")
    async def users_disable(request: Request, name: str):
        user = site.require(request, "admin")
        await site.form_of(request)
        if name == user["name"]:
            raise InvalidInput("You cannot disable your own account.")
        await run_in_threadpool(store.disable_user, name)
        return site.done(request, "/users")

    return r

"""``create_web_app(ws, settings)``: the browser UI as a FastAPI app.

Security model (each has a test under ``tests/web``):

* Every page but the login page, the "no accounts yet" page, static files
  and ``/healthz`` needs a session. Sessions are random cookie values
  (HttpOnly, SameSite=Strict, Secure over https) whose sha256 is stored
  server-side with an expiry; logging out deletes the row.
* Every POST needs the session's CSRF token (form field ``csrf_token`` or
  header ``X-CSRF-Token``) and, when the browser sends one, a same-origin
  ``Origin`` (or ``Referer``). The login form uses a pre-session
  double-submit token.
* Roles: viewer reads (and may try a model on a file); labeler also labels
  and imports; admin also trains, moves thresholds, promotes, makes tokens
  and users.
* Templates autoescape everything; data for scripts is passed as JSON in
  ``<script type="application/json">`` blocks; a strict Content-Security-Policy
  forbids inline script.
* Uploads stream to random names under the workspace's tmp dir with size
  limits; zips are checked (``..``, absolute paths, links, size, ratio).
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ..errors import InvalidInput, ModelfabError
from .config import WebSettings
from .i18n import LANGUAGES, N_, Translator, pick_language
from .jobs import JobRunner
from .site import HERE, LANG_COOKIE, PRE_CSRF_COOKIE, SESSION_COOKIE, PageError, Site
from .store import WebStore
from .views import BUDGETS, _safe_next, _same_origin  # noqa: F401  (BUDGETS: the catalogue test reads it)

PUBLIC = ("/login", "/setup", "/healthz", "/lang")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'self'")


def create_web_app(ws, settings: WebSettings | None = None) -> FastAPI:
    from .. import __version__
    from .deploy import Deployments
    from .routes import data, label, models, more, train

    cfg = settings if isinstance(settings, WebSettings) else WebSettings.from_env(ws.settings)
    store = WebStore(ws.meta)
    runner = JobRunner(ws, cfg.cancel_grace_s)
    runner.recover()
    from .uploads import sweep_uploads

    sweep_uploads(ws)  # previews abandoned days ago (the jobs that could hold an upload were just recovered)
    site = Site(ws, cfg, store, runner, __version__)
    site.deployments = Deployments(ws)
    app = FastAPI(title="modelfab ui", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ws, app.state.store, app.state.runner, app.state.cfg = ws, store, runner, cfg
    app.state.site, app.state.deployments = site, site.deployments
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # -- middleware ------------------------------------------------------------
    @app.middleware("http")
    async def guard(request: Request, call_next):
        request.state.t = Translator(pick_language(request.cookies.get(LANG_COOKIE),
                                                   request.headers.get("accept-language")))
        request.state.pre_csrf = request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(32)
        request.state.user = request.state.session = None
        path = request.url.path
        try:
            resp = await _guarded(request, call_next, path)
        except PageError as exc:
            resp = _page_error(request, exc)
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if not path.startswith("/static/"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    async def _guarded(request: Request, call_next, path: str):
        try:
            length = int(request.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        if length > cfg.max_upload_bytes + (1 << 20):
            t = site.t_of(request)
            return _page_error(request, PageError(413, "error.too_large",
                                                  t("error.limit_mib", mib=f"{cfg.max_upload_bytes / 2**20:,.0f}")))
        if request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin(request, cfg):
            return _page_error(request, PageError(403, "error.origin"))
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            found = await run_in_threadpool(store.session_user, token)
            if found:
                request.state.user, request.state.session = found
        if path.startswith("/static/") or path in PUBLIC:
            return await call_next(request)
        if request.state.user is None:
            if await run_in_threadpool(store.count_users) == 0:
                target = "/setup"
            else:
                target = "/login" + (f"?next={quote(path)}" if request.method == "GET" and path != "/" else "")
            if request.method == "GET" and not site.wants_json(request):
                return RedirectResponse(target, status_code=303)
            return _page_error(request, PageError(401, "error.login_needed"))
        return await call_next(request)

    def _page_error(request: Request, exc: PageError) -> Response:
        t = site.t_of(request)
        if site.wants_json(request) or request.url.path.endswith("/events"):
            return JSONResponse({"error": {"code": exc.key, "message": t(exc.key), "detail": exc.detail}},
                                status_code=exc.status)
        try:
            return site.render(request, "error.html", status=exc.status, title=t(exc.key), detail=exc.detail,
                               back=getattr(request.state, "back", None))
        except Exception:  # the error page itself must not fail
            return HTMLResponse("error", status_code=exc.status)

    @app.exception_handler(PageError)
    async def on_page_error(request: Request, exc: PageError):
        return _page_error(request, exc)

    @app.exception_handler(ModelfabError)
    async def on_modelfab_error(request: Request, exc: ModelfabError):
        key = {401: N_("error.login_needed"), 403: N_("error.forbidden"), 404: N_("error.not_found"),
               409: N_("error.conflict"), 413: N_("error.too_large"),
               415: N_("error.unsupported")}.get(exc.http_status, N_("error.invalid"))
        if exc.http_status >= 500 and not isinstance(exc, InvalidInput):
            key = N_("error.server")
        status = exc.http_status if 400 <= exc.http_status < 600 else 500
        from .hints import for_browser

        return _page_error(request, PageError(status, key, for_browser(str(exc), site.t_of(request))))

    # -- public pages ----------------------------------------------------------
    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/setup", response_class=HTMLResponse)
    def setup(request: Request):
        if store.count_users() > 0:
            return RedirectResponse("/login", status_code=303)
        return site.render(request, "setup.html", workspace=str(ws.root.resolve()))

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/"):
        if store.count_users() == 0:
            return RedirectResponse("/setup", status_code=303)
        if request.state.user:
            return RedirectResponse(_safe_next(next), status_code=303)
        return site.render(request, "login.html", next=_safe_next(next), failed=False, name="")

    failures: dict[str, list[float]] = {}

    @app.post("/login")
    async def login(request: Request):
        form = await site.form_of(request)
        name, password = str(form.get("name"))[:100], str(form.get("password"))
        nxt = _safe_next(str(form.get("next") or "/"))
        now = time.monotonic()
        recent = [x for x in failures.get(name, []) if now - x < 60]
        if len(recent) >= 5:
            resp = site.render(request, "login.html", status=429, next=nxt, failed="throttled", name=name)
            return resp
        user = await run_in_threadpool(store.authenticate, name, password)
        if user is None:
            failures[name] = recent + [now]
            return site.render(request, "login.html", status=401, next=nxt, failed="bad", name=name)
        failures.pop(name, None)
        token, _ = await run_in_threadpool(store.create_session, user["id"], cfg.session_hours)
        resp = RedirectResponse(nxt, status_code=303)
        site.set_cookie(request, resp, SESSION_COOKIE, token, max_age=cfg.session_hours * 3600)
        return resp

    @app.post("/logout")
    async def logout(request: Request):
        await site.form_of(request)
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            await run_in_threadpool(store.delete_session, token)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    @app.post("/lang")
    async def set_lang(request: Request):
        form = await site.form_of(request)
        lang = str(form.get("lang"))
        if lang not in LANGUAGES:
            raise InvalidInput(f"Unknown language {lang!r}.")
        back = _safe_next(str(form.get("next") or "/"))
        resp = site.done(request, back)
        site.set_cookie(request, resp, LANG_COOKIE, lang, max_age=3600 * 24 * 365)
        return resp

    for module in (data, label, train, models, more):
        app.router.routes.extend(module.router(site).routes)  # flat, so that every route is listed in app.routes
    return app

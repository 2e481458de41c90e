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

import asyncio
import hmac
import json
import math
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ..errors import Forbidden, InvalidInput, ModelfabError, NotFound, TooLarge, Unauthorized
from .config import WebSettings
from .i18n import LANGUAGES, Translator, pick_language
from .jobs import ACTIVE, TERMINAL, JobRunner
from .store import ROLE_RANK, ROLES, WebStore
from .uploads import Form, ZipLimits, check_zip, read_form, safe_suffix

HERE = Path(__file__).parent
SESSION_COOKIE = "mf_session"
PRE_CSRF_COOKIE = "mf_precsrf"
LANG_COOKIE = "mf_lang"
PUBLIC = ("/login", "/setup", "/healthz", "/lang")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xls")
RECORDING_SUFFIXES = (".wav", ".flac", ".ogg", ".mat", ".npy", ".csv")
PAGE = 50

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'self'")
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"


class PageError(Exception):
    """An error shown as a page (or JSON) with a translated title."""

    def __init__(self, status: int, key: str, detail: str = "") -> None:
        super().__init__(key)
        self.status, self.key, self.detail = status, key, detail


def create_web_app(ws, settings: WebSettings | None = None) -> FastAPI:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from .. import __version__

    cfg = settings if isinstance(settings, WebSettings) else WebSettings.from_env(ws.settings)
    store = WebStore(ws.meta)
    runner = JobRunner(ws, cfg.cancel_grace_s)
    runner.recover()
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, pct=_pct, short=_short, sig=_sig)
    app = FastAPI(title="modelfab ui", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ws, app.state.store, app.state.runner, app.state.cfg = ws, store, runner, cfg
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    tables_cache: dict[int, Any] = {}

    # -- helpers ---------------------------------------------------------------
    def t_of(request: Request) -> Translator:
        return request.state.t

    def render(request: Request, template: str, status: int = 200, **ctx) -> HTMLResponse:
        t = t_of(request)
        user = getattr(request.state, "user", None)
        session = getattr(request.state, "session", None)
        base = dict(t=t, lang=t.lang, languages=LANGUAGES, user=user, version=__version__,
                    csrf=session["csrf_token"] if session else request.state.pre_csrf,
                    can=lambda role: bool(user) and ROLE_RANK[user["role"]] >= ROLE_RANK[role],
                    path=request.url.path, nav=ctx.pop("nav", ""))
        js = dict(ctx.pop("js", None) or {})
        js["messages"] = dict(js.get("messages") or {}, **t.subset("common.js."))
        base.update(ctx, js=js)
        html = env.get_template(template).render(**base)
        resp = HTMLResponse(html, status_code=status)
        if session is None and request.cookies.get(PRE_CSRF_COOKIE) != request.state.pre_csrf:
            _set_cookie(request, resp, PRE_CSRF_COOKIE, request.state.pre_csrf, max_age=3600 * 12)
        return resp

    def _set_cookie(request: Request, resp: Response, key: str, value: str, max_age: int | None = None) -> None:
        secure = cfg.secure_cookies or request.url.scheme == "https"
        resp.set_cookie(key, value, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/")

    def wants_json(request: Request) -> bool:
        return "application/json" in request.headers.get("accept", "") or request.headers.get("x-requested-with") == "fetch"

    def require(request: Request, role: str) -> dict:
        user = request.state.user
        if user is None:
            raise Unauthorized("Please log in.")
        if ROLE_RANK[user["role"]] < ROLE_RANK[role]:
            raise PageError(403, "error.forbidden_role", t_of(request)("error.needs_role", role=t_of(request)(f"role.{role}")))
        return user

    async def form_of(request: Request, *, files: bool = False) -> Form:
        """Read the body (files into the workspace) and check the CSRF token: every POST calls this."""
        form = await read_form(request, ws, max_file_bytes=cfg.max_upload_bytes if files else 0,
                               max_form_bytes=cfg.max_form_bytes)
        session = request.state.session
        expected = session["csrf_token"] if session else request.cookies.get(PRE_CSRF_COOKIE, "")
        got = request.headers.get("x-csrf-token") or str(form.get("csrf_token") or "")
        if not expected or not got or not hmac.compare_digest(expected.encode(), got.encode()):
            form.cleanup()
            raise PageError(403, "error.csrf")
        return form

    def done(request: Request, url: str, **payload) -> Response:
        if wants_json(request):
            return JSONResponse(dict(payload, url=url))
        return RedirectResponse(url, status_code=303)

    def dataset_or_404(name: str, version: int):
        try:
            return ws.dataset(f"{name}:{int(version)}")
        except (InvalidInput, ValueError):
            raise NotFound("No such dataset.") from None

    def model_or_404(name: str, version: int):
        try:
            return ws.model(f"{name}:{int(version)}")
        except (InvalidInput, ValueError):
            raise NotFound("No such model.") from None

    def signal_tables(ds):
        if ds.id not in tables_cache:
            from ..recordings import load_signal_tables

            feats, files = load_signal_tables(ws, ds)
            refs = ws.meta.blob_refs(f"datasets:{ds.id}")
            files = files.reset_index(drop=True)
            files["sha"] = [refs.get(f"file:{f}") for f in files["file"]]
            if len(tables_cache) > 16:
                tables_cache.clear()
            tables_cache[ds.id] = files
        return tables_cache[ds.id]

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
            return _page_error(request, PageError(413, "error.too_large",
                                                  t_of(request)("error.limit_mib", mib=f"{cfg.max_upload_bytes / 2**20:,.0f}")))
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
            if request.method == "GET" and not wants_json(request):
                return RedirectResponse(target, status_code=303)
            return _page_error(request, PageError(401, "error.login_needed"))
        return await call_next(request)

    def _page_error(request: Request, exc: PageError) -> Response:
        t = t_of(request)
        if wants_json(request) or request.url.path.endswith("/events"):
            return JSONResponse({"error": {"code": exc.key, "message": t(exc.key), "detail": exc.detail}},
                                status_code=exc.status)
        try:
            return render(request, "error.html", status=exc.status, title=t(exc.key), detail=exc.detail)
        except Exception:  # the error page itself must not fail
            return HTMLResponse("error", status_code=exc.status)

    @app.exception_handler(PageError)
    async def on_page_error(request: Request, exc: PageError):
        return _page_error(request, exc)

    @app.exception_handler(ModelfabError)
    async def on_modelfab_error(request: Request, exc: ModelfabError):
        key = {401: "error.login_needed", 403: "error.forbidden", 404: "error.not_found", 409: "error.conflict",
               413: "error.too_large", 415: "error.unsupported"}.get(exc.http_status, "error.invalid")
        if exc.http_status >= 500 and not isinstance(exc, InvalidInput):
            key = "error.server"
        status = exc.http_status if 400 <= exc.http_status < 600 else 500
        return _page_error(request, PageError(status, key, str(exc)))

    # -- public pages ----------------------------------------------------------
    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/setup", response_class=HTMLResponse)
    def setup(request: Request):
        if store.count_users() > 0:
            return RedirectResponse("/login", status_code=303)
        return render(request, "setup.html", workspace=str(ws.root.resolve()))

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/"):
        if store.count_users() == 0:
            return RedirectResponse("/setup", status_code=303)
        if request.state.user:
            return RedirectResponse(_safe_next(next), status_code=303)
        return render(request, "login.html", next=_safe_next(next), failed=False, name="")

    failures: dict[str, list[float]] = {}

    @app.post("/login")
    async def login(request: Request):
        form = await form_of(request)
        name, password = str(form.get("name"))[:100], str(form.get("password"))
        nxt = _safe_next(str(form.get("next") or "/"))
        now = time.monotonic()
        recent = [x for x in failures.get(name, []) if now - x < 60]
        if len(recent) >= 5:
            resp = render(request, "login.html", status=429, next=nxt, failed="throttled", name=name)
            return resp
        user = await run_in_threadpool(store.authenticate, name, password)
        if user is None:
            failures[name] = recent + [now]
            return render(request, "login.html", status=401, next=nxt, failed="bad", name=name)
        failures.pop(name, None)
        token, _ = await run_in_threadpool(store.create_session, user["id"], cfg.session_hours)
        resp = RedirectResponse(nxt, status_code=303)
        _set_cookie(request, resp, SESSION_COOKIE, token, max_age=cfg.session_hours * 3600)
        return resp

    @app.post("/logout")
    async def logout(request: Request):
        await form_of(request)
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            await run_in_threadpool(store.delete_session, token)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    @app.post("/lang")
    async def set_lang(request: Request):
        form = await form_of(request)
        lang = str(form.get("lang"))
        if lang not in LANGUAGES:
            raise InvalidInput(f"Unknown language {lang!r}.")
        back = _safe_next(str(form.get("next") or "/"))
        resp = done(request, back)
        _set_cookie(request, resp, LANG_COOKIE, lang, max_age=3600 * 24 * 365)
        return resp

    # -- home --------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def home(request: Request):
        datasets = _latest_by_name(ws.datasets())
        models = _latest_by_name(ws.models())
        jobs = [_job_view(runner.get(j["id"]) if j["state"] in ACTIVE else j) for j in ws.meta.list_jobs(limit=10)]
        return render(request, "home.html", nav="home", datasets=datasets, models=[_model_view(m) for m in models],
                      jobs=jobs)

    # -- import ------------------------------------------------------------------
    @app.get("/import", response_class=HTMLResponse)
    def import_page(request: Request):
        require(request, "labeler")
        from .uploads import list_folders

        return render(request, "import.html", nav="import", folders=list_folders(cfg.import_root),
                      import_root=cfg.import_root is not None, max_mib=f"{cfg.max_upload_bytes / 2**20:,.0f}")

    @app.post("/import")
    async def import_post(request: Request):
        user = require(request, "labeler")
        form = await form_of(request, files=True)
        try:
            source = str(form.get("source"))
            name = str(form.get("name")).strip()
            labels = "none" if str(form.get("labels")) == "none" else "folder"
            skip_bad = str(form.get("skip_bad")) == "1"
            if source == "folder":
                from .uploads import resolve_in_root

                path = resolve_in_root(cfg.import_root, str(form.get("folder")))
                params = {"source": "folder", "path": str(path), "name": _check_ds_name(name or path.name),
                          "labels": labels, "skip_bad": skip_bad}
                form.cleanup()
            else:
                up = form.file("file")
                if up is None:
                    raise InvalidInput(t_of(request)("import.no_file"))
                if source == "table":
                    suffix = safe_suffix(up.raw_name, TABLE_SUFFIXES)
                    params = {"source": "table", "suffix": suffix}
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
        return done(request, f"/jobs/{job_id}", job=job_id)

    # -- datasets ----------------------------------------------------------------
    @app.get("/datasets/{name}", response_class=HTMLResponse)
    def dataset_latest(request: Request, name: str):
        ds = ws.dataset(name)
        return RedirectResponse(f"/datasets/{ds.name}/{ds.version}", status_code=303)

    @app.get("/datasets/{name}/{version}", response_class=HTMLResponse)
    def dataset_page(request: Request, name: str, version: int, page: int = 1, label: str = ""):
        ds = dataset_or_404(name, version)
        versions = [d for d in ws.datasets() if d.name == ds.name]
        ctx: dict[str, Any] = dict(nav="data", ds=ds, versions=versions, page=max(1, page), label_filter=label)
        if ds.kind == "table":
            ctx.update(_table_view(ws, ds, max(1, page)))
        else:
            ctx.update(_signal_view(store, ds, signal_tables(ds), max(1, page), label))
        return render(request, "dataset.html", **ctx)

    @app.get("/datasets/{name}/{version}/thumb/{idx}.png")
    def thumb(request: Request, name: str, version: int, idx: int):
        from .media import thumbnail

        ds = dataset_or_404(name, version)
        files = signal_tables(ds) if ds.kind == "signal" else None
        if files is None or not 0 <= idx < len(files) or not files["sha"].iloc[idx]:
            raise NotFound("No such recording.")
        path = thumbnail(ws, ds, files["file"].iloc[idx], files["sha"].iloc[idx])
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/datasets/{name}/{version}/audio/{idx}")
    def audio(request: Request, name: str, version: int, idx: int):
        from .media import AUDIO_TYPES

        ds = dataset_or_404(name, version)
        files = signal_tables(ds) if ds.kind == "signal" else None
        if files is None or not 0 <= idx < len(files) or not files["sha"].iloc[idx]:
            raise NotFound("No such recording.")
        suffix = Path(files["file"].iloc[idx]).suffix.lower()
        if suffix not in AUDIO_TYPES:
            raise NotFound("This recording is not an audio file.")
        return FileResponse(ws.blob_path(files["sha"].iloc[idx]), media_type=AUDIO_TYPES[suffix],
                            headers={"Cache-Control": "private, max-age=86400"})

    # -- labelling ---------------------------------------------------------------
    @app.get("/label/{name}/{version}", response_class=HTMLResponse)
    def label_page(request: Request, name: str, version: int, page: int = 1, filter: str = ""):
        require(request, "labeler")
        ds = dataset_or_404(name, version)
        if ds.kind != "signal":
            raise PageError(400, "label.only_recordings")
        files = signal_tables(ds)
        layer = store.current_labels(ds.id)
        items = []
        for i, (f, lab) in enumerate(zip(files["file"], files["label"])):
            imported = None if lab is None or lab != lab else str(lab)
            current = layer[f] if f in layer else imported
            if filter == "unlabelled" and current is not None:
                continue
            items.append({"idx": i, "file": f, "label": current, "audio": Path(f).suffix.lower() in (".wav", ".flac", ".ogg")})
        pages = max(1, math.ceil(len(items) / 100))
        page = min(max(1, page), pages)
        shown = items[(page - 1) * 100: page * 100]
        label_set = sorted({str(v) for v in files["label"].dropna()} | {v for v in layer.values() if v})
        _, n_layer = store.labels_version(ds.id)
        js = {"dataset": f"{ds.name}/{ds.version}", "items": shown, "labels": label_set[:9],
              "base": f"/datasets/{ds.name}/{ds.version}", "post": f"/label/{ds.name}/{ds.version}",
              "messages": t_of(request).subset("label.js.")}
        return render(request, "label.html", nav="data", ds=ds, page=page, pages=pages, filter=filter,
                      n_items=len(files), n_shown=len(items), n_layer=n_layer, labels=label_set[:9], js=js,
                      items=shown)

    @app.post("/label/{name}/{version}")
    async def label_post(request: Request, name: str, version: int):
        user = require(request, "labeler")
        form = await form_of(request)
        ds = dataset_or_404(name, version)
        if ds.kind != "signal":
            raise PageError(400, "label.only_recordings")
        item = str(form.get("item"))
        raw = form.get("label")
        label = None if raw in (None, "") else str(raw).strip()
        if label is not None and (len(label) > 100 or not label or any(ord(c) < 32 for c in label)):
            raise InvalidInput("A label is 1-100 characters without control characters.")
        files = await run_in_threadpool(signal_tables, ds)
        if item not in set(files["file"]):
            raise NotFound("No such item in this dataset.")
        row_id = await run_in_threadpool(store.add_label, ds.id, item, label, user["name"])
        _, n = await run_in_threadpool(store.labels_version, ds.id)
        return JSONResponse({"ok": True, "id": row_id, "item": item, "label": label, "saved": n})

    @app.post("/label/{name}/{version}/apply")
    async def label_apply(request: Request, name: str, version: int):
        user = require(request, "labeler")
        await form_of(request)
        ds = dataset_or_404(name, version)
        if ds.kind != "signal":
            raise PageError(400, "label.only_recordings")
        job_id = runner.start("relabel", {"dataset": ds.ref}, user["name"])
        return done(request, f"/jobs/{job_id}", job=job_id)

    # -- training ----------------------------------------------------------------
    @app.get("/train", response_class=HTMLResponse)
    def train_page(request: Request, dataset: str = ""):
        require(request, "admin")
        all_ds = ws.datasets()
        info = {d.ref: _train_info(d) for d in all_ds}
        latest = _latest_by_name(all_ds)
        chosen = dataset if dataset in info else (latest[0].ref if latest else "")
        return render(request, "train.html", nav="train", datasets=all_ds, chosen=chosen,
                      js={"datasets": info, "messages": t_of(request).subset("train.js.")}, budgets=BUDGETS)

    @app.post("/train")
    async def train_post(request: Request):
        user = require(request, "admin")
        form = await form_of(request)
        ds = ws.dataset(str(form.get("dataset")))
        task = str(form.get("task") or "auto")
        if task not in ("auto", "classification", "regression", "anomaly"):
            raise InvalidInput(f"Unknown task {task!r}.")
        budget = str(form.get("budget") or "60")
        from ..automl.budget import parse_duration

        seconds = parse_duration(budget)
        if not 5 <= seconds <= 24 * 3600:
            raise InvalidInput("The budget must be between 5 seconds and 24 hours.")
        params = {"dataset": ds.ref, "task": task, "budget": seconds,
                  "name": _check_model_name(str(form.get("name") or "").strip() or ds.name)}
        if ds.kind == "table":
            target = str(form.get("target") or "")
            if target not in ds.column_kinds():
                raise InvalidInput(t_of(request)("train.need_target"))
            params["target"] = target
        else:
            params["normal_label"] = str(form.get("normal_label") or "normal")[:100]
            try:
                mfa = float(form.get("max_false_alarm") or 0.01)
            except ValueError:
                raise InvalidInput("The false-alarm rate must be a number such as 0.01.") from None
            if not 0 < mfa < 1:
                raise InvalidInput("The false-alarm rate must be between 0 and 1.")
            params["max_false_alarm"] = mfa
        job_id = runner.start("train", params, user["name"])
        return done(request, f"/jobs/{job_id}", job=job_id)

    # -- jobs --------------------------------------------------------------------
    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: int):
        job = _job_view(runner.get(job_id))
        return render(request, "job.html", nav="home", job=job,
                      js={"job": job, "events": f"/jobs/{job_id}/events",
                          "messages": t_of(request).subset("job.js.")})

    @app.get("/jobs/{job_id}/events")
    async def job_events(request: Request, job_id: int):
        await run_in_threadpool(runner.get, job_id)  # 404 before the stream starts

        async def stream():
            last = None
            started = time.monotonic()
            yield "retry: 2000\n\n"
            while time.monotonic() - started < 3600:
                job = _job_view(await run_in_threadpool(runner.get, job_id))
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

    @app.post("/jobs/{job_id}/cancel")
    async def job_cancel(request: Request, job_id: int):
        require(request, "labeler")
        await form_of(request)
        job = await run_in_threadpool(runner.get, job_id)
        if job["kind"] == "train":
            require(request, "admin")
        await run_in_threadpool(runner.cancel, job_id)
        return done(request, f"/jobs/{job_id}", job=job_id)

    # -- models ------------------------------------------------------------------
    @app.get("/models", response_class=HTMLResponse)
    def models_page(request: Request):
        groups: dict[str, list] = {}
        for m in ws.models():
            groups.setdefault(m.name, []).append(_model_view(m))
        for v in groups.values():
            v.reverse()
        return render(request, "models.html", nav="models", groups=groups, token=None)

    @app.get("/models/{name}", response_class=HTMLResponse)
    def model_latest(request: Request, name: str):
        m = ws.model(name)
        return RedirectResponse(f"/models/{m.name}/{m.version}", status_code=303)

    @app.get("/models/{name}/{version}", response_class=HTMLResponse)
    def model_page(request: Request, name: str, version: int):
        m = model_or_404(name, version)
        view = _model_view(m, full=True)
        js: dict[str, Any] = {"messages": t_of(request).subset("model.js.")}
        if m.task == "anomaly":
            hold = m.holdout()
            if "scores" in hold and len(hold["scores"]):
                js["holdout"] = {"y_true": [int(v) for v in hold["y_true"]],
                                 "scores": [float(v) for v in hold["scores"]],
                                 "threshold": float(m.manifest.get("threshold"))}
        return render(request, "model.html", nav="models", m=view, js=js)

    @app.get("/models/{name}/{version}/report")
    def model_report(request: Request, name: str, version: int):
        m = model_or_404(name, version)
        path = ws.root / "reports" / f"{m.name}-v{m.version}" / "report.html"
        if not path.is_file():
            path, _ = m.write_report()
        return FileResponse(path, media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": REPORT_CSP})

    @app.post("/models/{name}/{version}/threshold")
    async def model_threshold(request: Request, name: str, version: int):
        user = require(request, "admin")
        form = await form_of(request)
        m = model_or_404(name, version)
        if m.task != "anomaly":
            raise InvalidInput(f"{m.ref} is a {m.task} model; only anomaly models have a threshold to move.")
        try:
            value = float(form.get("threshold"))
        except (TypeError, ValueError):
            raise InvalidInput("The threshold must be a number.") from None
        if not math.isfinite(value):
            raise InvalidInput("The threshold must be a finite number.")
        # a worker process registers the new version (so that it is recorded as made by this user)
        job_id = runner.start("threshold", {"model": m.ref, "threshold": value}, user["name"])
        return done(request, f"/jobs/{job_id}", job=job_id)

    @app.post("/models/{name}/{version}/promote")
    async def model_promote(request: Request, name: str, version: int):
        require(request, "admin")
        await form_of(request)
        m = model_or_404(name, version)
        for other in ws.models(m.name):
            if other.stage == "production" and other.version != m.version:
                ws.meta.set_model_stage(other.row["id"], "archived")
        ws.meta.set_model_stage(m.row["id"], "production")
        return done(request, f"/models/{m.name}/{m.version}", model=m.ref)

    @app.post("/tokens")
    async def token_create(request: Request):
        require(request, "admin")
        form = await form_of(request)
        name = str(form.get("name") or "").strip()[:100] or "ui"
        scope = str(form.get("scope") or "predict")
        token_id, plain = ws.create_token(name, scope)
        model = str(form.get("model") or "")
        groups: dict[str, list] = {}
        for m in ws.models():
            groups.setdefault(m.name, []).append(_model_view(m))
        for v in groups.values():
            v.reverse()
        return render(request, "models.html", nav="models", groups=groups,
                      token={"id": token_id, "name": name, "scope": scope, "value": plain,
                             "model": model if model in groups else next(iter(groups), "")})

    # -- try it --------------------------------------------------------------------
    @app.get("/predict", response_class=HTMLResponse)
    def predict_page(request: Request, model: str = ""):
        return render(request, "predict.html", nav="predict", models=[_model_view(m) for m in ws.models()],
                      chosen=model, result=None)

    @app.post("/predict", response_class=HTMLResponse)
    async def predict_post(request: Request):
        require(request, "viewer")
        form = await form_of(request, files=True)
        try:
            ref = str(form.get("model"))
            m = ws.model(ref)
            up = form.file("file")
            if up is None:
                raise InvalidInput(t_of(request)("predict.no_file"))
            result = await run_in_threadpool(_predict_file, ws, m, up)
        finally:
            form.cleanup()
        return render(request, "predict.html", nav="predict", models=[_model_view(x) for x in ws.models()],
                      chosen=m.ref, result=result)

    # -- users (admin) ---------------------------------------------------------------
    @app.get("/users", response_class=HTMLResponse)
    def users_page(request: Request):
        require(request, "admin")
        return render(request, "users.html", nav="users", users=store.list_users(), roles=ROLES)

    @app.post("/users")
    async def users_create(request: Request):
        require(request, "admin")
        form = await form_of(request)
        await run_in_threadpool(store.create_user, str(form.get("name")).strip(), str(form.get("password")),
                                str(form.get("role")))
        return done(request, "/users")

    @app.post("/users/{name}/disable")
    async def users_disable(request: Request, name: str):
        user = require(request, "admin")
        await form_of(request)
        if name == user["name"]:
            raise InvalidInput("You cannot disable your own account.")
        await run_in_threadpool(store.disable_user, name)
        return done(request, "/users")

    return app


# -- helpers (no app state) -------------------------------------------------------------
BUDGETS = (("30", 30), ("60", 60), ("120", 120), ("300", 300), ("600", 600), ("1800", 1800))


def _safe_next(nxt: str) -> str:
    """Only local paths: no scheme, no host, no '//' (open redirects)."""
    if not nxt or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return "/"
    parts = urlsplit(nxt)
    if parts.scheme or parts.netloc:
        return "/"
    return nxt


def _same_origin(request: Request, cfg: WebSettings) -> bool:
    origin = request.headers.get("origin")
    if not origin:
        ref = request.headers.get("referer")
        if not ref:
            return True  # not a browser form (browsers send Origin on POST); the CSRF token still applies
        p = urlsplit(ref)
        origin = f"{p.scheme}://{p.netloc}"
    if origin == "null":
        return False
    host = request.headers.get("host", "")
    own = {f"{request.url.scheme}://{host}".rstrip("/")}
    return origin.rstrip("/") in own or origin.rstrip("/") in cfg.extra_origins


def _latest_by_name(items) -> list:
    latest: dict[str, Any] = {}
    for x in items:
        if x.name not in latest or x.version > latest[x.name].version:
            latest[x.name] = x
    return sorted(latest.values(), key=lambda x: x.name.lower())


def _default_name(filename: str) -> str:
    import re

    stem = filename.rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "_", stem).strip("_.-") or "dataset"
    return stem[:100]


def _check_ds_name(name: str) -> str:
    from ..registry import check_name

    return check_name(name, "dataset")


def _check_model_name(name: str) -> str:
    from ..registry import check_name

    return check_name(name, "model")


def _num(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        if v != 0 and abs(v) < 10 ** -digits:
            return f"{v:.2e}"
        return f"{v:,.{digits}f}"
    return str(v)


def _sig(v, digits: int = 4) -> str:
    """A measurement with a few significant digits: 1,437, 5.659, 0.0123."""
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return _num(v)
    if abs(v) >= 10 ** digits:
        return f"{v:,.0f}"
    return f"{float(f'{v:.{digits}g}'):,.{max(0, digits - 1 - int(math.floor(math.log10(abs(v))))) if v else 0}f}".rstrip("0").rstrip(".") if v else "0"


def _pct(v, digits: int = 1) -> str:
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "–"
    return f"{v * 100:.{digits}f}%"


def _short(s, n: int = 12) -> str:
    s = str(s or "")
    return s[:n]


HEADLINE = ("auc", "roc_auc", "balanced_accuracy", "accuracy", "f1_macro", "r2", "rmse", "mae")


def _headline(m) -> tuple[str | None, float | None]:
    metrics = m.metrics or {}
    metric = (m.manifest or {}).get("metric")
    if metric in metrics and isinstance(metrics[metric], (int, float)):
        return metric, metrics[metric]
    for k in HEADLINE:
        if isinstance(metrics.get(k), (int, float)):
            return k, metrics[k]
    return None, None


def _model_view(m, full: bool = False) -> dict:
    man = m.manifest or {}
    data = man.get("data") or {}
    metric, value = _headline(m)
    view = {"name": m.name, "version": m.version, "ref": m.ref, "task": m.task, "stage": m.stage,
            "modality": man.get("modality", "tabular"), "metric": metric, "value": value,
            "dataset": data.get("dataset"), "dataset_version": data.get("version"),
            "created_at": m.row.get("created_at"), "created_by": m.row.get("created_by"),
            "learner": (man.get("learner") or {}).get("name"), "derived_from": (man.get("derived_from") or {}).get("model"),
            "threshold": man.get("threshold")}
    if full:
        training = man.get("training") or {}
        view.update(
            metrics={k: v for k, v in (m.metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            target=man.get("target"), labels=man.get("labels"), notes=training.get("notes") or [],
            budget_s=training.get("budget_s"), elapsed_s=training.get("elapsed_s"), trials=training.get("trials"),
            inputs=[c["name"] for c in (man.get("input_schema") or {}).get("columns", [])][:30],
            change=(man.get("derived_from") or {}).get("change"), package_sha=m.row.get("package_sha"),
            max_false_alarm=man.get("max_false_alarm"))
    return view


def _job_view(job: dict) -> dict:
    params = job.get("params") or {}
    result = job.get("result") or {}
    return {"id": job["id"], "kind": job["kind"], "state": job["state"], "progress": float(job.get("progress") or 0),
            "message": job.get("message") or "", "error": job.get("error"), "params": params,
            "live": result.get("live") or {}, "result": {k: v for k, v in result.items() if k != "live"},
            "created_at": job.get("created_at"), "updated_at": job.get("updated_at"),
            "subject": params.get("dataset") or params.get("model") or params.get("name") or params.get("filename") or ""}


def _train_info(ds) -> dict:
    """What the train page needs of a dataset: columns with kinds, suggested task, labels."""
    if ds.kind == "table":
        cols = []
        for c in ds.schema.get("columns", []):
            st = ds.stats.get(c["name"], {})
            cols.append({"name": c["name"], "kind": c["kind"], "unique": st.get("unique"), "missing": st.get("missing")})
        return {"kind": "table", "name": ds.name, "columns": cols}
    labels = sorted((ds.stats.get("labels") or {}).keys())
    suggested = "anomaly" if (not labels or set(labels) <= {"normal"} or set(labels) == {"normal", "abnormal"}) \
        else "classification"
    return {"kind": "signal", "name": ds.name, "labels": labels, "suggested": suggested}


def _table_view(ws, ds, page: int) -> dict:
    import pyarrow.parquet as pq

    path = ws.blob_path(ds.data_sha)
    pf = pq.ParquetFile(path)
    n = pf.metadata.num_rows
    pages = max(1, math.ceil(n / PAGE))
    page = min(page, pages)
    start = (page - 1) * PAGE
    cols = [c["name"] for c in ds.schema.get("columns", [])][:40]
    rows: list[list] = []
    # read only the row groups that hold this page
    offset = 0
    for g in range(pf.num_row_groups):
        size = pf.metadata.row_group(g).num_rows
        if offset + size > start and offset < start + PAGE:
            tbl = pf.read_row_group(g, columns=cols).to_pandas()
            lo, hi = max(0, start - offset), min(size, start + PAGE - offset)
            for rec in tbl.iloc[lo:hi].itertuples(index=False):
                rows.append([_cell(v) for v in rec])
        offset += size
        if offset >= start + PAGE:
            break
    stats = []
    for c in ds.schema.get("columns", []):
        st = ds.stats.get(c["name"], {})
        top = list((st.get("counts") or {}).items())[:5]
        stats.append({"name": c["name"], "kind": c["kind"], "missing": st.get("missing", 0),
                      "unique": st.get("unique"), "min": st.get("min"), "max": st.get("max"),
                      "mean": st.get("mean"), "top": top, "n_counts": len(st.get("counts") or {})})
    return {"columns": cols, "rows": rows, "stats": stats, "pages": pages, "page": page, "n": n, "first": start}


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:
            return ""
        return f"{v:.6g}"
    return str(v)[:200]


def _signal_view(store, ds, files, page: int, label: str) -> dict:
    layer = store.current_labels(ds.id)
    rows = []
    for i, (f, lab, dur) in enumerate(zip(files["file"], files["label"], files["duration_s"])):
        imported = None if lab is None or lab != lab else str(lab)
        current = layer[f] if f in layer else imported
        if label == "__unlabelled__" and current is not None:
            continue
        if label and label != "__unlabelled__" and current != label:
            continue
        rows.append({"idx": i, "file": f, "label": current, "changed": f in layer and layer[f] != imported,
                     "duration": float(dur), "audio": Path(f).suffix.lower() in (".wav", ".flac", ".ogg")})
    pages = max(1, math.ceil(len(rows) / PAGE))
    page = min(page, pages)
    counts: dict[str, int] = {}
    unlabelled = 0
    for f, lab in zip(files["file"], files["label"]):
        imported = None if lab is None or lab != lab else str(lab)
        cur = layer[f] if f in layer else imported
        if cur is None:
            unlabelled += 1
        else:
            counts[cur] = counts.get(cur, 0) + 1
    return {"files": rows[(page - 1) * PAGE: page * PAGE], "pages": pages, "page": page, "n_match": len(rows),
            "label_counts": dict(sorted(counts.items())), "unlabelled": unlabelled, "layer_changes": len(layer)}


def _predict_file(ws, m, up) -> dict:
    from ..modalities.tabular_io import open_table, read_table

    if m.manifest.get("modality") == "signal":
        safe_suffix(up.raw_name, RECORDING_SUFFIXES)
        data = up.path.read_bytes()
        row = m.predictor.predict_bytes(data, up.filename)
        return {"kind": "signal", "task": m.task, "file": up.filename, "row": row}
    suffix = safe_suffix(up.raw_name, TABLE_SUFFIXES)
    path = up.path.with_name(f"input{suffix}")
    up.path.rename(path)
    df = read_table(open_table(path, ws.settings), ws.settings)
    if len(df) > ws.settings.max_records_per_request:
        raise TooLarge(f"{len(df):,} rows in one file; the limit here is {ws.settings.max_records_per_request:,}.",
                       hint="Use `modelfab predict` for large files.")
    pred = m.predict(df)
    shown = pred.head(200)
    inputs = [c for c in df.columns if c != (m.manifest.get("target"))][:6]
    cols = list(shown.columns) + inputs
    rows = []
    for i in range(len(shown)):
        rows.append([_cell(shown.iloc[i][c]) for c in shown.columns] + [_cell(df.iloc[i][c]) for c in inputs])
    return {"kind": "table", "task": m.task, "file": up.filename, "columns": cols, "rows": rows, "n": len(pred),
            "n_pred_cols": len(shown.columns)}

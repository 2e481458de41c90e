"""What every page module of the UI shares: the workspace, stores, templates and request helpers.

``Site`` is built once by ``create_web_app``; the page modules under ``routes/``
take it and return their ``APIRouter``.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..errors import InvalidInput, NotFound, Unauthorized
from .config import WebSettings
from .i18n import LANGUAGES, Translator
from .store import ROLE_RANK
from .uploads import Form, read_form
from .quality import weak_text
from .views import metric, num, pct, short, sig

HERE = Path(__file__).parent
SESSION_COOKIE = "mf_session"
PRE_CSRF_COOKIE = "mf_precsrf"
LANG_COOKIE = "mf_lang"


class PageError(Exception):
    """An error shown as a page (or JSON) with a translated title."""

    def __init__(self, status: int, key: str, detail: str = "") -> None:
        super().__init__(key)
        self.status, self.key, self.detail = status, key, detail


def here(request: Request) -> str:
    """The page's own address, path and query, as a local URL (percent-encoded): the language switch comes back here."""
    path = quote(request.url.path, safe="/:@!$&'()*+,;=-._~")
    query = request.url.query
    return f"{path}?{query}" if query else path


class Site:
    def __init__(self, ws, cfg: WebSettings, store, runner, version: str) -> None:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        self.ws, self.cfg, self.store, self.runner, self.version = ws, cfg, store, runner, version
        self.env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                               autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(num=num, pct=pct, short=short, sig=sig, metric=metric)
        self.env.globals.update(weak_text=weak_text)
        self.tables_cache: dict[int, Any] = {}
        self.deployments = None  # set by create_web_app (deploy.Deployments)

    # -- requests ------------------------------------------------------------
    @staticmethod
    def t_of(request: Request) -> Translator:
        return request.state.t

    def render(self, request: Request, template: str, status: int = 200, **ctx) -> HTMLResponse:
        t = self.t_of(request)
        user = getattr(request.state, "user", None)
        session = getattr(request.state, "session", None)
        base = dict(t=t, lang=t.lang, languages=LANGUAGES, user=user, version=self.version,
                    csrf=session["csrf_token"] if session else request.state.pre_csrf,
                    can=lambda role: bool(user) and ROLE_RANK[user["role"]] >= ROLE_RANK[role],
                    path=here(request), nav=ctx.pop("nav", ""))
        js = dict(ctx.pop("js", None) or {})
        js["messages"] = dict(js.get("messages") or {}, **t.subset("common.js."))
        base.update(ctx, js=js)
        html = self.env.get_template(template).render(**base)
        resp = HTMLResponse(html, status_code=status)
        if session is None and request.cookies.get(PRE_CSRF_COOKIE) != request.state.pre_csrf:
            self.set_cookie(request, resp, PRE_CSRF_COOKIE, request.state.pre_csrf, max_age=3600 * 12)
        return resp

    def set_cookie(self, request: Request, resp: Response, key: str, value: str, max_age: int | None = None) -> None:
        secure = self.cfg.secure_cookies or request.url.scheme == "https"
        resp.set_cookie(key, value, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/")

    @staticmethod
    def wants_json(request: Request) -> bool:
        return "application/json" in request.headers.get("accept", "") or request.headers.get("x-requested-with") == "fetch"

    def require(self, request: Request, role: str) -> dict:
        user = request.state.user
        if user is None:
            raise Unauthorized("Please log in.")
        if ROLE_RANK[user["role"]] < ROLE_RANK[role]:
            t = self.t_of(request)
            raise PageError(403, "error.forbidden_role", t("error.needs_role", role=t(f"role.{role}")))
        return user

    async def form_of(self, request: Request, *, files: bool = False) -> Form:
        """Read the body (files into the workspace) and check the CSRF token: every POST calls this."""
        form = await read_form(request, self.ws, max_file_bytes=self.cfg.max_upload_bytes if files else 0,
                               max_form_bytes=self.cfg.max_form_bytes)
        session = request.state.session
        expected = session["csrf_token"] if session else request.cookies.get(PRE_CSRF_COOKIE, "")
        got = request.headers.get("x-csrf-token") or str(form.get("csrf_token") or "")
        if not expected or not got or not hmac.compare_digest(expected.encode(), got.encode()):
            form.cleanup()
            raise PageError(403, "error.csrf")
        return form

    def done(self, request: Request, url: str, **payload) -> Response:
        if self.wants_json(request):
            return JSONResponse(dict(payload, url=url))
        return RedirectResponse(url, status_code=303)

    # -- lookups ---------------------------------------------------------------
    def dataset_or_404(self, name: str, version: int):
        try:
            return self.ws.dataset(f"{name}:{int(version)}")
        except (InvalidInput, ValueError):
            raise NotFound("No such dataset.") from None

    def model_or_404(self, name: str, version: int):
        try:
            return self.ws.model(f"{name}:{int(version)}")
        except (InvalidInput, ValueError):
            raise NotFound("No such model.") from None

    def cached(self, key, build):
        """``build()`` once per key (a dataset version's tables), kept for the next requests (at most 17 kept)."""
        cache = self.tables_cache
        if key not in cache:
            value = build()
            if len(cache) > 16:
                cache.clear()
            cache[key] = value
        return cache[key]

    def signal_tables(self, ds):
        """The files table of a recordings dataset (with each file's blob sha), cached per dataset version."""
        def build():
            from ..recordings import load_signal_tables

            feats, files = load_signal_tables(self.ws, ds)
            refs = self.ws.meta.blob_refs(f"datasets:{ds.id}")
            files = files.reset_index(drop=True)
            files["sha"] = [refs.get(f"file:{f}") for f in files["file"]]
            return files

        return self.cached(ds.id, build)

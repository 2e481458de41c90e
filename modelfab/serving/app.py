"""The REST server: ``create_app(workspace, models)``. No work at import time."""

from __future__ import annotations

import json
import logging
import time
import uuid

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from ..errors import InvalidInput, ModelfabError, NotFound, TooLarge, UnsupportedFormat
from .failures import known_error as _known_error
from .failures import safe_text as _safe_text
from .files import _as_prediction, _score_upload  # noqa: F401  (predict-file; tests reach them here)

from .schemas import (  # noqa: F401  (the shapes of the answers; importable from here as before)
    PREDICT_BODY, ErrorBody, ErrorResponse, PredictFileResponse, Prediction, PredictResponse)

log = logging.getLogger("modelfab.serving")

PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json")
DOCS_ASSETS = "/docs-assets"  # Swagger UI's script and style, from the fastapi-offline package (no CDN)
DOCS_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


class _Guard:
    """Every request: request id, body-size limit, bearer token, metrics, one JSON log line, and no
    stack trace in a response. A plain ASGI middleware (Starlette's BaseHTTPMiddleware costs about
    a millisecond per request, more than the prediction of one row)."""

    def __init__(self, app, *, ws, settings, metrics, models, auth: bool) -> None:
        self.app, self.ws, self.settings, self.metrics, self.models, self.auth = app, ws, settings, metrics, models, auth

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        path = scope.get("path", "")
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = 0
        limit = self.settings.max_upload_bytes if path.endswith("/predict-file") else self.settings.max_request_bytes
        if length > limit:
            setting = "MODELFAB_MAX_UPLOAD_BYTES" if path.endswith("/predict-file") else "MODELFAB_MAX_REQUEST_BYTES"
            exc = TooLarge(f"Request body is {length:,} bytes; the limit is {limit:,}.",
                           hint=("Send a smaller file (split it), " if path.endswith("/predict-file") else
                                 "Send fewer records per request, ") + f"or raise {setting} on the server.")
            self._log(request_id, scope, exc.http_status, start)
            return await _error(exc, request_id)(scope, receive, send)
        if self.auth and path not in PUBLIC_PATHS and not path.startswith(DOCS_ASSETS + "/"):
            header = headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            try:
                if header.strip() and not token and header.strip().lower() != "bearer":  # a bare token, 'Token x'
                    from ..errors import Unauthorized

                    raise Unauthorized("The Authorization header must read 'Bearer <token>'; got a header without "
                                       "'Bearer '.", hint="Send 'Authorization: Bearer mf_...' (curl: -H "
                                                          "'Authorization: Bearer mf_...').")
                self.ws.check_token(token, "predict")
            except Exception as exc:  # a refused token, or the database behind it down (a JSON 503, not a 500)
                known = exc if isinstance(exc, ModelfabError) else _known_error(exc)
                if known is None:  # unknown: a JSON 500 with the request id, the traceback in one log line
                    log_error(request_id=request_id, method=scope.get("method"), path=path, error=_safe_text(exc))
                    known = ModelfabError(f"Internal error ({type(exc).__name__}); see the server log, request id "
                                          f"{request_id}.")
                    known.code = "internal"
                elif not isinstance(exc, ModelfabError):
                    _log_known(request_id, scope, known)
                self._log(request_id, scope, known.http_status, start)
                return await _error(known, request_id)(scope, receive, send)
        status = {"code": 500, "started": False}
        rid = request_id.encode("latin-1", "replace")

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                message = dict(message, headers=[*message.get("headers", []), (b"x-request-id", rid)])
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # never a stack trace in a response
            known = _known_error(exc)  # the database down, a body nested too deep, ...: said as such
            if known is not None and not status["started"]:
                _log_known(request_id, scope, known)
                status["code"] = known.http_status
                await _error(known, request_id)(scope, receive, send)
                self._log(request_id, scope, status["code"], start)
                return
            log_error(request_id=request_id, method=scope.get("method"), path=path,
                      error=_safe_text(exc))
            if not status["started"]:
                status["code"] = 500
                await JSONResponse(status_code=500, content={"error": {
                    "code": "internal", "hint": None,
                    "message": f"Internal error ({type(exc).__name__}); see the server log, request id {request_id}."}},
                    headers={"X-Request-ID": request_id})(scope, receive, send)
        self._log(request_id, scope, status["code"], start)

    def _log(self, request_id: str, scope, status: int, start: float) -> None:
        """The request's metrics and its one log line (also for requests refused before they reach a route)."""
        path = scope.get("path", "")
        self.metrics.observe(path, status, time.perf_counter() - start, self.models.models)
        if log.isEnabledFor(logging.INFO):
            log.info(json.dumps({"request_id": request_id, "method": scope.get("method"), "path": path,
                                 "status": status, "ms": round((time.perf_counter() - start) * 1000, 2)}))


def _log_known(request_id: str, scope, exc: ModelfabError) -> None:
    """One JSON line for an error with a known cause (no traceback: the message says it all)."""
    log.error(json.dumps({"request_id": request_id, "method": scope.get("method"), "path": scope.get("path", ""),
                          "status": exc.http_status, "error": exc.code, "message": exc.message}))


def log_error(**fields) -> None:
    """One JSON line for the exception being handled: ``fields`` plus its traceback (the log stays JSON)."""
    import traceback

    log.error(json.dumps({**fields, "traceback": traceback.format_exc()[-4000:]}))


def configure_request_log(stream=None) -> None:
    """Send the server's log (one JSON line per request, errors with their request id) to stdout, as uvicorn's
    access log would go (a container's log collector reads it); done by ``modelfab serve`` and by each worker
    process, never at import."""
    import sys

    if any(getattr(h, "_modelfab", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._modelfab = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


# what to do when the error itself does not say (every 4xx answer carries a hint)
DEFAULT_HINTS = {
    404: "GET /v1/models lists the models this server serves.",
    413: "Send less in one request (the limits are the server's MODELFAB_MAX_* settings).",
    415: "GET /v1/models/NAME says what this model takes: JSON records to /predict, a file to /predict-file.",
    422: "GET /v1/models/NAME describes the input this model takes; /docs has examples.",
}


def _error(exc: ModelfabError, request_id: str) -> JSONResponse:
    body = exc.to_dict()
    if not body.get("hint") and exc.http_status in DEFAULT_HINTS:
        body["hint"] = DEFAULT_HINTS[exc.http_status]
    return JSONResponse(status_code=exc.http_status, content={"error": body}, headers={"X-Request-ID": request_id})


def _request_error(exc, path: str) -> InvalidInput:
    """FastAPI's validation errors as one InvalidInput: what was expected where, and how to send it."""
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    if path.endswith("/predict-file"):
        hint = "Send multipart/form-data with the file in a field named 'file', e.g. curl -F file=@part.png URL."
    else:
        hint = "Send a JSON body as in /docs, e.g. {\"records\": [{...}]}, with Content-Type: application/json."
    return InvalidInput("The request does not match what this route expects: " + "; ".join(parts) + ".", hint=hint)


def create_app(ws, model_refs: list[str] | None = None, *, auth: bool = True, settings=None,
               reload_interval: float = 2.0) -> FastAPI:
    """An app serving the given models (``NAME`` = latest version, ``NAME:VERSION``), or, with no
    models named, every production model of the workspace, following promotions."""
    import asyncio
    from contextlib import asynccontextmanager

    from starlette.concurrency import run_in_threadpool

    from .. import __version__
    from .health import StoreHealth, readiness
    from .metrics import Metrics
    from .models import ModelSet

    settings = settings or ws.settings
    models = ModelSet(ws, model_refs)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app):
        task = None
        said: dict = {}
        if models.follow_production:
            async def follow():
                while True:
                    await asyncio.sleep(reload_interval)
                    try:
                        await run_in_threadpool(models.refresh)
                        said["refresh"] = None
                    except Exception as exc:  # keep serving whatever happens to the database
                        known = _known_error(exc)
                        if known is None:
                            log_error(event="refresh failed")
                        elif said.get("refresh") != known.message:  # once per cause, not every 2 s
                            said["refresh"] = known.message
                            log.error(json.dumps({"event": "refresh failed", "error": known.code,
                                                  "message": known.message}))
            task = asyncio.create_task(follow())
        yield
        if task:
            task.cancel()

    app = FastAPI(title="modelfab", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Predictions from models trained and registered with modelfab. "
                              "Send `Authorization: Bearer <token>` (see `modelfab tokens create`).")
    app.state.models = models

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "A token from `modelfab tokens create`."}}
            if auth:
                schema["security"] = [{"bearerAuth": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    app.add_middleware(_Guard, ws=ws, settings=settings, metrics=metrics, models=models, auth=auth)

    @app.exception_handler(ModelfabError)
    async def on_modelfab_error(request: Request, exc: ModelfabError):
        return _error(exc, getattr(request.state, "request_id", ""))

    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):  # unknown route, wrong method
        rid = getattr(request.state, "request_id", "")
        if exc.status_code == 404:
            err = NotFound(f"No route {request.method} {request.url.path} on this server.",
                           hint="Routes: /v1/models, /v1/models/NAME, /v1/models/NAME/predict, "
                                "/v1/models/NAME/predict-file, /healthz, /readyz, /metrics, /docs.")
        else:
            err = ModelfabError(f"{request.method} {request.url.path}: {exc.detail}.",
                                hint="See /docs for the routes and their methods.")
            err.code, err.http_status = ("method_not_allowed" if exc.status_code == 405 else "http_error",
                                         exc.status_code)
        return _error(err, rid)

    @app.exception_handler(RequestValidationError)
    async def on_bad_request(request: Request, exc: RequestValidationError):  # FastAPI's own checks, same shape
        return _error(_request_error(exc, request.url.path), getattr(request.state, "request_id", ""))

    @app.get("/docs", include_in_schema=False)
    def swagger_ui():
        """The API page, with Swagger UI served from this server: a plant without internet sees it too
        (FastAPI's default loads it from a CDN)."""
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/openapi.json", title="modelfab API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")

    @app.get(DOCS_ASSETS + "/{name}", include_in_schema=False)
    def docs_asset(name: str):
        from pathlib import Path

        import fastapi_offline
        from fastapi.responses import FileResponse

        if name not in DOCS_FILES:  # a fixed list: no path from the request reaches the file system
            raise NotFound(f"No such file: {name}.")
        path = Path(fastapi_offline.__file__).parent / "static" / name
        media = {"js": "text/javascript", "css": "text/css", "png": "image/png"}[name.rsplit(".", 1)[1]]
        return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        return {"status": "ok"}

    store_health = StoreHealth(ws.meta)

    @app.get("/readyz", tags=["health"])
    def readyz():
        """200 when a model is loaded and the metadata store answers; 503 with the reason otherwise."""
        code, body = readiness(models, store_health)
        return JSONResponse(status_code=code, content=body)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def prometheus():
        from fastapi.responses import Response

        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/v1/models", tags=["models"])
    def list_models() -> dict:
        return {"models": [_describe(m) for m in models.models.values()]}

    @app.get("/v1/models/{name}", tags=["models"], responses={404: {"model": ErrorResponse}})
    def get_model(name: str) -> dict:
        return _describe(_get(name))

    def _get(name: str):
        return models.get(name)

    @app.post("/v1/models/{name}/predict", tags=["predict"], response_model=PredictResponse,
              openapi_extra=PREDICT_BODY,
              responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
                         415: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
    async def predict(name: str, request: Request):
        m = _get(name)
        records = await _read_records(request, settings)
        from starlette.concurrency import run_in_threadpool

        try:
            if len(records) == 1 and getattr(m.predictor, "fast_single", False):
                preds = m.predictor.predict_records(records)  # sub-millisecond: cheaper than a thread hop
            else:
                preds = await run_in_threadpool(m.predictor.predict_records, records)
        except InvalidInput as exc:  # file-only models name the route with a {name} placeholder: fill it in
            if "{name}" not in exc.message:
                raise
            raise InvalidInput(exc.message.replace("{name}", m.name), hint=exc.hint) from None
        # The answer is built by the predictor in the documented shape (PredictResponse, checked by the
        # schema fuzz test): serialised directly instead of re-validated field by field (a 100-record
        # batch spent more time there than in the trees).
        body = json.dumps({"model": m.name, "version": m.version, "predictions": preds}, ensure_ascii=False,
                          allow_nan=False, separators=(",", ":"))
        return Response(body.encode("utf-8"), media_type="application/json")

    @app.post("/v1/models/{name}/predict-file", tags=["predict"],
              responses={200: {"model": PredictFileResponse},
                         401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
                         415: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
    async def predict_file(name: str, request: Request,
                           file: UploadFile = File(..., description="A recording (WAV/FLAC/OGG/.mat/.npy/CSV), an image, a file of series, or a CSV/Parquet table.")):
        """Score an uploaded file: a recording, an image or a file of series for those models, a CSV/Parquet
        table for table models. One file per request. The answer's `predictions` holds one row per scored
        item (one for a recording or an image)."""
        m = _get(name)
        sent = (await request.form()).getlist("file")
        if len(sent) > 1:
            raise InvalidInput(f"Got {len(sent)} files in one request; /predict-file scores one file per request.",
                               hint="Send each file in its own request (several in parallel are fine).")
        data = bytearray()
        while chunk := await file.read(1 << 20):
            data.extend(chunk)
            if len(data) > settings.max_upload_bytes:
                raise TooLarge(f"Upload exceeds the limit of {settings.max_upload_bytes:,} bytes.",
                               hint="Split the file, or raise MODELFAB_MAX_UPLOAD_BYTES on the server.")
        from starlette.concurrency import run_in_threadpool

        result = await run_in_threadpool(_score_upload, m, bytes(data), file.filename or "", settings)
        return {"model": m.name, "version": m.version, **result}

    return app


async def _read_records(request: Request, settings) -> list[dict]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedFormat(f"Expected Content-Type application/json; got {ctype or 'none'!r}.",
                                hint="Send the records as JSON with 'Content-Type: application/json' (curl: --json, "
                                     "or -H 'Content-Type: application/json'); files go to /predict-file.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > settings.max_request_bytes:
            raise TooLarge(f"Request body exceeds the limit of {settings.max_request_bytes:,} bytes.",
                           hint="Send fewer records per request, or raise MODELFAB_MAX_REQUEST_BYTES on the server.")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"Request body is not valid JSON ({exc}).",
                           hint='Send UTF-8 JSON such as {"records": [{"column": value, ...}]}.') from None
    if isinstance(payload, dict) and "records" in payload:
        records = payload["records"]
    elif isinstance(payload, list):
        records = payload
    elif isinstance(payload, dict):
        key, value = next(iter(payload.items())) if len(payload) == 1 else (None, None)
        if isinstance(value, list) and (not value or all(isinstance(v, dict) for v in value)):
            raise InvalidInput(f"Expected the records under \"records\"; got them under {key!r}.",
                               hint='Send {"records": [{"column": value, ...}, ...]}.')
        records = [payload]
    else:
        raise InvalidInput("Expected a JSON object {\"records\": [...]} (or a list of records).",
                           hint='Send {"records": [{"column": value, ...}, ...]}.')
    if not isinstance(records, list) or not records:
        raise InvalidInput("Expected 'records' to be a non-empty list of JSON objects.",
                           hint='Send {"records": [{"column": value, ...}, ...]} with at least one record.')
    if len(records) > settings.max_records_per_request:
        raise TooLarge(f"{len(records):,} records in one request; the limit is {settings.max_records_per_request:,}.",
                       hint="Split the batch, or use `modelfab predict` for files.")
    return records


def _describe(m) -> dict:
    man = m.manifest
    inputs = man.get("input_schema", {}).get("columns", [])
    if man.get("modality") in ("signal", "image"):  # a file is the input (a recording classifier's schema lists
        inputs = [{"name": "image" if man["modality"] == "image" else "recording", "kind": "file"}]  # features)
    if man.get("modality") == "series":  # packages from before 2026-12-07 said "values" whatever the channels
        from ..modalities.series_model import series_input

        spec = man.get("series") or {}
        inputs = [series_input(spec.get("n_channels", 1), spec.get("channel_names"))]
    used = getattr(m.predictor, "used_columns", None) if man.get("modality", "tabular") == "tabular" else None
    if used is not None and len(used) < len(inputs):  # a text model kept alone: the other fields may be left out
        names = {c["name"] for c in used}
        inputs = [dict(c, required=c["name"] in names) for c in inputs]
    return {"name": m.name, "version": m.version, "task": m.task, "target": man.get("target"),
            "labels": man.get("labels"), "inputs": inputs,
            "metrics": {k: v for k, v in m.metrics.items() if isinstance(v, (int, float))}}


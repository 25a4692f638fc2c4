"""``create_app(settings)``: the FastAPI application and its start-up."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from api import admin, openai_compat
from api.access import KEY_MISSING, Access, bearer_token
from api.deps import get_grant, pipelines_of
from api.limits import BodyLimitMiddleware, RateLimitMiddleware, UploadSlots, route_path
from api.mcp import HttpEndpoint
from api.metrics import Metrics, MetricsMiddleware
from api.routes import mounted
from api.schemas import Status
from api.security import HostRule, RequestChecks, SecurityHeaders, public_url, scrub
from api.web import add_pages
from rag import __version__
from rag.collections import DEFAULT, folder
from rag.config import Settings
from rag.errors import NoIndexError, RagError
from rag.keys import KeyStore
from rag.pipeline import Pipeline
from rag.pipelines import Pipelines
from rag.sync import Syncer

log = logging.getLogger("rag.api")


def _load(app: FastAPI) -> None:
    """Load the models and the index in the background so /healthz answers at once."""
    pipeline: Pipeline = app.state.pipelines.default
    try:
        pipeline.load()  # the first load exports the cross-encoder (seconds, once)
    except NoIndexError as exc:
        log.warning("%s (uploads will create it)", exc)
    except Exception as exc:  # surfaced on /readyz instead of killing the server
        log.exception("start-up failed")
        app.state.load_error = str(exc)
        return
    app.state.ready.set()
    if app.state.syncer is not None:  # its first run catches up with the folders
        app.state.syncer.start()


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        # A message naming its own place (a filter's: rag.filters.explain) stands alone.
        parts.append(message if message.startswith((f"{where}.", f"{where}:"))
                     else f"{where}: {message}")
    return "; ".join(parts)


def _allowed_methods(routes: Sequence[BaseRoute], request: Request) -> list[str]:
    """Every method any route serves on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def _error(request: Request, status: int, message: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    """Our {"detail"} body; on the OpenAI-compatible paths, OpenAI's shape (and 400 where
    we would say 422, as OpenAI does for a malformed request)."""
    message = scrub(message, request.app.state.settings)
    if route_path(request.scope) in openai_compat.PATHS:
        status = 400 if status == 422 else status
        return JSONResponse(openai_compat.error_body(status, message), status_code=status,
                            headers=headers)
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _syncer(settings: Settings, pipelines: Pipelines) -> Syncer | None:
    """`rag serve --watch` (RAG_WATCH): the folders' sync into RAG_WATCH_COLLECTION, started
    once the index loads. The collection is looked up at each run: one not made yet fails
    its runs (GET /v1/sync and the log say so, and they are retried) until it is."""
    if not settings.watch:
        return None
    name = settings.watch_collection
    return Syncer(settings.watch, lambda paths: pipelines.get(name).ingest(paths, prune=True),
                  settings.sync_quiet_ms, ignore=folder(settings.index_dir, name))


def _openapi(app: FastAPI, access: Access) -> dict[str, Any]:
    """The schema, declaring the bearer scheme only while keys are required: a server without
    RAG_API_KEY and keys takes requests without one (and takes them once a key is made)."""
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(title=app.title, version=app.version,
                                         routes=app.routes)
    if access.required():
        return app.openapi_schema
    open_schema = copy.deepcopy(app.openapi_schema)
    open_schema.get("components", {}).pop("securitySchemes", None)
    for operations in open_schema["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
    return open_schema


def create_app(settings: Settings, pipeline: Pipeline | None = None,
               hosts: Sequence[str] = ()) -> FastAPI:
    """``hosts``: the addresses `rag serve --host` binds, which requests may name in their
    Host header besides RAG_HOST, the loopback names and RAG_ALLOWED_HOSTS (api.security)."""
    metrics = Metrics()
    rule = HostRule.of(settings, hosts)
    keys = KeyStore(settings.index_dir, settings.request_lock_wait_s)
    access = Access(settings, keys)
    mcp = HttpEndpoint(settings, rule, access)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pipelines = Pipelines(pipeline or Pipeline(settings))
        app.state.keys, app.state.access = keys, access
        app.state.ready = threading.Event()
        app.state.load_error = None
        app.state.search_lane = anyio.CapacityLimiter(settings.search_threads)
        app.state.upload_slots = UploadSlots(settings.max_concurrent_uploads)
        app.state.public_url = public_url(settings, hosts)
        app.state.syncer = _syncer(settings, app.state.pipelines)
        loader = threading.Thread(target=_load, args=(app,), name="rag-loader", daemon=True)
        loader.start()
        async with mcp.running(app.state):  # the MCP session manager lives as long as the app
            yield
        loader.join(timeout=1)
        if app.state.syncer is not None:
            await anyio.to_thread.run_sync(app.state.syncer.stop)

    # The docs pages are added by add_pages, from local files (FastAPI's load a CDN).
    app = FastAPI(title="rag: cited answers from your documents", version=__version__,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    add_pages(app, settings)
    # Every /v1 route asks who the request is (a key when RAG_API_KEY is set or keys were
    # made: api.access); OpenAPI declares the bearer scheme. The collection routes are
    # mounted twice: on the default collection, and on any by name.
    keyed = [Depends(get_grant)]
    routers = [admin.router, mounted("/v1"), mounted("/v1/collections/{collection}"),
               openai_compat.router]
    for included in routers:
        app.include_router(included, dependencies=keyed)
    # Included routes are not listed in app.router.routes.
    every_route = [*app.router.routes, *(r for included in routers for r in included.routes)]
    app.openapi = lambda: _openapi(app, access)  # type: ignore[method-assign]
    app.router.routes.append(mcp.route)  # MCP over streamable HTTP, behind the same keys
    # Added first, run last: the host and origin checks, just before the routes.
    app.add_middleware(RequestChecks, rule=rule)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.rate_limit_per_minute is not None:
        app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute,
                           burst=settings.rate_limit_burst)
    app.add_middleware(SecurityHeaders)  # added last, runs first: on every response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(every_route, request))
        return _error(request, exc.status_code, str(exc.detail), headers)

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        return _error(request, exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(request, 422, _validation_message(exc))

    @app.get("/healthz", response_model=Status)
    def healthz() -> Status:
        """The process is up: answers at once, while the index still loads."""
        return Status(status="ok")

    @app.get("/readyz", response_model=Status, responses={503: {"model": Status}})
    async def readyz(request: Request) -> Status | JSONResponse:
        """The index is loaded and answering; a 503 with the reason before that, or when
        there is no index yet. Open to all; the default collection's snapshot and size only to
        a request that may read it (a key scoped elsewhere learns nothing of it; a key this
        server has not verified yet on /v1 counts as none: an open route costs no scrypt)."""
        state = request.app.state
        if not state.ready.is_set():
            reason = scrub(state.load_error or "loading", settings)
            return JSONResponse({"status": reason}, status_code=503)
        try:
            index = pipelines_of(request).default.index
        except NoIndexError as exc:
            return JSONResponse({"status": scrub(str(exc), settings)}, status_code=503)
        grant = access.known(bearer_token(request.headers.get("authorization")))
        if grant is None or not grant.sees(DEFAULT):
            return Status(status="ready")
        docs, chunks = index.store.counts()
        return Status(status="ready", snapshot=index.snapshot, documents=docs, chunks=chunks)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        """Behind an admin key when keys are required, unless RAG_METRICS_PUBLIC opens it
        (its labels are route templates: no collection or document is named)."""
        if access.required() and not settings.metrics_public:
            grant = await access.grant(bearer_token(request.headers.get("authorization")))
            if grant is None or grant.role != "admin" or grant.collections is not None:
                return _error(request, 401, KEY_MISSING, {"WWW-Authenticate": "Bearer"})
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app

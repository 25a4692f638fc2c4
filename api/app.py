"""``create_app(settings)``: the FastAPI application and its start-up."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api import openai_compat
from api.deps import pipeline_of, require_api_key
from api.limits import BodyLimitMiddleware, RateLimitMiddleware, UploadSlots, route_path
from api.mcp import HttpEndpoint
from api.metrics import Metrics, MetricsMiddleware
from api.routes import router
from api.schemas import Status
from api.security import HostRule, RequestChecks, SecurityHeaders, public_url, scrub
from api.web import add_pages
from rag import __version__
from rag.config import Settings
from rag.errors import NoIndexError, RagError
from rag.pipeline import Pipeline
from rag.sync import Syncer

log = logging.getLogger("rag.api")


def _load(app: FastAPI) -> None:
    """Load the models and the index in the background so /healthz answers at once."""
    pipeline: Pipeline = app.state.pipeline
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
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method any route serves on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in [*app.router.routes, *router.routes]:  # included routes are not listed in app
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


def _syncer(settings: Settings, pipeline: Pipeline) -> Syncer | None:
    """`rag serve --watch` (RAG_WATCH): the folders' sync, started once the index loads."""
    if not settings.watch:
        return None
    return Syncer(settings.watch, lambda paths: pipeline.ingest(paths, prune=True),
                  settings.sync_quiet_ms, ignore=pipeline.root)


def create_app(settings: Settings, pipeline: Pipeline | None = None,
               hosts: Sequence[str] = ()) -> FastAPI:
    """``hosts``: the addresses `rag serve --host` binds, which requests may name in their
    Host header besides RAG_HOST, the loopback names and RAG_ALLOWED_HOSTS (api.security)."""
    metrics = Metrics()
    rule = HostRule.of(settings, hosts)
    mcp = HttpEndpoint(settings, rule)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pipeline = pipeline or Pipeline(settings)
        app.state.ready = threading.Event()
        app.state.load_error = None
        app.state.search_lane = anyio.CapacityLimiter(settings.search_threads)
        app.state.upload_slots = UploadSlots(settings.max_concurrent_uploads)
        app.state.public_url = public_url(settings, hosts)
        app.state.syncer = _syncer(settings, app.state.pipeline)
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
    # With a key, every /v1 route requires it and OpenAPI declares the bearer scheme.
    keyed = [Depends(require_api_key)] if settings.api_key else []
    app.include_router(router, dependencies=keyed)
    app.include_router(openai_compat.router, dependencies=keyed)
    app.router.routes.append(mcp.route)  # MCP over streamable HTTP, behind the same key as /v1
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
            headers["Allow"] = ", ".join(_allowed_methods(app, request))
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
    def readyz(request: Request) -> Status | JSONResponse:
        """The index is loaded and answering, with its snapshot and size; a 503 with the
        reason before that, or when there is no index yet."""
        state = request.app.state
        if not state.ready.is_set():
            reason = scrub(state.load_error or "loading", settings)
            return JSONResponse({"status": reason}, status_code=503)
        try:
            index = pipeline_of(request).index
        except NoIndexError as exc:
            return JSONResponse({"status": scrub(str(exc), settings)}, status_code=503)
        docs, chunks = index.store.counts()
        return Status(status="ready", snapshot=index.snapshot, documents=docs, chunks=chunks)

    # Behind the key like /v1 when one is set, unless RAG_METRICS_PUBLIC opens it.
    closed = settings.api_key is not None and not settings.metrics_public

    @app.get("/metrics", include_in_schema=False,
             dependencies=[Depends(require_api_key)] if closed else [])
    def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app

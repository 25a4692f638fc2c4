"""The web page (``GET /``, ``/static``) and the API docs (``/docs``, ``/redoc``), all from
files in installed packages: nothing is loaded from a CDN, so both work air-gapped.

The page is plain HTML, CSS and JavaScript in ``api/static/`` (no build step). Every URL in
it is relative, so it works under a reverse proxy's path prefix as at the root; the one
value it takes from the server, the formats its upload picker offers, is written into it
when the app is made (``rag.documents.readable_suffixes``: not typed twice). Swagger UI
and ReDoc come from the ``fastapi-offline`` wheel, which ships their bundles; FastAPI's own
``get_swagger_ui_html`` / ``get_redoc_html`` write the pages that load them, their URLs
prefixed with the request's root path as FastAPI's own docs pages do. None of these routes
is under /v1, so none needs the API key: the page asks for the key itself.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from rag.config import Settings
from rag.documents import readable_suffixes

STATIC = Path(__file__).with_name("static")
DOCS_ASSETS = Path(fastapi_offline.__file__).with_name("static")
DOCS_PREFIX = "/static/docs"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
# ReDoc's bundle draws its footer logo from a CDN, whatever its options: we serve the bundle
# with that address emptied (the <img> fails at once and hides itself, React's own onError).
REDOC_JS = "/docs/redoc.standalone.js"
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# And the browser may load nothing from another origin, should any other such address hide
# in a bundle. The page needs nothing but 'self'; the docs pages run inline scripts and
# styles and use data: icons.
PAGE_POLICY = "default-src 'self'; img-src 'self' data:"
DOCS_POLICY = "default-src 'self' 'unsafe-inline' data: blob:"
FORMATS = "{{ formats }}"  # in index.html: the upload picker's accept list
FAVICON = STATIC / "favicon.svg"


def _local_only(response: HTMLResponse, policy: str = DOCS_POLICY) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = policy
    return response


def page(settings: Settings) -> str:
    """index.html with the extensions the server reads written into the upload picker."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    if FORMATS not in html:
        raise RuntimeError(f"api/static/index.html lacks {FORMATS}")
    return html.replace(FORMATS, ",".join(sorted(readable_suffixes(settings.ocr))))


def _root(request: Request) -> str:
    """The path prefix a proxy serves us under (uvicorn's --root-path), "" at the root."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def add_pages(app: FastAPI, settings: Settings) -> None:
    """Mount the page and the offline docs on ``app`` (built with docs_url=redoc_url=None)."""
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{DOCS_PREFIX}/favicon.png"
    # The more specific mount first: routes are matched in order.
    app.mount(DOCS_PREFIX, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    index_html = page(settings)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(index_html, headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon_ico() -> FileResponse:  # for clients that ask without reading the page
        return FileResponse(FAVICON, media_type="image/svg+xml")

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        root = _root(request)
        return _local_only(get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_PREFIX}/swagger-ui.css",
            swagger_favicon_url=root + favicon, oauth2_redirect_url=root + OAUTH2_REDIRECT,
            # validatorUrl: no badge image from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None}))

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    redoc_js = (DOCS_ASSETS / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, b"")

    @app.get(REDOC_JS, include_in_schema=False)
    def redoc_bundle() -> Response:
        return Response(redoc_js, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return _local_only(get_redoc_html(
            openapi_url=root + openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=root + REDOC_JS, redoc_favicon_url=root + favicon,
            with_google_fonts=False))

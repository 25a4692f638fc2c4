"""The web page (``GET /``, ``/static``) and the API docs (``/docs``, ``/redoc``), all from
files in installed packages: nothing is loaded from a CDN, so both work air-gapped.

The page is plain HTML, CSS and JavaScript in ``api/static/`` (no build step). Swagger UI
and ReDoc come from the ``fastapi-offline`` wheel, which ships their bundles; FastAPI's own
``get_swagger_ui_html`` / ``get_redoc_html`` write the pages that load them. None of these
routes is under /v1, so none needs the API key: the page asks for the key itself.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

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


def _local_only(response: HTMLResponse, policy: str = DOCS_POLICY) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = policy
    return response


def add_pages(app: FastAPI) -> None:
    """Mount the page and the offline docs on ``app`` (built with docs_url=redoc_url=None)."""
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{DOCS_PREFIX}/favicon.png"
    # The more specific mount first: routes are matched in order.
    app.mount(DOCS_PREFIX, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html",
                            headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return _local_only(get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_PREFIX}/swagger-ui.css", swagger_favicon_url=favicon,
            oauth2_redirect_url=OAUTH2_REDIRECT,
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
    def redoc() -> HTMLResponse:
        return _local_only(get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=REDOC_JS, redoc_favicon_url=favicon,
            with_google_fonts=False))

"""The pages a browser opens on the server: ``/`` (the front page) and ``/docs``.

Why this module exists: FastAPI's default ``/docs`` loads Swagger UI's script and stylesheet
from a public CDN and its favicon from fastapi's site, so on a host without internet (most
model-serving hosts) it is a blank page. Here the same pages load their assets from the
installed **fastapi-offline** package, mounted at :data:`STATIC_URL`:

- it ships Swagger UI 5 (the major version FastAPI's own page is written for) and a favicon
  as plain files, is MIT-licensed, depends on fastapi alone, and is kept current (1.7.7,
  2026-06); swagger-ui-bundle ships Swagger UI 4.15 (last release 2023) with 5 MB of source
  maps and no ReDoc; copying the files into this repo would make us their maintainer;
- only its files are used, not its app factory: FastAPI's own ``get_swagger_ui_html`` renders
  the page, so the app in :mod:`predcache.server.app` stays a plain FastAPI and this module
  adds its routes with one call, :func:`add_pages`.

Swagger UI's online validator badge (a request to validator.swagger.io) is switched off. There
is no ``/redoc``: ReDoc, even self-hosted, loads its logo from its own CDN (seen in the browser
tests), and Swagger UI already shows every operation and can try it. No page predcache serves
refers to another host.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles

from predcache.predictor import Predictor
from predcache.server import front
from predcache.server.settings import ServeSettings

#: where the packaged Swagger UI / ReDoc files are served from
STATIC_URL = "/static/docs"
STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"
FAVICON = f"{STATIC_URL}/favicon.png"
DOCS_URL, OAUTH2_REDIRECT_URL = "/docs", "/docs/oauth2-redirect"
#: Swagger UI settings on top of FastAPI's defaults: no online validator (it calls out)
SWAGGER_PARAMETERS = {"validatorUrl": None}


def add_pages(app: FastAPI, settings: ServeSettings, predictor: Predictor) -> None:
    """Add ``/``, ``/docs`` and the static assets to ``app``.

    ``app`` must be built with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are
    not registered first.
    """
    if not STATIC_DIR.is_dir():  # a broken install: say so at start, not as a blank page
        raise RuntimeError(f"fastapi-offline's assets are missing: {STATIC_DIR}")
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{FAVICON}",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(
        "/",
        operation_id="front_page",
        summary="What this server is: cache settings, models, links (HTML or JSON by Accept).",
        responses={200: {"content": {"text/html": {}, "application/json": {}}}},
    )
    async def front_page(request: Request) -> Response:
        routes = [str(getattr(r, "path", "")) for r in app.routes]
        data = front.facts(settings, predictor, str(request.base_url), routes)
        headers = {"Vary": "Accept"}
        if front.wants_html(request.headers.get("accept")):
            return HTMLResponse(front.render_html(data, favicon=FAVICON), headers=headers)
        return JSONResponse(data, headers=headers)

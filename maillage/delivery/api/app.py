"""The application factory: API routes under ``/api/v1``, the web interface at ``/``."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from maillage import __version__
from maillage.delivery.api.errors import install_error_handlers
from maillage.delivery.api.limits import BodySizeLimit
from maillage.delivery.api.routes import ROUTERS
from maillage.delivery.api.routes._common import GZIP_MIN_SIZE
from maillage.delivery.api.static import WebFiles
from maillage.delivery.api.warmup import warm_up
from maillage.settings import Settings
from maillage.store import Store

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
API_PREFIX = "/api/v1"
#: Vendored Swagger UI (see scripts/vendor_frontend.sh).
SWAGGER = "swagger-ui-dist-5.35.0"
#: Largest request body accepted (a perimeter of every commune of France fits easily).
MAX_BODY_BYTES = 1_000_000

DESCRIPTION = """
API de l'observatoire des interdépendances et des coopérations entre territoires.

Chaque réponse réussie est `{"ok": true, "data": …, "meta": {"status", "source", "vintage"}}` ;
`status` vaut `observed` (fichier officiel) ou `modelled` (estimation d'un modèle).
Chaque erreur est `{"ok": false, "error": {"status", "code", "message", "details"}}`.

Les territoires se désignent par `com:29019`, `epci:242900314`, `dep:29`, `reg:53`, `per:<slug>`.
"""


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """Build the FastAPI application.

    Parameters
    ----------
    settings : configuration (``Settings()`` from the environment when omitted).
    store : an open store to serve; when omitted the store named by ``settings`` is opened
        read-only on the first request that needs it.
    """
    settings = settings or Settings()
    app = FastAPI(
        lifespan=_lifespan,
        title="maillage",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served below from the vendored Swagger UI: no network needed
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.store_lock = threading.Lock()
    app.state.cache = {}
    app.state.cache_lock = threading.Lock()
    install_error_handlers(app)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_SIZE)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    from maillage.delivery.api.deps import get_store
    from maillage.delivery.reports.routes import make_router

    app.include_router(make_router(get_store), prefix=API_PREFIX)
    _mount_web(app)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At start-up, before connections are accepted: warm the first view's caches."""
    app.state.warm_up = None
    if app.state.settings.warm_up:
        app.state.warm_up = await warm_up(app, API_PREFIX)
    yield


def _mount_web(app: FastAPI) -> None:
    """Serve the static interface: ``/`` is ``index.html``, assets under ``/static``."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8")

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{API_PREFIX}/openapi.json",
            title="maillage — API",
            swagger_js_url=f"/static/vendor/{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"/static/vendor/{SWAGGER}/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    @app.get("/api", include_in_schema=False)
    def api_root() -> RedirectResponse:
        return RedirectResponse(f"{API_PREFIX}/docs")

    app.state.web_files = WebFiles(directory=WEB_DIR)
    app.mount("/static", app.state.web_files, name="static")

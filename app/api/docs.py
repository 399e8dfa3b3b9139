"""The API's own documentation page: Swagger UI served from the `swagger-ui-py` package's static files, so `/docs`
works on a host without internet (FastAPI's default page loads Swagger UI from a CDN). That package ships Swagger UI
5, which reads the OpenAPI 3.1 document FastAPI publishes (Swagger UI 4 showed "Unable to render this definition")."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app import __version__

API_TITLE = "Autoloader"
DOCS_URL = "/docs"
OPENAPI_URL = "/openapi.json"
ASSETS_URL = "/docs-assets"


def install_docs(fastapi_app: FastAPI) -> None:
    """Title the API, publish its OpenAPI document and serve the Swagger UI page and its assets locally."""
    fastapi_app.title = API_TITLE
    fastapi_app.version = __version__
    fastapi_app.description = "Loads new files from object storage into Delta tables exactly once."
    fastapi_app.openapi_url = OPENAPI_URL
    fastapi_app.openapi_schema = None
    fastapi_app.setup()
    fastapi_app.mount(ASSETS_URL, StaticFiles(directory=swagger_ui_assets()), name="docs-assets")

    @fastapi_app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{API_TITLE} {__version__} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )


def swagger_ui_assets() -> Path:
    """The folder of Swagger UI's files in `swagger-ui-py` (found, not imported: only its files are used)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("swagger-ui-py is not installed: pip install -e . (it serves the /docs page)")
    return Path(spec.origin).parent / "static"

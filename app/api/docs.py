"""The API's own documentation page: Swagger UI served from the `swagger-ui-bundle` package, so `/docs` works on a
host without internet (FastAPI's default page loads Swagger UI from a CDN)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

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
    fastapi_app.mount(ASSETS_URL, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @fastapi_app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{API_TITLE} {__version__} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )

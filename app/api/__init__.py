"""REST API v1 (PRODUCT.md §14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from app.bootstrap import Container


def mount_api(fastapi_app: FastAPI, container: Container) -> None:
    """Attach the v1 routes and the error format to an app (NiceGUI's app in production)."""
    from app.api.clusters import router as clusters_router
    from app.api.errors import ERROR_RESPONSES, install_error_handlers
    from app.api.routes import router

    fastapi_app.state.services = container
    fastapi_app.state.inbox = container.inbox
    fastapi_app.include_router(router, responses=ERROR_RESPONSES)
    fastapi_app.include_router(clusters_router, responses=ERROR_RESPONSES)
    install_error_handlers(fastapi_app)

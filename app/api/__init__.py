"""REST API v1 (PRODUCT.md §14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from app.bootstrap import Container


def mount_api(fastapi_app: FastAPI, container: Container) -> None:
    """Put the guard in front of the app, and attach the v1 routes, the sign-in forms and the error format (on
    NiceGUI's app in production)."""
    from app.api.accounts import auth_router
    from app.api.accounts import router as accounts_router
    from app.api.clusters import router as clusters_router
    from app.api.errors import ERROR_RESPONSES, install_error_handlers
    from app.api.guard import METRICS_PATH, Guard, GuardState
    from app.api.metrics import router as metrics_router
    from app.api.routes import router

    settings = container.settings
    guard = GuardState(
        lambda: fastapi_app.state.services.accounts,
        settings.rate_limit_per_minute,
        settings.login_attempts_per_minute,
        settings.public_url,
        open_routes=frozenset({("GET", METRICS_PATH)}) if settings.metrics_public else frozenset(),
    )
    fastapi_app.state.services = container
    fastapi_app.state.guard = guard
    fastapi_app.add_middleware(Guard, state=guard)
    fastapi_app.include_router(router, responses=ERROR_RESPONSES)
    fastapi_app.include_router(clusters_router, responses=ERROR_RESPONSES)
    fastapi_app.include_router(accounts_router, responses=ERROR_RESPONSES)
    fastapi_app.include_router(auth_router)
    fastapi_app.include_router(metrics_router, responses=ERROR_RESPONSES)
    install_error_handlers(fastapi_app)

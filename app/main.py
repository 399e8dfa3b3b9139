"""Start the server: console, REST API, OpenAPI docs and health on one port."""

from __future__ import annotations

from app.settings import Settings


def build(settings: Settings) -> None:
    """Build the container and mount the API and the pages on NiceGUI's FastAPI app (migrations run here)."""
    from nicegui import app

    from app.api import mount_api
    from app.api.docs import install_docs
    from app.bootstrap import build as build_container
    from app.pages import register_pages
    from app.warehouse import require_writable_warehouse

    container = build_container(settings)
    require_writable_warehouse(settings.resolved_warehouse, settings.warehouse_storage_options)
    mount_api(app, container)
    install_docs(app)
    register_pages()
    app.on_startup(container.start)
    app.on_shutdown(container.close)


def serve(settings: Settings) -> None:
    from nicegui import ui

    build(settings)
    ui.run(
        host=settings.host,
        port=settings.port,
        title="Autoloader",
        language="en-US",  # <html lang>, which screen readers need to pick the voice (WCAG 3.1.1)
        reload=False,
        show=False,
        fastapi_docs=False,
        show_welcome_message=True,
        uvicorn_logging_level="warning",
    )


if __name__ in {"__main__", "__mp_main__"}:
    serve(Settings())

"""Start the server: console, REST API, OpenAPI docs and health on one port."""

from __future__ import annotations

from app.settings import Settings


def build(settings: Settings) -> None:
    """Wire services into NiceGUI's FastAPI app (migrations run here)."""
    from nicegui import app

    from app.api import mount_api
    from app.pages import register_pages
    from app.services import Services

    services = Services(settings)
    mount_api(app, services)
    register_pages()
    app.on_startup(services.start)
    app.on_shutdown(services.close)


def serve(settings: Settings) -> None:
    from nicegui import ui

    build(settings)
    ui.run(
        host=settings.host,
        port=settings.port,
        title="Autoloader",
        reload=False,
        show=False,
        fastapi_docs=True,
        show_welcome_message=True,
        uvicorn_logging_level="warning",
    )


if __name__ in {"__main__", "__mp_main__"}:
    serve(Settings())

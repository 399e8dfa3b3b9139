"""Console screens, one module each. Routes are registered here (not by import-time decorators) so that
building the app twice in one process — as NiceGUI's user-simulation tests do — registers them again."""

from __future__ import annotations

from nicegui import ui


def register_pages() -> None:
    from app.pages.dashboard import dashboard_page

    ui.page("/")(dashboard_page)

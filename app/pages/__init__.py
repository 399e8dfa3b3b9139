"""Console screens, one module each. Routes are registered here (not by import-time decorators) so that
building the app twice in one process — as NiceGUI's user-simulation tests do — registers them again."""

from __future__ import annotations

from nicegui import app, ui


def register_pages() -> None:
    from app.pages.clusters import clusters_page
    from app.pages.dashboard import dashboard_page
    from app.pages.detail import detail_page
    from app.pages.errors import error_page
    from app.pages.login import account_page, audit_page, login_page, setup_page
    from app.pages.schema_review import schema_review_page
    from app.pages.wizard import edit_ingestion_page, new_ingestion_page

    ui.page("/")(dashboard_page)
    ui.page("/ingestions/new")(new_ingestion_page)
    ui.page("/ingestions/{ingestion_id}/edit")(edit_ingestion_page)
    ui.page("/ingestions/{ingestion_id}")(detail_page)
    ui.page("/clusters")(clusters_page)
    ui.page("/ingestions/{ingestion_id}/schema-review")(schema_review_page)
    ui.page("/login")(login_page)
    ui.page("/setup")(setup_page)
    ui.page("/account")(account_page)
    ui.page("/audit")(audit_page)
    app.on_page_exception(error_page)

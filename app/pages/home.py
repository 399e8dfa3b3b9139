"""Placeholder home page until the console lands: lists ingestions and points at the API."""

from __future__ import annotations

from nicegui import app, run, ui

from components.frame import frame


@ui.page("/")
async def home() -> None:
    services = app.state.services
    with frame("Data Ingestions"):
        ui.label("Data Ingestions").classes("text-3xl font-bold")
        ui.markdown(
            "The console is coming. Meanwhile, create and run ingestions through the "
            "[REST API](/docs) or the `autoloader` command."
        )
        ingestions = await run.io_bound(services.store.list_ingestions) or []
        rows = [
            {
                "id": i.id,
                "name": i.name,
                "status": i.status.value,
                "table": i.spec.destination.full_name,
                "source": i.spec.source.path,
            }
            for i in ingestions
        ]
        columns = [
            {"name": k, "label": k.title(), "field": k, "align": "left"}
            for k in ("id", "name", "status", "table", "source")
        ]
        ui.table(columns=columns, rows=rows, row_key="id").classes("w-full")

"""The amber "Schema Evolution Detected" box linking to the review screen (dashboard card, detail page)."""

from __future__ import annotations

from nicegui import ui

from components.formatting import relative_time
from core.views import PendingSchema
from core.wording import counted


def schema_alert(pending: PendingSchema, *, link_text: str = "Review and resolve →") -> None:
    with (
        ui.row()
        .classes("w-full no-wrap items-start gap-3 p-4 rounded-lg bg-amber-50 border border-amber-400")
        .mark("schema-alert")
    ):
        ui.label("⚠").classes("text-xl text-amber-600 leading-none")
        with ui.column().classes("gap-1"):
            ui.label("Schema Evolution Detected").classes("font-semibold text-amber-900")
            with ui.row().classes("gap-1 items-baseline"):
                ui.label(pending.summary).classes("text-sm text-amber-900")
                ui.link(link_text, pending.review_link).classes("text-sm text-indigo-700 review-link").mark(
                    "review-link"
                )
            ui.label(
                f"Version {pending.version} · detected {relative_time(pending.created_at)} · "
                f"{counted(pending.records, 'record')} held, nothing from these files is written until you decide."
            ).classes("text-xs text-amber-800")

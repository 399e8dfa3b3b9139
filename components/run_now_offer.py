"""After Resume: the ingestion fires at its next slot; offer to run it now instead of waiting."""

from __future__ import annotations

from datetime import datetime

from nicegui import ui

from components.formatting import clock, relative_time
from components.styles import FLAT, PRIMARY


def _next_slot_text(next_run: datetime | None) -> str:
    if next_run is None:
        return "It has no scheduled slot (manual mode): it only runs when you start it."
    return f"Its next scheduled run is {relative_time(next_run)} ({clock(next_run)})."


async def offer_run_now(name: str, next_run: datetime | None) -> bool:
    """A small dialog; True when the user chose "Run now". It hangs off the page content, not the caller's
    slot: the button that triggered the resume is usually gone after the page re-rendered."""
    with (
        ui.context.client.content,
        ui.dialog() as dialog,
        ui.card().classes("p-6 gap-3 max-w-md").mark("run-now-offer"),
    ):
        ui.label(f"'{name}' is active again").classes("text-lg font-semibold")
        ui.label(_next_slot_text(next_run)).classes("text-sm text-slate-700")
        ui.label("Run it now to load the files that arrived while it was paused?").classes("text-sm text-slate-700")
        with ui.row().classes("w-full justify-end gap-2"):
            ui.button("Wait for the next run", on_click=lambda: dialog.submit(False)).props(FLAT).mark("offer-later")
            ui.button("Run now", icon="play_arrow", on_click=lambda: dialog.submit(True)).props(PRIMARY).mark(
                "offer-run-now"
            )
    chosen = await dialog
    dialog.delete()
    return bool(chosen)

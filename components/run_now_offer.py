"""After Resume: the ingestion fires at its next slot; offer to run it now instead of waiting."""

from __future__ import annotations

from datetime import datetime

from nicegui import ui

from components.dialogs import named_dialog
from components.formatting import clock, relative_time
from components.styles import FLAT, PRIMARY


def _next_slot_text(next_run: datetime | None) -> str:
    if next_run is None:
        return "It has no scheduled slot (manual mode): it only runs when you start it."
    return f"Its next scheduled run is {relative_time(next_run)} ({clock(next_run)})."


async def offer_run_now(name: str, next_run: datetime | None) -> bool:
    """True when the user chose "Run now" after a resume."""
    lines = [_next_slot_text(next_run), "Run it now to load the files that arrived while it was paused?"]
    markers = ("run-now-offer", "offer-later", "offer-run-now")
    return await ask_run_now(f"'{name}' is active again", lines, "Wait for the next run", markers)


async def ask_run_now(title: str, lines: list[str], later: str, markers: tuple[str, str, str]) -> bool:
    """A small dialog; True when the user chose "Run now", False for `later`. `markers` name the card and the two
    buttons (later, run now). It hangs off the page content, not the caller's slot: the button that opened it is
    usually gone after the page re-rendered."""
    card, later_marker, now_marker = markers
    with ui.context.client.content, named_dialog(title) as dialog, ui.card().classes("p-6 gap-3 max-w-md").mark(card):
        ui.label(title).classes("text-lg font-semibold")
        for line in lines:
            ui.label(line).classes("text-sm text-slate-700")
        with ui.row().classes("w-full justify-end gap-2"):
            ui.button(later, on_click=lambda: dialog.submit(False)).props(FLAT).mark(later_marker)
            ui.button("Run now", icon="play_arrow", on_click=lambda: dialog.submit(True)).props(PRIMARY).mark(
                now_marker
            )
    chosen = await dialog
    dialog.delete()
    return bool(chosen)

"""The full refresh's two questions: confirm what is dropped, then run now or at the next run."""

from __future__ import annotations

from nicegui import ui

from components.dialogs import named_dialog
from components.run_now_offer import ask_run_now
from components.styles import FLAT, PRIMARY


async def confirm_full_refresh(table: str, message: str, pending: bool) -> bool:
    """True when the user confirmed. `message` states what the table holds now and that it will be replaced."""
    with (
        ui.context.client.content,
        named_dialog(f"Full refresh of {table}?") as dialog,
        ui.card().classes("p-6 gap-3 max-w-lg").mark("full-refresh-confirm"),
    ):
        ui.label(f"Full refresh of {table}?").classes("text-lg font-semibold")
        ui.label(message).classes("text-sm text-slate-800").mark("full-refresh-message")
        ui.label(
            "Unlike Reprocess, which loads files again on top of the table, nothing of the current rows is kept. "
            "Files set aside (quarantined) are tried again."
        ).classes("text-sm text-slate-700")
        if pending:
            ui.label("A full refresh is already requested: its next run does it.").classes("text-sm text-amber-900")
        with ui.row().classes("w-full justify-end gap-2"):
            ui.button("Cancel", on_click=lambda: dialog.submit(False)).props(FLAT).mark("full-refresh-cancel")
            ui.button("Replace the table's rows", icon="restart_alt", on_click=lambda: dialog.submit(True)).props(
                PRIMARY
            ).mark("full-refresh-yes")
    chosen = await dialog
    dialog.delete()
    return bool(chosen)


async def offer_refresh_run() -> bool:
    """True for "Run now"; else the refresh waits for the ingestion's next run."""
    lines = ["The next run of this ingestion rebuilds the table. Run it now?"]
    markers = ("full-refresh-offer", "full-refresh-later", "full-refresh-run-now")
    return await ask_run_now("Full refresh requested", lines, "At the next run", markers)

"""The question before an ingestion moves to another engine: which one, and what stays as it is."""

from __future__ import annotations

from nicegui import ui

from components.dialogs import named_dialog
from components.styles import FLAT, PRIMARY

EMBEDDED = 0
"""The select's value for the embedded engine (a cluster's value is its id)."""
EMBEDDED_LABEL = "Embedded (Arrow + delta-rs)"


async def choose_engine(table: str, current: int | None, engines: dict[int, str]) -> int | None:
    """The engine picked (`EMBEDDED` or a cluster id), or None when the user cancelled. `engines`: value → label."""
    others = {value: label for value, label in engines.items() if value != (current or EMBEDDED)}
    with (
        ui.context.client.content,
        named_dialog(f"Move {table} to another engine") as dialog,
        ui.card().classes("p-6 gap-3 max-w-lg").mark("engine-move-dialog"),
    ):
        ui.label(f"Move {table} to another engine").classes("text-lg font-semibold")
        ui.label(
            "The table stays where it is, and so do its file ledger and what was loaded: the next run continues the "
            "same Delta table on the engine you pick, loading only files not loaded yet."
        ).classes("text-sm text-slate-800")
        if not others:
            ui.label("There is no other engine: add a cluster under Clusters first.").classes(
                "text-sm text-amber-900"
            ).mark("engine-move-none")
        picked = ui.select(others, label="Engine", value=next(iter(others), None)).props("outlined dense")
        picked.classes("w-full").mark("engine-move-select")
        with ui.row().classes("w-full justify-end gap-2"):
            ui.button("Cancel", on_click=lambda: dialog.submit(None)).props(FLAT).mark("engine-move-cancel")
            move = ui.button("Move", icon="swap_horiz", on_click=lambda: dialog.submit(picked.value))
            move.props(PRIMARY).mark("engine-move-yes")
            if not others:
                move.disable()
    chosen = await dialog
    dialog.delete()
    return None if chosen is None else int(chosen)

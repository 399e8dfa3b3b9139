"""A headline number with a caption and a note."""

from __future__ import annotations

from nicegui import ui


def stat_card(
    caption: str, value: str, note: str = "", note_class: str = "text-green-700", marker: str | None = None
) -> None:
    with ui.card().classes("flex-1 min-w-[200px] p-5 shadow-sm rounded-xl"):
        ui.label(caption).classes("text-sm text-slate-500")
        number = ui.label(value).classes("text-3xl font-bold text-slate-800")
        if marker:
            number.mark(marker)
        if note:
            ui.label(note).classes(f"text-xs {note_class}")

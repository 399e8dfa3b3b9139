"""The table maintenance card (detail page): the setting, the last compaction and vacuum with the table's files before
and after, and "Compact now"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from components.badges import run_badge
from components.formatting import clock, human_bytes, relative_time
from components.styles import OUTLINE
from core.maintenance import MaintenanceRecord, MaintenanceView
from core.wording import counted

NEVER_TEXT = (
    "Not maintained yet. Compact now rewrites the table's small files into larger ones (no row changes), then "
    "deletes the files no version of the table's retained history needs."
)


def files_text(record: MaintenanceRecord) -> str:
    """ "Files 42 → 3 (1.2 MB → 1.1 MB)", or "" before the compaction finished."""
    if record.files_before is None or record.files_after is None:
        return ""
    size = ""
    if record.bytes_before is not None and record.bytes_after is not None:
        size = f" ({human_bytes(float(record.bytes_before))} → {human_bytes(float(record.bytes_after))})"
    return f"Files {record.files_before:,} → {record.files_after:,}{size}"


def vacuum_text(record: MaintenanceRecord) -> str:
    if record.files_removed is None:
        return ""
    return f"Vacuum deleted {counted(record.files_removed, 'old file')}, keeping {record.retention_hours} h of history"


def maintenance_box(view: MaintenanceView, on_compact: Callable[[], Any] | None) -> None:
    """`on_compact` None: the viewer may not change this ingestion (no button)."""
    with ui.card().classes("w-full p-4 shadow-sm rounded-xl gap-2").mark("maintenance"):
        with ui.row().classes("w-full items-center justify-between"):
            with ui.column().classes("gap-0"):
                ui.label("Table maintenance").classes("font-semibold text-slate-700")
                schedule = view.config.describe()
                if view.next_due is not None:
                    schedule += f" · next {clock(view.next_due)}"
                ui.label(schedule).classes("text-xs text-slate-500").mark("maintenance-schedule")
            if on_compact is not None:
                button = ui.button("Compact now", icon="compress", on_click=on_compact).props(OUTLINE)
                button.mark("compact-now")
                if view.running:
                    button.disable()
        last = view.last
        if last is None:
            ui.label(NEVER_TEXT).classes("text-sm text-slate-500")
            return
        with ui.row().classes("items-center gap-3"):
            run_badge(last.status)
            when = relative_time(last.started_at or last.created_at)
            ui.label(f"Last maintenance {last.id} ({last.trigger}) {when}").classes("text-sm text-slate-600")
            if last.running:
                ui.spinner(size="sm")
        for text, marker in ((files_text(last), "maintenance-files"), (vacuum_text(last), "maintenance-vacuum")):
            if text:
                ui.label(text).classes("text-sm text-slate-800").mark(marker)
        if last.message and not last.running:
            ui.label(last.message).classes("text-xs text-slate-500")
        for error in last.errors[:3]:
            ui.label(f"{error.get('message', '')} → {error.get('action', '')}").classes("text-xs text-red-700")

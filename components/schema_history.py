"""Schema history on the detail page: every version, what changed from the previous one, why and how resolved."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from components.formatting import clock
from core.views import SchemaVersionRecord
from core.wording import counted

RESOLUTION_LABELS = {
    "auto_merge": "auto-merged (columns added to the table)",
    "backfill_default": "backfilled with a default value",
    "new_table": "moved to a new table",
    "ignore": "new columns ignored",
    "review_later": "kept for later",
}
STATUS_STYLE = {"pending": "bg-amber-100 text-amber-800", "applied": "bg-green-100 text-green-800"}


def column_changes(previous: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[str]:
    """What changed between two stored column lists, as short phrases ("+ email (string)")."""
    before = {c["name"]: c.get("type") for c in previous}
    after = {c["name"]: c.get("type") for c in current}
    phrases = [f"+ {name} ({kind})" for name, kind in after.items() if name not in before]
    phrases += [
        f"{name}: {before[name]} → {kind}" for name, kind in after.items() if name in before and before[name] != kind
    ]
    phrases += [f"- {name} (removed)" for name in before if name not in after]
    return phrases


def _changes_of(version: SchemaVersionRecord, previous: SchemaVersionRecord | None) -> list[str]:
    if version.changes:
        return [str(c.get("description", "")) for c in version.changes]
    if previous is None:
        return [f"{counted(len(version.columns), 'column')}: " + ", ".join(c["name"] for c in version.columns)]
    return column_changes(previous.columns, version.columns) or ["no column change"]


def _resolution_text(version: SchemaVersionRecord) -> str:
    if version.status == "pending":
        return "waiting for review — nothing from the affected files is written until you decide"
    if version.resolution == "full_refresh":
        return (
            f"dismissed by the full refresh of {clock(version.resolved_at)}: every file was read again, and files "
            "that still differ from the table wait for a new review"
        )
    if version.resolution is None:
        return "applied automatically by the run"
    how = RESOLUTION_LABELS.get(version.resolution, version.resolution)
    return f"{how} by {version.resolved_by or 'unknown'} on {clock(version.resolved_at)}"


def schema_history(versions: list[SchemaVersionRecord], ingestion_id: int) -> None:
    with ui.card().classes("w-full p-4 shadow-sm rounded-xl gap-3").mark("schema-history"):
        ui.label("Schema history").classes("font-semibold text-slate-700")
        if not versions:
            ui.label("No schema yet: the first run creates the table and records version 1.").classes(
                "text-sm text-slate-500"
            )
            return
        ordered = sorted(versions, key=lambda v: v.version)
        previous: dict[int, SchemaVersionRecord | None] = {
            v.version: p for p, v in zip([None, *ordered], ordered, strict=False)
        }
        for version in reversed(ordered):
            _entry(version, previous[version.version], ingestion_id)


def _entry(version: SchemaVersionRecord, previous: SchemaVersionRecord | None, ingestion_id: int) -> None:
    pending = version.status == "pending"
    border = "border-amber-300 bg-amber-50" if pending else "border-slate-200 bg-white"
    with ui.column().classes(f"w-full gap-1 p-3 rounded-lg border {border}").mark(f"schema-version-{version.version}"):
        with ui.row().classes("w-full items-center gap-3"):
            ui.label(f"Version {version.version}").classes("font-semibold text-slate-800")
            style = STATUS_STYLE.get(version.status, "bg-slate-100 text-slate-700")
            ui.label(version.status).classes(f"{style} text-xs font-semibold px-2 py-0.5 rounded")
            ui.label(clock(version.created_at)).classes("text-xs text-slate-500")
            if pending:
                ui.link("Review and resolve →", f"/ingestions/{ingestion_id}/schema-review").classes(
                    "text-sm text-indigo-700 ml-auto"
                ).mark("history-review-link")
        if version.reason:
            ui.label(f"Why: {version.reason}").classes("text-sm text-slate-700")
        for phrase in _changes_of(version, previous):
            ui.label(f"• {phrase}").classes("text-sm text-slate-700 font-mono")
        if version.files:
            names = ", ".join(
                f"{f['path'].rsplit('/', 1)[-1]} ({int(f.get('records', 0)):,})" for f in version.files[:5]
            )
            more = f" … and {len(version.files) - 5} more" if len(version.files) > 5 else ""
            ui.label(f"Files: {names}{more}").classes("text-xs text-slate-500 break-all")
        ui.label(_resolution_text(version)).classes("text-xs text-slate-600 italic")

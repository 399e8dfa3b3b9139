"""The preview of a configuration (PRODUCT.md §8): status strip, tabs, quality findings and the three actions."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from nicegui import ui

from components.badges import SOURCE_LABELS
from components.formatting import human_bytes, human_count
from components.frame import page_heading
from components.schema_table import schema_table
from components.styles import FOOTER, OUTLINE, PRIMARY
from core.config import IngestionSpec
from core.preview import PreviewResult, date_advice, marker_advice
from core.schedule import describe
from core.wording import counted


@dataclass(slots=True)
class PreviewActions:
    back: Callable[[], None]
    save_draft: Callable[[], Awaitable[None]]
    create: Callable[[], Awaitable[None]]


def render_preview(
    spec: IngestionSpec, result: PreviewResult, actions: PreviewActions, *, activated: bool, target: str | None = None
) -> None:
    """`target`: where the table is written, as the wizard's summary says it (default: its catalog name)."""
    with ui.column().classes("w-full gap-0 rounded-xl shadow bg-white overflow-hidden").mark("preview"):
        with ui.column().classes("w-full p-6 gap-1 text-white bg-gradient-to-r from-indigo-500 to-purple-600"):
            page_heading("Preview & Test Ingestion").classes("text-2xl font-bold")
            ui.label(f"Validating configuration and analysing sample data from {spec.source.path}").classes(
                "opacity-90"
            )
        _status_strip(result)
        with ui.tabs().classes("w-full text-slate-600") as tabs:
            overview_tab = ui.tab("Overview", icon="dashboard")
            schema_tab = ui.tab("Schema", icon="view_column")
            sample_tab = ui.tab("Sample Data", icon="table_rows")
            advice_tab = ui.tab("Recommendations", icon="lightbulb")
        with ui.tab_panels(tabs, value=overview_tab).classes("w-full"):
            with ui.tab_panel(overview_tab).classes("gap-5"):
                _overview(spec, result, activated, target or spec.destination.full_name)
                _quality(result)
            with ui.tab_panel(schema_tab):
                schema_table(result.schema, result.null_percent, _first_values(result))
                _differing(result)
            with ui.tab_panel(sample_tab):
                _samples(result)
            with ui.tab_panel(advice_tab):
                _recommendations(result)
        with ui.row().classes(FOOTER):
            ui.button("Back to Edit", icon="arrow_back", on_click=actions.back).props(OUTLINE).mark("back-to-edit")
            with ui.row().classes("gap-3"):
                ui.button("Save as Draft", on_click=actions.save_draft).props(OUTLINE)
                label = "Looks Good - Save Changes" if activated else "Looks Good - Create Ingestion"
                ui.button(label, icon="check", on_click=actions.create).props(PRIMARY).mark("create")


def _status_strip(result: PreviewResult) -> None:
    found = counted(result.files, "file", more=result.files_truncated)
    checks = [
        ("Connection successful", True),
        (f"{found} discovered", result.files > 0),
        ("Schema inferred", bool(result.schema)),
        ("Sample data loaded", bool(result.sample_rows)),
    ]
    with ui.row().classes("w-full justify-between px-6 py-3 bg-slate-800 text-white text-sm"):
        for text, ok in checks:
            with ui.row().classes("items-center gap-2"):
                ui.icon("check_circle" if ok else "error").classes("text-green-400" if ok else "text-amber-400")
                ui.label(text)


ACTIVATED_BACKFILL = (
    "the ingestion is active already: files it loaded or skipped stay so, and only files not yet loaded are "
    "loaded by its next run"
)


def _overview(spec: IngestionSpec, result: PreviewResult, activated: bool, target: str) -> None:
    if not result.bad_files and result.files:
        _notice("✓", "Configuration Valid", "The source was read and the sample parsed.", "green")
    if not result.files:
        _notice("!", "No files found", "Check the path and the file pattern; nothing would be loaded.", "amber")
    backfill = spec.schedule.backfill.mode
    what = {
        "all": "all of them are loaded by the first run",
        "new_only": "they are skipped; only files arriving later are loaded",
        "since": "those modified since the chosen date are loaded",
    }[backfill]
    if activated:  # the backfill choice applied at activation; the ledger decides from then on
        what = ACTIVATED_BACKFILL
    _notice(
        "i",
        f"{result.files:,} Existing Files Detected",
        f"The source holds {result.files:,} files ({human_bytes(result.total_bytes)}); {what}.",
        "blue",
    )
    _heading("Configuration Summary")
    with ui.grid(columns=3).classes("w-full gap-3"):
        _box("Source", SOURCE_LABELS.get(spec.source.type, spec.source.type))
        _box("Path", spec.source.path + (f" ({spec.source.file_pattern})" if spec.source.file_pattern else ""))
        _box("File format", spec.format.type.upper())
        _box("Target table", target)
        _box("Schedule", describe(spec.schedule))
        _box("Schema mode", f"{spec.format.schema_.inference} · on change: {spec.format.schema_.on_schema_change}")
    _heading("Data Analysis")
    with ui.grid(columns=4).classes("w-full gap-3"):
        _figure(f"{result.files:,}", "Files found")
        _figure(human_bytes(result.total_bytes), "Total size")
        _figure(f"~{human_count(result.estimated_records)}", "Est. records").mark("estimated-records")
        _figure(str(len(result.schema)), "Columns")


def _quality(result: PreviewResult) -> None:
    _heading("Data Quality Checks")
    findings = [f"{p:.1f}% of records have NULL in '{c}'" for c, p in result.null_percent.items() if p > 0]
    if result.malformed_records:
        findings.append(f"{counted(result.malformed_records, 'malformed record')} (kept in _rescued_data)")
    findings += [
        f"Column '{d['column']}' is missing in {counted(len(d['missing_in']), 'sample file')}"
        for d in result.differing_columns
    ]
    findings += [f"Unreadable file {path}: {reason}" for path, reason in result.bad_files.items()]
    findings += marker_advice(result.text_markers) + date_advice(result.date_shapes)
    if not findings:
        _notice("✓", "No issues found", f"{result.records_sampled:,} sample records checked.", "green")
        return
    with ui.column().classes("w-full p-4 rounded-lg bg-amber-50 border border-amber-300 gap-1").mark("quality"):
        ui.label("Issues Detected").classes("font-semibold text-amber-900")
        for finding in findings:
            ui.label(f"• {finding}").classes("text-sm text-amber-900")


def _differing(result: PreviewResult) -> None:
    if not result.differing_columns:
        ui.label("All sample files have the same columns.").classes("text-sm text-slate-500 mt-2")
        return
    _heading("Columns that differ between files")
    for item in result.differing_columns:
        ui.label(f"{item['column']}: missing in {', '.join(_name(p) for p in item['missing_in'])}").classes("text-sm")


def _samples(result: PreviewResult) -> None:
    if not result.sample_rows_by_file:
        ui.label("No sample rows could be read.").classes("text-slate-500")
    for path, rows in result.sample_rows_by_file.items():
        with ui.row().classes("items-center gap-2 mt-3"):
            ui.label(_name(path)).classes("text-xs bg-slate-200 rounded-full px-3 py-1")
            ui.label(f"Showing the first {len(rows)} records").classes("text-xs text-slate-500")
        text = json.dumps([_clean(r) for r in rows], indent=2, default=_json_default)
        ui.code(text, language="json").classes("w-full text-xs").mark("sample-rows")


def _recommendations(result: PreviewResult) -> None:
    with ui.column().classes("w-full p-4 rounded-lg bg-indigo-50 border border-indigo-200 gap-2"):
        ui.label("Optimization Recommendations").classes("font-semibold text-indigo-900")
        for advice in result.recommendations:
            ui.label(f"→ {advice}").classes("text-sm text-indigo-900")


def _first_values(result: PreviewResult) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for row in result.sample_rows:
        for key, value in row.items():
            if value is not None:
                values.setdefault(key, value)
    return values


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "_source_file" and not (k == "_rescued_data" and v is None)}


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _heading(text: str) -> None:
    ui.label(text).classes("text-base font-semibold text-slate-800 mt-2")


def _notice(symbol: str, title: str, text: str, color: str) -> None:
    with ui.row().classes(f"w-full p-4 rounded-lg bg-{color}-50 border border-{color}-300 items-start no-wrap gap-3"):
        ui.label(symbol).classes(f"text-lg font-bold text-{color}-800")
        with ui.column().classes("gap-0"):
            ui.label(title).classes(f"font-semibold text-{color}-900")
            ui.label(text).classes(f"text-sm text-{color}-800")


def _box(caption: str, value: str) -> None:
    with ui.column().classes("p-3 rounded-lg bg-slate-50 border border-slate-200 gap-0"):
        ui.label(caption.upper()).classes("text-[11px] tracking-wide text-slate-500")
        ui.label(value).classes("text-sm text-slate-800 break-all")


def _figure(value: str, caption: str) -> ui.column:
    with ui.column().classes("p-4 rounded-lg bg-slate-50 border border-slate-200 items-center gap-0") as box:
        ui.label(value).classes("text-2xl font-bold text-slate-800")
        ui.label(caption.upper()).classes("text-[11px] tracking-wide text-slate-500")
    return box

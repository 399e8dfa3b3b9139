"""One dashboard card: identity, health, schedule, last/next run, target, cost, 7-day strip and quick actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import ui

from components.badges import SOURCE_LABELS, health_badge, tag
from components.charts import bar_chart
from components.formatting import clock, human_count, human_duration, relative_time
from components.schema_alert import schema_alert
from core.cost import approx_dollars
from core.schedule import describe
from core.views import IngestionSummary, PendingSchema, RunTotals, monthly_cost
from core.wording import counted

Action = Callable[[IngestionSummary], Awaitable[None]]


@dataclass(slots=True)
class CardActions:
    run_now: Action
    toggle_pause: Action
    delete: Action


def schedule_tag(overview: IngestionSummary) -> str:
    schedule = overview.spec.schedule
    if schedule.mode != "scheduled":
        return schedule.mode.capitalize()
    return "Cron" if schedule.frequency == "custom" else (schedule.frequency or "").capitalize()


def format_label(overview: IngestionSummary) -> str:
    fmt = overview.spec.format
    how = "auto-schema" if fmt.schema_.inference == "auto" else "manual schema"
    return f"{fmt.type.upper()} ({how})"


def ingestion_card(
    overview: IngestionSummary,
    week: RunTotals | None,
    actions: CardActions | None,
    pending: PendingSchema | None = None,
) -> None:
    """`actions` None: the viewer may not change this ingestion, so no action buttons are offered."""
    with ui.card().classes("w-full p-0 shadow-sm rounded-xl ingestion-card").mark(f"card-{overview.name}"):
        _header(overview, actions)
        ui.separator()
        with ui.grid(columns=3).classes("w-full px-6 py-4 gap-y-4"):
            _fact("Last Run", _last_run_text(overview), marker="last-run")
            _fact("Next Run", _next_run_text(overview))
            _fact("Source", overview.spec.source.path)
            _fact("Target Table", overview.spec.destination.full_name)
            _fact("Format", format_label(overview))
            _fact("Monthly Cost", approx_dollars(monthly_cost(overview.spec, week).total))
        if pending is not None:
            with ui.element("div").classes("w-full px-6 pb-4"):
                schema_alert(pending)
        if overview.last_run and overview.last_run.status in ("failed", "partial") and overview.last_run.message:
            with (
                ui.element("div").classes("w-full px-6 pb-3"),
                ui.row().classes("w-full p-3 rounded-lg bg-red-50 border border-red-200"),
            ):
                ui.label(overview.last_run.message).classes("text-sm text-red-800")
        if week is not None:
            _week_strip(week)


def _header(overview: IngestionSummary, actions: CardActions | None) -> None:
    with ui.row().classes("w-full items-center justify-between px-6 pt-4 pb-2"):
        with ui.row().classes("items-center gap-3"):
            ui.link(overview.name, f"/ingestions/{overview.id}").classes(
                "text-xl font-semibold text-slate-800 no-underline hover:text-indigo-600"
            )
            health_badge(overview.health)
            tag(SOURCE_LABELS.get(overview.spec.source.type, overview.spec.source.type))
            tag(schedule_tag(overview))
            if overview.last_run and overview.last_run.active:
                run = overview.last_run
                ui.spinner(size="sm")
                ui.label(f"Running: {run.files_done}/{run.files_total or '?'} files").classes("text-sm text-indigo-700")
        if actions is None:
            return
        with ui.row().classes("gap-2"):
            _action("Run Now", "play_arrow", lambda: actions.run_now(overview), f"run-{overview.name}")
            ui.button("Edit", icon="edit", on_click=lambda: ui.navigate.to(f"/ingestions/{overview.id}/edit")).props(
                "outline color=grey-8 no-caps"
            ).mark(f"edit-{overview.name}")
            if overview.status == "draft":
                ui.button(
                    "Activate", icon="rocket_launch", on_click=lambda: ui.navigate.to(activate_url(overview))
                ).props("outline color=primary no-caps").mark(f"activate-{overview.name}")
            else:
                paused = overview.status == "paused"
                _action(
                    "Resume" if paused else "Pause",
                    "play_circle" if paused else "pause",
                    lambda: actions.toggle_pause(overview),
                    f"pause-{overview.name}",
                )
            _action("Delete", "delete", lambda: actions.delete(overview), f"delete-{overview.name}")


def activate_url(overview: IngestionSummary) -> str:
    """A draft is activated through the wizard's Test & Preview (connection test and preview, then Create), never
    by a status switch that would skip them."""
    return f"/ingestions/{overview.id}/edit?activate=true"


def _action(label: str, icon: str, handler: Callable[[], Awaitable[None]], marker: str) -> None:
    ui.button(label, icon=icon, on_click=handler).props("outline color=grey-8 no-caps").mark(marker)


def _fact(caption: str, value: str, marker: str | None = None) -> None:
    with ui.column().classes("gap-0"):
        ui.label(caption).classes("text-xs text-slate-500")
        label = ui.label(value).classes("text-sm text-slate-800 [overflow-wrap:anywhere]")  # words whole
        if marker:
            label.mark(marker)


def _last_run_text(overview: IngestionSummary) -> str:
    run = overview.last_run
    if run is None:
        return "Never"
    when = relative_time(run.finished_at or run.created_at)
    return f"{when} · {run.status} · {counted(run.records, 'record')}"


def _next_run_text(overview: IngestionSummary) -> str:
    if overview.next_run is not None:
        return f"{relative_time(overview.next_run)} ({clock(overview.next_run)})"
    if overview.status != "active":
        return f"— ({overview.status.replace('_', ' ')})"
    return describe(overview.spec.schedule)


def _week_strip(week: RunTotals) -> None:
    with ui.element("div").classes("w-full px-6 pb-5"), ui.column().classes("w-full p-4 rounded-lg bg-slate-50 gap-2"):
        ui.label("Last 7 Days Performance").classes("text-sm font-semibold text-slate-700")
        with ui.grid().classes("w-full grid-cols-2 sm:grid-cols-4 gap-3"):  # two by two on a phone
            _metric("Files processed", human_count(week.files))
            _metric("Records ingested", human_count(week.records))
            _metric("Avg time", human_duration(week.average_duration_seconds))
            _metric("Failed runs", str(week.failed), "text-red-600" if week.failed else "text-green-700")
        if week.runs:
            bar_chart([d.day.strftime("%a") for d in week.days], [d.files for d in week.days], name="files")


def _metric(caption: str, value: str, color: str = "text-slate-800") -> None:
    with ui.column().classes("gap-0"):
        ui.label(caption.upper()).classes("text-[11px] tracking-wide text-slate-500")
        ui.label(value).classes(f"text-xl font-bold {color}")

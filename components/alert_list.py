"""An ingestion's open alerts (detail page): what, when, the suggested action and where to act."""

from __future__ import annotations

from nicegui import ui

from components.formatting import clock, relative_time
from components.notification_bell import SEVERITY_ICON, notification_target
from core.views import NotificationRecord


def alert_list(alerts: list[NotificationRecord], here: str) -> None:
    with ui.card().classes("w-full p-4 shadow-sm rounded-xl gap-2").mark("alerts"):
        ui.label("Alerts").classes("font-semibold text-slate-700")
        if not alerts:
            ui.label("No open alerts.").classes("text-sm text-slate-500")
            return
        for alert in alerts:
            _alert(alert, here)


def _alert(alert: NotificationRecord, here: str) -> None:
    icon, color = SEVERITY_ICON.get(alert.severity, ("info", "text-slate-500"))
    with ui.row().classes("w-full no-wrap items-start gap-3 p-3 rounded-lg border border-slate-200 bg-white"):
        ui.icon(icon).classes(f"{color} text-xl")
        with ui.column().classes("gap-0 flex-1 min-w-0"):
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(alert.title).classes("text-sm font-semibold text-slate-800")
                ui.label(f"{relative_time(alert.created_at)} ({clock(alert.created_at)})").classes(
                    "text-xs text-slate-500"
                )
            # anywhere, not break-word: a long path counts whole in the column's width and widened the page
            ui.label(alert.message).classes("w-full text-sm text-slate-700").style("overflow-wrap: anywhere")
            ui.label(f"What to do: {alert.action}").classes("text-xs text-slate-600")
        target = notification_target(alert)
        if target and target != here:
            ui.link("Open →", target).classes("text-sm text-indigo-700 whitespace-nowrap")

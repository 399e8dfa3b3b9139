"""Status badges and small tags."""

from __future__ import annotations

from nicegui import ui

HEALTH_STYLE = {
    "healthy": ("✓ HEALTHY", "bg-green-100 text-green-800"),
    "not run yet": ("○ NOT RUN YET", "bg-slate-100 text-slate-700"),
    "warning": ("⚠ WARNING", "bg-amber-100 text-amber-800"),
    "error": ("✕ ERROR", "bg-red-100 text-red-800"),
    "paused": ("❚❚ PAUSED", "bg-slate-200 text-slate-700"),
    "draft": ("✎ DRAFT", "bg-sky-100 text-sky-800"),
    "needs review": ("⚠ NEEDS REVIEW", "bg-amber-100 text-amber-800"),
}
RUN_STYLE = {
    "success": "bg-green-100 text-green-800",
    "partial": "bg-amber-100 text-amber-800",
    "failed": "bg-red-100 text-red-800",
    "cancelled": "bg-slate-200 text-slate-700",
    "running": "bg-indigo-100 text-indigo-800",
    "queued": "bg-indigo-50 text-indigo-700",
    "skipped": "bg-slate-100 text-slate-600",
}
SOURCE_LABELS = {"s3": "S3", "local": "Local", "azure_blob": "Azure Blob", "gcs": "GCS", "sftp": "SFTP"}


def health_badge(health: str) -> ui.label:
    text, style = HEALTH_STYLE.get(health, (health.upper(), "bg-slate-100 text-slate-700"))
    return ui.label(text).classes(f"{style} text-xs font-bold px-3 py-1 rounded-full tracking-wide")


def run_badge(status: str) -> ui.label:
    style = RUN_STYLE.get(status, "bg-slate-100 text-slate-700")
    return ui.label(status.capitalize()).classes(f"{style} text-xs font-semibold px-2 py-0.5 rounded")


def tag(text: str) -> ui.label:
    return ui.label(text).classes("bg-sky-50 text-sky-700 text-xs px-2 py-0.5 rounded border border-sky-100")

"""The error page shown instead of a stack trace when a page fails to build."""

from __future__ import annotations

import logging

from nicegui import ui

from components.console_words import console_action
from core.errors import AutoloaderError

log = logging.getLogger(__name__)


def error_page(exc: Exception) -> None:
    if isinstance(exc, AutoloaderError):
        message, action = exc.message, console_action(exc.action)
    else:
        log.error("console page failed: %s", type(exc).__name__, exc_info=exc)
        message = "Something went wrong while building this page."
        action = "Reload the page; if it keeps failing, check the server log."
    with ui.column().classes("w-full max-w-xl mx-auto mt-24 p-8 gap-3 items-center bg-white rounded-xl shadow"):
        ui.icon("sentiment_dissatisfied").classes("text-6xl text-slate-500")
        ui.label(message).classes("text-xl font-semibold text-slate-800 text-center")
        ui.label(action).classes("text-slate-600 text-center")
        ui.link("Back to the dashboard", "/").classes("text-indigo-700")

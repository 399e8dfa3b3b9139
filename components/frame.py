"""The shared page layout: header with navigation, content column."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui


@contextmanager
def frame(title: str) -> Iterator[None]:
    ui.page_title(f"{title} · Autoloader")
    with ui.header().classes("items-center justify-between bg-white text-slate-800 shadow-sm"):
        ui.link("Autoloader", "/").classes("text-xl font-bold no-underline text-indigo-700")
        with ui.row().classes("gap-4"):
            ui.link("Ingestions", "/").classes("no-underline text-slate-700")
            ui.link("API docs", "/docs").classes("no-underline text-slate-700")
    with ui.column().classes("w-full max-w-6xl mx-auto p-6 gap-4"):
        yield

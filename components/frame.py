"""The shared page layout: header with navigation and the notification bell, content column."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import app, ui

from components.notification_bell import NotificationBell

NAVIGATION = (("Ingestions", "/"), ("Clusters", "/clusters"), ("API docs", "/docs"))


@contextmanager
def frame(title: str, *, width: str = "max-w-6xl") -> Iterator[None]:
    ui.page_title(f"{title} · Autoloader")
    ui.query("body").classes("bg-slate-50")
    with ui.header(fixed=False).classes("items-center justify-between bg-white text-slate-800 shadow-sm px-6"):
        with ui.link(target="/").classes("no-underline flex items-center gap-2"):
            ui.icon("move_to_inbox").classes("text-2xl text-indigo-600")
            ui.label("Autoloader").classes("text-xl font-bold text-indigo-700")
        with ui.row().classes("gap-6 items-center"):
            for label, target in NAVIGATION:
                ui.link(label, target).classes("no-underline text-slate-700 hover:text-indigo-600 font-medium")
            inbox = getattr(app.state, "inbox", None)
            if inbox is not None:
                NotificationBell(inbox)
    with ui.column().classes(f"w-full {width} mx-auto p-6 gap-5"):
        yield

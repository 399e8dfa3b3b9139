"""The shared page layout: header with navigation, the signed-in user and the notification bell, content column."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui

from components.notification_bell import Inbox, NotificationBell

NAVIGATION = (("Ingestions", "/"), ("Clusters", "/clusters"), ("Audit", "/audit"), ("API docs", "/docs"))


@contextmanager
def frame(
    title: str, *, width: str = "max-w-6xl", inbox: Inbox | None = None, account: str | None = None
) -> Iterator[None]:
    """`account` is the signed-in user as shown in the header (none on the login and setup pages)."""
    ui.page_title(f"{title} · Autoloader")
    ui.query("body").classes("bg-slate-50")
    with ui.header(fixed=False).classes("items-center justify-between bg-white text-slate-800 shadow-sm px-6"):
        with ui.link(target="/").classes("no-underline flex items-center gap-2"):
            ui.icon("move_to_inbox").classes("text-2xl text-indigo-600")
            ui.label("Autoloader").classes("text-xl font-bold text-indigo-700")
        if account is not None:
            with ui.row().classes("gap-6 items-center"):
                for label, target in NAVIGATION:
                    ui.link(label, target).classes("no-underline text-slate-700 hover:text-indigo-600 font-medium")
                if inbox is not None:
                    NotificationBell(inbox)
                ui.link(account, "/account").classes("text-sm text-slate-600 no-underline").mark("account")
                ui.html(
                    '<form method="post" action="/auth/logout" class="m-0">'
                    '<button type="submit" class="text-sm text-indigo-700 underline">Log out</button></form>',
                    sanitize=False,
                )
    with ui.column().classes(f"w-full {width} mx-auto p-6 gap-5"):
        yield


def account_label(email: str, tenant: str, role: str) -> str:
    """E.g. "ada@example.com · analytics (admin)" (shown as text, never as HTML)."""
    return f"{email} · {tenant} ({role})"

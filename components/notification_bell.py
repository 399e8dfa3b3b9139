"""The header bell: unread count (one COUNT query, refreshed slowly) and the recent notifications on click."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from nicegui import run, ui
from sqlalchemy.exc import SQLAlchemyError

from components.formatting import relative_time
from core.alerts import AlertKind
from core.errors import AutoloaderError
from core.views import NotificationFeed, NotificationRecord

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0
RECENT = 20
SEVERITY_ICON = {"error": ("error", "text-red-600"), "warning": ("warning", "text-amber-600")}


class Inbox(Protocol):
    """What the bell reads and marks: the application's notifications."""

    def unread_count(self) -> int: ...

    def notifications(self, unread_only: bool = False, limit: int = 100) -> NotificationFeed: ...

    def mark_read(self, notification_id: int | None = None) -> None: ...


def notification_target(notification: NotificationRecord) -> str | None:
    """Where a notification leads: the schema review for a pending change, the ingestion otherwise."""
    if notification.ingestion_id is None:
        return None
    if notification.kind == AlertKind.SCHEMA_PENDING.value and notification.cleared_at is None:
        return f"/ingestions/{notification.ingestion_id}/schema-review"
    return f"/ingestions/{notification.ingestion_id}"


def bell_label(unread: int) -> str:
    """The bell's accessible name: what it is, then the count (the badge alone would name it "3")."""
    return f"Notifications, {unread} unread" if unread else "Notifications, none unread"


class NotificationBell:
    """Bell button with an unread badge; the menu loads the recent notifications when opened."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        with (
            ui.button(icon="notifications", on_click=self.open)
            .props("flat round color=grey-8")
            .classes("notification-bell")
            .props('aria-label="Notifications"')
            .mark("bell")
        ) as self.button:
            self.badge = ui.badge("", color="red").props('floating rounded aria-hidden="true"').mark("unread-count")
            self.badge.set_visibility(False)
            # A panel of notifications and buttons, not a menu of items: role=menu without menuitems (axe, critical)
            with ui.menu().props('no-parent-event anchor="bottom right" self="top right" role=dialog') as self.menu:
                self.menu.props["aria-label"] = "Notifications"
                self.panel = ui.column().classes("w-[26rem] max-w-[90vw] p-3 gap-2").mark("notifications")
        # Not an immediate timer: that would await the connection while the page is still being built, and NiceGUI
        # then answers before the page is complete. The first count comes when the browser connects.
        ui.context.client.on_connect(self.refresh_count)
        ui.timer(REFRESH_SECONDS, self.refresh_count, immediate=False)

    async def _io(self, function: Any, *args: Any) -> Any:
        """Run a store call off the event loop; a failing bell never breaks the page it sits on."""
        try:
            return await run.io_bound(function, *args)
        except (AutoloaderError, SQLAlchemyError) as exc:
            log.warning("notifications unavailable: %s", type(exc).__name__)
            return None

    async def refresh_count(self) -> None:
        count = await self._io(self.inbox.unread_count)
        if count is None:
            return
        self.badge.set_text(str(count) if count < 100 else "99+")
        self.badge.set_visibility(count > 0)
        self.button.props(f'aria-label="{bell_label(count)}"')

    async def open(self) -> None:
        feed = await self._io(self.inbox.notifications, False, RECENT)
        self._render(feed.items if feed else [])
        self.menu.open()

    async def mark_all_read(self) -> None:
        await self._io(self.inbox.mark_read)
        await self.open()
        await self.refresh_count()

    def _render(self, notifications: list[NotificationRecord]) -> None:
        self.panel.clear()
        with self.panel:
            with ui.row().classes("w-full items-center justify-between"):
                ui.label("Notifications").classes("text-base font-semibold text-slate-800")
                if any(n.read_at is None for n in notifications):
                    ui.button("Mark all read", on_click=self.mark_all_read).props("flat dense no-caps").mark(
                        "mark-all-read"
                    )
            if not notifications:
                ui.label("No notifications yet. Failed runs and schema changes show up here.").classes(
                    "text-sm text-slate-500"
                )
            for notification in notifications:
                _item(notification)


def _item(notification: NotificationRecord) -> None:
    unread = notification.read_at is None
    style = "bg-indigo-50 border-indigo-200" if unread else "bg-white border-slate-200"
    icon, color = SEVERITY_ICON.get(notification.severity, ("info", "text-slate-500"))
    with (
        ui.row()
        .classes(f"w-full no-wrap gap-2 p-2 rounded border {style}")
        .mark("notification-unread" if unread else "notification-read")
    ):
        ui.icon(icon).classes(f"{color} text-xl")
        with ui.column().classes("gap-0 min-w-0"):
            ui.label(notification.title).classes("text-sm font-semibold text-slate-800")
            ui.label(notification.message).classes("w-full text-xs text-slate-700").style("overflow-wrap: anywhere")
            ui.label(f"→ {notification.action}").classes("text-xs text-slate-500")
            with ui.row().classes("gap-3 items-center"):
                ui.label(relative_time(notification.created_at)).classes("text-xs text-slate-500")
                if notification.cleared_at is not None:
                    ui.label("cleared").classes("text-xs text-green-700")
                target = notification_target(notification)
                if target:
                    ui.link("Open →", target).classes("text-xs text-indigo-700")

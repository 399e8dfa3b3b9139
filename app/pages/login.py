"""Sign-in pages: `/login`, the one-time `/setup` (from the server itself only), `/account` (password), `/audit`.

The login and setup forms are plain HTML forms posting to `/auth/*` (app/api/accounts.py), so the session cookie is
set by an ordinary HTTP answer (HttpOnly, SameSite=Lax) and works without JavaScript.
"""

from __future__ import annotations

from html import escape

from nicegui import app, run, ui

from app.api.accounts import is_loopback, safe_next
from app.pages.context import page_frame
from components.frame import frame
from core.access import Role

FIELD = "w-full border border-slate-300 rounded px-3 py-2 text-base"
BUTTON = "w-full rounded bg-indigo-700 text-white font-semibold px-4 py-2 hover:bg-indigo-800 focus:outline-4"
NOTICES = {"password": "Your password was changed. Log in with the new one."}


def _field(name: str, label: str, kind: str, autocomplete: str) -> str:
    return (
        f'<label for="{name}" class="block text-sm font-medium text-slate-700 mt-3">{label}</label>'
        f'<input id="{name}" name="{name}" type="{kind}" autocomplete="{autocomplete}" required class="{FIELD}">'
    )


def _form(action: str, fields: str, submit: str, hidden: dict[str, str] | None = None) -> str:
    extra = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v, quote=True)}">' for k, v in (hidden or {}).items()
    )
    return (
        f'<form method="post" action="{action}" class="w-full">{extra}{fields}'
        f'<button type="submit" class="{BUTTON} mt-5">{submit}</button></form>'
    )


def _message(text: str | None, error: bool = True) -> None:
    if text:
        colour = "bg-red-50 border-red-300 text-red-900" if error else "bg-green-50 border-green-300 text-green-900"
        ui.label(text).classes(f"w-full p-3 rounded border {colour}").props('role="alert"')


async def login_page(error: str | None = None, next: str = "/", notice: str | None = None) -> None:
    needs_setup = await run.io_bound(app.state.services.accounts.needs_setup)
    with frame("Log in", width="max-w-md"), ui.card().classes("w-full p-6 gap-1"):
        ui.html("<h1 class='text-2xl font-bold text-slate-800'>Log in to Autoloader</h1>", sanitize=False)
        _message(NOTICES.get(notice or ""), error=False)
        _message(error)
        if needs_setup:
            ui.label(
                "No administrator exists yet. On the server, open http://127.0.0.1:<port>/setup, or start it with "
                "AUTOLOADER_ADMIN_EMAIL and AUTOLOADER_ADMIN_PASSWORD."
            ).classes("text-sm text-slate-700")
        fields = _field("email", "Email", "email", "username") + _field(
            "password", "Password", "password", "current-password"
        )
        ui.html(_form("/auth/login", fields, "Log in", {"next": safe_next(next)}), sanitize=False).classes("w-full")


async def setup_page(error: str | None = None) -> None:
    services = app.state.services
    request = ui.context.client.request
    local = is_loopback(request.client.host if request.client else "")
    open_setup = local and await run.io_bound(services.accounts.needs_setup)
    with frame("Set up", width="max-w-md"), ui.card().classes("w-full p-6 gap-1"):
        ui.html("<h1 class='text-2xl font-bold text-slate-800'>Create the first administrator</h1>", sanitize=False)
        _message(error)
        if not open_setup:
            ui.label(
                "Setup is closed: an administrator exists, or this page was not opened on the server itself."
            ).classes("text-slate-700")
            ui.link("Log in", "/login")
            return
        ui.label("This account administers the first tenant and can create tenants and users.").classes("text-sm")
        fields = _field("email", "Email", "email", "username") + _field(
            "password", "Password (10 characters or more)", "password", "new-password"
        )
        ui.html(_form("/auth/setup", fields, "Create administrator"), sanitize=False).classes("w-full")


async def account_page(error: str | None = None) -> None:
    with page_frame("Account", width="max-w-md") as who, ui.card().classes("w-full p-6 gap-1"):
        ui.html("<h1 class='text-2xl font-bold text-slate-800'>Your account</h1>", sanitize=False)
        ui.label(f"{who.email} · role {who.role.value}").classes("text-slate-700")
        _message(error)
        ui.html("<h2 class='text-lg font-semibold mt-4'>Change password</h2>", sanitize=False)
        fields = _field("current", "Current password", "password", "current-password") + _field(
            "new", "New password (10 characters or more)", "password", "new-password"
        )
        ui.html(_form("/auth/password", fields, "Change password"), sanitize=False).classes("w-full")
        ui.label("API tokens: POST /api/v1/users/{id}/tokens (see the API docs).").classes(
            "text-sm text-slate-600 mt-4"
        )


async def audit_page() -> None:
    with page_frame("Audit log") as who:
        ui.html("<h1 class='text-3xl font-bold text-slate-800'>Audit log</h1>", sanitize=False)
        if who.role != Role.ADMIN:
            ui.label("Only admins of this tenant can read the audit log.").classes("text-slate-700")
            return
        entries = await run.io_bound(app.state.services.views.audit, who, 500) or []
        rows = [
            {
                "at": e.at.strftime("%Y-%m-%d %H:%M:%S"),
                "actor": e.actor,
                "action": e.action,
                "object": f"{e.object_type} {e.object_id or ''}".strip(),
                "details": ", ".join(f"{k}={v}" for k, v in e.details.items() if k != "statements")[:200],
            }
            for e in entries
        ]
        columns = [{"name": k, "label": k.capitalize(), "field": k, "align": "left"} for k in rows[0]] if rows else []
        ui.table(columns=columns, rows=rows, pagination=50).classes("w-full").mark("audit")

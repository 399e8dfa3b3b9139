"""What every console page needs about its request: who is signed in, and the shared frame for them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import app, ui

from app.bootstrap import Container
from components.frame import account_label, frame
from core.access import Principal, Role
from core.errors import Unauthorized


def container() -> Container:
    found: Container = app.state.services
    return found


def who() -> Principal:
    """The signed-in user of this page (the auth middleware put it on the request; pages are never public)."""
    principal = getattr(ui.context.client.request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise Unauthorized("You are not signed in.", "Log in at /login.")
    return principal


def can_change(principal: Principal) -> bool:
    return principal.role != Role.VIEWER


def may_change(principal: Principal, owner_id: int | None) -> bool:
    """Whether to offer the change buttons of an ingestion (the services check again)."""
    return principal.role == Role.ADMIN or (principal.role == Role.MEMBER and owner_id == principal.user_id)


@contextmanager
def page_frame(title: str, *, width: str = "max-w-6xl") -> Iterator[Principal]:
    principal = who()
    services = container()
    tenant = services.accounts.tenant_name(principal.tenant_id)
    label = account_label(principal.email, tenant, principal.role.value)
    with frame(title, width=width, inbox=services.inbox(principal), account=label):
        yield principal

"""Who is asking, and what their role lets them do: pure rules, checked by the services (writes) and applied as a
tenant filter by the read side. Another tenant's object is never distinguishable from a missing one (404)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import Forbidden, NotFound


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a logged-in user or an API token's user."""

    user_id: int | None
    tenant_id: int
    role: Role
    email: str
    instance_admin: bool = False

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        return self.email


FIRST_TENANT = 1
SYSTEM = Principal(user_id=None, tenant_id=FIRST_TENANT, role=Role.ADMIN, email="system", instance_admin=True)
"""The process itself (CLI, scheduler, start-up): admin of the first tenant. Never the identity of a request."""


def _refuse(who: Principal, what: str) -> Forbidden:
    return Forbidden(
        f"Your role ({who.role.value}) does not allow you to {what}.",
        "Ask an admin of your tenant to do it, or to give you a role that may.",
    )


def require_change(who: Principal, what: str) -> None:
    """Any change: viewers only read."""
    if who.role == Role.VIEWER:
        raise _refuse(who, what)


def require_admin(who: Principal, what: str) -> None:
    if who.role != Role.ADMIN:
        raise _refuse(who, what)


def require_instance_admin(who: Principal, what: str) -> None:
    if not who.instance_admin:
        raise Forbidden(
            f"Only an instance admin may {what}.", "Ask the admin who set this server up (AUTOLOADER_ADMIN_EMAIL)."
        )


def own_only(who: Principal) -> int | None:
    """The user whose ingestions alone `who` sees (with their runs, files and notifications): a member's own, as
    PRODUCT.md §13 has it ("member sees and edits own ingestions"); None for admins and viewers, who see every
    ingestion of their tenant. 0, no user's id, for a member without one (none is made)."""
    if who.role == Role.MEMBER:
        return who.user_id or 0
    return None


def sees(who: Principal, owner_id: int | None) -> bool:
    """Whether `who` sees an ingestion `owner_id` created (`own_only`)."""
    own = own_only(who)
    return own is None or owner_id == own


def require_visible(who: Principal, owner_id: int | None, ingestion_id: int) -> None:
    """NotFound for an ingestion `who` does not see (`own_only`): as missing as another tenant's."""
    if not sees(who, owner_id):
        raise NotFound(f"Ingestion {ingestion_id} does not exist.", "List ingestions with GET /api/v1/ingestions.")


def require_owner(who: Principal, owner_id: int | None, what: str) -> None:
    """Change an ingestion: admins any of their tenant's, members their own, viewers none. Another user's
    ingestion is NotFound to a member, as on the read side (`own_only`): a 403 told which ids exist."""
    require_change(who, what)
    if not sees(who, owner_id):
        raise NotFound("That ingestion does not exist.", "List ingestions with GET /api/v1/ingestions.")

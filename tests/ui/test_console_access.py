"""The console shows each user their tenant only, and offers only the changes their role allows."""

from __future__ import annotations

from nicegui.testing import User

from core.access import SYSTEM, Role
from tests.helpers import spec
from tests.ui.conftest import ORDERS

PASSWORD = "correct-horse-battery"


async def _sign_in_as(user: User, email: str) -> None:
    answer = await user.http_client.post("/auth/login", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text


async def test_another_tenant_sees_nothing_by_guessed_ids(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    ingestion = services.ingestions.create(spec(str(ORDERS), name="orders"), activate=True)
    other = services.accounts.create_tenant(SYSTEM, "analytics")
    services.accounts.create_user(SYSTEM, "bob@example.com", PASSWORD, Role.ADMIN, other.id)
    await _sign_in_as(user, "bob@example.com")
    await user.open("/")
    await user.should_see("bob@example.com · analytics (admin)")
    await user.should_not_see("orders")
    for path in (f"/ingestions/{ingestion.id}", f"/ingestions/{ingestion.id}/schema-review"):
        await user.open(path)
        await user.should_see(f"Ingestion {ingestion.id} does not exist.")
    await user.open(f"/ingestions/{ingestion.id}/edit")
    await user.should_see(f"Ingestion {ingestion.id} does not exist.")


async def test_a_viewer_is_offered_no_changes(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    services.ingestions.create(spec(str(ORDERS), name="orders"), activate=True)
    services.accounts.create_user(SYSTEM, "vera@example.com", PASSWORD, Role.VIEWER, None)
    await _sign_in_as(user, "vera@example.com")
    await user.open("/")
    await user.should_see("orders")
    await user.should_not_see(marker="new-ingestion")
    await user.should_not_see(marker="run-orders")
    await user.open("/ingestions/new")
    await user.should_see("Your role (viewer) does not allow you to create ingestions.")
    await user.should_not_see(marker="save-draft")

"""Dashboard `/`: totals, cards, actions, filters."""

from __future__ import annotations

import asyncio

from nicegui import ui
from nicegui.testing import User

from core.access import SYSTEM
from tests.helpers import spec
from tests.ui.conftest import ORDERS


async def _wait_for_run(services, ingestion_id: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(100):
        runs = services.views.runs(SYSTEM, ingestion_id)
        if runs and runs[0].status not in ("queued", "running"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("run did not finish")


async def test_empty_dashboard_offers_a_new_ingestion(user: User) -> None:
    await user.open("/")
    await user.should_see("Data Ingestions")
    await user.should_see("No ingestions yet")
    await user.should_see("Active Ingestions")
    await user.should_see("Clusters")


async def test_card_shows_facts_and_run_now_updates_it(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    ingestion = services.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    await user.open("/")
    await user.should_see("orders")
    await user.should_see("main.raw.orders")
    await user.should_see("○ NOT RUN YET")  # nothing has shown it healthy yet
    await user.should_see("JSON (auto-schema)")
    user.find(marker="run-orders").click()
    await _wait_for_run(services, ingestion.id)
    await user.should_see("✓ HEALTHY", retries=50)
    for _ in range(50):
        texts = [e.text for e in user.find(marker="last-run").elements if isinstance(e, ui.label)]
        if any("success" in t and "120 records" in t for t in texts):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"card not refreshed: {texts}")
    await user.should_see("Last 7 Days Performance")


async def test_run_now_on_a_paused_ingestion_says_resume_first(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    ingestion = services.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services.ingestions.pause(ingestion.id)
    await user.open("/")
    await user.should_see("❚❚ PAUSED")
    user.find(marker="run-orders").click()
    await user.should_see("Resume it first", retries=20)
    user.find(marker="pause-orders").click()
    await user.should_see("'orders' is active.", retries=20)


async def test_delete_asks_and_can_drop_the_table(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    ingestion = services.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services.runs.run_now(ingestion.name)
    services.ingestions.create(spec(str(ORDERS), table="returns", name="returns"))
    await user.open("/")
    await user.should_see("✎ DRAFT")
    user.find(marker="delete-returns").click()  # never ran: no table of its own to keep or drop
    await user.should_see("Delete 'returns'?")
    await user.should_not_see(marker="delete-choice")
    user.find(marker="confirm-delete").click()
    await user.should_see("'returns' deleted", retries=20)
    user.find(marker="delete-orders").click()
    await user.should_see("Delete 'orders'?")
    user.find(marker="delete-choice").click()  # the radio: keep is preselected
    user.find(marker="confirm-delete").click()
    await user.should_see("'orders' deleted", retries=20)
    assert services.store.list_ingestions() == []


async def test_search_and_status_filter(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    services.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services.ingestions.create(spec(str(ORDERS), table="returns", name="returns"))
    await user.open("/")
    await user.should_see(marker="card-returns")
    user.find(marker="search").type("raw.orders")
    await user.should_not_see(marker="card-returns", retries=20)
    await user.should_see(marker="card-orders")
    user.find(marker="search").clear()
    filter_select = user.find(marker="filter-status").elements.pop()
    filter_select.set_value("draft")
    await user.should_not_see(marker="card-orders", retries=20)
    await user.should_see(marker="card-returns")


async def test_cards_below_the_fold_follow_after_the_first_paint(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    for n in range(6):
        services_of_app.ingestions.create(spec(str(ORDERS), table=f"t{n}", name=f"orders-{n}"))
    await user.open("/")
    await user.should_see(marker="card-orders-0")
    await user.should_see(marker="card-orders-5", retries=20)

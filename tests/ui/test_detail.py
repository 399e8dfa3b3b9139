"""Ingestion detail `/ingestions/{id}`."""

from __future__ import annotations

import asyncio

from nicegui.testing import User

from core.access import SYSTEM
from tests.helpers import spec
from tests.ui.conftest import ORDERS


async def test_detail_shows_metrics_history_and_ledger_and_goes_live(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    ingestion = services.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see("orders")
    await user.should_see("No runs yet. Click Run Now to load the files.")
    await user.should_see("Daily volume (records)")
    await user.should_see(marker="cost")
    user.find(marker="run-now").click()
    await user.should_see(marker="run-history", retries=30)
    for _ in range(60):
        runs = services.views.runs(SYSTEM, ingestion.id)
        if runs and runs[0].status == "success":
            break
        await asyncio.sleep(0.1)
    await user.should_see("3 files", retries=40)
    history = next(iter(user.find(marker="run-history").elements))
    for _ in range(40):
        if history.rows and history.rows[0]["status"] == "success":
            break
        await asyncio.sleep(0.1)
        history = next(iter(user.find(marker="run-history").elements))
    assert history.rows[0]["records"] == "120"
    ledger = next(iter(user.find(marker="ledger").elements))
    for _ in range(40):  # the page re-renders after the run: look up the current ledger table
        if ledger.rows:
            break
        await asyncio.sleep(0.1)
        ledger = next(iter(user.find(marker="ledger").elements))
    assert {row["status"] for row in ledger.rows} == {"loaded"}


async def test_ledger_filter_and_unknown_ingestion(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    ingestion = services.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services.runs.run_now(str(ingestion.id))
    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see("3 files", retries=50)  # the ledger fills after the page opens
    user.find(marker="ledger-search").type("11-02")
    await user.should_see("1 file", retries=20)
    await user.open("/ingestions/999")
    await user.should_see("Ingestion 999 does not exist.")

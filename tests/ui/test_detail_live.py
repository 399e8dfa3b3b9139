"""The detail page hears about runs of its ingestion as they happen (app/live.py), not at its next poll."""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui.testing import User

from tests.helpers import spec
from tests.ui.conftest import ORDERS


async def test_an_idle_detail_page_shows_a_run_started_elsewhere(user: User, services_of_app: Any) -> None:
    """A run started by the scheduler, the API or the CLI while the page is open shows up on it. Before, an idle
    page polled only while it already showed a live run, so it never learned of one started elsewhere."""
    services = services_of_app
    ingestion = services.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see("No runs yet. Click Run Now to load the files.")
    assert services.news.listeners(ingestion.id) == 1
    outcome = await asyncio.to_thread(services.runs.run_now, str(ingestion.id))  # as the API would, not the page
    assert outcome.status.value == "success"
    await user.should_see(marker="run-history", retries=30)
    await user.should_not_see("No runs yet. Click Run Now to load the files.")

"""Detail page: Full refresh asks first, stating what the table holds now, then offers to run."""

from __future__ import annotations

import asyncio

from nicegui.testing import User

from core.access import SYSTEM
from tests.helpers import spec
from tests.ui.conftest import ORDERS


async def test_full_refresh_confirms_what_is_dropped_then_runs(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    ingestion = services.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services.runs.run_now(str(ingestion.id))
    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see(marker="full-refresh")

    user.find(marker="full-refresh").click()
    await user.should_see(
        "Table main.raw.orders holds 120 rows from 3 files now. A full refresh drops them: the table is replaced by "
        "the rows of every file now at the source, each loaded exactly once."
    )
    user.find(marker="full-refresh-cancel").click()
    await user.should_not_see(marker="full-refresh-confirm")
    assert services.store.full_refresh_marker(ingestion.id) is None

    user.find(marker="full-refresh").click()
    await user.should_see(marker="full-refresh-confirm")
    user.find(marker="full-refresh-yes").click()
    await user.should_see("The next run of this ingestion rebuilds the table. Run it now?")
    assert services.store.full_refresh_marker(ingestion.id) == -1
    user.find(marker="full-refresh-run-now").click()
    for _ in range(100):
        runs = services.views.runs(SYSTEM, ingestion.id)
        if len(runs) == 2 and runs[0].status == "success":
            break
        await asyncio.sleep(0.1)
    assert "full refresh" in runs[0].message and runs[0].metrics["records_ingested"] == 120
    assert services.store.full_refresh_marker(ingestion.id) is None
    assert services.refresh.preview(ingestion.id).rows == 120

"""The console and the REST API show the same numbers for the same ingestion: both read through app/views.py."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient
from nicegui import app
from nicegui.testing import User

from components.formatting import clock, human_count, human_duration
from tests.conftest import admin_headers
from tests.helpers import spec
from tests.ui.conftest import ORDERS


def _label(user: User, marker: str) -> str:
    (element,) = user.find(marker=marker).elements
    return str(element.text)  # type: ignore[attr-defined]


async def test_detail_page_and_api_agree(user: User, services_of_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    folder = tmp_path / "orders"
    shutil.copytree(ORDERS, folder)
    hourly = {"mode": "scheduled", "frequency": "hourly", "minute": 7}
    ingestion = services.ingestions.create(spec(str(folder), name="orders", schedule=hourly), activate=True)
    services.runs.run_now(str(ingestion.id))
    first = sorted(ORDERS.glob("*.json"))[0]
    for name in ("late-1.json", "late-2.json"):
        shutil.copy(first, folder / name)
    services.runs.run_now(str(ingestion.id))
    shutil.rmtree(folder)
    services.runs.run_now(str(ingestion.id))  # the folder is gone: a failed run

    api = TestClient(app, headers=admin_headers(services))
    metrics = api.get(f"/api/v1/ingestions/{ingestion.id}/metrics").json()
    public = api.get(f"/api/v1/ingestions/{ingestion.id}").json()
    assert (metrics["runs"], metrics["failed_runs"], metrics["files_processed"]) == (3, 1, 5)
    assert public["last_run"]["status"] == "failed"

    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see(marker="stat-files")
    assert _label(user, "stat-files") == f"{metrics['files_processed']:,}"
    assert _label(user, "stat-records") == human_count(metrics["records_ingested"])
    assert _label(user, "stat-failed") == str(metrics["failed_runs"])
    assert _label(user, "stat-duration") == human_duration(metrics["average_duration_seconds"])
    await user.should_see(clock(datetime.fromisoformat(public["next_run_at"])))
    await user.should_see(f"{metrics['runs']} runs")

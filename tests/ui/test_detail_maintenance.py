"""The detail page's table maintenance card: "Compact now", then the files before and after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nicegui.testing import User

from tests.helpers import spec, write_json_files


async def test_compact_now_shows_the_files_before_and_after(user: User, services_of_app: Any, tmp_path: Path) -> None:
    services = services_of_app
    landing = tmp_path / "in"
    ingestion = services.ingestions.create(spec(str(landing), name="events"), activate=True)
    for index in range(3):
        write_json_files(landing, 1, 5, start_id=index * 5, prefix=f"run{index}")
        services.runs.run_now(str(ingestion.id))
    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see("Table maintenance")
    await user.should_see("Not maintained yet", retries=20)
    user.find(marker="compact-now").click()
    await user.should_see("Files 3 → 1", retries=50)
    await user.should_see("Vacuum deleted 0 old files, keeping 168 h of history", retries=20)

"""Issue 5 in a real browser: the dashboard flags a held schema change, the review screen resolves it with
Auto-Merge, the held rows arrive and the badge clears. Screenshots go to test-artifacts/screens/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from deltalake import DeltaTable
from playwright.sync_api import Page, expect

from tests.server_process import ADMIN_EMAIL, AUTH
from tests.ui.browser import TIMEOUT_MS, chromium_page, running_server, server_env, shot, sign_in
from tests.ui.conftest import CHROMIUM
from tests.ui.schema_scenario import prepare_needs_review

ROWS_PER_FILE = 1000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture
def needs_review_server(
    tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, int, Path]]:
    """3 files of 1,000 rows with 5 columns loaded, 2 files with 7 columns held; then the server starts on it."""
    from app.bootstrap import build
    from app.settings import Settings

    data = state_dir / "server-data"
    for key, value in server_env(data).items():
        monkeypatch.setenv(key, value)
    services = build(Settings())
    try:
        ingestion_id = prepare_needs_review(services, tmp_path / "landing", ROWS_PER_FILE)
    finally:
        services.close()
    with running_server(data) as base:
        yield base, ingestion_id, data


@pytest.fixture
def console_page(
    browser_type_launch_args: dict[str, Any], needs_review_server: tuple[str, int, Path]
) -> Iterator[Page]:
    with chromium_page(browser_type_launch_args) as page:
        sign_in(page, needs_review_server[0])
        page.set_default_timeout(TIMEOUT_MS)
        yield page


def _loaded_files(base: str, ingestion_id: int) -> int:
    response = httpx.get(
        f"{base}/api/v1/ingestions/{ingestion_id}/files", params={"status": "loaded"}, timeout=5, headers=AUTH
    )
    response.raise_for_status()
    return int(response.json()["total"])


def _wait_for_loaded(base: str, ingestion_id: int, files: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while (loaded := _loaded_files(base, ingestion_id)) != files:
        assert time.monotonic() < deadline, f"{loaded} of {files} files loaded"
        time.sleep(0.5)


def test_review_auto_merge_loads_the_held_rows_and_clears_the_badge(
    needs_review_server: tuple[str, int, Path], console_page: Page
) -> None:
    base, ingestion_id, data = needs_review_server
    page = console_page
    card = page.locator(".ingestion-card").filter(has=page.get_by_role("link", name="events", exact=True))

    page.goto(base + "/")
    expect(card.get_by_text("⚠ NEEDS REVIEW")).to_be_visible()
    expect(card.get_by_text("Schema Evolution Detected")).to_be_visible()
    expect(card.get_by_text("New columns 'email', 'score' found in 2 recent files.")).to_be_visible()
    assert _loaded_files(base, ingestion_id) == 3
    shot(page, "20-dashboard-needs-review")

    page.locator(".notification-bell").click()
    expect(page.get_by_text("Schema change in 'events' needs review")).to_be_visible()
    shot(page, "20b-notifications")
    page.keyboard.press("Escape")

    page.goto(f"{base}/ingestions/{ingestion_id}")
    expect(page.get_by_text("Schema Evolution Detected")).to_be_visible()
    expect(page.get_by_text("waiting for review", exact=False)).to_be_visible()
    expect(page.get_by_text("Schema change in 'events' needs review")).to_be_visible()
    shot(page, "20c-detail-needs-review")
    page.goto(base + "/")

    card.get_by_role("link", name="Review and resolve →").click()
    page.wait_for_url(f"**/ingestions/{ingestion_id}/schema-review")
    expect(page.get_by_text("CURRENT SCHEMA", exact=True)).to_be_visible()
    expect(page.get_by_text("NEW SCHEMA", exact=True)).to_be_visible()
    expect(page.locator(".schema-added").get_by_text("email")).to_be_visible()
    expect(page.locator(".schema-added").get_by_text("score")).to_be_visible()
    expect(page.locator(".held-files").get_by_text("(1,000 records)").first).to_be_visible()
    shot(page, "21-schema-review")

    page.locator(".option-auto_merge").click()
    expect(page.locator(".plan-preview").get_by_text("ALTER TABLE", exact=False).first).to_be_visible()
    page.locator(".apply-solution").click()
    page.wait_for_url(f"**/ingestions/{ingestion_id}")
    _wait_for_loaded(base, ingestion_id, 5)
    expect(page.get_by_text(re.compile(r"Run \d+ running"))).to_have_count(0)
    merged_by = f"auto-merged (columns added to the table) by {ADMIN_EMAIL}"
    expect(page.get_by_text(merged_by, exact=False)).to_be_visible()
    table = DeltaTable(str(data / "warehouse" / "main" / "raw" / "events")).to_pyarrow_table()
    assert table.num_rows == 5 * ROWS_PER_FILE
    assert {"email", "score"} <= set(table.column_names)
    shot(page, "22-detail-after-auto-merge")

    page.goto(base + "/")
    expect(card.get_by_text("✓ HEALTHY")).to_be_visible()
    expect(card.get_by_text("Schema Evolution Detected")).to_have_count(0)
    expect(card.get_by_text("success · 2,000 records", exact=False)).to_be_visible()
    shot(page, "23-dashboard-resolved")

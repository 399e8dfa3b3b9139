"""Retake the README screenshots from the running app (Debian Chromium via Playwright).

    .venv/bin/python docs/screenshots/take_screenshots.py

Prepares a temp data dir with a few ingestions and real runs (one waiting for a schema review), starts
`autoloader serve` on it and saves dashboard.png, wizard-source.png, wizard-format.png, wizard-schedule.png and
preview.png next to this file.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, expect  # noqa: E402

from tests.ui.browser import chromium_page, running_server, server_env  # noqa: E402
from tests.ui.conftest import CHROMIUM, CHROMIUM_FLAGS, ORDERS  # noqa: E402
from tests.ui.schema_scenario import prepare_needs_review  # noqa: E402

OUT = Path(__file__).resolve().parent


def _clicks(folder: Path, files: int, start: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(start, start + files):
        rows = (
            {"event_id": n * 500 + i, "user": f"u{i % 37}", "page": f"/p/{i % 11}", "ms": i % 900} for i in range(500)
        )
        (folder / f"clicks-{n:04d}.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def prepare(data: Path, landing: Path) -> None:
    from app.bootstrap import build
    from app.settings import Settings
    from tests.helpers import spec

    for key, value in server_env(data).items():
        os.environ[key] = value
    os.environ["AUTOLOADER_LOCAL_ROOTS"] = str(landing)  # the server started later inherits it
    services = build(Settings())
    try:
        shutil.copytree(ORDERS, landing / "orders")
        daily = {"mode": "scheduled", "frequency": "daily", "time": "02:00", "backfill": {"mode": "all"}}
        orders = services.ingestions.create(
            spec(str(landing / "orders"), table="orders", name="orders_daily", schedule=daily), activate=True
        )
        services.runs.run_now(str(orders.id))
        hourly = {"mode": "scheduled", "frequency": "hourly", "minute": 15, "backfill": {"mode": "all"}}
        clicks = services.ingestions.create(
            spec(str(landing / "clicks"), table="clickstream", name="clickstream", schedule=hourly), activate=True
        )
        for batch in range(4):
            _clicks(landing / "clicks", 3 + batch, batch * 10)
            services.runs.run_now(str(clicks.id))
        prepare_needs_review(services, landing / "security", rows_per_file=250, name="security_scans")
    finally:
        services.close()


def _field(page: Page, path: str) -> object:
    return page.locator(f'input[data-testid="{path}"], [data-testid="{path}"] input').first


def _shot(page: Page, name: str, full_page: bool = True) -> None:
    page.wait_for_timeout(500)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)
    print(f"{name}.png: {(OUT / f'{name}.png').stat().st_size // 1024} KB")


def take(base: str, page: Page, landing: Path) -> None:
    page.set_default_timeout(30_000)
    page.goto(base + "/")
    expect(page.get_by_text("Schema Evolution Detected")).to_be_visible()
    _shot(page, "dashboard")

    page.goto(base + "/ingestions/new")
    _field(page, "name").fill("orders")  # type: ignore[attr-defined]
    _field(page, "source.path").fill(str(landing / "orders"))  # type: ignore[attr-defined]
    page.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("Connection successful — 3 files", exact=False)).to_be_visible()
    _shot(page, "wizard-source")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("• order_id (bigint)")).to_be_visible()
    _shot(page, "wizard-format")
    page.get_by_role("button", name="Next").click()
    _field(page, "destination.table").fill("orders_v2")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Estimated Monthly Cost")).to_be_visible()
    _shot(page, "wizard-schedule")
    page.get_by_role("button", name="Test & Preview").click()
    expect(page.get_by_text("Preview & Test Ingestion")).to_be_visible()
    _shot(page, "preview")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        data, landing = Path(tmp) / "data", Path(tmp) / "landing"
        prepare(data, landing)
        with running_server(data) as base, chromium_page({"executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}) as page:
            take(base, page, landing)


if __name__ == "__main__":
    main()

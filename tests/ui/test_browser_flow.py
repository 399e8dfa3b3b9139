"""The main flow in a real browser (Debian Chromium via Playwright) against `autoloader serve`.

Screenshots of every screen go to test-artifacts/screens/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.ui.browser import TIMEOUT_MS, chromium_page, running_server, shot, sign_in
from tests.ui.conftest import CHROMIUM, ORDERS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture
def server(state_dir: Path) -> Iterator[str]:
    with running_server(state_dir / "server-data") as base:
        yield base


@pytest.fixture
def console_page(browser_type_launch_args: dict[str, Any], server: str) -> Iterator[Page]:
    with chromium_page(browser_type_launch_args) as page:
        sign_in(page, server)
        yield page


def _shot(page: Page, name: str) -> None:
    shot(page, name)


def _field(page: Page, path: str) -> object:
    return page.locator(f'input[data-testid="{path}"], [data-testid="{path}"] input').first


def test_main_flow_from_folder_to_monitored_runs(server: str, console_page: Page, tmp_path: Path) -> None:
    page = console_page
    page.set_default_timeout(TIMEOUT_MS)
    source = tmp_path / "landing"
    shutil.copytree(ORDERS, source)

    page.goto(server + "/")
    expect(page.get_by_text("No ingestions yet")).to_be_visible()
    _shot(page, "01-dashboard-empty")
    page.get_by_role("button", name="New Ingestion").first.click()
    expect(page.get_by_text("New Data Ingestion")).to_be_visible()

    # a validation error blocks Next
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Give the ingestion a name.")).to_be_visible()
    expect(page.get_by_text("Enter the folder or bucket path to load files from.")).to_be_visible()
    _shot(page, "02-wizard-source-validation")

    # a wrong path shows the connection error
    _field(page, "name").fill("orders")  # type: ignore[attr-defined]
    _field(page, "source.path").fill(str(tmp_path / "no-such-folder"))  # type: ignore[attr-defined]
    page.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text(re.compile("does not exist"))).to_be_visible()
    _shot(page, "03-wizard-source-wrong-path")

    _field(page, "source.path").fill(str(source))  # type: ignore[attr-defined]
    page.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("Connection successful — 3 files", exact=False)).to_be_visible()
    _shot(page, "04-wizard-source")

    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("• order_id (bigint)")).to_be_visible()
    expect(page.get_by_text("• ordered_at (timestamp)")).to_be_visible()
    _shot(page, "05-wizard-format")

    page.get_by_role("button", name="Next").click()
    _field(page, "destination.table").fill("orders")  # type: ignore[attr-defined]
    expect(page.get_by_text("Full table name: main.default.orders")).to_be_visible()
    _shot(page, "06-wizard-destination")

    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Estimated Monthly Cost")).to_be_visible()
    expect(page.get_by_text("Total Estimated Cost")).to_be_visible()
    _shot(page, "07-wizard-schedule")

    page.get_by_role("button", name="Test & Preview").click()
    expect(page.get_by_text("Preview & Test Ingestion")).to_be_visible()
    expect(page.get_by_text("3 Existing Files Detected")).to_be_visible()
    _shot(page, "08-preview-overview")
    page.get_by_role("tab", name="Sample Data").click()
    expect(page.get_by_text('"order_id": 1001', exact=False).first).to_be_visible()
    _shot(page, "09-preview-sample-data")
    page.get_by_role("tab", name="Schema").click()
    expect(page.get_by_role("cell", name="ordered_at")).to_be_visible()
    _shot(page, "10-preview-schema")

    page.get_by_role("button", name="Looks Good - Create Ingestion").click()
    expect(page.get_by_text(re.compile(r"'orders' is active\. Next run "))).to_be_visible()
    expect(page.get_by_text("main.default.orders")).to_be_visible()

    page.get_by_role("button", name="Run Now").click()
    expect(page.get_by_text(re.compile(r"success · 120 records"))).to_be_visible()
    _shot(page, "11-dashboard-after-run")

    page.get_by_role("link", name="orders", exact=True).click()
    history = page.get_by_role("table").first
    expect(history.get_by_text("success")).to_be_visible()
    expect(history.get_by_role("cell", name="120", exact=True)).to_be_visible()
    expect(page.get_by_text("3 files")).to_be_visible()
    _shot(page, "12-detail")


_WOULD_ASK = """() => {
  const leaving = new Event('beforeunload', {cancelable: true});
  window.dispatchEvent(leaving);
  return leaving.defaultPrevented;
}"""
"""Whether the page's beforeunload handlers ask the browser to confirm leaving (headless Chromium shows no prompt,
so the handler's answer is what is checked)."""


def test_leaving_a_wizard_with_typed_input_asks_first(server: str, console_page: Page) -> None:
    """Back, a reload or a header link left the wizard and dropped what was typed without a word (an outside
    attack): the browser now asks first, once something was typed, and not before."""
    page = console_page
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server + "/ingestions/new")
    expect(page.get_by_text("New Data Ingestion")).to_be_visible()
    assert page.evaluate(_WOULD_ASK) is False
    _field(page, "name").click()  # type: ignore[attr-defined]
    page.keyboard.type("orders")
    assert page.evaluate(_WOULD_ASK) is True
    page.goto(server + "/")  # a page without a wizard asks nothing
    assert page.evaluate(_WOULD_ASK) is False

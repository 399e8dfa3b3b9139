"""Issue 15: a keyboard-only run in real Chromium from the dashboard's 'New Ingestion' through the wizard to
'Run Now', then a held schema change resolved by keyboard on the review screen.

Every interaction is page.keyboard (Tab, Shift+Tab, Space, Enter, typing); locators only read the page.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from playwright.sync_api import Page, expect

from tests.server_process import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.ui.browser import chromium_page, running_server
from tests.ui.conftest import CHROMIUM
from tests.ui.test_accessibility import TIMEOUT_MS, _tab_to

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]

TABLE = "kb_orders"


@pytest.fixture
def server(state_dir: Path) -> Iterator[tuple[str, Path]]:
    data = state_dir / "server-data"
    with running_server(data) as base:
        yield base, data


@pytest.fixture
def keyboard_page(browser_type_launch_args: dict[str, Any], server: tuple[str, Path]) -> Iterator[Page]:
    with chromium_page(browser_type_launch_args) as page:
        page.set_default_timeout(TIMEOUT_MS)
        yield page


def _write(folder: Path, name: str, first: int, extra: bool = False) -> None:
    rows = [
        {"order_id": n, "amount": n * 1.5} | ({"coupon": f"c-{n}"} if extra else {}) for n in range(first, first + 3)
    ]
    (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))


def _focused_text(page: Page) -> str:
    return str(
        page.evaluate(
            "() => { const e = document.activeElement; return e && e !== document.body ? e.innerText.trim() : ''; }"
        )
    )


def _tab_to_text(page: Page, text: str, presses: int = 80) -> None:
    """Press Tab until the focused element's visible text is `text` (a button or link by its name); no key if the
    focus is already there (Tab would move it on)."""
    for _ in range(presses):
        if text in _focused_text(page).splitlines():
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached a control named {text!r}")


def _shift_tab_to(page: Page, selector: str, presses: int = 40) -> None:
    """Press Shift+Tab until the focused element matches `selector` (back to a control passed by)."""
    for _ in range(presses):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Shift+Tab never reached {selector}")


def _type_into(page: Page, selector: str, text: str) -> None:
    _tab_to(page, selector)
    page.keyboard.type(text)


def _rows(data: Path) -> Any:
    return DeltaTable(str(data / "warehouse" / "main" / "default" / TABLE)).to_pyarrow_table()


def _wait_rows(data: Path, count: int, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            table = _rows(data)
            if table.num_rows == count:
                return table
        except TableNotFoundError:  # the table exists once the first run commits
            table = None
        assert time.monotonic() < deadline, f"table holds {None if table is None else table.num_rows} rows"
        time.sleep(0.3)


def _sign_in(page: Page, base: str) -> None:
    page.goto(base + "/login")
    _type_into(page, "#email", ADMIN_EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")


def test_wizard_to_run_now_and_schema_resolution_by_keyboard_alone(
    server: tuple[str, Path], keyboard_page: Page, tmp_path: Path
) -> None:
    base, data = server
    page = keyboard_page
    source = tmp_path / "kb-landing"
    source.mkdir()
    _write(source, "a.json", 1)
    _write(source, "b.json", 4)

    _sign_in(page, base)
    expect(page.get_by_text("No ingestions yet")).to_be_visible()
    _tab_to_text(page, "New Ingestion")
    page.keyboard.press("Enter")
    expect(page.get_by_text("New Data Ingestion")).to_be_visible()

    _type_into(page, '[data-testid="name"] input, input[data-testid="name"]', "kb orders")
    _tab_to(page, "[data-testid=source-local]")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=source-local]")).to_have_attribute("aria-checked", "true")
    _type_into(page, '[data-testid="source.path"] input, input[data-testid="source.path"]', str(source))
    _tab_to_text(page, "Test Connection")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Connection successful — 2 files", exact=False)).to_be_visible()

    _tab_to_text(page, "Next")
    page.keyboard.press("Enter")
    expect(page.get_by_text("• order_id (bigint)")).to_be_visible()
    _tab_to_text(page, "Next")
    page.keyboard.press("Enter")
    _type_into(page, '[data-testid="destination.table"] input, input[data-testid="destination.table"]', TABLE)
    expect(page.get_by_text(f"Full table name: main.default.{TABLE}")).to_be_visible()
    _tab_to_text(page, "Next")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Total Estimated Cost")).to_be_visible()
    _tab_to_text(page, "Test & Preview")
    page.keyboard.press("Enter")
    expect(page.get_by_text("2 Existing Files Detected")).to_be_visible()
    _tab_to_text(page, "Looks Good - Create Ingestion")
    page.keyboard.press("Enter")
    expect(page.get_by_text("'kb orders' is active.", exact=False)).to_be_visible()
    _tab_to_text(page, "kb orders")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ingestions/\d+$"))
    # The page's content arrives after its data is read: Tab through it once it is there (under load, tabbing
    # earlier cycled through the header alone).
    expect(page.get_by_role("button", name="Run Now")).to_be_visible()
    _tab_to_text(page, "Run Now")
    page.keyboard.press("Enter")
    assert _wait_rows(data, 6).column_names[:2] == ["order_id", "amount"]
    expect(page.get_by_text("success", exact=True)).to_be_visible()
    # The page rebuilt its sections as the run started and ended; the focus stayed on Run Now (WCAG 2.4.3) instead of
    # falling back to the page's start, where an Enter pressed during a rebuild was lost.
    assert "Run Now" in _focused_text(page).splitlines()

    _write(source, "c.json", 7, extra=True)
    _tab_to_text(page, "Run Now")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    expect(page.get_by_text("waiting for review", exact=False)).to_be_visible()
    _tab_to_text(page, "Review and resolve →")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ingestions/\d+/schema-review$"))
    expect(page.get_by_text("NEW SCHEMA", exact=True)).to_be_visible()
    auto_merge, backfill = (
        page.locator(".option-auto_merge [role=radio]"),
        page.locator(".option-backfill_default [role=radio]"),
    )
    expect(auto_merge).to_have_attribute("aria-checked", "true")  # the page's suggestion for added columns
    _tab_to(page, ".option-backfill_default [role=radio]")
    page.keyboard.press("Space")
    expect(backfill).to_have_attribute("aria-checked", "true")
    _shift_tab_to(page, ".option-auto_merge [role=radio]")
    page.keyboard.press("Space")
    expect(auto_merge).to_have_attribute("aria-checked", "true")
    expect(backfill).to_have_attribute("aria-checked", "false")
    _tab_to(page, ".apply-solution")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ingestions/\d+$"))
    expect(page.get_by_text("auto-merged (columns added to the table)", exact=False)).to_be_visible()
    table = _wait_rows(data, 9)
    assert "coupon" in table.column_names
    assert sorted(filter(None, table.column("coupon").to_pylist())) == ["c-7", "c-8", "c-9"]

"""The Format step's "Column types" editor in real Chromium: opened, filled and checked with the keyboard alone,
and axe-core finds no serious or critical violation with a row and its error shown (tests/ui/test_accessibility.py
runs axe over the wizard with the editor closed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from app.pages.wizard.type_hints import TYPE_CHOICES
from tests.ui.browser import chromium_page, running_server, sign_in
from tests.ui.conftest import CHROMIUM, ORDERS
from tests.ui.test_accessibility import AXE, TIMEOUT_MS, _describe, _field, _tab_to, _violations
from tests.ui.test_keyboard_wizard import _shift_tab_to, _tab_to_text

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (run .ci/test)"),
]

COLUMN = '[data-testid="type-hint-column-0"] input, input[data-testid="type-hint-column-0"]'
TYPE = '[data-testid="type-hint-type-0"] [tabindex="0"]'
PRECISION = '[data-testid="type-hint-precision-0"] input, input[data-testid="type-hint-precision-0"]'
REMOVE = '[data-testid="remove-type-hint-0"]'
ADD = '[data-testid="add-type-hint"]'


@pytest.fixture
def server(state_dir: Path) -> Iterator[str]:
    with running_server(state_dir / "server-data") as base:
        yield base


@pytest.fixture
def page(browser_type_launch_args: dict[str, Any], server: str) -> Iterator[Page]:
    with chromium_page(browser_type_launch_args) as opened:
        opened.set_default_timeout(TIMEOUT_MS)
        yield opened


def _no_violations(page: Page, screen: str) -> None:
    page.wait_for_timeout(200)
    assert not (found := _describe(screen, _violations(page))), "\n".join(found)


def test_a_column_type_is_given_with_the_keyboard_alone(server: str, page: Page, tmp_path: Path) -> None:
    sign_in(page, server)
    page.goto(server + "/ingestions/new")
    _field(page, "name").fill("orders")
    _field(page, "source.path").fill(str(ORDERS))
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("• amount (double)")).to_be_visible()

    _tab_to_text(page, "Column types")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Add column type")).to_be_visible()
    _tab_to_text(page, "Add column type")
    page.keyboard.press("Enter")
    expect(page.locator(COLUMN)).to_be_focused()  # the new row's column, ready to type
    page.keyboard.type("amount")
    _tab_to(page, TYPE, presses=3)
    page.keyboard.press("Enter")  # opens the list
    option = page.get_by_role("option", name="decimal(p,s)")
    expect(option).to_be_visible()
    for _ in range(len(TYPE_CHOICES)):
        if "q-manual-focusable--focused" in (option.get_attribute("class") or ""):
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator(PRECISION)).to_be_visible()
    _tab_to(page, PRECISION, presses=3)
    page.keyboard.press("Control+a")
    page.keyboard.type("50")
    expect(
        page.get_by_text("invalid decimal type 'decimal(50,2)' (hint for column 'amount')", exact=False)
    ).to_be_visible()
    _no_violations(page, "column types with an error")
    page.keyboard.press("Control+a")
    page.keyboard.type("12")
    expect(page.get_by_text("invalid decimal type", exact=False)).to_be_hidden()
    _tab_to_text(page, "Refresh", presses=40)
    page.keyboard.press("Enter")
    expect(page.get_by_text("• amount (decimal(12,2))")).to_be_visible()
    _no_violations(page, "column types")
    _shift_tab_to(page, REMOVE)
    page.keyboard.press("Enter")
    expect(page.locator(COLUMN)).to_have_count(0)
    expect(page.locator(ADD)).to_be_focused()  # not lost with the removed row

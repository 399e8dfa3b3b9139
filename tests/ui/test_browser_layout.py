"""Layout in a real browser (Debian Chromium): every console page at 390, 1400 and 1920 px wide has no horizontal
page overflow, and the buttons and fields a user needs on it lie inside the viewport.

One server, one browser, one page: each screen is opened once and resized to every width. Screenshots go to
test-artifacts/layout/<page>-<width>.png. The wizard is walked with the accessibility test's steps; the data is one
ingestion holding a schema change with a long nested column for review, and one whose last run quarantined a file
with a long name, so the detail page shows run errors.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.helpers import spec
from tests.ui.browser import ARTIFACTS, chromium_page, running_server, server_env, shot, sign_in
from tests.ui.conftest import CHROMIUM, ORDERS
from tests.ui.test_accessibility import TIMEOUT_MS, _walk_wizard

WIDTHS = (390, 1400, 1920)
NARROW = 390
LAYOUT_ARTIFACTS = ARTIFACTS.parent / "layout"
MIN_FIELD_PX = 150  # a text field narrower than this shows a few characters of what is typed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]

# what must be on screen at every width, per screen: (what it is, selector, is it a text field)
REQUIRED: dict[str, list[tuple[str, str, bool]]] = {
    "login": [("Sign in", "form[action='/auth/login'] button[type=submit]", False), ("Email", "#email", True)],
    "dashboard": [("New Ingestion", "button:has-text('New Ingestion')", False)],
    "wizard step 1 (source)": [("Test Connection", "button:has-text('Test Connection')", False)],
    "wizard step 2 (format)": [("Next", "button:has-text('Next')", False)],
    "wizard step 3 (destination)": [("Next", "button:has-text('Next')", False)],
    "wizard step 4 (schedule)": [("Test & Preview", "button:has-text('Test & Preview')", False)],
    "wizard preview": [],
    "detail": [
        ("Retry", "button:has-text('Retry')", False),
        ("Files & errors", "button:has-text('Files & errors')", False),
        ("Run Now", "button:has-text('Run Now')", False),
    ],
    "schema review": [
        ("New schema panel", "xpath=//div[normalize-space(text())='NEW SCHEMA']/..", False),
        ("Preview of changes", ".plan-preview", False),
        ("Apply Solution", ".apply-solution", False),
    ],
    "clusters": [
        ("Name", ".q-field:has(input[aria-label='Name *'])", True),
        ("Kind", ".q-field:has([aria-label='Kind'])", True),
        ("Register", "button:has-text('Register')", False),
    ],
    "account": [],
    "audit log": [],
}
# rows of a data table may scroll sideways inside the table on a phone: there these buttons count as reachable
# when scrolling the table (not the page) brings them into view
SCROLLS_IN_TABLE = {"Retry", "Files & errors"}

# the element's box and its card's, after optionally scrolling it into view inside its scroller (not the page)
BOX_JS = """(el, scrollInside) => {
  if (scrollInside) {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (p.scrollWidth > p.clientWidth && getComputedStyle(p).overflowX !== 'visible') {
        const r = el.getBoundingClientRect(), c = p.getBoundingClientRect();
        p.scrollLeft += r.right - c.right + 8;
        break;
      }
    }
  }
  const r = el.getBoundingClientRect(), card = el.parentElement.closest('.q-card');
  const c = card ? card.getBoundingClientRect() : {left: 0, right: window.innerWidth};
  return {left: r.left, right: r.right, width: r.width, cardLeft: c.left, cardRight: c.right};
}"""

# what an earlier width scrolled sideways (a table) starts at its left edge again, as on a freshly opened page
UNSCROLL_JS = "() => document.querySelectorAll('*').forEach(e => { if (e.scrollLeft) e.scrollLeft = 0; })"


def prepare_partial_run(services: Any, source: Path) -> int:
    """One good file and one binary file with a long name: the run is partial, its error names the long path."""
    source.mkdir(parents=True)
    (source / "good.json").write_text('{"id": 1, "name": "a"}\n')
    long_name = "export-" + "-".join(["device-telemetry-eu-west-1"] * 4) + ".json"
    (source / long_name).write_bytes(b"\x00\x01 not json")
    ingestion = services.ingestions.create(spec(str(source), table="broken", name="broken"), activate=True)
    services.runs.run_now(str(ingestion.id))
    return int(ingestion.id)


def prepare_wide_review(services: Any, source: Path) -> int:
    """A table of one column, then a file adding a long-named nested column: its struct type is one long word."""
    source.mkdir(parents=True)
    (source / "v1.json").write_text('{"id": 1}\n')
    ingestion = services.ingestions.create(spec(str(source), table="wide", name="wide"), activate=True)
    services.runs.run_now(str(ingestion.id))
    address = {
        "street_and_house_number": "Main St 1",
        "postal_code_of_the_delivery_area": "12345",
        "country_code_iso_3166_alpha_2": "DE",
    }
    (source / "v2.json").write_text(json.dumps({"id": 2, "shipping_address_at_order_time": address}) + "\n")
    services.runs.run_now(str(ingestion.id))
    status = services.store.get_ingestion(ingestion.id).status
    assert status == "needs_review", status
    return int(ingestion.id)


@pytest.fixture
def layout_server(tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int, int]]:
    """The base URL, an ingestion waiting for schema review and one whose last run had errors.

    The accessibility test's review scenario has short column names that fit any width; a nested column's type
    is what stretches the comparison in practice, so this review adds one."""
    from app.bootstrap import build
    from app.settings import Settings

    data = state_dir / "server-data"
    for key, value in server_env(data).items():
        monkeypatch.setenv(key, value)
    services = build(Settings())
    try:
        review_id = prepare_wide_review(services, tmp_path / "wide")
        partial_id = prepare_partial_run(services, tmp_path / "broken")
    finally:
        services.close()
    with running_server(data) as base:
        yield base, review_id, partial_id


class LayoutCheck:
    """Resizes the page to every width, notes what overflows or lies off-screen, and takes a screenshot."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []

    def __call__(self, screen: str) -> None:
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.evaluate(UNSCROLL_JS)
            self.page.wait_for_timeout(150)  # Quasar re-lays out on resize
            shot(self.page, f"{screen.split(' (')[0].replace(' ', '-')}-{width}", LAYOUT_ARTIFACTS)
            self._page_fits(screen, width)
            for name, selector, is_field in REQUIRED[screen]:
                self._inside(screen, width, name, self.page.locator(selector), is_field)
        self.page.set_viewport_size({"width": 1400, "height": 900})

    def _page_fits(self, screen: str, width: int) -> None:
        scroll, inner = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            self.problems.append(f"{screen} at {width} px: the page is {scroll} px wide (scrolls sideways)")

    def _inside(self, screen: str, width: int, name: str, found: Locator, is_field: bool) -> None:
        visible = [element for element in found.all() if element.is_visible()]
        if not visible:
            self.problems.append(f"{screen} at {width} px: no visible {name}")
        for element in visible:
            box = element.evaluate(BOX_JS, width == NARROW and name in SCROLLS_IN_TABLE)
            if box["left"] < 0 or box["right"] > width:
                self.problems.append(f"{screen} at {width} px: {name} spans {box['left']:.0f}-{box['right']:.0f} px")
            elif box["left"] < box["cardLeft"] - 1 or box["right"] > box["cardRight"] + 1:
                self.problems.append(
                    f"{screen} at {width} px: {name} spans {box['left']:.0f}-{box['right']:.0f} px, out of its card"
                    f" ({box['cardLeft']:.0f}-{box['cardRight']:.0f} px)"
                )
            if is_field and box["width"] < MIN_FIELD_PX:
                self.problems.append(f"{screen} at {width} px: {name} is only {box['width']:.0f} px wide")


def test_every_page_fits_390_1400_and_1920_px_with_its_buttons_on_screen(
    browser_type_launch_args: dict[str, Any], layout_server: tuple[str, int, int], tmp_path: Path
) -> None:
    base, review_id, partial_id = layout_server
    source = tmp_path / "orders"
    shutil.copytree(ORDERS, source)
    with chromium_page(browser_type_launch_args, width=1400) as page:
        page.set_default_timeout(TIMEOUT_MS)
        check = LayoutCheck(page)
        page.goto(base + "/login")
        expect(page.locator("#email")).to_be_visible()
        check("login")
        sign_in(page, base)
        expect(page.get_by_text("Schema Evolution Detected")).to_be_visible()
        check("dashboard")
        _walk_wizard(page, base, source, check)
        page.goto(f"{base}/ingestions/{partial_id}")
        expect(page.get_by_text(re.compile(r"^Last run .* partial$"))).to_be_visible()
        check("detail")
        page.goto(f"{base}/ingestions/{review_id}/schema-review")
        expect(page.get_by_text("NEW SCHEMA", exact=True)).to_be_visible()
        check("schema review")
        page.goto(base + "/clusters")
        expect(page.get_by_label("Name *")).to_be_visible()
        check("clusters")
        for path, screen in (("/account", "account"), ("/audit", "audit log")):
            page.goto(base + path)
            expect(page.locator("h1")).to_be_visible()
            check(screen)

    assert not check.problems, "layout problems:\n" + "\n".join(check.problems)

"""WCAG 2.1 AA in a real browser: axe-core (from npm, installed by .ci/test) run in Debian Chromium over every
console page, and the schema review's resolution chosen with the keyboard alone.

axe-core sits in the tests' npm cache (AUTOLOADER_TEST_NPM, as Azurite does); the test is skipped without it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.ui.browser import TIMEOUT_MS, chromium_page, running_server, server_env, sign_in
from tests.ui.conftest import CHROMIUM, ORDERS
from tests.ui.schema_scenario import prepare_needs_review

NPM_CACHE = Path(os.environ.get("AUTOLOADER_TEST_NPM", Path.home() / ".cache" / "autoloader-tests" / "npm"))
AXE = NPM_CACHE / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
    pytest.mark.skipif(not AXE.exists(), reason=f"axe-core is not installed in {NPM_CACHE} (run .ci/test)"),
]


@pytest.fixture
def review_server(tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    """One ingestion loaded and holding a schema change for review; then the server starts on its data dir."""
    from app.bootstrap import build
    from app.settings import Settings

    data = state_dir / "server-data"
    for key, value in server_env(data).items():
        monkeypatch.setenv(key, value)
    services = build(Settings())
    try:
        ingestion_id = prepare_needs_review(services, tmp_path / "landing", rows_per_file=20)
    finally:
        services.close()
    with running_server(data) as base:
        yield base, ingestion_id


@pytest.fixture
def console_page(browser_type_launch_args: dict[str, Any], review_server: tuple[str, int]) -> Iterator[Page]:
    with chromium_page(browser_type_launch_args) as page:
        page.set_default_timeout(TIMEOUT_MS)
        yield page


def _violations(page: Page) -> list[dict[str, Any]]:
    """axe's serious and critical violations of the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("options => axe.run(document, options).then(r => r.violations)", AXE_OPTIONS)
    return [v for v in found if v["impact"] in BLOCKING]


def _describe(screen: str, violations: list[dict[str, Any]]) -> list[str]:
    """One line per violating node: rule, impact, target and axe's reason (colours and ratios for contrast)."""
    lines = []
    for violation in violations:
        for node in violation["nodes"]:
            reason = " ".join(node.get("failureSummary", "").split())[:240]
            lines.append(
                f"{screen}: {violation['id']} ({violation['impact']}) on {node['target']} {node['html'][:400]}"
                f" — {reason}"
            )
    return lines


def _field(page: Page, path: str) -> Any:
    return page.locator(f'input[data-testid="{path}"], [data-testid="{path}"] input').first


def _walk_wizard(page: Page, base: str, source: Path, check: Any) -> None:
    page.goto(base + "/ingestions/new")
    expect(page.get_by_text("New Data Ingestion")).to_be_visible()
    _field(page, "name").fill("orders")
    _field(page, "source.path").fill(str(source))
    page.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("Connection successful", exact=False)).to_be_visible()
    check("wizard step 1 (source)")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("• order_id (bigint)")).to_be_visible()
    check("wizard step 2 (format)")
    page.get_by_role("button", name="Next").click()
    _field(page, "destination.table").fill("orders")
    expect(page.get_by_text("Full table name: main.default.orders")).to_be_visible()
    check("wizard step 3 (destination)")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Total Estimated Cost")).to_be_visible()
    check("wizard step 4 (schedule)")
    page.get_by_role("button", name="Test & Preview").click()
    expect(page.get_by_text("3 Existing Files Detected")).to_be_visible()
    check("wizard preview")


def test_every_page_has_no_serious_or_critical_axe_violation(
    review_server: tuple[str, int], console_page: Page, tmp_path: Path
) -> None:
    base, ingestion_id = review_server
    page = console_page
    source = tmp_path / "orders"
    shutil.copytree(ORDERS, source)
    problems: list[str] = []

    def check(screen: str) -> None:
        page.wait_for_timeout(200)
        problems.extend(_describe(screen, _violations(page)))
        headings = page.locator("h1:visible").all_inner_texts()
        if len(headings) != 1:
            problems.append(f"{screen}: {len(headings)} visible h1 elements {headings} (one names the page)")

    page.goto(base + "/login")
    expect(page.locator("#email")).to_be_visible()
    check("login")
    sign_in(page, base)
    expect(page.get_by_text("Schema Evolution Detected")).to_be_visible()
    expect(page.locator(".notification-bell")).to_have_attribute("aria-label", "Notifications, 1 unread")
    check("dashboard")
    _walk_wizard(page, base, source, check)
    page.goto(f"{base}/ingestions/{ingestion_id}")
    expect(page.get_by_text("waiting for review", exact=False)).to_be_visible()
    check("detail")
    page.goto(f"{base}/ingestions/{ingestion_id}/schema-review")
    expect(page.get_by_text("NEW SCHEMA", exact=True)).to_be_visible()
    check("schema review")
    page.goto(base + "/clusters")
    expect(page.get_by_text("Clusters").first).to_be_visible()
    check("clusters")
    for path, screen in (("/account", "account"), ("/audit", "audit log")):
        page.goto(base + path)
        expect(page.locator("h1")).to_be_visible()
        check(screen)

    assert not problems, "axe-core found serious or critical violations:\n" + "\n".join(problems)


def _tab_to(page: Page, selector: str, presses: int = 60) -> None:
    """Press Tab until the focused element matches `selector` (a keyboard user's only way to move)."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_source_and_schema_resolution_are_chosen_with_the_keyboard_alone(
    review_server: tuple[str, int], console_page: Page
) -> None:
    base, ingestion_id = review_server
    page = console_page
    sign_in(page, base)
    page.goto(base + "/ingestions/new")
    s3_card, local_card = page.locator("[data-testid=source-s3]"), page.locator("[data-testid=source-local]")
    expect(s3_card).to_have_attribute("aria-checked", "false")
    _tab_to(page, "[data-testid=source-s3]")
    page.keyboard.press("Space")
    expect(s3_card).to_have_attribute("aria-checked", "true")
    expect(local_card).to_have_attribute("aria-checked", "false")
    _tab_to(page, "[data-testid=source-local]")
    page.keyboard.press("Enter")
    expect(local_card).to_have_attribute("aria-checked", "true")

    page.goto(f"{base}/ingestions/{ingestion_id}/schema-review")
    expect(page.get_by_text("NEW SCHEMA", exact=True)).to_be_visible()

    _tab_to(page, ".option-backfill_default [role=radio]")
    page.keyboard.press("Space")
    expect(page.locator(".option-backfill_default [role=radio]")).to_have_attribute("aria-checked", "true")
    expect(page.get_by_label("Default for email", exact=False)).to_be_visible()
    _tab_to(page, ".option-auto_merge [role=radio]")
    page.keyboard.press("Enter")
    expect(page.locator(".option-auto_merge [role=radio]")).to_have_attribute("aria-checked", "true")
    expect(page.locator(".plan-preview").get_by_text("ALTER TABLE", exact=False).first).to_be_visible()
    _tab_to(page, ".apply-solution")
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline == ["solid", "3px"], f"the focused button shows no clear focus ring: {outline}"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/ingestions/{ingestion_id}")
    expect(page.get_by_text("auto-merged (columns added to the table)", exact=False)).to_be_visible()

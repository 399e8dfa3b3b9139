"""Issue 15's numbered bugs ("tried as a new user would, in Chromium"), each redone in Debian Chromium against one
`autoloader serve` and asserted fixed: one test per bug, named `test_bug_<n>_...`.

Set-up that is not the point of a test is seeded before the server starts (the application's services on the
server's data dir: ingestions, runs, a schema change held for review, ledger rows, empty continuous checks); every
test then acts through the browser, signed in once for the module.

Covered by other real-browser tests, not repeated here:
- bug 13, source cards and the four resolution options by keyboard:
  tests/ui/test_accessibility.py::test_source_and_schema_resolution_are_chosen_with_the_keyboard_alone and
  tests/ui/test_keyboard_wizard.py::test_wizard_to_run_now_and_schema_resolution_by_keyboard_alone (contrast, focus
  ring and names: test_accessibility.py::test_every_page_has_no_serious_or_critical_axe_violation); `<html lang>`,
  one h1 and the bell's name are checked here without axe.
- bug 14, layout at 390 px (cluster form's Name and Kind, the schema comparison) and Retry / "Files & errors" at
  1400 px: tests/ui/test_browser_layout.py::test_every_page_fits_390_1400_and_1920_px_with_its_buttons_on_screen.

Not in a browser (no page shows them, or Chromium did not reproduce them): bug 11's success rate with partial runs
(tests/ui/test_console_flows.py::test_success_rate_does_not_count_partial_runs), alert links on the served port
(test_alert_links_follow_the_served_port_or_the_public_url) and the disconnect traceback
(tests/ui/test_disconnect_log.py, at the ASGI level: closing tabs mid-load in Chromium did not reproduce it).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect, sync_playwright

from tests.helpers import remove_state, spec
from tests.server_process import AUTH
from tests.ui.browser import TIMEOUT_MS, running_server, server_env, sign_in
from tests.ui.conftest import CHROMIUM, ORDERS
from tests.ui.schema_scenario import prepare_needs_review, write_files

WEEK = 7 * 24 * 3600
"""The continuous ingestions' interval: the server's scheduler does not fire them while the tests run."""
LEDGER_FILES = 450
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("browser_issue15"),  # under --dist loadgroup, one worker serves the whole module
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]


@dataclass(frozen=True)
class Served:
    base: str
    data: Path
    ids: dict[str, int]
    """Seeded ingestions by name."""
    events_source: Path
    """The folder of the ingestion waiting for schema review ('events')."""
    sources: Path
    """A folder inside the tests' local roots for sources the tests write."""


def _seed(services: Any, sources: Path) -> tuple[dict[str, int], Path]:
    """Every ingestion the tests open, with the state each bug report starts from."""
    from core.domain import FileStatus, LedgerEntry

    ids: dict[str, int] = {}

    def create(name: str, activate: bool = True, **options: Any) -> int:
        body = spec(str(ORDERS), table=name, name=name, destination={"database": "default"}, **options)
        ids[name] = int(services.ingestions.create(body, activate=activate).id)
        return ids[name]

    def continuous(name: str) -> int:
        return create(name, schedule={"mode": "continuous", "interval_seconds": WEEK})

    services.runs.run_now(str(continuous("first_numbers")))  # takes run id 1 of the instance
    quiet = continuous("quiet")
    services.runs.run_now(str(quiet))  # run id 2: this ingestion's run #1
    first_slot = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    for minutes in (0, 10):  # two scheduled checks that find nothing: counted on the ingestion, not stored
        run_id = services.store.create_scheduled_run(quiet, first_slot + timedelta(minutes=minutes), "scheduled")
        services.runner.submit(quiet, run_id)
        services.runner.wait(run_id)
    create("draft_orders", activate=False)
    services.runs.run_now(str(create("existing_orders")))
    paused = create("paused_orders")
    services.runs.run_now(str(paused))
    services.ingestions.pause(paused)
    many = create("many_files")
    now = datetime.now(UTC)
    entries = [LedgerEntry(f"{ORDERS}/f{n:04d}.json", 10, now, None, FileStatus.SKIPPED) for n in range(LEDGER_FILES)]
    services.store.upsert_files(many, None, entries)
    events_source = sources / "events"
    ids["events"] = prepare_needs_review(services, events_source, rows_per_file=5)
    return ids, events_source


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from app.bootstrap import build
    from app.settings import Settings

    state = Path(tempfile.mkdtemp(prefix="autoloader-state-"))  # outside the local roots, as `state_dir`
    data = state / "server-data"
    sources = tmp_path_factory.mktemp("issue15-sources")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in server_env(data).items():
                patch.setenv(key, value)
            services = build(Settings())
            try:
                ids, events_source = _seed(services, sources)
            finally:
                services.close()
        with running_server(data) as base:
            yield Served(base, data, ids, events_source, sources)
    finally:
        remove_state(state, __name__)


@pytest.fixture(scope="module")
def chromium_browser(browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        opened = playwright.chromium.launch(**browser_type_launch_args)
        try:
            yield opened
        finally:
            opened.close()


@pytest.fixture(scope="module")
def signed_in(chromium_browser: Browser, served: Served) -> dict[str, Any]:
    """The session cookie of the first admin, signed in once through the login form."""
    context = chromium_browser.new_context()
    try:
        sign_in(context.new_page(), served.base)
        return dict(context.storage_state())
    finally:
        context.close()


@pytest.fixture
def page(chromium_browser: Browser, signed_in: dict[str, Any]) -> Iterator[Page]:
    context = chromium_browser.new_context(storage_state=signed_in, viewport={"width": 1280, "height": 900})  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


# --- helpers ----------------------------------------------------------------------------------------------------
def _field(page: Page, path: str) -> Locator:
    return page.locator(f'input[data-testid="{path}"], [data-testid="{path}"] input').first


def _error_at(page: Page, path: str) -> Locator:
    """The message the wizard shows under the field bound to `path` (its error label follows the field)."""
    field = page.locator(f'[data-testid="{path}"]').first
    return field.locator("xpath=ancestor-or-self::label[contains(@class, 'q-field')][1]/following-sibling::div[1]")


def _choose(page: Page, path: str, option: str) -> None:
    """Pick `option` of the select bound to `path`, as a user does: open the list, click the option."""
    page.locator(f'[data-testid="{path}"]').first.click()
    page.get_by_role("option", name=option, exact=True).click()


def _card(page: Page, name: str) -> Locator:
    return page.locator(".ingestion-card").filter(has=page.get_by_role("link", name=name, exact=True))


def _api(served: Served, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, served.base + "/api/v1" + path, headers=AUTH, timeout=30, **kwargs)


def _status(served: Served, ingestion_id: int) -> str:
    answer = _api(served, "GET", f"/ingestions/{ingestion_id}")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


def _next(page: Page, expected: str) -> None:
    """Next, then wait for what the new step shows."""
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text(expected, exact=False).first).to_be_visible()


def _new_wizard_to_format(page: Page, served: Served, name: str, source: Path = ORDERS) -> None:
    page.goto(served.base + "/ingestions/new")
    _field(page, "name").fill(name)
    _field(page, "source.path").fill(str(source))
    _next(page, "When new columns appear")


def _new_wizard_to_schedule(page: Page, served: Served, name: str) -> None:
    _new_wizard_to_format(page, served, name)
    expect(page.get_by_text("• order_id (bigint)")).to_be_visible()
    _next(page, "Write Mode")
    _field(page, "destination.table").fill(name)
    _next(page, "Total Estimated Cost")


def _edit_to_preview(page: Page, served: Served, name: str) -> None:
    page.goto(f"{served.base}/ingestions/{served.ids[name]}/edit")
    expect(page.get_by_text(f"Edit '{name}'")).to_be_visible()
    _next(page, "• order_id (bigint)")
    _next(page, "Write Mode")
    _next(page, "Total Estimated Cost")
    page.get_by_role("button", name="Test & Preview").click()
    expect(page.get_by_role("button", name="Looks Good - Save Changes")).to_be_visible()


def _wait_for(what: str, check: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.3)


# --- one test per bug of the "Why" list ------------------------------------------------------------------
def test_bug_1_a_draft_is_activated_only_through_preview(served: Served, page: Page) -> None:
    draft = served.ids["draft_orders"]
    page.goto(served.base + "/")
    card = _card(page, "draft_orders")
    expect(card.get_by_text("✎ DRAFT")).to_be_visible()
    for absent in ("Pause", "Resume"):  # a status switch would make the draft live without a preview
        expect(card.get_by_role("button", name=absent)).to_have_count(0)
    refused = _api(served, "POST", f"/ingestions/{draft}/resume")
    assert refused.status_code == 409, refused.text
    assert _status(served, draft) == "draft"

    card.get_by_role("button", name="Activate").click()
    page.wait_for_url(re.compile(rf"/ingestions/{draft}/edit\?activate=true$"))
    expect(page.get_by_text("3 Existing Files Detected")).to_be_visible()  # the preview, before anything is live
    assert _status(served, draft) == "draft"
    page.get_by_role("button", name="Looks Good - Create Ingestion").click()
    expect(page.get_by_text("'draft_orders' is active.", exact=False)).to_be_visible()
    assert _status(served, draft) == "active"


def test_bug_2_api_docs_render_offline_titled_autoloader(
    served: Served, chromium_browser: Browser, signed_in: dict[str, Any]
) -> None:
    context = chromium_browser.new_context(storage_state=signed_in)  # type: ignore[arg-type]
    blocked: list[str] = []

    def loopback_only(route: Route) -> None:
        if urlparse(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", loopback_only)
    try:
        page = context.new_page()
        page.goto(served.base + "/docs")
        rendered = page.locator(".swagger-ui .info .title, .swagger-ui .version-pragma")  # the API or its refusal
        expect(rendered.first).to_be_visible()
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Autoloader", timeout=1000)
        expect(page.locator(".opblock-summary-path", has_text="/api/v1/ingestions").first).to_be_visible()
        assert blocked == [], f"/docs asked the internet for {blocked}"
    finally:
        context.close()


def test_bug_3_schema_policy_labels_carry_no_developer_note(served: Served, page: Page) -> None:
    _new_wizard_to_format(page, served, "labels")
    policy = page.locator(".q-field", has_text="When new columns appear")
    shown = policy.inner_text()
    policy.click()
    options = page.get_by_role("option").all_inner_texts()
    assert len(options) == 4, options
    for label in [shown, *options]:
        assert "until the review screen lands" not in label and "behaves like" not in label, label


def test_bug_4_create_new_table_over_an_existing_table_is_refused_in_the_wizard(served: Served, page: Page) -> None:
    _new_wizard_to_format(page, served, "orders_again")
    _next(page, "Write Mode")
    _field(page, "destination.table").fill("existing_orders")  # loaded by the seeded ingestion 'existing_orders'
    _choose(page, "destination.write_mode", "Create new table (must not exist)")
    _next(page, "Total Estimated Cost")
    page.get_by_role("button", name="Test & Preview").click()
    refusal = _error_at(page, "destination.table")  # back on the Destination step, at the field
    expect(refusal).to_contain_text("Choose append or merge to load into the existing table")
    expect(page.get_by_role("button", name="Looks Good - Create Ingestion")).to_be_hidden()
    names = [i["name"] for i in _api(served, "GET", "/ingestions").json()]
    assert "orders_again" not in names


def test_bug_5_after_editing_a_paused_ingestion_the_banner_says_paused(served: Served, page: Page) -> None:
    _edit_to_preview(page, served, "paused_orders")
    page.get_by_role("button", name="Looks Good - Save Changes").click()
    expect(page.get_by_text("'paused_orders' saved. It is still paused", exact=False)).to_be_visible()
    expect(page.get_by_text("'paused_orders' is active", exact=False)).to_have_count(0)
    assert _status(served, served.ids["paused_orders"]) == "paused"


def test_bug_6_files_with_the_current_schema_load_while_a_review_waits(served: Served, page: Page) -> None:
    events = served.ids["events"]

    def loaded() -> int:
        return int(_api(served, "GET", f"/ingestions/{events}/files", params={"status": "loaded"}).json()["total"])

    assert loaded() == 3
    write_files(served.events_source, 1, 5, 100, extended=False)  # v1-000100.json: the table's own columns
    page.goto(f"{served.base}/ingestions/{events}")
    expect(page.get_by_text("waiting for review", exact=False)).to_be_visible()
    page.get_by_role("button", name="Run Now").click()
    _wait_for("the file with the current schema to load", lambda: loaded() == 4)
    expect(page.get_by_role("cell", name="v1-000100.json", exact=False)).to_be_visible()
    expect(page.get_by_text("waiting for review", exact=False)).to_be_visible()  # the review still waits
    assert _status(served, events) == "needs_review"


def test_bug_7_the_file_ledger_pages_past_200_files(served: Served, page: Page) -> None:
    page.goto(f"{served.base}/ingestions/{served.ids['many_files']}")
    expect(page.get_by_text(f"Files 1 to 200 of {LEDGER_FILES}")).to_be_visible()
    next_page = page.get_by_role("button", name="Next", exact=True)
    next_page.click()
    expect(page.get_by_text(f"Files 201 to 400 of {LEDGER_FILES}")).to_be_visible()
    next_page.click()
    expect(page.get_by_text(f"Files 401 to {LEDGER_FILES} of {LEDGER_FILES}")).to_be_visible()
    expect(next_page).to_be_disabled()


def test_bug_8_validation_is_said_at_the_field(served: Served, page: Page, tmp_path: Path) -> None:
    page.goto(served.base + "/ingestions/new")
    name = _field(page, "name")
    name.fill("draft_orders")  # a seeded ingestion's name
    name.press("Tab")
    expect(_error_at(page, "name")).to_contain_text("An ingestion named 'draft_orders' already exists")
    name.fill("validated")
    _field(page, "source.path").fill(str(tmp_path / "missing"))
    page.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("does not exist", exact=False).first).to_be_visible()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("test the connection again before going on", exact=False)).to_be_visible()
    expect(page.get_by_text("When new columns appear")).to_be_hidden()  # still on Source

    _new_wizard_to_schedule(page, served, "validated")
    page.get_by_text("Since a date", exact=True).click()
    expect(_error_at(page, "schedule.backfill.since")).to_have_text(
        "Pick the date: files modified since then are loaded."
    )
    _choose(page, "schedule.frequency", "Custom (cron)")
    _field(page, "schedule.cron_expression").fill("61 * * * *")
    expect(_error_at(page, "schedule.cron_expression")).to_contain_text("'61 * * * *' is not valid")  # as typed

    _edit_to_preview(page, served, "existing_orders")  # edit mode: loaded files are not loaded again
    expect(page.get_by_text("only files not yet loaded are loaded by its next run", exact=False)).to_be_visible()
    expect(page.get_by_text("all of them are loaded by the first run", exact=False)).to_have_count(0)


def test_bug_9_continuous_mode_interval_next_runs_and_empty_checks(served: Served, page: Page) -> None:
    _new_wizard_to_schedule(page, served, "fast")
    page.get_by_text("Continuous", exact=True).click()
    interval = _field(page, "schedule.interval_seconds")
    interval.fill("2")
    interval.press("Tab")
    expect(_error_at(page, "schedule.interval_seconds")).to_contain_text(
        "2 s is shorter than the minimum of 5 s between checks"
    )
    expect(interval).to_have_value("2")  # not silently raised to 5

    page.goto(served.base + "/")
    next_runs = [
        _card(page, name).get_by_text("Next Run", exact=True).locator("xpath=following-sibling::*[1]").inner_text()
        for name in ("first_numbers", "quiet")
    ]
    assert next_runs[0] != next_runs[1], next_runs  # each continuous ingestion fires at its own moment

    page.goto(f"{served.base}/ingestions/{served.ids['quiet']}")
    expect(page.get_by_text(re.compile(r"^Checked 2 times since .*, no new files"))).to_be_visible()
    history = page.locator(".q-table").first
    expect(history.locator("tbody tr")).to_have_count(1)  # the run that loaded; the empty checks are one line


def test_bug_10_console_messages_name_buttons_not_endpoints(served: Served, page: Page) -> None:
    page.goto(served.base + "/")
    _card(page, "paused_orders").get_by_role("button", name="Run Now").click()
    expect(page.get_by_text("Resume it first (the Resume button), then run it.")).to_be_visible()
    expect(page.get_by_text("POST", exact=False)).to_have_count(0)


def test_bug_11_run_numbers_per_ingestion_and_ids_never_reused(served: Served, page: Page) -> None:
    page.goto(f"{served.base}/ingestions/{served.ids['quiet']}")
    history = page.locator(".q-table").first
    expect(history.get_by_role("cell", name="#1", exact=True)).to_be_visible()  # its run id is 2
    expect(history.get_by_role("cell", name="#2", exact=True)).to_have_count(0)

    body = spec(str(ORDERS), table="short_lived", name="short_lived").model_dump(mode="json", by_alias=True)
    created = _api(served, "POST", "/ingestions", json=body)
    assert created.status_code == 201, created.text
    old = created.json()["id"]
    assert _api(served, "DELETE", f"/ingestions/{old}").status_code in (200, 204)
    body |= {"name": "successor", "destination": body["destination"] | {"table": "successor"}}
    again = _api(served, "POST", "/ingestions", json=body)
    assert again.status_code == 201, again.text
    assert again.json()["id"] != old
    page.goto(f"{served.base}/ingestions/{old}")  # an old link opens no other ingestion
    expect(page.get_by_text("Back to the dashboard")).to_be_visible()
    expect(page.get_by_text("successor")).to_have_count(0)


def test_bug_12_every_option_is_reachable_in_the_console(served: Served, page: Page) -> None:
    csv_source = served.sources / "csv-landing"
    csv_source.mkdir()
    (csv_source / "a.csv").write_text("id,name\n1,a\n")
    page.goto(served.base + "/ingestions/new")
    _field(page, "name").fill("csv_orders")
    _field(page, "source.path").fill(str(csv_source))
    _field(page, "source.file_pattern").fill("*.csv")
    expect(page.get_by_label("Minimum file age (seconds)")).to_be_visible()
    expect(page.get_by_role("switch", name="Reload files changed after loading")).to_be_visible()
    _next(page, "When new columns appear")
    expect(page.locator('[data-testid="format.type"]')).to_contain_text("CSV")  # guessed from *.csv
    _next(page, "Write Mode")
    _choose(page, "destination.write_mode", "Merge / upsert on key columns")
    expect(page.get_by_label("Latest row by (ordering column)")).to_be_visible()
    expect(page.get_by_role("switch", name="Lineage columns")).to_be_visible()
    page.get_by_role("button", name="Add property").click()
    expect(page.get_by_label("Property", exact=True)).to_be_visible()
    _field(page, "destination.table").fill("csv_orders")
    _field(page, "destination.merge_keys").fill("id")
    _field(page, "destination.merge_keys").press("Enter")
    _next(page, "Total Estimated Cost")
    expect(page.get_by_label("Alert recipients (comma-separated e-mails)")).to_be_visible()
    page.get_by_text("Alerts & limits", exact=True).click()
    for label in ("Alert if a run takes longer than (minutes)", "Webhook URL", "Max files per batch"):
        expect(page.get_by_label(label)).to_be_visible()

    page.goto(f"{served.base}/ingestions/{served.ids['existing_orders']}")
    page.get_by_role("button", name="Full refresh").click()
    expect(page.get_by_text("Full refresh of main.default.existing_orders?")).to_be_visible()
    expect(page.get_by_text("nothing of the current rows is kept", exact=False)).to_be_visible()
    page.get_by_role("button", name="Cancel").click()


def test_bug_13_pages_have_a_language_one_h1_and_a_named_bell(served: Served, page: Page) -> None:
    paths = ["/", "/ingestions/new", f"/ingestions/{served.ids['events']}", "/clusters"]
    for path in paths:
        page.goto(served.base + path)
        expect(page.locator("h1:visible")).to_have_count(1)
        assert re.fullmatch(r"en(-[A-Z]{2})?", page.evaluate("document.documentElement.lang")), path
        bell = page.locator(".notification-bell")
        expect(bell).to_have_attribute("aria-label", re.compile(r"^Notifications"))

"""Console flows of issue 15: a draft goes live only through Test & Preview, labels and states tell the truth."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User

from core.errors import Conflict
from core.views import DashboardQuery
from tests.helpers import spec
from tests.ui.conftest import ORDERS


async def _status_becomes(services: Any, ingestion_id: int, status: str) -> None:
    for _ in range(100):
        if services.store.get_ingestion(ingestion_id).status.value == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"status stayed {services.store.get_ingestion(ingestion_id).status.value}, not {status}")


async def test_a_draft_card_offers_activate_through_test_and_preview(user: User, services_of_app: Any) -> None:
    draft = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"))
    await user.open("/")
    await user.should_see("✎ DRAFT")
    await user.should_not_see(marker="pause-orders")
    user.find(marker="activate-orders").click()
    await user.should_see("Looks Good - Create Ingestion", retries=100)
    assert services_of_app.store.get_ingestion(draft.id).status.value == "draft"
    user.find("Looks Good - Create Ingestion").click()
    await _status_becomes(services_of_app, draft.id, "active")


async def test_pause_or_resume_of_a_draft_is_refused(user: User, services_of_app: Any) -> None:
    draft = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"))
    with pytest.raises(Conflict, match="is a draft"):
        services_of_app.ingestions.pause(draft.id)
    with pytest.raises(Conflict, match="is a draft") as refused:
        services_of_app.ingestions.resume(draft.id)
    assert "Activate" in refused.value.action
    assert services_of_app.store.get_ingestion(draft.id).status.value == "draft"


async def test_source_and_format_of_an_active_ingestion_that_loaded_nothing_can_change(
    user: User, services_of_app: Any
) -> None:
    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    await user.open(f"/ingestions/{ingestion.id}/edit")
    await user.should_see("The source and the format can still change")
    fmt = next(e for e in user.find(marker="format.type").elements if isinstance(e, ui.select))
    path = next(e for e in user.find(marker="source.path").elements if isinstance(e, ui.input))
    assert fmt.enabled and path.enabled
    csv = spec(str(ORDERS), table="orders", name="orders", format={"type": "csv"})
    assert services_of_app.ingestions.update(ingestion.id, csv).spec.format.type == "csv"


async def test_format_is_locked_once_a_file_was_loaded(user: User, services_of_app: Any) -> None:
    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services_of_app.runs.run_now(str(ingestion.id))
    csv = spec(str(ORDERS), table="orders", name="orders", format={"type": "csv"})
    with pytest.raises(Conflict, match="has loaded files"):
        services_of_app.ingestions.update(ingestion.id, csv)
    elsewhere = spec(str(ORDERS.parent), table="orders", name="orders")
    with pytest.raises(Conflict, match="'source' cannot change once an ingestion has been activated and has loaded"):
        services_of_app.ingestions.update(ingestion.id, elsewhere)
    await user.open(f"/ingestions/{ingestion.id}/edit")
    path = next(e for e in user.find(marker="source.path").elements if isinstance(e, ui.input))
    assert not path.enabled
    # the schema-evolution decisions stay open: the schema-failure message advises switching the policy
    decisions = {"on_schema_change": "auto_merge", "ignored_columns": ["note"]}
    policy = spec(str(ORDERS), table="orders", name="orders", format={"type": "json", "schema": decisions})
    updated = services_of_app.ingestions.update(ingestion.id, policy).spec.format.schema_
    assert (updated.on_schema_change, updated.ignored_columns) == ("auto_merge", ["note"])


async def test_schema_policy_labels_say_what_happens(user: User) -> None:
    await user.open("/ingestions/new")
    policy = next(
        e
        for e in user.find(ui.select).elements
        if isinstance(e, ui.select) and e.props.get("label") == "When new columns appear"
    )
    options = policy.options
    assert isinstance(options, dict)
    labels = " ".join(str(v) for v in options.values())
    assert "until the review screen lands" not in labels and "behaves like" not in labels
    assert "review" in options["pause"]


async def test_success_rate_does_not_count_partial_runs(user: User, services_of_app: Any) -> None:
    from core.access import SYSTEM
    from core.domain import RunMetrics, RunStatus

    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    store = services_of_app.store
    for status in (RunStatus.SUCCESS, RunStatus.PARTIAL):
        run_id = store.create_run(ingestion.id, "manual")
        store.finish_run(run_id, status, RunMetrics(), [], status.value)
    stats = services_of_app.views.dashboard(SYSTEM, DashboardQuery()).stats
    assert (stats.finished_runs_24h, stats.successful_runs_24h) == (2, 1)
    await user.open("/")
    await user.should_see("50.0%")


async def test_file_ledger_pages_through_every_file(user: User, services_of_app: Any) -> None:
    from datetime import UTC, datetime

    from core.domain import FileStatus, LedgerEntry

    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    now = datetime.now(UTC)
    entries = [LedgerEntry(f"{ORDERS}/f{n:04d}.json", 10, now, None, FileStatus.SKIPPED) for n in range(450)]
    services_of_app.store.upsert_files(ingestion.id, None, entries)
    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see("Files 1 to 200 of 450")
    user.find(marker="ledger-next").click()
    await user.should_see("Files 201 to 400 of 450", retries=20)
    user.find(marker="ledger-next").click()
    await user.should_see("Files 401 to 450 of 450", retries=20)
    ledger = next(e for e in user.find(marker="ledger").elements if isinstance(e, ui.table))
    assert ledger.rows[-1]["path"].endswith("f0449.json") or ledger.rows[0]["path"].endswith("f0449.json")
    user.find(marker="ledger-previous").click()
    await user.should_see("Files 201 to 400 of 450", retries=20)


async def _step_is(user: User, step: str) -> None:
    for _ in range(50):
        if next(iter(user.find(ui.stepper).elements)).value == step:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"wizard is not on {step}")


async def test_saving_a_paused_ingestion_says_it_is_still_paused(user: User, services_of_app: Any) -> None:
    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services_of_app.ingestions.pause(ingestion.id)
    await user.open(f"/ingestions/{ingestion.id}/edit")
    for step in ("Format", "Destination", "Schedule"):
        user.find(marker="next").click()
        await _step_is(user, step)
    user.find(marker="next").click()  # Test & Preview
    await user.should_see("Looks Good - Save Changes", retries=100)
    user.find(marker="create").click()
    await user.should_see("It is still paused", retries=50)
    await user.should_not_see("is active")
    assert services_of_app.store.get_ingestion(ingestion.id).status.value == "paused"


async def test_console_errors_name_buttons_not_endpoints(user: User, services_of_app: Any) -> None:
    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services_of_app.ingestions.pause(ingestion.id)
    await user.open("/")
    user.find(marker="run-orders").click()
    await user.should_see("Resume it first (the Resume button), then run it.", retries=20)
    await user.should_not_see("POST")


def test_console_words_of_api_actions_and_field_messages() -> None:
    from components.console_words import console_action, console_field_message

    assert console_action("Activate it first (POST …/activate), then run it.") == (
        "Activate it first (the Activate button), then run it."
    )
    review = "Resolve it first (console: Review, or POST …/schema-versions/{version}/resolve); that resumes it."
    assert console_action(review) == "Resolve it first (the Review button); that resumes it."
    assert console_action('Send default_values, e.g. {"device": 0}.') == (
        "Enter a default value for device in the form."
    )
    assert "schema_json" not in console_field_message("manual schema inference needs schema_json")
    assert console_field_message("Input should be a valid list") == "Enter one or more values, separated by commas."
    assert console_field_message("something else") == "something else"


def test_alert_links_follow_the_served_port_or_the_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.alerts import link_base
    from app.settings import Settings

    monkeypatch.delenv("AUTOLOADER_PUBLIC_URL", raising=False)
    assert link_base(Settings(host="127.0.0.1", port=9123)) == "http://127.0.0.1:9123"
    assert link_base(Settings(host="0.0.0.0", port=9123)) == "http://localhost:9123"
    monkeypatch.setenv("AUTOLOADER_PUBLIC_URL", "https://autoloader.example.com")
    assert link_base(Settings(port=9123)) == "https://autoloader.example.com"


async def test_create_new_table_over_an_existing_table_is_refused_before_the_first_run(
    user: User, services_of_app: Any
) -> None:
    first = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services_of_app.runs.run_now(str(first.id))
    again = spec(str(ORDERS), table="orders", name="orders_again", destination={"write_mode": "create"})
    with pytest.raises(Conflict, match="already exists") as refused:
        services_of_app.previews.test(again)
    assert refused.value.field == "destination.table" and "append or merge" in refused.value.action
    with pytest.raises(Conflict, match="already exists"):
        services_of_app.ingestions.create(again, activate=True)
    assert [i.name for i in services_of_app.store.list_ingestions()] == ["orders"]
    draft = services_of_app.ingestions.create(again)
    await user.open(f"/ingestions/{draft.id}/edit?activate=true")
    await user.should_see("Choose append or merge to load into the existing table", retries=100)
    await _step_is(user, "Destination")
    assert services_of_app.store.get_ingestion(draft.id).status.value == "draft"


async def test_a_create_mode_ingestion_that_made_its_table_still_previews(user: User, services_of_app: Any) -> None:
    creating = spec(str(ORDERS), table="orders", name="orders", destination={"write_mode": "create"})
    ingestion = services_of_app.ingestions.create(creating, activate=True)
    services_of_app.runs.run_now(str(ingestion.id))
    await user.open(f"/ingestions/{ingestion.id}/edit")
    user.find(marker="next").click()
    await user.should_see("• order_id (bigint)", retries=50)
    for step in ("Destination", "Schedule"):
        user.find(marker="next").click()
        await _step_is(user, step)
    user.find(marker="next").click()
    await user.should_see("Looks Good - Save Changes", retries=100)


async def test_a_bad_cron_is_said_as_it_is_typed(user: User) -> None:
    await user.open("/ingestions/new")
    stepper = next(e for e in user.find(ui.stepper).elements if isinstance(e, ui.stepper))
    stepper.set_value("Schedule")  # the stepper's header: the fields of later steps are built already
    frequency = next(e for e in user.find(marker="schedule.frequency").elements if isinstance(e, ui.select))
    frequency.set_value("custom")
    user.find(marker="schedule.cron_expression").type("61 * * * *")
    await user.should_see("is not valid", retries=20)


async def test_since_a_date_without_a_date_is_said_at_the_choice(user: User) -> None:
    await user.open("/ingestions/new")
    backfill = next(e for e in user.find(marker="schedule.backfill.mode").elements if isinstance(e, ui.radio))
    backfill.set_value("since")
    await user.should_see("Pick the date: files modified since then are loaded.", retries=20)


async def test_a_taken_name_is_said_when_leaving_the_field(user: User, services_of_app: Any) -> None:
    services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"))
    await user.open("/ingestions/new")
    user.find(marker="name").type("orders").trigger("blur")
    await user.should_see("An ingestion named 'orders' already exists", retries=20)


async def test_next_waits_after_a_failed_test_connection(user: User, tmp_path: Any) -> None:
    await user.open("/ingestions/new")
    user.find(marker="name").type("orders")
    user.find(marker="source.path").type(str(tmp_path / "missing"))
    user.find(marker="test-connection").click()
    await user.should_see("does not exist", retries=50)
    user.find(marker="next").click()
    await user.should_see("test the connection again before going on", retries=20)
    await _step_is(user, "Source")
    user.find(marker="source.path").clear().type(str(ORDERS))
    user.find(marker="next").click()
    await _step_is(user, "Format")


async def test_edit_preview_does_not_promise_to_load_every_file_again(user: User, services_of_app: Any) -> None:
    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services_of_app.runs.run_now(str(ingestion.id))
    await user.open(f"/ingestions/{ingestion.id}/edit")
    for step in ("Format", "Destination", "Schedule"):
        user.find(marker="next").click()
        await _step_is(user, step)
    user.find(marker="next").click()
    await user.should_see("only files not yet loaded are loaded by its next run", retries=100)
    await user.should_not_see("all of them are loaded by the first run")

"""Wizard `/ingestions/new` and `/ingestions/{id}/edit`, and the preview it ends in."""

from __future__ import annotations

import asyncio

from nicegui import ui
from nicegui.testing import User

from tests.helpers import spec
from tests.ui.conftest import ORDERS


def _stepper(user: User) -> ui.stepper:
    return next(iter(user.find(ui.stepper).elements))


async def _step_is(user: User, step: str) -> None:
    for _ in range(50):
        if _stepper(user).value == step:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"wizard is on {_stepper(user).value}, not {step}")


async def _fill_source(user: User, path: str = str(ORDERS)) -> None:
    user.find(marker="name").type("orders")
    user.find(marker="source.path").type(path)


async def test_next_is_blocked_until_the_source_is_valid(user: User) -> None:
    await user.open("/ingestions/new")
    await user.should_see("New Data Ingestion")
    user.find(marker="next").click()
    await user.should_see("Give the ingestion a name.")
    await user.should_see("Enter the folder or bucket path to load files from.")
    await _step_is(user, "Source")
    user.find(marker="name").type("orders")
    user.find(marker="source.path").type("relative/path")
    user.find(marker="next").click()
    await user.should_see("a local path must be absolute, e.g. /data/landing/orders")
    await _step_is(user, "Source")


async def test_test_connection_shows_the_file_count_or_the_reason(user: User, tmp_path) -> None:  # type: ignore[no-untyped-def]
    await user.open("/ingestions/new")
    await _fill_source(user, str(tmp_path / "missing"))
    user.find(marker="test-connection").click()
    await user.should_see("does not exist", retries=50)
    user.find(marker="source.path").clear().type(str(ORDERS))
    user.find(marker="test-connection").click()
    await user.should_see("Connection successful — 3 files", retries=50)


async def test_full_flow_creates_and_activates(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    await user.open("/ingestions/new")
    await _fill_source(user)
    user.find(marker="next").click()
    await user.should_see("• order_id (bigint)", retries=50)
    await _step_is(user, "Format")
    user.find(marker="next").click()
    await _step_is(user, "Destination")
    user.find(marker="next").click()
    await user.should_see("use letters, digits and underscores, starting with a letter or underscore")
    user.find(marker="destination.table").type("orders")
    await user.should_see("Full table name: main.default.orders")
    user.find(marker="next").click()
    await _step_is(user, "Schedule")
    await user.should_see("Estimated Monthly Cost")
    await user.should_see("Daily at 02:00 UTC")
    await user.should_see("Include existing files (3 files detected)")
    next(iter(user.find(marker="quality.row_count_min").elements)).value = 10
    user.find(marker="quality.alert_recipients").type("ops@example.com")
    # the summary said "defaults" whatever alerts were set (an outsider trial)
    await user.should_see("alert under 10 rows per run; e-mail ops@example.com")
    user.find(marker="next").click()  # Test & Preview
    await user.should_see("Preview & Test Ingestion", retries=50)
    await user.should_see("3 Existing Files Detected")
    await user.should_see("Delta table at ")  # the preview names where the table is written, as the summary does
    await user.should_see(marker="sample-rows")
    await user.should_see(marker="schema-table")
    user.find(marker="create").click()
    for _ in range(50):
        if services_of_app.store.list_ingestions():
            break
        await asyncio.sleep(0.1)
    created = services_of_app.store.list_ingestions()
    assert [(i.name, i.status.value) for i in created] == [("orders", "active")]
    assert created[0].spec.destination.full_name == "main.default.orders"


async def test_save_as_draft_from_the_first_step_needs_the_whole_form(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    await user.open("/ingestions/new")
    await _fill_source(user)
    user.find(marker="save-draft").click()
    await user.should_see("Fix the highlighted fields on the Destination step first.")
    await _step_is(user, "Destination")
    user.find(marker="destination.table").type("orders")
    user.find(marker="save-draft").click()
    for _ in range(50):
        if services_of_app.store.list_ingestions():
            break
        await asyncio.sleep(0.1)
    assert services_of_app.store.list_ingestions()[0].status.value == "draft"


async def test_edit_of_an_active_ingestion_locks_source_format_destination(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services_of_app.runs.run_now(ingestion.name)  # until a file has loaded, the source and the format stay open
    await user.open(f"/ingestions/{ingestion.id}/edit")
    await user.should_see("Edit 'orders'")
    await user.should_see("locked once an ingestion has been activated")
    path = next(iter(user.find(marker="source.path").elements))
    assert not path.enabled
    name = next(iter(user.find(marker="name").elements))
    assert name.enabled


async def test_destination_engine_choice_runs_the_draft_on_a_registered_cluster(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    from app.db.models import ClusterCreate
    from app.local_spark import free_port

    cluster = services_of_app.clusters.create(
        ClusterCreate(name="spark-dead", connect_url=f"sc://127.0.0.1:{free_port()}", price_per_hour=2.5)
    )
    await user.open("/ingestions/new")
    await _fill_source(user)
    user.find(marker="next").click()
    await user.should_see("• order_id (bigint)", retries=50)
    user.find(marker="next").click()
    await _step_is(user, "Destination")
    await user.should_see("Embedded (Arrow + delta-rs)")
    await user.should_see("spark-dead — Spark cluster (delta, $2.50/h)")
    engine = next(iter(user.find(marker="engine").elements))
    fmt = next(iter(user.find(marker="format.type").elements))
    assert {"orc", "xml", "text", "avro"} <= set(fmt.options)  # every format on either engine
    fmt.set_value("text")
    await user.should_see("Whole file as one row (else a row per line)")
    fmt.set_value("xml")
    await user.should_see("Row tag (the element of one record)")
    user.find(marker="format.options.row_tag").type("order")
    engine.set_value(cluster.id)
    user.find(marker="destination.table").type("orders")
    user.find(marker="next").click()
    await _step_is(user, "Schedule")
    await user.should_see("$2.50/h", retries=20)
    user.find(marker="save-draft").click()
    for _ in range(50):
        if services_of_app.store.list_ingestions():
            break
        await asyncio.sleep(0.1)
    [draft] = services_of_app.store.list_ingestions()
    assert draft.status.value == "draft"
    assert draft.spec.cluster_id == cluster.id
    assert draft.spec.format.type == "xml"


async def test_a_number_out_of_range_is_said_at_its_field_not_clamped(user: User) -> None:
    """Found by an outsider: "At minute" 75 became 59, and an alert threshold of -5 became 0 (no alert), silently."""
    await user.open("/ingestions/new")
    await _fill_source(user)
    age = next(iter(user.find(marker="source.min_file_age_seconds").elements))
    age.value = -5
    user.find(marker="source.min_file_age_seconds").trigger("blur")  # where ui.number clamps to its min/max
    user.find(marker="next").click()
    await user.should_see("Enter 0 or more.")
    await _step_is(user, "Source")
    assert age.value == -5


async def test_a_changed_csv_option_clears_the_schema_it_no_longer_describes(user: User, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: after Refresh with `;` and back to `,`, the one-column schema of `;` stayed shown."""
    (tmp_path / "p.csv").write_text("a,b\n1,2\n")
    await user.open("/ingestions/new")
    await _fill_source(user, str(tmp_path))
    user.find(marker="next").click()
    await _step_is(user, "Format")
    user.find(marker="format.type").click()
    next(iter(user.find(marker="format.type").elements)).value = "csv"
    user.find(marker="refresh-schema").click()
    await user.should_see("• a (bigint)", retries=50)
    user.find(marker="format.options.delimiter").clear().type(";")
    await user.should_see("Press Refresh to infer the schema from sample files.")

    (tmp_path / "p.csv").write_text("a;b\n1;2\n")
    user.find(marker="format.options.delimiter").clear().type(",")
    user.find(marker="refresh-schema").click()
    await user.should_see("The first row is one column holding ';' 1 time", retries=50)  # the name shows a_b


async def test_a_folder_of_csv_files_starts_on_the_csv_format(user: User, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: a folder holding penguins.csv started on JSON, and the first thing shown was "not valid
    JSON". Before the user picks a format, the sampled files' suffix picks it, and the sample is read as that."""
    (tmp_path / "penguins.csv").write_text("a,b\n1,2\n")
    await user.open("/ingestions/new")
    await _fill_source(user, str(tmp_path))
    user.find(marker="next").click()
    await _step_is(user, "Format")
    await user.should_see("• a (bigint)", retries=50)
    assert next(iter(user.find(marker="format.type").elements)).value == "csv"

"""Issue 15 item 12: every field of PRODUCT.md §14's configuration body reachable in the wizard — table properties,
the merge ordering column, lineage columns, the alert settings and batch limits ("Alerts & limits"), the format
guessed from the file names — and the console gaps found beside them (the Destination summary, the `held` ledger
filter, the Clusters form for admins only, the login lockout message)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from nicegui import ui
from nicegui.testing import User

from app.db.models import ClusterCreate, ClusterPublic
from app.pages.wizard.draft import SpecDraft
from app.pages.wizard.format import guess_format
from app.pages.wizard.summary import destination_text
from app.services.accounts import wait_text
from core.access import SYSTEM, Role
from tests.helpers import spec
from tests.server_process import AUTH
from tests.ui.conftest import ORDERS
from tests.ui.schema_scenario import prepare_needs_review
from tests.ui.test_wizard import _step_is

PASSWORD = "correct-horse-battery"
MIB = 1024 * 1024


def _element(user: User, marker: str, kind: type[ui.element] = ui.element) -> Any:
    return next(e for e in user.find(marker=marker).elements if isinstance(e, kind))


async def _saved_id(services: Any) -> int:
    for _ in range(100):
        found = services.store.list_ingestions()
        if found:
            return int(found[0].id)
        await asyncio.sleep(0.05)
    raise AssertionError("the console did not save the ingestion")


async def _api_spec(user: User, ingestion_id: int) -> dict[str, Any]:
    """The stored spec as the REST API returns it (to the first admin's automation token)."""
    answer = await user.http_client.get(f"/api/v1/ingestions/{ingestion_id}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body.get("spec", body)


async def _through_source_and_format(user: User) -> None:
    await user.open("/ingestions/new")
    user.find(marker="name").type("orders")
    user.find(marker="source.path").type(str(ORDERS))
    user.find(marker="next").click()
    await user.should_see("• ordered_at (timestamp)", retries=50)
    user.find(marker="next").click()
    await _step_is(user, "Destination")


async def _set_destination_options(user: User) -> None:
    user.find(marker="destination.catalog").clear().type("sales")
    user.find(marker="destination.database").clear().type("raw")
    user.find(marker="destination.table").type("orders")
    _element(user, "destination.write_mode", ui.select).set_value("merge")
    _element(user, "destination.merge_keys", ui.select).set_value(["order_id"])
    _element(user, "destination.merge_order_by", ui.select).set_value("ordered_at")
    user.find(marker="add-table-property").click()
    user.find(marker="table-property-key-0").type("delta.appendOnly")
    user.find(marker="table-property-value-0").type("false")
    _element(user, "destination.lineage_columns", ui.switch).set_value(False)


async def _set_alerts_and_limits(user: User) -> None:
    _element(user, "quality.duration_sla_minutes", ui.number).set_value(45)
    _element(user, "quality.no_files_alert_days", ui.number).set_value(2)
    user.find(marker="quality.webhook_url").type("https://hooks.example.com/orders")
    _element(user, "quality.max_bad_record_ratio", ui.number).set_value(5)
    _element(user, "limits.max_files_per_batch", ui.number).set_value(100)
    _element(user, "limits.max_bytes_per_batch", ui.number).set_value(64)


async def test_every_new_field_set_in_the_wizard_is_saved(user: User, services_of_app: Any) -> None:
    await _through_source_and_format(user)
    await _set_destination_options(user)
    await user.should_see("on order_id; among rows with the same key, highest ordered_at wins")
    await user.should_see("delta.appendOnly=false")
    user.find(marker="next").click()
    await _step_is(user, "Schedule")
    await _set_alerts_and_limits(user)
    caption = _element(user, "alerts-and-limits", ui.expansion).props["caption"]
    assert caption.startswith("Changed: SLA 45 min; no files for 2 days; webhook https://hooks.example.com/orders")
    user.find(marker="save-draft").click()
    saved_id = await _saved_id(services_of_app)
    saved = await _api_spec(user, saved_id)
    destination, quality = saved["destination"], saved["quality"]
    stored = services_of_app.store.get_ingestion(saved_id).spec.quality.webhook_url
    assert stored == "https://hooks.example.com/orders"  # the API shows its host only (the path is often a token)
    assert (destination["write_mode"], destination["merge_keys"], destination["merge_order_by"]) == (
        "merge",
        ["order_id"],
        "ordered_at",
    )
    assert destination["table_properties"] == {"delta.appendOnly": "false"}
    assert destination["lineage_columns"] is False
    assert (quality["duration_sla_minutes"], quality["no_files_alert_days"]) == (45, 2)
    assert (quality["webhook_url"], quality["max_bad_record_ratio"]) == ("https://hooks.example.com/********", 0.05)
    assert saved["limits"] == {"max_files_per_batch": 100, "max_bytes_per_batch": 64 * MIB}


async def test_edit_mode_shows_and_saves_the_new_fields(user: User, services_of_app: Any) -> None:
    options: dict[str, Any] = {
        "destination": {
            "table": "orders",
            "write_mode": "merge",
            "merge_keys": ["order_id"],
            "merge_order_by": "ordered_at",
            "table_properties": {"delta.appendOnly": "false", "owner": "data"},
            "lineage_columns": False,
        },
        "quality": {"duration_sla_minutes": 45, "no_files_alert_days": 2, "webhook_url": "https://h.example.com/x"},
        "limits": {"max_files_per_batch": 100, "max_bytes_per_batch": 64 * MIB},
    }
    stored = services_of_app.ingestions.create(spec(str(ORDERS), name="orders", **options))
    await user.open(f"/ingestions/{stored.id}/edit")
    await user.should_see("Edit 'orders'")
    assert _element(user, "destination.merge_order_by", ui.select).value == "ordered_at"
    assert _element(user, "destination.lineage_columns", ui.switch).value is False
    keys = [_element(user, f"table-property-key-{i}", ui.input).value for i in range(2)]
    assert keys == ["delta.appendOnly", "owner"]
    assert _element(user, "quality.duration_sla_minutes", ui.number).value == 45
    assert _element(user, "quality.webhook_url", ui.input).value == "https://h.example.com/x"
    assert _element(user, "limits.max_bytes_per_batch", ui.number).value == 64
    user.find(marker="remove-table-property-1").click()
    _element(user, "quality.no_files_alert_days", ui.number).set_value(7)
    user.find(marker="save-draft").click()
    for _ in range(100):
        saved = await _api_spec(user, stored.id)
        if saved["quality"]["no_files_alert_days"] == 7:
            break
        await asyncio.sleep(0.05)
    assert saved["quality"]["no_files_alert_days"] == 7
    assert saved["destination"]["table_properties"] == {"delta.appendOnly": "false"}
    assert saved["destination"]["merge_order_by"] == "ordered_at" and saved["limits"]["max_files_per_batch"] == 100


async def test_bad_values_are_named_at_their_field(user: User) -> None:
    await _through_source_and_format(user)
    user.find(marker="destination.table").type("orders")
    user.find(marker="add-table-property").click()
    user.find(marker="add-table-property").click()
    user.find(marker="table-property-key-0").type("owner")
    user.find(marker="table-property-key-1").type("owner")
    await user.should_see("The property 'owner' is given twice")
    user.find(marker="next").click()
    await _step_is(user, "Schedule")
    user.find(marker="quality.webhook_url").type("ftp://example.com/hook")
    await user.should_see("use an http:// or https:// URL")
    _element(user, "limits.max_files_per_batch", ui.number).set_value(0)
    await user.should_see("Enter 1 or more.")


def test_the_format_is_guessed_from_the_pattern_or_the_path() -> None:
    assert guess_format("*.csv", "/landing/") == "csv"
    assert guess_format("orders-*.json.gz", "/landing/") == "json"
    assert guess_format(None, "s3://bucket/day/part-0.parquet") == "parquet"
    assert guess_format("*.tsv", "/in/x.parquet") == "csv"  # the pattern decides
    assert guess_format("*", "/landing/") is None
    assert guess_format(None, "/landing/2024.10") is None


async def test_the_format_step_starts_at_the_guess_until_the_user_picks(user: User) -> None:
    await user.open("/ingestions/new")
    fmt = _element(user, "format.type", ui.select)
    user.find(marker="source.file_pattern").type("*.csv")
    assert fmt.value == "csv"
    user.find(marker="source.file_pattern").clear().type("*.parquet.snappy")
    assert fmt.value == "parquet"
    fmt.set_value("json")  # the user's choice
    user.find(marker="source.file_pattern").clear().type("*.csv")
    assert fmt.value == "json"


async def test_an_edited_ingestion_keeps_its_format(user: User, services_of_app: Any) -> None:
    stored = services_of_app.ingestions.create(spec(str(ORDERS), name="orders"))
    await user.open(f"/ingestions/{stored.id}/edit")
    user.find(marker="source.file_pattern").type("*.csv")
    assert _element(user, "format.type", ui.select).value == "json"


async def test_destination_summary_shows_where_the_embedded_engine_writes(user: User, services_of_app: Any) -> None:
    await _through_source_and_format(user)
    user.find(marker="destination.catalog").clear().type("sales")
    user.find(marker="destination.table").type("orders")
    location = services_of_app.engines.table_uri(
        spec("/x", table="orders").destination.model_copy(update={"catalog": "sales", "database": "default"}), 1
    )
    await user.should_see(f"Delta table at {location} (Append (add new data))")
    assert location.endswith("/sales/default/orders")


def test_destination_summary_names_the_table_in_the_clusters_catalog() -> None:
    draft = SpecDraft(spec("/x", table="orders"))  # catalog main (the default), database raw
    cluster = ClusterPublic(
        name="lake",
        catalog="spark_catalog",
        table_format="iceberg",
        id=1,
        has_token=False,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert destination_text(draft, cluster) == "iceberg table spark_catalog.raw.orders on lake"
    draft.set("destination.catalog", "sales")
    assert destination_text(draft, cluster) == "iceberg table sales.raw.orders on lake"
    draft.set("destination.table", "")
    assert destination_text(draft, cluster) == "incomplete (name the table)"


async def test_the_ledger_filters_files_held_for_schema_review(
    user: User, services_of_app: Any, tmp_path: Path
) -> None:
    ingestion_id = prepare_needs_review(services_of_app, tmp_path / "events", rows_per_file=3)
    await user.open(f"/ingestions/{ingestion_id}")
    status = _element(user, "ledger-status", ui.select)
    assert "held" in status.options  # offered to the user, not only accepted
    status.set_value("held")
    await user.should_see("v2-000009.json", retries=50)
    await user.should_not_see("v1-000000.json")


async def test_members_see_the_clusters_but_not_the_form(user: User, services_of_app: Any) -> None:
    services_of_app.clusters.create(ClusterCreate(name="shared", connect_url="sc://127.0.0.1:1"))
    services_of_app.accounts.create_user(SYSTEM, "mia@example.com", PASSWORD, Role.MEMBER, None)
    answer = await user.http_client.post("/auth/login", data={"email": "mia@example.com", "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    await user.open("/clusters")
    await user.should_see("shared")
    await user.should_see("an admin registers them")
    await user.should_not_see("Register a cluster")
    await user.should_not_see(marker="delete-shared")


async def test_a_member_sees_their_own_ingestions_only(user: User, services_of_app: Any, tmp_path: Path) -> None:
    """PRODUCT.md §13: the dashboard lists a member's own ingestions, and another's detail page is not found."""
    from core.access import Principal

    account = services_of_app.accounts.create_user(SYSTEM, "max@example.com", PASSWORD, Role.MEMBER, None)
    maxs = Principal(account.id, 1, Role.MEMBER, "max@example.com")
    services_of_app.ingestions.create(spec(str(tmp_path / "a"), name="admins-orders", table="t1"))
    services_of_app.ingestions.create(spec(str(tmp_path / "m"), name="max-orders", table="t2"), who=maxs)
    theirs = next(i for i in services_of_app.store.list_ingestions() if i.name == "admins-orders")
    answer = await user.http_client.post("/auth/login", data={"email": "max@example.com", "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    await user.open("/")
    await user.should_see("max-orders")
    await user.should_not_see("admins-orders")
    await user.open(f"/ingestions/{theirs.id}")
    await user.should_not_see("admins-orders")


async def test_the_lockout_message_says_to_wait_and_promises_no_reset(user: User, services_of_app: Any) -> None:
    services_of_app.accounts.create_user(SYSTEM, "lou@example.com", PASSWORD, Role.MEMBER, None)
    for _ in range(5):
        await user.http_client.post("/auth/login", data={"email": "lou@example.com", "password": "wrong-password"})
    answer = await user.http_client.post("/auth/login", data={"email": "lou@example.com", "password": PASSWORD})
    message = unquote(answer.headers["location"])
    assert re.search(r"locked for \d+ seconds more\. Wait \d+ seconds, then log in", message), message
    assert "reset" not in message and "admin" not in message
    assert (wait_text(45), wait_text(200)) == ("45 seconds", "about 4 minutes")


async def test_saving_an_edit_made_before_another_save_is_refused(user: User, services_of_app: Any) -> None:
    """Two tabs on one ingestion: the second save silently put back what the first had changed (an outside
    attack). The page's save is made from the revision it read."""
    stored = services_of_app.ingestions.create(spec(str(ORDERS), name="orders"))
    await user.open(f"/ingestions/{stored.id}/edit")
    await user.should_see("Edit 'orders'")
    other = services_of_app.ingestions.patch(stored.id, {"quality": {"no_files_alert_days": 3}})  # the other tab
    _element(user, "quality.duration_sla_minutes", ui.number).set_value(45)
    user.find(marker="save-draft").click()
    await user.should_see("was changed after you opened it", retries=50)
    now = services_of_app.store.get_ingestion(stored.id)
    assert now.revision == other.revision == stored.revision + 1
    assert now.spec.quality.no_files_alert_days == 3 and now.spec.quality.duration_sla_minutes is None

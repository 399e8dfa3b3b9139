"""Header notifications, the dashboard's schema-change alert, resume → run now, and the detail page's schema
history and alerts (issues 5 and 6), in NiceGUI's in-process `user` simulation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nicegui import ui
from nicegui.testing import User

from components.schema_history import column_changes
from core.access import SYSTEM, Principal, Role
from core.views import DashboardQuery, PendingSchema
from tests.helpers import spec
from tests.ui.conftest import ORDERS
from tests.ui.schema_scenario import prepare_needs_review


def _texts(user: User, marker: str) -> list[str]:
    return [e.text for e in user.find(marker=marker).elements if isinstance(e, ui.label | ui.badge | ui.link)]


async def test_dashboard_card_shows_needs_review_and_links_to_the_review(
    user: User, services_of_app: Any, tmp_path: Path
) -> None:
    ingestion_id = prepare_needs_review(services_of_app, tmp_path / "landing", rows_per_file=10)
    await user.open("/")
    await user.should_see("⚠ NEEDS REVIEW")
    await user.should_see("Schema Evolution Detected")
    await user.should_see("New columns 'email', 'score' found in 2 recent files.")
    link = next(iter(user.find(marker="review-link").elements))
    assert link.props["href"] == f"/ingestions/{ingestion_id}/schema-review"
    user.find(marker="review-link").click()
    await user.should_see("How Should We Handle This?")


async def test_healthy_cards_have_no_schema_alert(user: User, services_of_app: Any) -> None:
    services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    await user.open("/")
    await user.should_see(marker="card-orders")
    await user.should_not_see("Schema Evolution Detected")


def test_pending_schemas_is_one_query_for_many_ingestions(console_data_dir: Path, tmp_path: Path) -> None:
    from sqlalchemy import event

    from app.bootstrap import build
    from app.settings import Settings

    services = build(Settings())
    try:
        first = prepare_needs_review(services, tmp_path / "a", rows_per_file=5, name="first")
        second = prepare_needs_review(services, tmp_path / "b", rows_per_file=5, name="second")
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(services.db, "before_cursor_execute", count)
        try:
            pending = services.views.queries.pending_schemas([first, second, 999])
        finally:
            event.remove(services.db, "before_cursor_execute", count)
        assert len(statements) == 1
        assert set(pending) == {first, second}
        assert set(services.views.dashboard(SYSTEM, DashboardQuery()).pending) == {first, second}
    finally:
        services.close()


def test_pending_summary_wording() -> None:
    def pending(changes: list[dict[str, str]], files: int) -> PendingSchema:
        from datetime import UTC, datetime

        return PendingSchema(1, 2, datetime.now(UTC), "", changes, files, 0)

    added = {"kind": "added", "column": "severity_score", "description": "new column 'severity_score' (double)"}
    assert pending([added], 3).summary == "New column 'severity_score' found in 3 recent files."
    changed = {"kind": "type_changed", "column": "n", "description": "column 'n' changed bigint → string"}
    assert (
        pending([changed, added], 1).summary == "Column 'n' changed bigint → string and 1 more change in 1 recent file."
    )
    assert pending([], 1).review_link == "/ingestions/1/schema-review"


def test_column_changes_between_versions() -> None:
    before = [{"name": "id", "type": "bigint"}, {"name": "n", "type": "int"}, {"name": "old", "type": "string"}]
    after = [{"name": "id", "type": "bigint"}, {"name": "n", "type": "bigint"}, {"name": "new", "type": "double"}]
    assert column_changes(before, after) == ["+ new (double)", "n: int → bigint", "- old (removed)"]


async def test_bell_counts_unread_lists_and_marks_all_read(user: User, services_of_app: Any, tmp_path: Path) -> None:
    ingestion_id = prepare_needs_review(services_of_app, tmp_path / "landing", rows_per_file=10)
    await user.open("/clusters")
    await user.should_see(marker="unread-count", retries=50)
    assert _texts(user, "unread-count") == ["1"]
    user.find(marker="bell").click()
    await user.should_see("Schema change in 'events' needs review", retries=20)
    await user.should_see(marker="notification-unread")
    links = [e.props["href"] for e in user.find(ui.link).elements if e.text == "Open →"]
    assert links == [f"/ingestions/{ingestion_id}/schema-review"]
    user.find(marker="mark-all-read").click()
    await user.should_see(marker="notification-read", retries=20)
    assert services_of_app.views.unread_count(SYSTEM) == 0
    await user.should_not_see(marker="unread-count", retries=20)


async def test_detail_shows_banner_alerts_and_schema_history(user: User, services_of_app: Any, tmp_path: Path) -> None:
    ingestion_id = prepare_needs_review(services_of_app, tmp_path / "landing", rows_per_file=10)
    await user.open(f"/ingestions/{ingestion_id}")
    await user.should_see("Schema Evolution Detected")
    await user.should_see(marker="alerts")
    await user.should_see("Schema change in 'events' needs review")
    await user.should_see(marker="schema-history")
    await user.should_see(marker="schema-version-1")
    await user.should_see(marker="schema-version-2")
    await user.should_see("Why: table created")
    await user.should_see("• new column 'email' (string)")
    await user.should_see(marker="history-review-link")

    alice = Principal(user_id=None, tenant_id=1, role=Role.ADMIN, email="alice")
    services_of_app.schema.resolve(ingestion_id, 2, "auto_merge", who=alice)
    await user.open(f"/ingestions/{ingestion_id}")
    await user.should_see(marker="schema-history")
    await user.should_not_see("Schema Evolution Detected")
    await user.should_see("auto-merged (columns added to the table) by alice", retries=5)
    await user.should_see("No open alerts.")
    await user.should_not_see(marker="history-review-link")


async def test_resume_offers_run_now_on_the_dashboard(user: User, services_of_app: Any) -> None:
    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services_of_app.ingestions.pause(ingestion.id)
    await user.open("/")
    await user.should_see(marker="pause-orders")
    user.find(marker="pause-orders").click()
    await user.should_see("'orders' is active again", retries=20)
    user.find(marker="offer-run-now").click()
    await user.should_see("started.", retries=20)
    assert services_of_app.views.runs(SYSTEM, ingestion.id)


async def test_resume_on_the_detail_page_can_wait_for_the_next_slot(user: User, services_of_app: Any) -> None:
    daily = {"mode": "scheduled", "frequency": "daily", "time": "02:00", "backfill": {"mode": "new_only"}}
    ingestion = services_of_app.ingestions.create(
        spec(str(ORDERS), table="orders", name="orders", schedule=daily), activate=True
    )
    services_of_app.ingestions.pause(ingestion.id)
    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see("Resume")
    user.find("Resume").click()
    await user.should_see("'orders' is active again", retries=20)
    await user.should_see("Its next scheduled run is", retries=5)
    user.find(marker="offer-later").click()
    await user.should_not_see("'orders' is active again", retries=20)
    assert services_of_app.views.runs(SYSTEM, ingestion.id) == []


async def test_the_review_marks_columns_that_fields_were_added_inside(
    user: User, services_of_app: Any, tmp_path: Path
) -> None:
    """A field added inside a struct or inside a list's structs is shown on its column (it was shown as an
    unchanged column: only the change list named it)."""
    import json

    landing = tmp_path / "landing"
    landing.mkdir()
    first = {"id": 1, "user": {"name": "a"}, "items": [{"sku": "a"}]}
    (landing / "a.json").write_text(json.dumps(first) + "\n")
    ingestion = services_of_app.ingestions.create(spec(str(landing), name="nested"), activate=True)
    services_of_app.runs.run_now(str(ingestion.id))
    second = {"id": 2, "user": {"name": "b", "age": 3}, "items": [{"sku": "b", "qty": 2}]}
    (landing / "b.json").write_text(json.dumps(second) + "\n")
    services_of_app.runs.run_now(str(ingestion.id))
    await user.open(f"/ingestions/{ingestion.id}/schema-review")
    await user.should_see("struct<name:string,age:bigint> (adds age)")
    await user.should_see("array<struct<sku:string,qty:bigint>> (adds element.qty)")

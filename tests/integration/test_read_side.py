"""The read side stays a bounded number of SQL statements whatever the number of ingestions (no query per row)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from core.access import SYSTEM
from core.domain import IngestionStatus, RunMetrics, RunStatus
from tests.helpers import spec

MAX_STATEMENTS = 8
"""The list: the rows, the changed specs in chunks of 500, the last runs in chunks of 500."""


@contextmanager
def counted(engine: Any) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _seed(services: Any, folder: Path, count: int) -> None:
    """`count` active ingestions, every other one with a finished run (written straight through the store)."""
    for index in range(count):
        ingestion = services.store.create_ingestion(
            spec(str(folder), table=f"t{index}", name=f"ingestion-{index:04d}", schedule={"mode": "manual"}),
            IngestionStatus.ACTIVE,
        )
        if index % 2 == 0:
            run_id = services.store.create_run(ingestion.id, "manual")
            services.store.finish_run(run_id, RunStatus.SUCCESS, RunMetrics(files_processed=1), [], "ok")


def test_listing_1000_ingestions_takes_a_bounded_number_of_statements(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _seed(services, tmp_path, 1000)
    with counted(services.db) as cold:
        listed = api.get("/api/v1/ingestions")
    assert listed.status_code == 200, listed.text
    items = listed.json()
    assert len(items) == 1000
    assert sum(1 for i in items if i["last_run"] is not None) == 500
    assert len(cold) <= MAX_STATEMENTS, cold
    with counted(services.db) as warm:
        assert len(api.get("/api/v1/ingestions").json()) == 1000
    assert len(warm) <= 3, warm  # specs are parsed once per change


def test_the_statement_counter_sees_a_query_per_row(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The counter itself: a loop of per-row reads is counted row by row (so the bound above can fail)."""
    _seed(services, tmp_path, 20)
    with counted(services.db) as statements:
        for summary in services.views.ingestions(SYSTEM):
            services.views.runs(SYSTEM, summary.id)
    assert len(statements) >= 40

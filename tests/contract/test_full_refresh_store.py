"""The full-refresh marker in the metadata database, on SQLite and PostgreSQL: migration 0010 down and up, the
marker's states and the ledger reset that starts a refresh (one transaction)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from alembic import command
from app.db.database import alembic_config, upgrade
from app.db.repository import SqlStore
from core.domain import FileResult, FileStatus, IngestionStatus, LedgerEntry
from core.errors import NotFound
from tests.helpers import spec

NOW = datetime(2026, 12, 1, 3, tzinfo=UTC)


def test_marker_states_and_the_ledger_reset(store: SqlStore, tmp_path: Path) -> None:
    ing = store.create_ingestion(spec(str(tmp_path)), IngestionStatus.ACTIVE)
    other = store.create_ingestion(spec(str(tmp_path), table="other"), IngestionStatus.ACTIVE)
    for ingestion in (ing, other):
        entries = [LedgerEntry(p, 10, NOW, "e", FileStatus.PENDING) for p in ("a", "b")]
        store.add_pending_batch(ingestion.id, store.create_run(ingestion.id, "manual"), 1, entries)
        store.complete_batch(
            ingestion.id, 1, {"a": FileResult(FileStatus.LOADED, 7), "b": FileResult(FileStatus.LOADED, 5)}
        )
    store.upsert_files(ing.id, None, [LedgerEntry("bad", 1, NOW, None, FileStatus.QUARANTINED, error="x")])
    assert store.loaded_totals(ing.id) == (2, 12)
    assert store.full_refresh_marker(ing.id) is None

    store.request_full_refresh(ing.id)
    assert store.full_refresh_marker(ing.id) == -1
    store.begin_full_refresh(ing.id, 3)
    assert store.full_refresh_marker(ing.id) == 3
    assert store.known_files(ing.id) == {} and store.loaded_totals(ing.id) == (0, 0)
    assert set(store.known_files(other.id)) == {"a", "b"} and store.full_refresh_marker(other.id) is None
    store.request_full_refresh(ing.id)  # one under way is kept: the next run finishes it
    assert store.full_refresh_marker(ing.id) == 3
    store.end_full_refresh(ing.id)
    assert store.full_refresh_marker(ing.id) is None
    with pytest.raises(NotFound):
        store.request_full_refresh(999_999)


def test_migration_0010_down_and_up(url: str, db: Engine, store: SqlStore, tmp_path: Path) -> None:
    ing = store.create_ingestion(spec(str(tmp_path)), IngestionStatus.ACTIVE)
    store.request_full_refresh(ing.id)
    command.downgrade(alembic_config(url), "0009")
    db.dispose()
    assert "full_refresh_after" not in {c["name"] for c in inspect(db).get_columns("ingestion")}
    upgrade(url)
    assert store.get_ingestion(ing.id).name == ing.name and store.full_refresh_marker(ing.id) is None

"""Table maintenance in the metadata database, on SQLite and PostgreSQL: migration 0007 up and down (and the models
agreeing with the migrations), the setting, the records, the run slot a maintenance holds, one record per schedule
slot."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from alembic import command
from app.db.database import alembic_config
from app.db.repository import SqlStore
from core.domain import IngestionStatus
from core.maintenance import MaintenanceConfig
from core.ports import maintenance_slot
from tests.helpers import spec

SLOT = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_models_match_the_migrations(db: Engine) -> None:
    """Every table and column the models declare is what the migrations made (0007's included)."""
    with db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []


def test_migration_0007_down_and_up_keeps_the_ingestions(url: str, db: Engine, store: SqlStore, tmp_path: Path) -> None:
    ingestion = store.create_ingestion(spec(str(tmp_path)), IngestionStatus.ACTIVE)
    store.set_maintenance_config(ingestion.id, MaintenanceConfig(enabled=True, every_hours=12))
    db.dispose()
    command.downgrade(alembic_config(url), "0006")
    names = inspect(db).get_table_names()
    assert "maintenance_run" not in names
    assert "maintenance" not in {c["name"] for c in inspect(db).get_columns("ingestion")}
    command.upgrade(alembic_config(url), "head")
    with db.connect() as conn:
        assert conn.execute(text("SELECT name FROM ingestion")).scalars().all() == [ingestion.name]
    assert store.maintenance_config(ingestion.id) == MaintenanceConfig()  # the column is back, empty: off
    assert store.get_ingestion(ingestion.id).spec == ingestion.spec


def test_setting_records_and_the_slot(store: SqlStore, tmp_path: Path) -> None:
    ingestion = store.create_ingestion(spec(str(tmp_path)), IngestionStatus.ACTIVE)
    assert store.maintained_ingestions() == []
    config = MaintenanceConfig(enabled=True, cron="0 3 * * sun", vacuum_retention_hours=240)
    store.set_maintenance_config(ingestion.id, config)
    assert store.maintained_ingestions() == [(ingestion.id, "active", config)]

    owner = f"{socket.gethostname()}:1"
    first = store.create_maintenance(ingestion.id, "scheduled", 240, owner, SLOT)
    assert first is not None
    assert store.create_maintenance(ingestion.id, "scheduled", 240, "another-replica:2", SLOT) is None
    assert store.last_maintenance_slots() == {ingestion.id: SLOT}

    assert store.claim_run_slot(ingestion.id, maintenance_slot(first))
    held = store.active_run(ingestion.id)
    assert held is not None and (held.run_id, held.owner, held.label) == (-first, owner, f"table maintenance {first}")
    run_id = store.create_run(ingestion.id, "manual")
    assert not store.claim_run_slot(ingestion.id, run_id)
    store.release_run_slot(ingestion.id, maintenance_slot(first))
    assert store.active_run(ingestion.id) is None

    manual = store.create_maintenance(ingestion.id, "manual", 240, owner)
    other = store.create_maintenance(ingestion.id, "manual", 240, owner)
    assert manual is not None and other is not None  # only schedule slots are unique
    store.delete_maintenance(other)
    assert store.get_maintenance(other) is None
    store.delete_ingestion(ingestion.id)
    assert store.get_maintenance(first) is None

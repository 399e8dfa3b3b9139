"""Table maintenance rows: the per-ingestion setting (a JSON column of the ingestion) and one record per
compaction and vacuum, from its start (holding the run slot) to its end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.db.models import Ingestion as IngestionRow
from app.db.models import MaintenanceRun, utcnow
from app.db.repository.base import Rows
from core.engines.base import CompactionResult
from core.errors import NotFound
from core.maintenance import MaintenanceConfig, MaintenanceStatus, config_of


class MaintenanceRows(Rows):
    # --- the setting ----------------------------------------------------------------------------------------------
    def maintenance_config(self, ingestion_id: int) -> MaintenanceConfig:
        with self.session() as s:
            stored = s.execute(
                select(col(IngestionRow.maintenance)).where(col(IngestionRow.id) == ingestion_id)
            ).first()
        if stored is None:
            raise NotFound(f"Ingestion {ingestion_id} does not exist.", "List ingestions with GET /api/v1/ingestions.")
        return config_of(stored[0])

    def set_maintenance_config(self, ingestion_id: int, config: MaintenanceConfig) -> None:
        """Store the setting; `updated_at` moves, as for any change of the ingestion."""
        with self.session() as s:
            result = s.execute(
                update(IngestionRow)
                .where(col(IngestionRow.id) == ingestion_id)
                .values(maintenance=config.model_dump(mode="json"), updated_at=utcnow())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"Ingestion {ingestion_id} does not exist.", "List ingestions first.")
            s.commit()

    def maintained_ingestions(self) -> list[tuple[int, str, MaintenanceConfig]]:
        """(id, status, setting) of every ingestion whose maintenance is on: one light query (no spec is parsed)."""
        with self.session() as s:
            rows = s.execute(select(col(IngestionRow.id), col(IngestionRow.status), col(IngestionRow.maintenance)))
            found = [(row[0], row[1], row[2]) for row in rows if row[2] and row[2].get("enabled")]
        return [(ingestion_id, status, config_of(stored)) for ingestion_id, status, stored in found]

    def last_maintenance_slots(self) -> dict[int, datetime]:
        """ingestion id → the latest scheduled maintenance's slot."""
        with self.session() as s:
            rows = s.execute(
                select(col(MaintenanceRun.ingestion_id), func.max(col(MaintenanceRun.scheduled_for)))
                .where(col(MaintenanceRun.scheduled_for).is_not(None))
                .group_by(col(MaintenanceRun.ingestion_id))
            )
            return {row[0]: row[1] for row in rows}

    # --- a maintenance's life -------------------------------------------------------------------------------------
    def create_maintenance(
        self, ingestion_id: int, trigger: str, retention_hours: int, owner: str, scheduled_for: datetime | None = None
    ) -> int | None:
        """A started maintenance, owned and beating from the first moment (so that, once it holds the run slot, no
        one takes it for one a dead process left). None when another replica has already taken this slot."""
        now = utcnow()
        row = MaintenanceRun(
            ingestion_id=ingestion_id,
            trigger=trigger,
            status=MaintenanceStatus.RUNNING.value,
            retention_hours=retention_hours,
            scheduled_for=scheduled_for,
            owner=owner,
            started_at=now,
            heartbeat_at=now,
        )
        with self.session() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError:
                return None
            return row.id

    def delete_maintenance(self, maintenance_id: int) -> None:
        """Forget a maintenance that never started (the run slot was busy): its schedule slot is free again."""
        with self.session() as s:
            s.execute(delete(MaintenanceRun).where(col(MaintenanceRun.id) == maintenance_id))
            s.commit()

    def heartbeat_maintenance(self, maintenance_id: int) -> None:
        self._update_maintenance(maintenance_id, heartbeat_at=utcnow())

    def record_compaction(self, maintenance_id: int, result: CompactionResult) -> None:
        self._update_maintenance(
            maintenance_id,
            files_before=result.files_before,
            files_after=result.files_after,
            bytes_before=result.bytes_before,
            bytes_after=result.bytes_after,
            heartbeat_at=utcnow(),
        )

    def finish_maintenance(
        self,
        maintenance_id: int,
        status: MaintenanceStatus,
        message: str,
        files_removed: int | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "message": message}
        if files_removed is not None:
            values["files_removed"] = files_removed
        if errors is not None:
            values["errors"] = errors
        self._update_maintenance(maintenance_id, **values)

    def settle_maintenance(self, maintenance_id: int, message: str, error: dict[str, Any]) -> bool:
        """End a maintenance still marked running as failed (its process died); returns whether this call did."""
        with self.session() as s:
            result = s.execute(
                update(MaintenanceRun)
                .where(col(MaintenanceRun.id) == maintenance_id, col(MaintenanceRun.status) == "running")
                .values(status=MaintenanceStatus.FAILED.value, finished_at=utcnow(), message=message, errors=[error])
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def running_maintenances(self) -> list[MaintenanceRun]:
        with self.session() as s:
            query = select(MaintenanceRun).where(col(MaintenanceRun.status) == MaintenanceStatus.RUNNING.value)
            return list(s.execute(query).scalars().all())

    def get_maintenance(self, maintenance_id: int) -> MaintenanceRun | None:
        with self.session() as s:
            return s.get(MaintenanceRun, maintenance_id)

    def _update_maintenance(self, maintenance_id: int, **values: Any) -> None:
        with self.session() as s:
            s.execute(update(MaintenanceRun).where(col(MaintenanceRun.id) == maintenance_id).values(**values))
            s.commit()

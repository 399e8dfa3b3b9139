"""The full-refresh marker of an ingestion (`ingestion.full_refresh_after`, migration 0010) and the ledger reset.

The marker says what the next runs must do; the run pipeline moves it (core/pipeline.py, `_begin_full_refresh`):
- NULL: no refresh;
- REQUESTED (-1): asked for; the next run starts it;
- N >= 0: started by a run when the table's committed batch was N, with the ledger emptied in the same transaction.
  Until the table holds a batch above N, every run starts again from an empty ledger and replaces the table's
  content with its first commit; once it does, the refresh is done and the marker is cleared.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlmodel import col

from app.db.models import Ingestion as IngestionRow
from app.db.models import LedgerFile, SchemaVersion, utcnow
from app.db.repository.base import Rows
from core.domain import FileStatus, IngestionStatus
from core.errors import NotFound

REQUESTED = -1
SUPERSEDED = "superseded"
"""The status of a schema review a full refresh dismissed (the other statuses: pending, applied)."""


class FullRefreshRows(Rows):
    def request_full_refresh(self, ingestion_id: int) -> None:
        """Ask for a full refresh (one already under way is kept as it is: the next run finishes that one)."""
        with self.session() as s:
            if s.get(IngestionRow, ingestion_id) is None:
                raise NotFound(f"Ingestion {ingestion_id} does not exist.", "List ingestions first.")
            s.execute(
                update(IngestionRow)
                .where(col(IngestionRow.id) == ingestion_id, col(IngestionRow.full_refresh_after).is_(None))
                .values(full_refresh_after=REQUESTED)
            )
            s.commit()

    def full_refresh_marker(self, ingestion_id: int) -> int | None:
        with self.session() as s:
            value = s.execute(
                select(col(IngestionRow.full_refresh_after)).where(col(IngestionRow.id) == ingestion_id)
            ).scalar()
            return None if value is None else int(value)

    def begin_full_refresh(self, ingestion_id: int, committed: int) -> None:
        """Forget every file of the ingestion and note the table's committed batch, in one transaction (with where
        an incremental listing starts: every file is due again).

        A pending schema review is dismissed in the same transaction: the files it holds are forgotten with the rest
        and read again by the refresh, which asks for a new review if they still differ from the table."""
        with self.session() as s:
            s.execute(delete(LedgerFile).where(col(LedgerFile.ingestion_id) == ingestion_id))
            s.execute(
                update(IngestionRow)
                .where(col(IngestionRow.id) == ingestion_id)
                .values(full_refresh_after=committed, listed_through=None)
            )
            dismissed = s.execute(
                update(SchemaVersion)
                .where(col(SchemaVersion.ingestion_id) == ingestion_id, col(SchemaVersion.status) == "pending")
                .values(status=SUPERSEDED, resolution="full_refresh", resolved_at=utcnow(), resolved_by="full refresh")
            )
            if dismissed.rowcount:  # type: ignore[attr-defined]
                s.execute(
                    update(IngestionRow)
                    .where(
                        col(IngestionRow.id) == ingestion_id,
                        col(IngestionRow.status) == IngestionStatus.NEEDS_REVIEW.value,
                    )
                    .values(status=IngestionStatus.ACTIVE.value)
                )
            s.commit()

    def end_full_refresh(self, ingestion_id: int) -> None:
        with self.session() as s:
            s.execute(update(IngestionRow).where(col(IngestionRow.id) == ingestion_id).values(full_refresh_after=None))
            s.commit()

    def loaded_totals(self, ingestion_id: int) -> tuple[int, int]:
        """(files, records) the ledger has loaded into the table: what a full refresh's confirmation names."""
        with self.session() as s:
            row = s.execute(
                select(func.count(), func.coalesce(func.sum(LedgerFile.records), 0)).where(
                    col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.status) == FileStatus.LOADED.value
                )
            ).one()
            return int(row[0]), int(row[1])

"""Schema versions: applied ones, the pending one a review resolves, and the files it holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from app.db.models import LedgerFile, SchemaVersion, utcnow
from app.db.repository.base import Rows
from app.db.repository.ledger import forget_listing
from core.domain import (
    FileStatus,
)
from core.errors import NotFound
from core.wording import counted


class SchemaVersionRows(Rows):
    def record_schema_version(self, ingestion_id: int, schema: list[dict[str, Any]], reason: str) -> None:
        with self.session() as s:
            last = s.execute(
                select(func.max(SchemaVersion.version)).where(col(SchemaVersion.ingestion_id) == ingestion_id)
            ).scalar()
            s.add(
                SchemaVersion(
                    ingestion_id=ingestion_id, version=(last or 0) + 1, columns=schema, reason=reason, status="applied"
                )
            )
            s.commit()

    def record_pending_schema(
        self,
        ingestion_id: int,
        columns: list[dict[str, Any]],
        changes: list[dict[str, Any]],
        files: list[dict[str, Any]],
    ) -> int:
        with self.session() as s:
            pending = self._pending_version(s, ingestion_id)
            if pending is None:
                last = s.execute(
                    select(func.max(SchemaVersion.version)).where(col(SchemaVersion.ingestion_id) == ingestion_id)
                ).scalar()
                pending = SchemaVersion(
                    ingestion_id=ingestion_id, version=(last or 0) + 1, status="pending", columns=[]
                )
            from core.schema import merged_changes  # Arrow's import: not on a run that holds nothing

            pending.changes = merged_changes(pending.changes, changes)
            pending.files = [*pending.files, *files]
            pending.columns = columns
            pending.reason = f"{counted(len(pending.files), 'file')} with: " + "; ".join(
                c["description"] for c in pending.changes
            )
            s.add(pending)
            s.commit()
            return pending.version

    def pending_schema_columns(self, ingestion_id: int) -> list[dict[str, Any]] | None:
        with self.session() as s:
            pending = self._pending_version(s, ingestion_id)
            return None if pending is None else list(pending.columns)

    @staticmethod
    def _pending_version(s: Session, ingestion_id: int) -> SchemaVersion | None:
        query = select(SchemaVersion).where(
            col(SchemaVersion.ingestion_id) == ingestion_id, col(SchemaVersion.status) == "pending"
        )
        return s.execute(query).scalars().first()

    def get_schema_version(self, ingestion_id: int, version: int) -> SchemaVersion:
        with self.session() as s:
            query = select(SchemaVersion).where(
                col(SchemaVersion.ingestion_id) == ingestion_id, col(SchemaVersion.version) == version
            )
            found = s.execute(query).scalars().first()
            if found is None:
                raise NotFound(
                    f"Schema version {version} of ingestion {ingestion_id} does not exist.",
                    "List them with GET /api/v1/ingestions/{id}/schema-versions.",
                )
            return found

    def resolve_schema_version(
        self, ingestion_id: int, version: int, resolution: str, actor: str, columns: list[dict[str, Any]]
    ) -> None:
        with self.session() as s:
            s.execute(
                update(SchemaVersion)
                .where(col(SchemaVersion.ingestion_id) == ingestion_id, col(SchemaVersion.version) == version)
                .values(
                    status="applied", resolution=resolution, resolved_at=utcnow(), resolved_by=actor, columns=columns
                )
            )
            s.commit()

    def release_held_files(self, ingestion_id: int) -> int:
        """Forget held files so that the next run loads them (after a schema decision)."""
        with self.session() as s:
            result = s.execute(
                delete(LedgerFile).where(
                    col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.status) == FileStatus.HELD.value
                )
            )
            forget_listing(s, ingestion_id)
            s.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

"""In-app notifications. An uncleared notification of a (ingestion, kind) suppresses repeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, or_, select, update
from sqlmodel import Session, col

from app.db.models import Ingestion, LedgerFile, Notification, Run, utcnow
from core.domain import (
    FileStatus,
    RunStatus,
)


def notifications_of(owner: int | None) -> tuple[Any, ...]:
    """The conditions on the notifications a user sees: of the ingestions `owner` created and of none (a member's,
    `access.own_only`); none for None (every notification of the tenant)."""
    if owner is None:
        return ()
    own = select(col(Ingestion.id)).where(col(Ingestion.created_by) == owner)
    return (or_(col(Notification.ingestion_id).is_(None), col(Notification.ingestion_id).in_(own)),)


class NotificationStore:
    """In-app notifications. An uncleared notification of a (ingestion, kind) suppresses repeats."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def open_alert(self, ingestion_id: int, kind: str) -> Notification | None:
        with self.session() as s:
            query = select(Notification).where(
                col(Notification.ingestion_id) == ingestion_id,
                col(Notification.kind) == kind,
                col(Notification.cleared_at).is_(None),
            )
            return s.execute(query.limit(1)).scalars().first()

    def add(self, notification: Notification) -> Notification:
        with self.session() as s:
            s.add(notification)
            s.commit()
            s.refresh(notification)
            return notification

    def set_deliveries(self, notification_id: int, deliveries: dict[str, Any]) -> None:
        with self.session() as s:
            s.execute(update(Notification).where(col(Notification.id) == notification_id).values(deliveries=deliveries))
            s.commit()

    def clear(self, ingestion_id: int, kind: str) -> int:
        with self.session() as s:
            result = s.execute(
                update(Notification)
                .where(
                    col(Notification.ingestion_id) == ingestion_id,
                    col(Notification.kind) == kind,
                    col(Notification.cleared_at).is_(None),
                )
                .values(cleared_at=utcnow())
            )
            s.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    def mark_read(self, tenant_id: int, notification_id: int | None = None, owner: int | None = None) -> None:
        """Mark one (or every) unread notification of the tenant read; given an `owner`, of those that user sees."""
        with self.session() as s:
            query = update(Notification).where(
                col(Notification.tenant_id) == tenant_id, col(Notification.read_at).is_(None), *notifications_of(owner)
            )
            if notification_id is not None:
                query = query.where(col(Notification.id) == notification_id)
            s.execute(query.values(read_at=utcnow()))
            s.commit()

    def last_loaded_at(self, ingestion_id: int) -> datetime | None:
        with self.session() as s:
            return s.execute(
                select(func.max(LedgerFile.loaded_at)).where(
                    col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.status) == FileStatus.LOADED.value
                )
            ).scalar()

    def running_runs(self) -> list[Run]:
        with self.session() as s:
            query = select(Run).where(col(Run.status) == RunStatus.RUNNING.value)
            return list(s.execute(query).scalars().all())

    def run_number(self, run_id: int) -> int | None:
        """The run's number within its ingestion, for alert texts (None: gone, or written without one)."""
        with self.session() as s:
            return s.execute(select(col(Run.number)).where(col(Run.id) == run_id)).scalar()

"""Run rows: queued (manual, scheduled slot, retry), started, heartbeat, progress, finished."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.db.models import Ingestion as IngestionRow
from app.db.models import Run, utcnow
from app.db.repository.base import UNFINISHED, Rows
from core.domain import (
    IngestionStatus,
    RunError,
    RunMetrics,
    RunStatus,
)
from core.errors import NotFound


def add_numbered(s: Session, run: Run) -> None:
    """Add `run` numbered within its ingestion: the largest number there + 1, computed inside the INSERT itself.

    PostgreSQL: the ingestion's row is locked first (FOR UPDATE), so concurrent inserts for one ingestion take turns
    and never read the same largest number. SQLite: a writing statement takes the database's write lock before it
    reads, so the INSERT with its subquery is atomic (FOR UPDATE is not rendered there). The unique index on
    (ingestion_id, number) is the backstop either way.
    """
    s.execute(select(col(IngestionRow.id)).where(col(IngestionRow.id) == run.ingestion_id).with_for_update())
    largest = select(func.coalesce(func.max(col(Run.number)), 0)).where(col(Run.ingestion_id) == run.ingestion_id)
    run.number = largest.scalar_subquery() + 1  # type: ignore[assignment]
    s.add(run)


class RunRows(Rows):
    def create_run(self, ingestion_id: int, trigger: str) -> int:
        with self.session() as s:
            run = Run(ingestion_id=ingestion_id, trigger=trigger, status=RunStatus.QUEUED.value)
            add_numbered(s, run)
            s.commit()
            assert run.id is not None
            return run.id

    def create_scheduled_run(self, ingestion_id: int, slot: datetime, trigger: str = "scheduled") -> int | None:
        """Claim a scheduled fire: the (ingestion, slot) pair is unique, so across replicas one insert wins. A slot
        already checked and found empty (its run folded into the ingestion's count) is not claimed again, nor one of
        an ingestion paused (or deleted) since this replica last read the schedules: another replica's scheduler
        keeps the job until its next refresh, and fired it for an ingestion paused seconds before."""
        with self.session() as s:
            found = s.execute(
                select(col(IngestionRow.last_empty_check_at), col(IngestionRow.status)).where(
                    col(IngestionRow.id) == ingestion_id
                )
            ).first()
            if found is None or not IngestionStatus(found.status).loads:
                return None
            checked = found.last_empty_check_at
            if checked is not None and slot <= checked:
                return None
            run = Run(ingestion_id=ingestion_id, trigger=trigger, status=RunStatus.QUEUED.value, scheduled_for=slot)
            add_numbered(s, run)
            try:
                s.commit()
            except IntegrityError:
                return None
            return run.id

    def create_retry_run(self, failed_run_id: int, not_before: datetime) -> int | None:
        """Queue the retry of a failed run once (unique on `retry_of`)."""
        with self.session() as s:
            failed = s.get(Run, failed_run_id)
            if failed is None:
                return None
            run = Run(
                ingestion_id=failed.ingestion_id,
                trigger="retry",
                status=RunStatus.QUEUED.value,
                attempt=failed.attempt + 1,
                retry_of=failed_run_id,
                not_before=not_before,
            )
            add_numbered(s, run)
            try:
                s.commit()
            except IntegrityError:
                return None
            return run.id

    def take_queued_retry(self, run_id: int) -> bool:
        """Atomically take a due retry (one replica wins): clears its `not_before`."""
        with self.session() as s:
            result = s.execute(
                update(Run)
                .where(
                    col(Run.id) == run_id, col(Run.status) == RunStatus.QUEUED.value, col(Run.not_before).is_not(None)
                )
                .values(not_before=None)
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def last_run_message(self, ingestion_id: int, before: int) -> str | None:
        """The message of the ingestion's latest stored run older than run `before` (None: there is none)."""
        with self.session() as s:
            query = (
                select(col(Run.message))
                .where(col(Run.ingestion_id) == ingestion_id, col(Run.id) < before)
                .order_by(col(Run.id).desc())
                .limit(1)
            )
            return s.execute(query).scalar()

    def get_run_by_id(self, run_id: int) -> Run | None:
        with self.session() as s:
            return s.get(Run, run_id)

    def has_queued_retry(self, ingestion_id: int) -> bool:
        """Whether a retry of one of the ingestion's runs is queued and not started yet."""
        with self.session() as s:
            query = select(Run.id).where(  # type: ignore[call-overload]
                col(Run.ingestion_id) == ingestion_id,
                col(Run.status) == RunStatus.QUEUED.value,
                col(Run.not_before).is_not(None),
            )
            return s.execute(query.limit(1)).first() is not None

    def pending_retries(self) -> list[Run]:
        with self.session() as s:
            query = select(Run).where(col(Run.status) == RunStatus.QUEUED.value, col(Run.not_before).is_not(None))
            return list(s.execute(query).scalars().all())

    def mark_run_started(self, run_id: int, owner: str) -> None:
        now = utcnow()
        self._update_run(run_id, status=RunStatus.RUNNING.value, started_at=now, heartbeat_at=now, owner=owner)

    def set_engine_job_id(self, run_id: int, job_id: str) -> None:
        self._update_run(run_id, engine_job_id=job_id)

    def heartbeat(self, run_id: int) -> None:
        self._update_run(run_id, heartbeat_at=utcnow())

    def update_run_progress(self, run_id: int, files_done: int, files_total: int, metrics: RunMetrics) -> None:
        """Progress of a run still going; one another server has ended keeps the end it was given."""
        with self.session() as s:
            s.execute(
                update(Run)
                .where(col(Run.id) == run_id, col(Run.status).in_(UNFINISHED))
                .values(
                    files_done=files_done, files_total=files_total, metrics=metrics.as_dict(), heartbeat_at=utcnow()
                )
            )
            s.commit()

    def finish_run(
        self, run_id: int, status: RunStatus, metrics: RunMetrics, errors: list[RunError], message: str
    ) -> None:
        with self.session() as s:
            run = s.get(Run, run_id, with_for_update=True)
            if run is None or run.status not in UNFINISHED:  # ended already: by another server that took it over
                return
            run.status, run.finished_at, run.message = status.value, utcnow(), message
            run.metrics = metrics.as_dict()
            run.errors = [
                {"file": e.file, "kind": e.kind, "message": e.message, "action": e.action, "detail": e.detail}
                for e in errors
            ]
            if status != RunStatus.SKIPPED:
                run.files_done = max(run.files_done, metrics.files_processed + metrics.files_quarantined)
            s.add(run)
            s.commit()

    def settle_interrupted_run(self, run_id: int, error: RunError, message: str) -> bool:
        """End a run still marked `running` as failed (its process died or lost the metadata DB); a run that
        ended meanwhile keeps its own end. Returns whether this call settled it."""
        with self.session() as s:
            result = s.execute(
                update(Run)
                .where(col(Run.id) == run_id, col(Run.status) == RunStatus.RUNNING.value)
                .values(
                    status=RunStatus.FAILED.value,
                    finished_at=utcnow(),
                    message=message,
                    errors=[
                        {
                            "file": None,
                            "kind": error.kind,
                            "message": error.message,
                            "action": error.action,
                            "detail": error.detail,
                        }
                    ],
                )
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def running_runs(self) -> list[Run]:
        with self.session() as s:
            return list(s.execute(select(Run).where(col(Run.status) == RunStatus.RUNNING.value)).scalars().all())

    def _update_run(self, run_id: int, **values: Any) -> None:
        with self.session() as s:
            s.execute(update(Run).where(col(Run.id) == run_id).values(**values))
            s.commit()

    def get_run(self, ingestion_id: int, run_id: int) -> Run:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None or run.ingestion_id != ingestion_id:
                raise NotFound(f"Run {run_id} of ingestion {ingestion_id} does not exist.", "List the runs first.")
            return run

    def orphaned_runs(self) -> list[Run]:
        """Runs still marked queued or running (checked at start-up)."""
        with self.session() as s:
            running = col(Run.status) == RunStatus.RUNNING.value
            queued_now = and_(col(Run.status) == RunStatus.QUEUED.value, col(Run.not_before).is_(None))
            query = select(Run).where(or_(running, queued_now))
            return list(s.execute(query).scalars().all())

    def fold_empty_check(self, run_id: int, counted: bool = True) -> bool:
        """Replace a continuous check's run row by the ingestion's count of empty checks: the row is deleted and,
        when `counted`, the check is added to `empty_checks` (restarted at 1 when a run was stored since the count
        began, so the count always means "since the last stored run"). The slot is remembered either way, so that a
        replica claiming it late does not check it again. Returns whether the run was folded."""
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                return False
            checked_at = run.scheduled_for or run.created_at
            ingestion = s.execute(
                select(IngestionRow).where(col(IngestionRow.id) == run.ingestion_id).with_for_update()
            ).scalar_one()
            values: dict[str, Any] = {"last_empty_check_at": checked_at, "last_empty_check_lag_seconds": _lag(run)}
            if counted:
                when = func.coalesce(col(Run.scheduled_for), col(Run.created_at))  # a fire's slot, as `checked_at`
                latest_stored = s.execute(
                    select(func.max(when)).where(col(Run.ingestion_id) == run.ingestion_id, col(Run.id) != run_id)
                ).scalar()
                since = ingestion.empty_checks_since
                if since is None or (latest_stored is not None and latest_stored >= since):
                    values |= {"empty_checks": 1, "empty_checks_since": checked_at}
                else:
                    values["empty_checks"] = col(IngestionRow.empty_checks) + 1
            s.delete(run)
            s.execute(update(IngestionRow).where(col(IngestionRow.id) == run.ingestion_id).values(**values))
            s.commit()
            return True


def _lag(run: Run) -> float | None:
    """How late a scheduled run started after its slot (None for a run that had no slot or has not started)."""
    if run.scheduled_for is None or run.started_at is None:
        return None
    return max(0.0, (run.started_at - run.scheduled_for).total_seconds())

"""The read query behind GET /metrics: every tenant's run totals, ingestions by status, pending schema reviews and
the last scheduled run's lag, from the metadata DB (so the numbers survive restarts and agree between replicas).

Summing the JSON metrics of every run ever made grows with the run table (about 2 s for 200,000 runs here), so
the runs are summed incrementally: a run that ended long enough ago (`SETTLED_AFTER`) never changes again, and its
totals are folded once into a running sum kept by this replica; each scrape then reads only the runs after the
first unsettled one. Runs of a deleted ingestion stay in that sum until the replica restarts (a counter that drops
on restart is a reset to Prometheus).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, or_, select
from sqlmodel import Session, col

from app.db.models import Ingestion as IngestionRow
from app.db.models import Run, SchemaVersion
from core.domain import RunTrigger
from core.views import ACTIVE_RUN_STATES, RUN_DURATION_BUCKETS, InstanceMetrics, StatusTotals, add_totals

SETTLED_AFTER = timedelta(minutes=10)
"""A run that ended this long ago is final. A run's end can be rewritten only within the stale-run window (its own
late end after another replica settled it as interrupted: the DB retry budget is shorter than that window)."""


class InstanceMetricsQuery:
    def __init__(self, session: Callable[[], Session]):
        self.session = session
        self._lock = threading.Lock()
        self._folded_upto = 0
        """Every run with an id up to this one is settled and summed in `_folded`."""
        self._folded: dict[str, StatusTotals] = {}

    def read(self, now: datetime | None = None) -> InstanceMetrics:
        now = now or datetime.now(UTC)
        with self._lock, self.session() as s:
            live = self._run_totals(s, now)
            ingestions = s.execute(
                select(col(IngestionRow.status), func.count()).group_by(col(IngestionRow.status))
            ).all()
            pending = s.execute(
                select(func.count()).select_from(SchemaVersion).where(col(SchemaVersion.status) == "pending")
            ).scalar()
            lag = _last_scheduled_lag(s)
        return InstanceMetrics(
            by_status=add_totals(self._folded, live),
            ingestions={status: int(count) for status, count in ingestions},
            pending_schema_reviews=int(pending or 0),
            scheduler_lag_seconds=lag,
        )

    def _run_totals(self, s: Session, now: datetime) -> dict[str, StatusTotals]:
        """Fold the runs that settled since the last scrape; return the totals of the runs after them."""
        upto = self._folded_upto
        settled_upto = _settled_upto(s, upto, now)
        rows = s.execute(_run_totals_by_status(upto, settled_upto)).all()
        settled = {row[1]: _status_totals(row[2:]) for row in rows if row[0]}
        self._folded, self._folded_upto = add_totals(self._folded, settled), settled_upto
        return {row[1]: _status_totals(row[2:]) for row in rows if not row[0]}


def _settled_upto(s: Session, upto: int, now: datetime) -> int:
    """The highest run id below which (after `upto`) every run has ended at least SETTLED_AFTER ago."""
    unsettled = or_(
        col(Run.status).in_(ACTIVE_RUN_STATES),
        col(Run.finished_at).is_(None),
        col(Run.finished_at) >= now - SETTLED_AFTER,
    )
    first_unsettled, last = s.execute(
        select(func.min(col(Run.id)).filter(unsettled), func.max(col(Run.id))).where(col(Run.id) > upto)
    ).one()
    if first_unsettled is not None:
        return int(first_unsettled) - 1
    return upto if last is None else int(last)


def _total(name: str) -> Any:
    """A run's metric as a 64-bit integer (bytes exceed a 32-bit INTEGER on PostgreSQL)."""
    return func.coalesce(cast(col(Run.metrics)[name].as_float(), BigInteger), 0)


def _run_totals_by_status(after: int, settled_upto: int) -> Any:
    """One row per (settled?, status) over the runs after `after`: runs, files, records, bytes read and written, then
    the started runs, their seconds and how many took at most each of RUN_DURATION_BUCKETS. The metrics are read
    out of the JSON once per run (inner select), not once per aggregate."""
    per_run = (
        select(
            case((col(Run.id) <= settled_upto, 1), else_=0).label("settled"),
            col(Run.status).label("status"),
            col(Run.started_at).label("started_at"),
            _total("files_processed").label("files"),
            _total("records_ingested").label("records"),
            _total("bytes_read").label("bytes_read"),
            _total("bytes_written").label("bytes_written"),
            func.coalesce(col(Run.metrics)["duration_seconds"].as_float(), 0.0).label("seconds"),
        )
        .where(col(Run.id) > after)
        .subquery()
    )
    started = per_run.c.started_at.is_not(None)
    return select(
        per_run.c.settled,
        per_run.c.status,
        func.count(),
        func.coalesce(func.sum(per_run.c.files), 0),
        func.coalesce(func.sum(per_run.c.records), 0),
        func.coalesce(func.sum(per_run.c.bytes_read), 0),
        func.coalesce(func.sum(per_run.c.bytes_written), 0),
        func.count().filter(started),
        func.coalesce(func.sum(case((started, per_run.c.seconds), else_=0.0)), 0.0),
        *(func.count().filter(started, per_run.c.seconds <= bound) for bound in RUN_DURATION_BUCKETS),
    ).group_by(per_run.c.settled, per_run.c.status)


def _status_totals(values: Sequence[Any]) -> StatusTotals:
    runs, files, records, read, written, timed, seconds, *within = values
    return StatusTotals(
        runs=int(runs),
        files=int(files),
        records=int(records),
        bytes_read=int(read),
        bytes_written=int(written),
        timed=int(timed),
        seconds=float(seconds),
        within=[int(n) for n in within],
    )


def _last_scheduled_lag(s: Session) -> float | None:
    """How late the last scheduled start was after its slot: the last stored scheduled run (found backwards along the
    primary key) or, when newer, the last empty continuous check (folded away, its lag kept on its ingestion).
    Catch-up runs are late on purpose (they stand for missed fires) and do not count."""
    run = s.execute(
        select(col(Run.scheduled_for), col(Run.started_at))
        .where(
            col(Run.trigger) == RunTrigger.SCHEDULED.value,
            col(Run.scheduled_for).is_not(None),
            col(Run.started_at).is_not(None),
        )
        .order_by(col(Run.id).desc())
        .limit(1)
    ).first()
    check = s.execute(
        select(col(IngestionRow.last_empty_check_at), col(IngestionRow.last_empty_check_lag_seconds))
        .where(col(IngestionRow.last_empty_check_lag_seconds).is_not(None))
        .order_by(col(IngestionRow.last_empty_check_at).desc())
        .limit(1)
    ).first()
    samples = []
    if run is not None:
        samples.append((run.scheduled_for, max(0.0, (run.started_at - run.scheduled_for).total_seconds())))
    if check is not None and check.last_empty_check_at is not None:
        samples.append((check.last_empty_check_at, float(check.last_empty_check_lag_seconds)))
    return max(samples)[1] if samples else None

"""Read-side queries the console needs and the services lack: dashboard totals, cards, 7-day series.

Every function is a few aggregate SQL statements whatever the number of ingestions or runs (no query per
ingestion), so the dashboard stays fast with 1,000 ingestions and 1,000,000 runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, case, cast, func, select
from sqlmodel import col

from app.db.models import Ingestion as IngestionRow
from app.db.models import LedgerFile, Notification, Run, SchemaVersion
from core.config import IngestionSpec
from core.cost import EMBEDDED_THROUGHPUT_GB_PER_HOUR, CostEstimate, estimate_monthly_cost
from core.domain import IngestionStatus, RunStatus
from core.errors import NotFound
from core.schedule import next_fire_times

if TYPE_CHECKING:
    from app.services import Services

ACTIVE_RUN_STATES = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
FINISHED_OK = (RunStatus.SUCCESS.value, RunStatus.PARTIAL.value)
MEASURABLE_BYTES_PER_RUN = 100 * 10**6
"""Below this, a run's duration is its fixed overhead and says nothing about the engine's throughput."""
_SPEC_PARTS = ("source", "format", "destination", "schedule", "quality", "limits")


@dataclass(slots=True)
class LastRun:
    id: int
    status: str
    created_at: datetime
    finished_at: datetime | None
    files_done: int
    files_total: int
    records: int
    message: str

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_RUN_STATES


@dataclass(slots=True)
class IngestionOverview:
    """What a dashboard card shows about one ingestion."""

    id: int
    name: str
    status: str
    spec: IngestionSpec
    created_at: datetime
    last_run: LastRun | None
    next_run: datetime | None

    @property
    def health(self) -> str:
        return health_of(self.status, self.last_run.status if self.last_run else None)


@dataclass(slots=True)
class DashboardStats:
    active_ingestions: int
    added_this_week: int
    files_24h: int
    bytes_24h: int
    files_previous_24h: int
    finished_runs_24h: int
    successful_runs_24h: int
    running_runs: int

    @property
    def success_rate(self) -> float | None:
        return 100 * self.successful_runs_24h / self.finished_runs_24h if self.finished_runs_24h else None


@dataclass(slots=True)
class DayTotals:
    day: date
    files: int = 0
    records: int = 0
    bytes: int = 0
    runs: int = 0
    failed: int = 0


@dataclass(slots=True)
class WeekSummary:
    days: list[DayTotals] = field(default_factory=list)
    average_duration_seconds: float | None = None
    files_per_run: float = 0.0
    bytes_per_run: float = 0.0
    throughput_gb_per_hour: float | None = None

    @property
    def files(self) -> int:
        return sum(d.files for d in self.days)

    @property
    def records(self) -> int:
        return sum(d.records for d in self.days)

    @property
    def failed(self) -> int:
        return sum(d.failed for d in self.days)

    @property
    def runs(self) -> int:
        return sum(d.runs for d in self.days)


def health_of(status: str, last_run_status: str | None) -> str:
    """healthy / warning / error for active ingestions (from the last run); the status itself otherwise."""
    if status == IngestionStatus.ACTIVE.value:
        if last_run_status == RunStatus.FAILED.value:
            return "error"
        if last_run_status in (RunStatus.PARTIAL.value, RunStatus.CANCELLED.value):
            return "warning"
        return "healthy"
    return {"needs_review": "needs review"}.get(status, status)


def _metric(name: str) -> Any:
    return func.coalesce(cast(col(Run.metrics)[name].as_float(), Integer), 0)


def _spec_of(row: IngestionRow) -> IngestionSpec:
    """The spec for display: stored credentials stay encrypted (the console never shows them)."""
    return IngestionSpec.model_validate(
        {"name": row.name, "cluster_id": row.cluster_id, **{part: getattr(row, part) for part in _SPEC_PARTS}}
    )


def next_run_of(spec: IngestionSpec, status: str, now: datetime | None = None) -> datetime | None:
    if status != IngestionStatus.ACTIVE.value:
        return None
    upcoming = next_fire_times(spec.schedule, 1, after=now)
    return upcoming[0] if upcoming else None


@dataclass(slots=True)
class _Parsed:
    """An ingestion row's validated spec and its next fire time, valid while the row's updated_at is unchanged.

    Validating a spec and computing its next fire both build a cron trigger (~0.2 ms each): with 1,000 ingestions
    that was most of a dashboard load. A spec or status change bumps updated_at; a next fire still in the future
    is still the next fire.
    """

    updated_at: datetime
    spec: IngestionSpec
    next_run: datetime | None = None


_PARSED: dict[tuple[str, int], _Parsed] = {}


def _parsed_specs(services: Services, session: Any, rows: Sequence[Any]) -> dict[int, _Parsed]:
    """Specs of the light `rows` (id, updated_at), loading and validating only the new or changed ones."""
    database = services.settings.resolved_database_url
    found: dict[int, _Parsed] = {}
    for row in rows:
        cached = _PARSED.get((database, row.id))
        if cached is not None and cached.updated_at == row.updated_at:
            found[row.id] = cached
    missing = [row.id for row in rows if row.id not in found]
    for start in range(0, len(missing), 500):
        query = select(IngestionRow).where(col(IngestionRow.id).in_(missing[start : start + 500]))
        for full in session.execute(query).scalars():
            parsed = _Parsed(full.updated_at, _spec_of(full))
            _PARSED[(database, full.id or 0)] = found[full.id or 0] = parsed
    return found


def _cached_next_run(parsed: _Parsed, status: str, now: datetime | None) -> datetime | None:
    if status != IngestionStatus.ACTIVE.value or now is not None:
        return next_run_of(parsed.spec, status, now)
    moment = datetime.now(UTC)
    if parsed.next_run is None or parsed.next_run <= moment:
        parsed.next_run = next_run_of(parsed.spec, status, moment)
    return parsed.next_run


def ingestion_overviews(
    services: Services, now: datetime | None = None, only: list[int] | None = None
) -> list[IngestionOverview]:
    """Every ingestion (or those in `only`) with its last run: light queries, the last run found by index, specs
    parsed once per change."""
    latest = (
        select(col(Run.id))
        .where(col(Run.ingestion_id) == col(IngestionRow.id))
        .order_by(col(Run.created_at).desc(), col(Run.id).desc())
        .limit(1)
        .correlate(IngestionRow)
        .scalar_subquery()
    )
    columns = (IngestionRow.id, IngestionRow.name, IngestionRow.status, IngestionRow.created_at)
    with services.store.session() as s:
        query = select(*(col(c) for c in columns), col(IngestionRow.updated_at), latest.label("last_run_id"))
        if only is not None:
            query = query.where(col(IngestionRow.id).in_(only))
        rows = s.execute(query.order_by(col(IngestionRow.id))).all()
        parsed = _parsed_specs(services, s, rows)
        runs = _last_runs(s, [r.last_run_id for r in rows if r.last_run_id is not None])
    return [
        IngestionOverview(
            id=row.id,
            name=row.name,
            status=row.status,
            spec=parsed[row.id].spec,
            created_at=row.created_at,
            last_run=runs.get(row.last_run_id) if row.last_run_id is not None else None,
            next_run=_cached_next_run(parsed[row.id], row.status, now),
        )
        for row in rows
        if row.id in parsed
    ]


def ingestion_overview(services: Services, ingestion_id: int) -> IngestionOverview:
    for overview in ingestion_overviews_by_id(services, [ingestion_id]):
        return overview
    raise NotFound(f"Ingestion {ingestion_id} does not exist.", "Go back to the dashboard and pick another one.")


def ingestion_overviews_by_id(services: Services, ids: list[int]) -> list[IngestionOverview]:
    return ingestion_overviews(services, only=ids) if ids else []


def _last_runs(session: Any, run_ids: list[int]) -> dict[int, LastRun]:
    if not run_ids:
        return {}
    query = select(
        col(Run.id),
        col(Run.status),
        col(Run.created_at),
        col(Run.finished_at),
        col(Run.files_done),
        col(Run.files_total),
        _metric("records_ingested"),
        col(Run.message),
    ).where(col(Run.id).in_(run_ids))
    return {row[0]: LastRun(*row) for row in session.execute(query)}


def dashboard_stats(services: Services, now: datetime | None = None) -> DashboardStats:
    now = now or datetime.now(UTC)
    day_ago, two_days_ago, week_ago = now - timedelta(days=1), now - timedelta(days=2), now - timedelta(days=7)
    all_ingestions = select(col(IngestionRow.id)).scalar_subquery()
    recent = (col(Run.ingestion_id).in_(all_ingestions), col(Run.created_at) >= two_days_ago)
    last_day = col(Run.created_at) >= day_ago
    with services.store.session() as s:
        active, added = s.execute(
            select(
                func.count().filter(col(IngestionRow.status) == IngestionStatus.ACTIVE.value),
                func.count().filter(col(IngestionRow.created_at) >= week_ago),
            )
        ).one()
        files, data, previous, finished, ok, running = s.execute(
            select(
                func.coalesce(func.sum(case((last_day, _metric("files_processed")), else_=0)), 0),
                func.coalesce(func.sum(case((last_day, _metric("bytes_read")), else_=0)), 0),
                func.coalesce(func.sum(case((last_day, 0), else_=_metric("files_processed"))), 0),
                func.count().filter(last_day, col(Run.status).not_in(ACTIVE_RUN_STATES)),
                func.count().filter(last_day, col(Run.status).in_(FINISHED_OK)),
                func.count().filter(col(Run.status).in_(ACTIVE_RUN_STATES)),
            ).where(*recent)
        ).one()
    return DashboardStats(int(active), int(added), int(files), int(data), int(previous), finished, ok, running)


def week_summaries(services: Services, ids: list[int], days: int = 7) -> dict[int, WeekSummary]:
    """Per ingestion: daily totals of the last `days` days (one GROUP BY) plus averages per run."""
    if not ids:
        return {}
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), UTC)
    day = func.date(col(Run.created_at))
    ok = col(Run.status).in_(FINISHED_OK)
    query = (
        select(
            col(Run.ingestion_id),
            day,
            func.sum(_metric("files_processed")),
            func.sum(_metric("records_ingested")),
            func.sum(_metric("bytes_read")),
            func.count(),
            func.count().filter(col(Run.status) == RunStatus.FAILED.value),
            func.coalesce(func.sum(case((ok, col(Run.metrics)["duration_seconds"].as_float()), else_=0.0)), 0.0),
            func.count().filter(ok),
        )
        .where(col(Run.ingestion_id).in_(ids), col(Run.created_at) >= since)
        .group_by(col(Run.ingestion_id), day)
    )
    summaries = {i: WeekSummary([DayTotals(first + timedelta(days=n)) for n in range(days)]) for i in ids}
    durations: dict[int, tuple[float, int]] = {}
    with services.store.session() as s:
        for ingestion_id, day_value, files, records, data, runs, failed, seconds, ok_runs in s.execute(query):
            point_day = day_value if isinstance(day_value, date) else date.fromisoformat(str(day_value))
            index = (point_day - first).days
            if 0 <= index < days:
                summaries[ingestion_id].days[index] = DayTotals(point_day, files, records, data, runs, failed)
            total_seconds, total_ok = durations.get(ingestion_id, (0.0, 0))
            durations[ingestion_id] = (total_seconds + float(seconds or 0), total_ok + int(ok_runs))
    for ingestion_id, summary in summaries.items():
        seconds, ok_runs = durations.get(ingestion_id, (0.0, 0))
        if summary.runs:
            summary.files_per_run = summary.files / summary.runs
            summary.bytes_per_run = sum(d.bytes for d in summary.days) / summary.runs
        if ok_runs:
            summary.average_duration_seconds = seconds / ok_runs
            if seconds > 0:
                summary.throughput_gb_per_hour = sum(d.bytes for d in summary.days) / 1e9 / (seconds / 3600)
    return summaries


def monthly_cost(spec: IngestionSpec, week: WeekSummary | None, files_in_source: int = 0) -> CostEstimate:
    """The §9 estimate from what the last 7 days' runs loaded (nothing yet: an empty run's overhead)."""
    measured = week.throughput_gb_per_hour if week and week.bytes_per_run >= MEASURABLE_BYTES_PER_RUN else None
    throughput = measured or EMBEDDED_THROUGHPUT_GB_PER_HOUR
    return estimate_monthly_cost(
        spec.schedule,
        spec.source.type,
        files_per_run=week.files_per_run if week else 0.0,
        gb_per_run=(week.bytes_per_run if week else 0.0) / 1e9,
        files_in_source=files_in_source,
        throughput_gb_per_hour=max(throughput, 0.001),
    )


def active_run_ids(services: Services, ids: list[int]) -> set[int]:
    """Ingestions (of `ids`) with a queued or running run."""
    if not ids:
        return set()
    with services.store.session() as s:
        query = select(col(IngestionRow.id)).where(
            col(IngestionRow.id).in_(ids), col(IngestionRow.active_run_id).is_not(None)
        )
        return set(s.execute(query).scalars())


# --- schema changes waiting for review and open alerts ------------------------------------------------------------
@dataclass(slots=True)
class PendingSchema:
    """A pending schema version as the dashboard card and the detail banner summarise it."""

    ingestion_id: int
    version: int
    created_at: datetime
    reason: str
    changes: list[dict[str, Any]]
    files: int
    records: int

    @property
    def review_link(self) -> str:
        return f"/ingestions/{self.ingestion_id}/schema-review"

    @property
    def summary(self) -> str:
        """E.g. "New column 'severity' found in 3 recent files."."""
        where = f"{self.files} recent file{'' if self.files == 1 else 's'}"
        added = [c["column"] for c in self.changes if c.get("kind") == "added"]
        if added and len(added) == len(self.changes):
            names = ", ".join(f"'{name}'" for name in added)
            return f"New column{'' if len(added) == 1 else 's'} {names} found in {where}."
        if self.changes:
            first = str(self.changes[0].get("description", "")).strip()
            more = f" and {len(self.changes) - 1} more change(s)" if len(self.changes) > 1 else ""
            return f"{first[:1].upper()}{first[1:]}{more} in {where}."
        return self.reason or f"A schema change was found in {where}."


def _pending_of(row: SchemaVersion) -> PendingSchema:
    return PendingSchema(
        ingestion_id=row.ingestion_id,
        version=row.version,
        created_at=row.created_at,
        reason=row.reason,
        changes=list(row.changes or []),
        files=len(row.files or []),
        records=sum(int(f.get("records", 0) or 0) for f in row.files or []),
    )


def pending_schemas(services: Services, ids: list[int]) -> dict[int, PendingSchema]:
    """The pending schema version of each of `ids` that has one: one query whatever the number of ingestions."""
    if not ids:
        return {}
    query = select(SchemaVersion).where(
        col(SchemaVersion.ingestion_id).in_(ids), col(SchemaVersion.status) == "pending"
    )
    with services.store.session() as s:
        rows = s.execute(query.order_by(col(SchemaVersion.version))).scalars().all()
    return {row.ingestion_id: _pending_of(row) for row in rows}


def open_alerts(services: Services, ingestion_id: int, limit: int = 20) -> list[Notification]:
    """This ingestion's notifications whose condition has not cleared, newest first."""
    query = (
        select(Notification)
        .where(col(Notification.ingestion_id) == ingestion_id, col(Notification.cleared_at).is_(None))
        .order_by(col(Notification.id).desc())
        .limit(limit)
    )
    with services.store.session() as s:
        return list(s.execute(query).scalars().all())


# --- the dashboard in one call ------------------------------------------------------------------------------------
SORT_KEYS = ("name", "last_run", "next_run", "created")


@dataclass(slots=True)
class DashboardQuery:
    search: str = ""
    status: str | None = None
    mode: str | None = None
    source_type: str | None = None
    sort: str = "name"
    limit: int = 20


@dataclass(slots=True)
class DashboardData:
    stats: DashboardStats
    cards: list[IngestionOverview]
    weeks: dict[int, WeekSummary]
    matching: int
    total: int
    pending: dict[int, PendingSchema] = field(default_factory=dict)

    @property
    def runs_active(self) -> bool:
        return self.stats.running_runs > 0


def select_overviews(overviews: list[IngestionOverview], query: DashboardQuery) -> list[IngestionOverview]:
    """Search (name, path, table), filter (health or status, mode, source type) and sort."""
    needle = query.search.strip().lower()
    chosen = [
        o
        for o in overviews
        if (not needle or needle in f"{o.name} {o.spec.source.path} {o.spec.destination.full_name}".lower())
        and (not query.status or query.status in (o.health, o.status))
        and (not query.mode or o.spec.schedule.mode == query.mode)
        and (not query.source_type or o.spec.source.type == query.source_type)
    ]
    far_past, far_future = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    if query.sort == "last_run":
        chosen.sort(key=lambda o: o.last_run.created_at if o.last_run else far_past, reverse=True)
    elif query.sort == "next_run":
        chosen.sort(key=lambda o: o.next_run or far_future)
    elif query.sort == "created":
        chosen.sort(key=lambda o: o.created_at, reverse=True)
    else:
        chosen.sort(key=lambda o: o.name.lower())
    return chosen


def dashboard_data(services: Services, query: DashboardQuery) -> DashboardData:
    overviews = ingestion_overviews(services)
    chosen = select_overviews(overviews, query)
    cards = chosen[: query.limit]
    in_review = [c.id for c in cards if c.status == IngestionStatus.NEEDS_REVIEW.value]
    return DashboardData(
        stats=dashboard_stats(services),
        cards=cards,
        weeks=week_summaries(services, [c.id for c in cards]),
        matching=len(chosen),
        total=len(overviews),
        pending=pending_schemas(services, in_review),
    )


# --- the detail page -----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ActualCost:
    runs: int
    compute_hours: float
    gb_written: float
    compute: float
    storage: float

    @property
    def total(self) -> float:
        return self.compute + self.storage


@dataclass(slots=True)
class DetailData:
    overview: IngestionOverview
    week: WeekSummary
    runs: list[Run]
    estimate: CostEstimate
    actual: ActualCost
    versions: list[SchemaVersion] = field(default_factory=list)
    alerts: list[Notification] = field(default_factory=list)

    @property
    def pending(self) -> PendingSchema | None:
        row = next((v for v in self.versions if v.status == "pending"), None)
        return _pending_of(row) if row is not None else None

    @property
    def active_run(self) -> Run | None:
        return next((r for r in self.runs if r.status in ACTIVE_RUN_STATES), None)


def actual_cost_30_days(runs: list[Run]) -> ActualCost:
    """What the last 30 days of runs cost at the same prices as the estimate (compute and storage written)."""
    from core.cost import PRICE_PER_COMPUTE_HOUR, PRICE_PER_GB_MONTH

    hours = sum(float(r.metrics.get("duration_seconds", 0.0)) for r in runs) / 3600
    written = sum(int(r.metrics.get("bytes_written", 0)) for r in runs) / 1e9
    return ActualCost(len(runs), hours, written, hours * PRICE_PER_COMPUTE_HOUR, written * PRICE_PER_GB_MONTH)


def detail_data(services: Services, ingestion_id: int) -> DetailData:
    overview = ingestion_overview(services, ingestion_id)
    week = week_summaries(services, [ingestion_id])[ingestion_id]
    runs = services.store.list_runs(ingestion_id, days=30)
    return DetailData(
        overview,
        week,
        runs,
        monthly_cost(overview.spec, week),
        actual_cost_30_days(runs),
        versions=services.store.list_schema_versions(ingestion_id),
        alerts=open_alerts(services, ingestion_id),
    )


def run_files(services: Services, ingestion_id: int, run_id: int, limit: int = 500) -> list[LedgerFile]:
    with services.store.session() as s:
        query = (
            select(LedgerFile)
            .where(col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.run_id) == run_id)
            .order_by(col(LedgerFile.path))
            .limit(limit)
        )
        return list(s.execute(query).scalars().all())

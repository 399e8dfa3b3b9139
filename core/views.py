"""The read side's records and the pure rules over them (health, next run, success rate, cost, filters).

The console's pages and the REST API both show these records, built by one set of queries (`app/db/queries.py`)
behind one facade (`app/views.py`), so the two can never show different numbers for the same thing. Nothing here
touches a database: the records are plain data, the rules are functions of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from core.config import IngestionSpec
from core.cost import (
    EMBEDDED_THROUGHPUT_GB_PER_HOUR,
    PRICE_PER_COMPUTE_HOUR,
    PRICE_PER_GB_MONTH,
    CostEstimate,
    estimate_monthly_cost,
)
from core.domain import IngestionStatus, RunStatus
from core.schedule import next_fire_times
from core.schema import SYSTEM_COLUMNS
from core.wording import counted

ACTIVE_RUN_STATES = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
FINISHED_OK = (RunStatus.SUCCESS.value, RunStatus.PARTIAL.value)
SUCCEEDED = (RunStatus.SUCCESS.value,)
"""What the success rate counts as a success: a partial run (some files failed or were quarantined) is not one,
though it loaded (FINISHED_OK, which the loading runs' durations use)."""
MEASURABLE_BYTES_PER_RUN = 100 * 10**6
"""Below this, a run's duration is its fixed overhead and says nothing about the engine's throughput."""


# --- rows as the read side hands them out -------------------------------------------------------------------------
@dataclass(slots=True)
class RunRecord:
    id: int
    ingestion_id: int
    trigger: str
    status: str
    created_at: datetime
    number: int | None = None
    """The run's number within its ingestion; the id stays the run's identifier in links and the API."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    files_total: int = 0
    files_done: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    engine_job_id: str | None = None
    scheduled_for: datetime | None = None
    attempt: int = 1
    retry_of: int | None = None
    not_before: datetime | None = None

    @property
    def label(self) -> str:
        """The run as people name it: "Run #3", the ingestion's third run ("Run 1234", its id, for a run written
        without a number by older code)."""
        return f"Run #{self.number}" if self.number is not None else f"Run {self.id}"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_RUN_STATES

    @property
    def records(self) -> int:
        return int(self.metrics.get("records_ingested", 0) or 0)


@dataclass(slots=True)
class FileRecord:
    """One file-ledger row."""

    path: str
    size: int
    status: str
    modified_at: datetime
    discovered_at: datetime
    etag: str | None = None
    records: int = 0
    bad_records: int = 0
    error: str | None = None
    run_id: int | None = None
    run_number: int | None = None
    """The loading run's number within the ingestion (`RunRecord.number`)."""
    batch_seq: int | None = None
    loaded_at: datetime | None = None
    previous_size: int | None = None
    """For a `changed` file: the size of the version in the table (size/etag are the file as it is now)."""
    previous_etag: str | None = None


@dataclass(slots=True)
class FilePage:
    total: int
    items: list[FileRecord]


@dataclass(slots=True)
class SchemaVersionRecord:
    version: int
    status: str
    columns: list[dict[str, Any]]
    created_at: datetime
    reason: str = ""
    resolution: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    resolved_at: datetime | None = None
    resolved_by: str | None = None


@dataclass(slots=True)
class NotificationRecord:
    id: int
    kind: str
    severity: str
    title: str
    message: str
    action: str
    created_at: datetime
    ingestion_id: int | None = None
    link: str = ""
    read_at: datetime | None = None
    cleared_at: datetime | None = None
    deliveries: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class NotificationFeed:
    unread: int
    items: list[NotificationRecord]


@dataclass(slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str | None
    details: dict[str, Any]


# --- ingestions -----------------------------------------------------------------------------------------------------
def health_of(status: str, last_run_status: str | None) -> str:
    """healthy / warning / error for active ingestions (from the last run), "not run yet" before their first run
    (nothing has shown it healthy); the status itself otherwise."""
    if status == IngestionStatus.ACTIVE.value:
        if last_run_status is None:
            return "not run yet"
        if last_run_status == RunStatus.FAILED.value:
            return "error"
        if last_run_status in (RunStatus.PARTIAL.value, RunStatus.CANCELLED.value):
            return "warning"
        return "healthy"
    return {"needs_review": "needs review"}.get(status, status)


def next_run_of(
    spec: IngestionSpec,
    status: str,
    scheduled: datetime | None = None,
    now: datetime | None = None,
    ingestion_id: int | None = None,
) -> datetime | None:
    """When an ingestion fires next. The scheduler records its next fire on the ingestion (`scheduled`); while that
    is still ahead it is the answer, in every replica and in the CLI alike. Otherwise (no scheduler has armed it
    yet, or the record is stale) it is computed from the schedule, with the ingestion's own phase."""
    if status != IngestionStatus.ACTIVE.value:
        return None
    moment = now or datetime.now(UTC)
    if scheduled is not None and scheduled > moment:
        return scheduled
    upcoming = next_fire_times(spec.schedule, 1, after=moment, ingestion_id=ingestion_id)
    return upcoming[0] if upcoming else None


@dataclass(slots=True)
class EmptyChecks:
    """A continuous ingestion's checks that found no new file since its last stored run (they are not runs)."""

    count: int
    since: datetime
    last_checked_at: datetime

    @property
    def description(self) -> str:
        times = "once" if self.count == 1 else f"{self.count:,} times"
        return f"Checked {times} since {self.since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, no new files"


def empty_checks_of(
    count: int, since: datetime | None, last_checked_at: datetime | None, last_run: RunRecord | None
) -> EmptyChecks | None:
    """The count as the ingestion records it, unless a run was stored after it began (the count restarts at the
    next empty check). Times of fires are their slots, as the count's are."""
    if count <= 0 or since is None or last_checked_at is None:
        return None
    if last_run is not None and (last_run.scheduled_for or last_run.created_at) >= since:
        return None
    return EmptyChecks(count, since, last_checked_at)


@dataclass(slots=True)
class IngestionSummary:
    """One ingestion as the dashboard card, the detail page and `GET /api/v1/ingestions` show it.

    `spec` carries stored credentials still encrypted: the read side never decrypts a secret.
    """

    id: int
    name: str
    status: str
    spec: IngestionSpec
    created_at: datetime
    last_run: RunRecord | None
    next_run: datetime | None
    tenant_id: int = 1
    created_by: int | None = None
    empty_checks: EmptyChecks | None = None
    revision: int = 0

    @property
    def health(self) -> str:
        return health_of(self.status, self.last_run.status if self.last_run else None)


# --- run totals -----------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class DayTotals:
    day: date
    files: int = 0
    records: int = 0
    bytes: int = 0
    runs: int = 0
    failed: int = 0


@dataclass(slots=True)
class RunTotals:
    """Daily totals over a window of days (7 on the dashboard and detail page; 1 to 90 through the API)."""

    days: list[DayTotals] = field(default_factory=list)
    ok_runs: int = 0
    ok_seconds: float = 0.0

    @property
    def files(self) -> int:
        return sum(d.files for d in self.days)

    @property
    def records(self) -> int:
        return sum(d.records for d in self.days)

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.days)

    @property
    def failed(self) -> int:
        return sum(d.failed for d in self.days)

    @property
    def runs(self) -> int:
        return sum(d.runs for d in self.days)

    @property
    def average_duration_seconds(self) -> float | None:
        """Mean duration of the runs that loaded (success or partial)."""
        return self.ok_seconds / self.ok_runs if self.ok_runs else None

    @property
    def files_per_run(self) -> float:
        return self.files / self.runs if self.runs else 0.0

    @property
    def bytes_per_run(self) -> float:
        return self.bytes / self.runs if self.runs else 0.0

    @property
    def throughput_gb_per_hour(self) -> float | None:
        return self.bytes / 1e9 / (self.ok_seconds / 3600) if self.ok_seconds > 0 else None


def monthly_cost(spec: IngestionSpec, totals: RunTotals | None, files_in_source: int = 0) -> CostEstimate:
    """The §9 estimate from what the recent runs loaded (nothing yet: an empty run's overhead)."""
    measured = totals.throughput_gb_per_hour if totals and totals.bytes_per_run >= MEASURABLE_BYTES_PER_RUN else None
    throughput = measured or EMBEDDED_THROUGHPUT_GB_PER_HOUR
    return estimate_monthly_cost(
        spec.schedule,
        spec.source.type,
        files_per_run=totals.files_per_run if totals else 0.0,
        gb_per_run=(totals.bytes_per_run if totals else 0.0) / 1e9,
        files_in_source=files_in_source,
        throughput_gb_per_hour=max(throughput, 0.001),
    )


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


def actual_cost(runs: list[RunRecord]) -> ActualCost:
    """What these runs cost at the same prices as the estimate (compute and storage written)."""
    hours = sum(float(r.metrics.get("duration_seconds", 0.0)) for r in runs) / 3600
    written = sum(int(r.metrics.get("bytes_written", 0)) for r in runs) / 1e9
    return ActualCost(len(runs), hours, written, hours * PRICE_PER_COMPUTE_HOUR, written * PRICE_PER_GB_MONTH)


# --- schema changes waiting for review ------------------------------------------------------------------------------
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
            more = f" and {counted(len(self.changes) - 1, 'more change')}" if len(self.changes) > 1 else ""
            return f"{first[:1].upper()}{first[1:]}{more} in {where}."
        return self.reason or f"A schema change was found in {where}."


def pending_of(ingestion_id: int, version: SchemaVersionRecord) -> PendingSchema:
    return PendingSchema(
        ingestion_id=ingestion_id,
        version=version.version,
        created_at=version.created_at,
        reason=version.reason,
        changes=list(version.changes),
        files=len(version.files),
        records=sum(int(f.get("records", 0) or 0) for f in version.files),
    )


def current_columns(versions: list[SchemaVersionRecord]) -> list[dict[str, Any]]:
    """The table's data columns as last recorded: the newest applied schema version (versions in ascending order).

    Read from the metadata, not the table, so that showing a review never has to reach (or start) an engine."""
    applied = [v for v in versions if v.status == "applied"]
    return [c for c in applied[-1].columns if c.get("name") not in SYSTEM_COLUMNS] if applied else []


# --- screens ---------------------------------------------------------------------------------------------------------
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


SORT_KEYS = ("name", "last_run", "next_run", "created")


@dataclass(slots=True)
class DashboardQuery:
    search: str = ""
    status: str | None = None
    mode: str | None = None
    source_type: str | None = None
    sort: str = "name"
    limit: int = 20


def select_summaries(summaries: list[IngestionSummary], query: DashboardQuery) -> list[IngestionSummary]:
    """Search (name, path, table), filter (health or status, mode, source type) and sort."""
    needle = query.search.strip().lower()
    chosen = [
        o
        for o in summaries
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


@dataclass(slots=True)
class DashboardData:
    stats: DashboardStats
    cards: list[IngestionSummary]
    weeks: dict[int, RunTotals]
    matching: int
    total: int
    pending: dict[int, PendingSchema] = field(default_factory=dict)

    @property
    def runs_active(self) -> bool:
        return self.stats.running_runs > 0


EMBEDDED_ENGINE = "Embedded engine"


@dataclass(frozen=True, slots=True)
class TablePlace:
    """Where an ingestion's table lives, in which format, and which engine writes it."""

    location: str | None
    """The table's folder or object-store URI; None when a cluster's catalog places it (a managed table)."""
    table_format: str
    engine: str
    """"Embedded engine", or "Cluster <name>"."""


def table_place(spec: IngestionSpec, embedded_uri: str, cluster: tuple[str, str] | None) -> TablePlace:
    """The place of the table of `spec`: the embedded engine's URI, or on its cluster (`cluster` is its (name,
    table format)) the folder the table was moved from, if any. A cluster that is gone is named by its id."""
    if spec.cluster_id is None:
        return TablePlace(embedded_uri, "delta", EMBEDDED_ENGINE)
    name, table_format = cluster if cluster is not None else (f"#{spec.cluster_id} (deleted)", "unknown")
    return TablePlace(spec.destination.location or None, table_format, f"Cluster {name}")


@dataclass(slots=True)
class DetailData:
    summary: IngestionSummary
    week: RunTotals
    runs: list[RunRecord]
    estimate: CostEstimate
    actual: ActualCost
    versions: list[SchemaVersionRecord] = field(default_factory=list)
    alerts: list[NotificationRecord] = field(default_factory=list)
    place: TablePlace | None = None

    @property
    def pending(self) -> PendingSchema | None:
        version = next((v for v in self.versions if v.status == "pending"), None)
        return pending_of(self.summary.id, version) if version is not None else None

    @property
    def active_run(self) -> RunRecord | None:
        return next((r for r in self.runs if r.active), None)


@dataclass(slots=True)
class SchemaReviewData:
    """The schema review screen: the pending version against the table's current columns."""

    summary: IngestionSummary
    pending: SchemaVersionRecord | None
    current: list[dict[str, Any]]


# --- instance metrics (GET /metrics) ---------------------------------------------------------------------------------
RUN_DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
"""Upper bounds (seconds) of the run-duration histogram: from a few small files (under a second) to a backfill of
hours; a longer run counts in +Inf only."""
EXECUTED = (RunStatus.SUCCESS.value, RunStatus.PARTIAL.value, RunStatus.FAILED.value)
"""Runs that went through the pipeline to an end: the ones the duration histogram times (a skipped or cancelled run
took no time worth timing)."""


@dataclass(slots=True)
class StatusTotals:
    """The totals of every run of the instance in one status."""

    runs: int = 0
    files: int = 0
    records: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    timed: int = 0
    """Runs that started (a run cancelled while queued never did)."""
    seconds: float = 0.0
    within: list[int] = field(default_factory=lambda: [0] * len(RUN_DURATION_BUCKETS))
    """Started runs at most as long as each of RUN_DURATION_BUCKETS (cumulative, as Prometheus buckets are)."""

    def plus(self, other: StatusTotals) -> StatusTotals:
        return StatusTotals(
            self.runs + other.runs,
            self.files + other.files,
            self.records + other.records,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
            self.timed + other.timed,
            self.seconds + other.seconds,
            [a + b for a, b in zip(self.within, other.within, strict=True)],
        )


def add_totals(into: dict[str, StatusTotals], more: dict[str, StatusTotals]) -> dict[str, StatusTotals]:
    """`into` with `more` added status by status (a new dict; neither argument changes)."""
    summed = dict(into)
    for status, totals in more.items():
        summed[status] = summed[status].plus(totals) if status in summed else totals
    return summed


@dataclass(slots=True)
class InstanceMetrics:
    """What GET /metrics shows: every tenant's runs, ingestions and pending reviews, read from the metadata DB (so
    the numbers survive restarts and are the same whichever replica answers)."""

    by_status: dict[str, StatusTotals]
    ingestions: dict[str, int]
    pending_schema_reviews: int
    scheduler_lag_seconds: float | None
    """How late the last scheduled run started after its slot (None before the first one)."""

    def finished(self) -> list[StatusTotals]:
        """Runs that ended: what the counters add up (a running run's numbers join when it ends)."""
        return [t for status, t in self.by_status.items() if status not in ACTIVE_RUN_STATES]

    def executed(self) -> list[StatusTotals]:
        return [t for status, t in self.by_status.items() if status in EXECUTED]

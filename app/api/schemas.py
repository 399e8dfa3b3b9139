"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, Field

from app.db.models import (
    LedgerFilePublic,
    MaintenanceRunPublic,
    NotificationPublic,
    RunPublic,
    SchemaVersionPublic,
)
from core.config import (
    IDENT_PATTERN,
    MAX_COLUMNS,
    MAX_ID,
    IngestionSpec,
    Name,
    OptionalInt,
    Text,
    finite_json,
    masked_webhook,
)
from core.maintenance import MaintenanceConfig, MaintenanceView
from core.schedule import describe
from core.views import IngestionSummary, RunTotals, TablePlace

IngestionId = Annotated[int, Path(ge=1, le=MAX_ID, description="An ingestion's id.")]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="A run's id.")]
Version = Annotated[int, Path(ge=1, le=MAX_ID, description="A schema version number.")]
NotificationId = Annotated[int, Path(ge=1, le=MAX_ID, description="A notification's id.")]
ClusterId = Annotated[int, Path(ge=1, le=MAX_ID, description="A cluster's id.")]
MaintenanceId = Annotated[int, Path(ge=1, le=MAX_ID, description="A table maintenance's id.")]
"""Path ids are bounded to what the database stores (64-bit): a larger number is a 422, not a driver's overflow."""
Filter = Annotated[str | None, Query(max_length=200)]
"""A query-string filter (status, source type, mode, search text, a table name)."""


class IngestionCreate(IngestionSpec):
    activate: bool = Field(default=False, description="Activate at once instead of saving a draft.")


class EmptyChecksPublic(BaseModel):
    """A continuous ingestion's checks that found no new file since its last run: counted, not stored as runs."""

    count: int
    since: datetime
    last_checked_at: datetime
    description: str = Field(description='E.g. "Checked 120 times since 2026-12-01 02:00:00 UTC, no new files".')


class IngestionPublic(BaseModel):
    id: int
    name: str
    status: str
    revision: int = Field(
        description="Saves of the settings so far. Send it back as `If-Match` on PUT or PATCH to have the change "
        "refused (409 edit_conflict) if someone saved in between, instead of undoing their change."
    )
    cluster_id: int | None
    source: dict[str, Any]
    format: dict[str, Any]
    destination: dict[str, Any]
    schedule: dict[str, Any]
    quality: dict[str, Any]
    limits: dict[str, Any]
    table_name: str
    table_uri: str = Field(description="The embedded engine's table URI; empty for a table on a cluster.")
    table_location: str | None = Field(
        description="Where the table's files live: the embedded engine's URI, or on a cluster the folder the table "
        "was moved from; null when the cluster's catalog places it (a managed table)."
    )
    table_format: str = Field(description="delta, or the cluster's table format (delta, iceberg, parquet).")
    engine: str = Field(description='Which engine writes the table: "Embedded engine" or "Cluster <name>".')
    schedule_description: str
    next_run_at: datetime | None = None
    last_run: RunPublic | None = None
    empty_checks: EmptyChecksPublic | None = None

    @classmethod
    def build(cls, summary: IngestionSummary, table_uri: str, place: TablePlace) -> IngestionPublic:
        spec = summary.spec
        data = spec.model_dump(mode="json", by_alias=True)
        data["source"]["credentials"] = spec.source.credentials.masked()
        data["quality"]["webhook_url"] = masked_webhook(spec.quality.webhook_url)
        last_run = RunPublic.model_validate(summary.last_run, from_attributes=True) if summary.last_run else None
        checks = summary.empty_checks
        empty_checks = (
            EmptyChecksPublic(
                count=checks.count,
                since=checks.since,
                last_checked_at=checks.last_checked_at,
                description=checks.description,
            )
            if checks
            else None
        )
        return cls(
            id=summary.id,
            name=summary.name,
            status=summary.status,
            revision=summary.revision,
            cluster_id=spec.cluster_id,
            source=data["source"],
            format=data["format"],
            destination=data["destination"],
            schedule=data["schedule"],
            quality=data["quality"],
            limits=data["limits"],
            table_name=spec.destination.full_name,
            table_uri=table_uri,
            table_location=place.location,
            table_format=place.table_format,
            engine=place.engine,
            schedule_description=describe(spec.schedule),
            next_run_at=summary.next_run,
            last_run=last_run,
            empty_checks=empty_checks,
        )


class DailyMetrics(BaseModel):
    day: str
    files: int
    records: int
    bytes: int
    runs: int
    failed: int


class Metrics(BaseModel):
    days: int
    files_processed: int
    records_ingested: int
    bytes_read: int
    runs: int
    failed_runs: int
    average_duration_seconds: float | None
    daily: list[DailyMetrics]

    @classmethod
    def build(cls, totals: RunTotals) -> Metrics:
        average = totals.average_duration_seconds
        return cls(
            days=len(totals.days),
            files_processed=totals.files,
            records_ingested=totals.records,
            bytes_read=totals.bytes,
            runs=totals.runs,
            failed_runs=totals.failed,
            average_duration_seconds=round(average, 3) if average is not None else None,
            daily=[
                DailyMetrics(
                    day=d.day.isoformat(), files=d.files, records=d.records, bytes=d.bytes, runs=d.runs, failed=d.failed
                )
                for d in totals.days
            ],
        )


class SchedulePreview(BaseModel):
    description: str
    next_fire_times: list[datetime]


class NotificationPage(BaseModel):
    unread: int
    items: list[NotificationPublic]


class ReprocessRequest(BaseModel):
    paths: list[Text] | None = Field(default=None, max_length=100_000, description="Ledger paths to load again.")
    modified_since: datetime | None = None
    modified_until: datetime | None = None


class ReprocessAccepted(BaseModel):
    files: int
    run_id: int
    url: str


class FullRefreshRequest(BaseModel):
    run_now: bool = Field(default=True, description="Start the run that does it now; else the next run does it.")


class EngineMoveRequest(BaseModel):
    cluster_id: OptionalInt = Field(
        ge=1,
        le=MAX_ID,
        description="The cluster that runs the ingestion's next loads; null for the embedded engine.",
    )


class FullRefreshAccepted(BaseModel):
    files_dropped: int = Field(description="Files whose rows the table holds now; the refresh replaces them.")
    rows_dropped: int = Field(description="Rows in the table now (for a cluster's table: records loaded).")
    message: str
    run_id: int | None = None
    url: str | None = None


class ResolveRequest(BaseModel):
    resolution: Literal["auto_merge", "backfill_default", "new_table", "ignore", "review_later"]
    default_values: Annotated[dict[Name, Any], AfterValidator(finite_json)] = Field(
        default_factory=dict, max_length=MAX_COLUMNS, description="backfill_default: {column: value}"
    )
    table: Annotated[str, Field(max_length=128, pattern=IDENT_PATTERN)] | None = Field(
        default=None, description="new_table: the new table's name (default <table>_v2)"
    )


class ResolutionPlanPublic(BaseModel):
    resolution: str
    trade_off: str
    statements: list[str]
    new_table: str | None = None
    ignored: list[str] = Field(default_factory=list)
    kept_types: dict[str, str] = Field(
        default_factory=dict,
        description="ignore: columns whose type changed, kept at the table's type (misfits go to _rescued_data)",
    )


class ResolveResult(BaseModel):
    plan: ResolutionPlanPublic
    run_id: int | None


class RunAccepted(BaseModel):
    run_id: int
    status: str = "queued"
    url: str


class MaintenancePublic(BaseModel):
    """An ingestion's table maintenance: its setting, when it is next due, and its latest maintenances."""

    settings: MaintenanceConfig
    description: str
    next_due_at: datetime | None = None
    running: bool
    last: MaintenanceRunPublic | None = None
    history: list[MaintenanceRunPublic] = Field(description="The latest maintenances, newest first.")

    @classmethod
    def build(cls, view: MaintenanceView) -> MaintenancePublic:
        history = [MaintenanceRunPublic.model_validate(r, from_attributes=True) for r in view.records]
        return cls(
            settings=view.config,
            description=view.config.describe(),
            next_due_at=view.next_due,
            running=view.running,
            last=history[0] if history else None,
            history=history,
        )


class MaintenanceAccepted(BaseModel):
    maintenance_id: int
    status: str = "running"
    url: str


class FilePage(BaseModel):
    total: int
    items: list[LedgerFilePublic]


class TestResult(BaseModel):
    ok: bool
    message: str
    files: int
    total_bytes: int
    files_truncated: bool
    listing_seconds: float
    schema_: list[dict[str, Any]] = Field(alias="schema")
    sample_rows: list[dict[str, Any]]
    sample_files: list[str]
    bad_files: dict[str, str]
    estimated_records: int = 0
    records_sampled: int = 0
    malformed_records: int = 0
    null_percent: dict[str, float] = Field(default_factory=dict)
    differing_columns: list[dict[str, Any]] = Field(default_factory=list)
    sample_rows_by_file: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    recommendations: list[str] = Field(default_factory=list)

    model_config = {"populate_by_name": True}


class AuditPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str | None
    details: dict[str, Any]


class HealthCheck(BaseModel):
    status: Literal["ok", "failed"]
    detail: str = Field(description="What was checked, or why it failed and what to do.")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded (HTTP 503) when any check failed.")
    checks: dict[str, HealthCheck] = Field(description="database, scheduler and warehouse.")
    database: str
    warehouse: str
    version: str


__all__ = [
    "AuditPublic",
    "FilePage",
    "Health",
    "IngestionCreate",
    "IngestionPublic",
    "RunAccepted",
    "RunPublic",
    "SchemaVersionPublic",
    "TestResult",
]

"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.db.models import LedgerFilePublic, NotificationPublic, RunPublic, SchemaVersionPublic
from core.config import IngestionSpec
from core.domain import Ingestion
from core.schedule import describe


class IngestionCreate(IngestionSpec):
    activate: bool = Field(default=False, description="Activate at once instead of saving a draft.")


class IngestionPublic(BaseModel):
    id: int
    name: str
    status: str
    cluster_id: int | None
    source: dict[str, Any]
    format: dict[str, Any]
    destination: dict[str, Any]
    schedule: dict[str, Any]
    quality: dict[str, Any]
    limits: dict[str, Any]
    table_name: str
    table_uri: str
    schedule_description: str
    next_run_at: datetime | None = None
    last_run: RunPublic | None = None

    @classmethod
    def build(
        cls,
        ingestion: Ingestion,
        table_uri: str,
        last_run: RunPublic | None = None,
        next_run_at: datetime | None = None,
    ) -> IngestionPublic:
        spec = ingestion.spec
        data = spec.model_dump(mode="json", by_alias=True)
        data["source"]["credentials"] = spec.source.credentials.masked()
        return cls(
            id=ingestion.id,
            name=ingestion.name,
            status=ingestion.status.value,
            cluster_id=spec.cluster_id,
            source=data["source"],
            format=data["format"],
            destination=data["destination"],
            schedule=data["schedule"],
            quality=data["quality"],
            limits=data["limits"],
            table_name=spec.destination.full_name,
            table_uri=table_uri,
            schedule_description=describe(spec.schedule),
            next_run_at=next_run_at,
            last_run=last_run,
        )


class SchedulePreview(BaseModel):
    description: str
    next_fire_times: list[datetime]


class NotificationPage(BaseModel):
    unread: int
    items: list[NotificationPublic]


class ReprocessRequest(BaseModel):
    paths: list[str] | None = Field(default=None, description="Ledger paths to load again.")
    modified_since: datetime | None = None
    modified_until: datetime | None = None


class ReprocessAccepted(BaseModel):
    files: int
    run_id: int
    url: str


class ResolveRequest(BaseModel):
    resolution: Literal["auto_merge", "backfill_default", "new_table", "ignore", "review_later"]
    default_values: dict[str, Any] = Field(default_factory=dict, description="backfill_default: {column: value}")
    table: str | None = Field(default=None, description="new_table: the new table's name (default <table>_v2)")


class ResolutionPlanPublic(BaseModel):
    resolution: str
    trade_off: str
    statements: list[str]
    new_table: str | None = None
    ignored: list[str] = Field(default_factory=list)


class ResolveResult(BaseModel):
    plan: ResolutionPlanPublic
    run_id: int | None


class RunAccepted(BaseModel):
    run_id: int
    status: str = "queued"
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


class Health(BaseModel):
    status: str
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

"""Metadata tables (SQLModel families as in the FastAPI full-stack template)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC; SQLite hands them back naive, so mark them UTC again on load.

    An aware value in another zone is converted, not relabelled: SQLite keeps the wall-clock digits and drops the
    offset, so a schedule's next fire at 03:15+01:00 read back as 03:15Z (an hour late; catch-up runs for slots
    that never were). PostgreSQL converts by itself."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def _ts(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


SPEC_COLUMNS = ("source", "format", "destination", "schedule", "quality", "limits")
"""The ingestion columns that hold the parts of an `IngestionSpec` (JSON each)."""


# --- tenants, users, API tokens, sessions -----------------------------------------------------------
class Tenant(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    created_at: datetime = _ts(default_factory=utcnow)


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    email: str = Field(max_length=320, unique=True)
    password_hash: str = Field(sa_type=Text)
    role: str = Field(default="member", max_length=20)
    instance_admin: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = _ts(default=None)
    created_at: datetime = _ts(default_factory=utcnow)
    last_login_at: datetime | None = _ts(default=None)


class ApiToken(SQLModel, table=True):
    """An API token: only its SHA-256 is stored; the token itself is shown once, at creation."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=200)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts(default_factory=utcnow)
    last_used_at: datetime | None = _ts(default=None)
    revoked_at: datetime | None = _ts(default=None)


class UserSession(SQLModel, table=True):
    """A console login: the cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "user_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts(default_factory=utcnow)
    expires_at: datetime = _ts()


# --- ingestions -----------------------------------------------------------------------------------
class IngestionBase(SQLModel):
    name: str = Field(index=True, max_length=200)
    status: str = Field(default="draft", max_length=20, index=True)
    cluster_id: int | None = Field(default=None, foreign_key="cluster.id")


class Ingestion(IngestionBase, table=True):
    # sqlite_autoincrement: an id is never handed out twice, even after the newest ingestion is deleted (0008)
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_ingestion_tenant_name"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(default=1, foreign_key="tenant.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")
    uid: str = Field(max_length=36, unique=True)
    source: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    format: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    destination: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    schedule: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    quality: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    limits: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    active_run_id: int | None = Field(default=None)
    """The run slot: a run's id, or a table maintenance's id negated (core.ports.maintenance_slot)."""
    next_fire_at: datetime | None = _ts(default=None)
    maintenance: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    """The table maintenance setting (core.maintenance.MaintenanceConfig); empty: off."""
    full_refresh_after: int | None = Field(default=None, sa_type=BigInteger)
    """A full refresh under way: -1 requested, N >= 0 started when the table's committed batch was N (0010)."""
    empty_checks: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Continuous checks that found no new file since `empty_checks_since`: counted here, not stored as runs (0009)."""
    empty_checks_since: datetime | None = _ts(default=None)
    last_empty_check_at: datetime | None = _ts(default=None)
    """The slot of the last empty check: a replica that claims that slot late does not check it again."""
    last_empty_check_lag_seconds: float | None = Field(default=None)
    """How late that check started after its slot: the scheduler lag metric's latest sample when the check is newer
    than the last stored scheduled run (empty checks leave no run behind; 0012)."""
    listed_through: str | None = Field(default=None, sa_type=Text)
    """Incremental listing: every file whose path sorts at or before this is in the ledger (core.ports.ListingState,
    0011)."""
    full_listing_at: datetime | None = _ts(default=None)
    revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Saves of the settings so far: an edit read at an older revision is refused (0013)."""
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


# --- runs -----------------------------------------------------------------------------------------
class RunBase(SQLModel):
    trigger: str = Field(default="manual", max_length=20)
    status: str = Field(default="queued", max_length=20, index=True)


class Run(RunBase, table=True):
    __table_args__ = (
        Index("ix_run_ingestion_created", "ingestion_id", "created_at"),
        Index("uq_run_ingestion_number", "ingestion_id", "number", unique=True),
        UniqueConstraint("ingestion_id", "scheduled_for", name="uq_run_slot"),
        UniqueConstraint("retry_of", name="uq_run_retry_of"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ingestion_id: int = Field(foreign_key="ingestion.id", ondelete="CASCADE")
    number: int | None = None
    """The run's number within its ingestion (Run #1, #2, ...), given by the store when it inserts the run."""
    created_at: datetime = _ts(default_factory=utcnow)
    started_at: datetime | None = _ts(default=None)
    finished_at: datetime | None = _ts(default=None)
    owner: str | None = Field(default=None, max_length=200)
    heartbeat_at: datetime | None = _ts(default=None)
    files_total: int = 0
    files_done: int = 0
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    engine_job_id: str | None = Field(default=None, max_length=200)
    scheduled_for: datetime | None = _ts(default=None)
    attempt: int = 1
    retry_of: int | None = None
    not_before: datetime | None = _ts(default=None)


class RunPublic(RunBase):
    id: int
    ingestion_id: int
    number: int | None = Field(default=None, description="The run's number within its ingestion (Run #1, #2, ...).")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    files_total: int
    files_done: int
    metrics: dict[str, Any]
    errors: list[dict[str, Any]]
    message: str
    engine_job_id: str | None
    scheduled_for: datetime | None
    attempt: int
    retry_of: int | None
    not_before: datetime | None


# --- table maintenance (compaction and vacuum) -------------------------------------------------------
class MaintenanceRunBase(SQLModel):
    trigger: str = Field(default="manual", max_length=20)
    status: str = Field(default="running", max_length=20)
    retention_hours: int = 168
    files_before: int | None = None
    files_after: int | None = None
    bytes_before: int | None = Field(default=None, sa_type=BigInteger)
    bytes_after: int | None = Field(default=None, sa_type=BigInteger)
    files_removed: int | None = None


class MaintenanceRun(MaintenanceRunBase, table=True):
    __tablename__ = "maintenance_run"
    __table_args__ = (
        Index("ix_maintenance_ingestion_created", "ingestion_id", "created_at"),
        UniqueConstraint("ingestion_id", "scheduled_for", name="uq_maintenance_slot"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ingestion_id: int = Field(foreign_key="ingestion.id", ondelete="CASCADE")
    created_at: datetime = _ts(default_factory=utcnow)
    started_at: datetime | None = _ts(default=None)
    finished_at: datetime | None = _ts(default=None)
    scheduled_for: datetime | None = _ts(default=None)
    owner: str | None = Field(default=None, max_length=200)
    heartbeat_at: datetime | None = _ts(default=None)
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class MaintenanceRunPublic(MaintenanceRunBase):
    id: int
    ingestion_id: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    scheduled_for: datetime | None
    message: str
    errors: list[dict[str, Any]]


# --- file ledger ------------------------------------------------------------------------------------
class LedgerFileBase(SQLModel):
    path: str = Field(sa_type=Text)
    size: int = Field(sa_type=BigInteger)
    etag: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=20)
    records: int = Field(default=0, sa_type=BigInteger)
    bad_records: int = 0
    error: str | None = Field(default=None, sa_type=Text)
    previous_size: int | None = Field(default=None, sa_type=BigInteger)
    """The loaded version's size while the file is `changed` or being reloaded."""
    previous_etag: str | None = Field(default=None, max_length=200)
    content_hash: str | None = Field(default=None, max_length=64)
    """sha256 of the bytes loaded (line-based files under reload_changed_files): tells an append-only growth."""


class LedgerFile(LedgerFileBase, table=True):
    __tablename__ = "file_ledger"
    __table_args__ = (
        UniqueConstraint("ingestion_id", "path", name="uq_ledger_ingestion_path"),
        Index("ix_ledger_ingestion_status", "ingestion_id", "status"),
        Index("ix_ledger_ingestion_batch", "ingestion_id", "batch_seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ingestion_id: int = Field(foreign_key="ingestion.id", ondelete="CASCADE")
    run_id: int | None = None
    batch_seq: int | None = None
    modified_at: datetime = _ts()
    discovered_at: datetime = _ts(default_factory=utcnow)
    loaded_at: datetime | None = _ts(default=None)


class LedgerFilePublic(LedgerFileBase):
    run_id: int | None
    batch_seq: int | None
    modified_at: datetime
    discovered_at: datetime
    loaded_at: datetime | None


# --- schema versions ---------------------------------------------------------------------------------
class SchemaVersionBase(SQLModel):
    version: int
    status: str = Field(default="applied", max_length=20)
    reason: str = Field(default="", sa_type=Text)
    resolution: str | None = Field(default=None, max_length=40)


class SchemaVersion(SchemaVersionBase, table=True):
    __tablename__ = "schema_version"
    __table_args__ = (UniqueConstraint("ingestion_id", "version", name="uq_schema_version"),)

    id: int | None = Field(default=None, primary_key=True)
    ingestion_id: int = Field(foreign_key="ingestion.id", ondelete="CASCADE")
    columns: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    changes: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    files: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=[]))
    created_at: datetime = _ts(default_factory=utcnow)
    resolved_at: datetime | None = _ts(default=None)
    resolved_by: str | None = Field(default=None, max_length=200)


class SchemaVersionPublic(SchemaVersionBase):
    columns: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    files: list[dict[str, Any]]
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


# --- clusters ---------------------------------------------------------------------------------------
class ClusterBase(SQLModel):
    name: str = Field(max_length=200)
    kind: str = Field(default="remote", max_length=20)
    connect_url: str = Field(default="", max_length=500)
    table_format: str = Field(default="delta", max_length=20)
    catalog: str = Field(default="spark_catalog", max_length=200)
    price_per_hour: float = 0.0


def _no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: refused here as a 422 rather than by the driver as a 500."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000); remove it")
    return value


class ClusterCreate(ClusterBase):
    """POST /clusters: every field bounded (the service checks the kind, the table format and the URL's form)."""

    name: str = Field(min_length=1, max_length=200)
    catalog: str = Field(default="spark_catalog", min_length=1, max_length=200)
    price_per_hour: float = Field(default=0.0, ge=0, le=1_000_000)
    token: str | None = Field(default=None, max_length=4096)

    _text = field_validator("*")(_no_nul)


class ClusterUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    connect_url: str | None = Field(default=None, max_length=500)
    token: str | None = Field(default=None, max_length=4096)
    table_format: str | None = Field(default=None, max_length=20)
    catalog: str | None = Field(default=None, min_length=1, max_length=200)
    price_per_hour: float | None = Field(default=None, ge=0, le=1_000_000)

    _text = field_validator("*")(_no_nul)


class Cluster(ClusterBase, table=True):
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_cluster_tenant_name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(default=1, foreign_key="tenant.id", index=True)
    token_encrypted: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _ts(default_factory=utcnow)


class ClusterPublic(ClusterBase):
    id: int
    has_token: bool
    created_at: datetime


# --- audit log --------------------------------------------------------------------------------------
class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(default=1, foreign_key="tenant.id", index=True)
    at: datetime = _ts(default_factory=utcnow, index=True)
    actor: str = Field(default="system", max_length=200)
    action: str = Field(max_length=80)
    object_type: str = Field(max_length=40)
    object_id: str | None = Field(default=None, max_length=80)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# --- notifications (in-app alerts; an open one suppresses repeats of its condition) -----------------
class NotificationBase(SQLModel):
    ingestion_id: int | None = Field(default=None, foreign_key="ingestion.id", ondelete="CASCADE")
    kind: str = Field(max_length=40)
    severity: str = Field(default="error", max_length=20)
    title: str = Field(sa_type=Text)
    message: str = Field(sa_type=Text)
    action: str = Field(sa_type=Text)
    link: str = Field(default="", max_length=500)


class Notification(NotificationBase, table=True):
    __table_args__ = (Index("ix_notification_open", "ingestion_id", "kind", "cleared_at"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(default=1, foreign_key="tenant.id", index=True)
    created_at: datetime = _ts(default_factory=utcnow, index=True)
    read_at: datetime | None = _ts(default=None)
    cleared_at: datetime | None = _ts(default=None)
    deliveries: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class NotificationPublic(NotificationBase):
    id: int
    created_at: datetime
    read_at: datetime | None
    cleared_at: datetime | None
    deliveries: dict[str, Any]

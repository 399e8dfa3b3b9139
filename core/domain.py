"""Domain records shared by the pipeline, the metadata store and the API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum

from core.config import IngestionSpec


class IngestionStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    NEEDS_REVIEW = "needs_review"
    ERROR = "error"

    @property
    def loads(self) -> bool:
        """Whether runs (scheduled or on request) load files: also while a schema change waits for review, when
        files with the table's schema keep loading and files with the change are held (PRODUCT.md §6)."""
        return self in (IngestionStatus.ACTIVE, IngestionStatus.NEEDS_REVIEW)


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class RunTrigger(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    RETRY = "retry"
    BACKFILL = "backfill"
    CATCH_UP = "catch_up"
    CLI = "cli"


class FileStatus(StrEnum):
    PENDING = "pending"
    LOADED = "loaded"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    SKIPPED = "skipped"
    HELD = "held"
    CHANGED = "changed"
    """Loaded, then modified at the source (size, etag or mtime differ) and not reloaded: the table holds
    the earlier version; `previous_size`/`previous_etag` describe it, `size`/`etag` the file now."""


@dataclass(slots=True)
class Ingestion:
    id: int
    uid: str
    name: str
    spec: IngestionSpec
    status: IngestionStatus
    created_at: datetime | None = None
    tenant_id: int = 1
    created_by: int | None = None
    """The user who created it (members may change only their own)."""

    @property
    def app_id(self) -> str:
        """Delta application-transaction id: stable for the life of the ingestion, unique across ingestions."""
        return f"autoloader-{self.uid}"


@dataclass(slots=True)
class RunError:
    kind: str
    message: str
    action: str = ""
    file: str | None = None
    detail: str = ""


def with_file(file: str | None, message: str) -> str:
    """A run error's message with its file in front, unless the message names it already (a bad file's message
    starts with its path): how the CLI and the console show it, the file named once."""
    return f"{file}: {message}" if file and file not in message else message


@dataclass(slots=True)
class RunMetrics:
    files_processed: int = 0
    records_ingested: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    duration_seconds: float = 0.0
    error_count: int = 0
    bad_records: int = 0
    files_quarantined: int = 0
    batches_committed: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(slots=True)
class LedgerEntry:
    """One file in the ledger. A file is identified by its path within an ingestion."""

    path: str
    size: int
    modified: datetime
    etag: str | None
    status: FileStatus
    run_id: int | None = None
    batch_seq: int | None = None
    records: int = 0
    bad_records: int = 0
    error: str | None = None
    previous_size: int | None = None
    """Set while a changed file is reloaded (and on a `changed` row): the size of the version in the table."""
    previous_etag: str | None = None
    content_hash: str | None = None
    """sha256 of the file's bytes as loaded (line-based formats with reload_changed_files): an append-only
    growth is recognised by the old bytes still hashing to it."""


@dataclass(slots=True)
class FileResult:
    """The final state of one file of a committed batch."""

    status: FileStatus
    records: int = 0
    bad_records: int = 0
    error: str | None = None
    content_hash: str | None = None


@dataclass(slots=True)
class KnownFile:
    """What the ledger knows of a file: enough to tell whether the file at the source still is the one loaded.

    Two are equal when their etag and status are (what the ledger keys its decisions on); the rest is detail."""

    etag: str | None
    status: FileStatus
    size: int | None = field(default=None, compare=False)
    modified: datetime | None = field(default=None, compare=False)
    records: int = field(default=0, compare=False)
    previous_size: int | None = field(default=None, compare=False)
    previous_etag: str | None = field(default=None, compare=False)
    content_hash: str | None = field(default=None, compare=False)


@dataclass(slots=True)
class RunOutcome:
    run_id: int
    status: RunStatus
    metrics: RunMetrics
    errors: list[RunError] = field(default_factory=list)
    message: str = ""
    transient: bool = False
    schema_pending: bool = False

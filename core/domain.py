"""Domain records shared by the pipeline, the metadata store and the API."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
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
    revision: int = 0
    """Saves of its settings so far: an edit read at another revision is refused (`IngestionService.update`)."""

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


LedgerRow = tuple[str, str | None, str, int | None, datetime | str | None, int, int | None, str | None, str | None]
"""One ledger row as the database hands it back: the path, then `KnownFile`'s fields in order, the status as its
text and the modification time as a datetime or the ISO text SQLite keeps."""

_LOADED_STATES = (FileStatus.LOADED.value, FileStatus.QUARANTINED.value)


class KnownFiles(Mapping[str, KnownFile]):
    """An ingestion's ledger rows by path, as one run reads them, kept as the database's tuples and made
    `KnownFile`s only when looked up.

    A run with a full listing compares every listed file with its row; `unchanged` answers the common case (the
    file is the version already loaded) from the tuple, so a no-op run over N loaded files builds no N objects
    (issue #14: a run over 100,000 loaded files)."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Iterable[LedgerRow] = ()):
        self._rows: dict[str, LedgerRow] = {row[0]: row for row in rows}

    @classmethod
    def of(cls, files: dict[str, KnownFile]) -> KnownFiles:
        return cls(
            (
                path,
                f.etag,
                f.status.value,
                f.size,
                f.modified,
                f.records,
                f.previous_size,
                f.previous_etag,
                f.content_hash,
            )
            for path, f in files.items()
        )

    def unchanged(self, path: str, size: int, etag: str | None) -> bool:
        """The ledger holds this very version of the file (same size and etag) as loaded or quarantined: the
        selection's rule (`core.selection.file_action`) leaves such a file alone, whatever the settings."""
        row = self._rows.get(path)
        return row is not None and etag is not None and row[1] == etag and row[3] == size and row[2] in _LOADED_STATES

    def loaded_versions(self) -> dict[tuple[int | None, str], str]:
        """(size, etag) -> path of each loaded file that has an etag: a new path carrying one of these versions is
        a loaded file renamed or copied (`core.selection.copies_of_loaded`)."""
        loaded = FileStatus.LOADED.value
        return {(row[3], row[1]): row[0] for row in self._rows.values() if row[1] is not None and row[2] == loaded}

    def __getitem__(self, path: str) -> KnownFile:
        _, etag, status, size, modified, records, previous_size, previous_etag, content_hash = self._rows[path]
        if isinstance(modified, str):
            modified = datetime.fromisoformat(modified)
        if modified is not None and modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        return KnownFile(etag, FileStatus(status), size, modified, records, previous_size, previous_etag, content_hash)

    def get(self, path: str, default: KnownFile | None = None) -> KnownFile | None:  # type: ignore[override]
        return self[path] if path in self._rows else default

    def __contains__(self, path: object) -> bool:
        return path in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"KnownFiles({len(self._rows)} rows)"


@dataclass(slots=True)
class RunOutcome:
    run_id: int
    status: RunStatus
    metrics: RunMetrics
    errors: list[RunError] = field(default_factory=list)
    message: str = ""
    transient: bool = False
    schema_pending: bool = False

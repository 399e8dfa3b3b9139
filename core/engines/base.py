"""The engine port: one contract for the embedded engine and the Spark engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from core.config import DestinationConfig, FormatConfig
from core.errors import BadFileError, TableError
from core.storage.base import FileInfo, Storage

if TYPE_CHECKING:  # the run pipeline imports this module on every run, Arrow only when it loads files
    import pyarrow as pa


@dataclass(slots=True)
class FileOutcome:
    """What happened to one file of a batch."""

    records: int = 0
    bad_records: int = 0
    quarantine_reason: str | None = None
    action: str = ""


@dataclass(slots=True)
class InferResult:
    schema: pa.Schema
    bad_files: dict[str, str] = field(default_factory=dict)
    # Files whose schema came from their first `sample_bytes` only (they are larger): the run says so.
    sampled: list[str] = field(default_factory=list)
    sample_bytes: int = 0
    # Keys the files spell differently by case from their first spelling (`name` after `Name`), which the schema
    # keeps; an engine that reads keys by exact spelling would drop their values (`Engine.drops_case_variants`).
    case_variants: tuple[str, ...] = ()
    # `schema` with the null type kept for the columns that held no value in these files (`schema` has them as
    # string, for a new table); None when there are none. The check against an existing table uses it: a column
    # with no value in a file fits any type, so a day's file with an empty column is not a type change.
    with_nulls: pa.Schema | None = None

    @property
    def checked_schema(self) -> pa.Schema:
        """The schema to compare with an existing table's: empty columns as the null type."""
        return self.schema if self.with_nulls is None else self.with_nulls


INFER_BYTES_TOTAL = 32 * 1024 * 1024
INFER_BYTES_MIN = 4 * 1024
INFER_BYTES_MAX = 8 * 1024 * 1024


def infer_bytes_per_file(files: int) -> int:
    """How much of each file inference reads: every file of a first batch contributes its first lines, within
    about 32 MiB in all (8 MiB for a single file, never under 4 KiB each). Inference parses what it reads, so
    this bounds its cost to a fraction of the load's (measured: 10,000 files of 10 KiB, bench/bench_embedded.py)."""
    return max(INFER_BYTES_MIN, min(INFER_BYTES_MAX, INFER_BYTES_TOTAL // max(files, 1)))


@dataclass(slots=True)
class BatchRequest:
    app_id: str
    batch_seq: int
    run_id: int
    files: list[FileInfo]
    storage: Storage
    format: FormatConfig
    destination: DestinationConfig
    schema: pa.Schema
    evolve: bool
    ignored_columns: frozenset[str]
    mode: str
    ingested_at: datetime
    max_bad_record_ratio: float
    on_file_done: Callable[[FileInfo], None] | None = None
    # The files' own columns, so an engine that reads with a fixed schema can still rescue the fields the
    # table does not take (the embedded reader sees them anyway).
    incoming: pa.Schema | None = None
    # The first batch of a full refresh: its commit replaces the table's rows (in merge mode with the batch's
    # latest row per key), keeping the table's columns; later batches of the refresh load as the write mode says.
    replace: bool = False
    # Filled by the engine as it decides each file's outcome (loaded with N records, set aside and why), so that a
    # caller whose write failed after its commit became durable still knows them.
    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    # Called by the engine once every file's outcome is known, just before its commit, so that the caller can
    # record the files set aside where a crash right after the commit cannot lose them.
    before_commit: Callable[[], None] | None = None


@dataclass(slots=True)
class BatchResult:
    outcomes: dict[str, FileOutcome]
    rows_written: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    already_committed: bool = False
    engine_job_id: str | None = None  # e.g. the Spark job tag, so the run history can link to the cluster's UI
    # False when every file of the batch was set aside and nothing was committed: a table is not created, nor its
    # schema changed, from files that did not load (a wrong delimiter's one-column header, say).
    written: bool = True
    # The table's first batch of this ingestion, into a table it created: missing when the batch started, or left
    # empty by its own create commit (a first batch that failed after it), so that the schema history starts here.
    created_table: bool = False


@dataclass(slots=True)
class CompactionResult:
    """The table's data files before and after a compaction (of its current version)."""

    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int


def batch_message(app_id: str, batch_seq: int) -> str:
    """The commit message (Delta `userMetadata`) of a batch's rows, the same from both engines."""
    return f"autoloader {app_id} batch {batch_seq}"


CONFLICT_ACTION = (
    "Nothing to do: the batch is written again. If it repeats, give the table's writers schedules that do not overlap."
)
"""The action of a ConcurrentCommit an engine raises (core/pipeline.py writes the batch again)."""


def table_already_exists(destination: DestinationConfig) -> TableError:
    """Write mode 'create new table' on a table another ingestion made (both engines)."""
    return TableError(
        f"Table {destination.full_name} already exists and write mode is 'create new table'.",
        "Pick another table name, or change the write mode to append.",
    )


def fence_marker(app_id: str, batch_seq: int) -> str:
    """The commit message of a fence (Engine.fence_batch), the same from both engines: each tells the other's."""
    return f"autoloader {app_id} fence {batch_seq}"


def fence_app_id(app_id: str) -> str:
    """The application transaction a fence also carries, at the batch's number: the table's snapshot then tells
    whether its last fence is that batch without reading its history (only the last fence is ever asked about:
    a run settles pending batches in order before it fences or writes anything above them)."""
    return f"{app_id}.fence"


class Engine(Protocol):
    name: str

    def table_uri(self, destination: DestinationConfig) -> str: ...

    def table_schema(self, destination: DestinationConfig) -> pa.Schema | None:
        """The target table's schema, or None when the table does not exist yet."""
        ...

    def committed_version(self, destination: DestinationConfig, app_id: str) -> int | None:
        """The last batch sequence committed by this ingestion (its Delta application transaction)."""
        ...

    def infer_schema(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> InferResult: ...

    def drops_case_variants(self, fmt: FormatConfig) -> bool:
        """Whether reading `fmt` would drop the values of a key spelled differently from its column only by case
        (Spark's JSON reader matches keys by exact spelling), so that such files must be set aside; the embedded
        engine rescues them into `_rescued_data`."""
        ...

    def infer_each(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> dict[str, pa.Schema]:
        """Each file's own schema (files that cannot be read are left out; loading quarantines them)."""
        ...

    def count_records(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> dict[str, int]:
        """Records per file without writing anything (for files held for schema review)."""
        ...

    def add_columns(self, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        """Add the new columns among `fields`, and the fields a struct column among them adds (`adds_nested_fields`)."""
        ...

    def adds_nested_fields(self, destination: DestinationConfig) -> bool:
        """Whether the table takes fields added inside its struct columns (Delta and Iceberg do)."""
        ...

    def widen_columns(self, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        """Change existing columns to wider types (int→bigint, →double, date→timestamp)."""
        ...

    def fill_column(self, destination: DestinationConfig, column: str, value: object) -> None:
        """Set a column to a value in every existing row."""
        ...

    def load_batch(self, request: BatchRequest) -> BatchResult:
        """Read the batch's files and commit them to the table in one idempotent commit."""
        ...

    def count_rows_from(
        self, destination: DestinationConfig, paths: list[str], run_id: int | None = None
    ) -> dict[str, int]:
        """Rows per `_source_file` for the given files (used to reconcile after a crash); only run `run_id`'s rows
        when given and the table has `_run_id` (a file reprocessed has rows of earlier runs too)."""
        ...

    def settle_overwrite(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> None:
        """Finish an overwrite whose batch is committed: only that batch's rows stay visible (idempotent)."""
        ...

    def fence_batch(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> None:
        """Take batch `batch_seq` of `app_id` away from a writer that may still commit it: a run taken over (its
        server paused past the stale window) can pass its last check and commit moments after another server
        dropped the batch and planned other files under its number. The fence is an empty commit under the batch's
        own marker; such a writer's commit then conflicts with it or skips a batch the table has. If that writer
        committed first, the table keeps its batch (`committed_version` tells). Nothing is done for a table not yet
        created or a format that cannot (parquet, Iceberg: docs/RELIABILITY.md)."""
        ...

    def is_fence(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> bool:
        """Whether the table's batch `batch_seq` of `app_id` is a fence (`fence_batch`), which holds no rows."""
        ...

    def after_run(self, destination: DestinationConfig) -> None:
        """Table maintenance after a run that wrote data (Z-order)."""
        ...

    def compact(self, destination: DestinationConfig) -> CompactionResult:
        """Rewrite small data files into fewer large ones in one commit that changes no row and keeps the table's
        application transactions (a run after it skips what was loaded). Older versions stay readable.
        Raises MaintenanceNotSupported for a table format without it, TableError when the table does not exist."""
        ...

    def vacuum(self, destination: DestinationConfig, retention_hours: int, allow_short: bool = False) -> int:
        """Delete the files no table version younger than `retention_hours` needs; returns how many. The caller
        checks the retention rule (core/maintenance.py); `allow_short` lifts the table format's own floor."""
        ...

    def drop_table(self, destination: DestinationConfig) -> None: ...


PARTITION_FOLDER_BYTES = 255
"""The longest file or folder name of common file systems (and of a path part on object stores' local caches)."""
PLAIN_IN_PATHS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
"""Characters a partition folder's name keeps as they are; delta-rs writes the others' bytes as %XX (non-ASCII
included), and both engines measure a value so."""


def is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def partition_folder_room(column: str) -> int:
    """The bytes a value of partition column `column` may take in its folder's name (`column=value`)."""
    return PARTITION_FOLDER_BYTES - len(column.encode()) - 1


def folder_bytes(value: str) -> int:
    """The bytes of `value` in a partition folder's name (each byte not in PLAIN_IN_PATHS as %XX)."""
    plain = PLAIN_IN_PATHS.encode()
    return sum(1 if byte in plain else 3 for byte in value.encode())


def partition_value_too_long(path: str, column: str, size: str) -> BadFileError:
    """The file's error for a value of partition column `column` too long for a folder name (`size` says how long)."""
    return BadFileError(
        f"{path} has a value of partition column {column!r} too long for a folder name ({size})",
        f"Partition by a column with short values (a date, a category); {column!r} cannot be one. The file is "
        "quarantined and the rest of the run loads; once the ingestion partitions otherwise (a new ingestion), "
        "reprocess it.",
        field=path,
    )

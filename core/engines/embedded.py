"""The embedded engine: Apache Arrow reads the files, delta-rs commits them, inside this process."""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, SchemaMismatchError, TableNotFoundError
from deltalake.schema import Field as DeltaField

from core.config import DestinationConfig, FormatConfig
from core.engines import inference
from core.engines.base import (
    CONFLICT_ACTION,
    BatchRequest,
    BatchResult,
    CompactionResult,
    FileOutcome,
    InferResult,
    batch_message,
    fence_app_id,
    fence_marker,
    folder_bytes,
    is_text,
    partition_folder_room,
    partition_value_too_long,
    table_already_exists,
)
from core.engines.inference import open_for
from core.engines.parquet_writer import TARGET_FILE_SIZE, WRITER_PROPERTIES, writer_properties
from core.engines.parsed_files import ParsedByRun
from core.engines.warehouse_errors import plain_reason, store_failure
from core.errors import (
    AutoloaderError,
    BadFileError,
    ConcurrentCommit,
    ConfigError,
    SchemaChangeError,
    TableError,
    TooManyBadRecords,
)
from core.faults import crash_point
from core.formats import (
    FileReadStats,
    drop_rescued_keys,
    infer_file_schema,
    nulls_to_string,
    read_file,
)
from core.formats import output_schema as read_schema
from core.formats.conform import tag_rescued
from core.formats.grouped import (
    GROUP_FILE_MAX_BYTES,
    GROUP_MAX_BYTES,
    GROUP_MAX_FILES,
    can_group,
    read_group,
    split_rows,
)
from core.formats.json_reader import parsed_rows
from core.formats.partitions import fill_partitions, partition_values, relative_path
from core.lifecycle import unreadable_file
from core.schema import LINEAGE_COLUMNS, RESCUED, grown_structs
from core.storage.base import FileInfo, Storage

log = logging.getLogger(__name__)
# delta-rs's messages for a commit another writer's beat (its conflict checker; a create never retried).
CONFLICT = re.compile(r"concurrent|changed since last commit|Failed to commit transaction: \d+$", re.IGNORECASE)

LINEAGE_FIELDS = [
    pa.field("_source_file", pa.string()),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
    pa.field("_run_id", pa.int64()),
]
assert tuple(f.name for f in LINEAGE_FIELDS) == LINEAGE_COLUMNS


# Mid-sized files are read this many ahead, on this many threads (Arrow's parsers release the GIL); a file larger
# than _READ_AHEAD_MAX_BYTES streams instead, so read-ahead holds at most a few tens of MiB. Files under
# _READ_AHEAD_MIN_BYTES are read inline: their cost is Python per file, which threads only contend for (measured on
# 2 cores, JSON lines: 10,000 files of 0.5 KiB 9.2 s threaded vs 6.1 s inline; 2,000 of 23 KiB 2.0 vs 1.6 s;
# 1,000 of 100 KiB even; 100 of 1 MiB 0.6 vs 1.0 s).
_READ_THREADS = 3
_READ_AHEAD_FILES = 8
_READ_AHEAD_MIN_BYTES = 64 * 1024
_READ_AHEAD_MAX_BYTES = 4 * 1024 * 1024

WRITE_BATCH_ROWS = 8_192
# A fence tried again when other commits (another ingestion writing the table) keep getting in first.
FENCE_ATTEMPTS = 5


def output_schema(data: pa.Schema, lineage: bool) -> pa.Schema:
    fields = [*data, pa.field(RESCUED, pa.string())]
    return pa.schema(fields + (LINEAGE_FIELDS if lineage else []))


@dataclass(slots=True)
class _StreamState:
    """Side channel of the batch generator: an error raised inside the writer comes back as a DeltaError."""

    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    abort: AutoloaderError | None = None
    all_set_aside: bool = False
    bytes_read: int = 0
    records: int = 0
    bad_records: int = 0


class _AllSetAside(Exception):
    """Raised at the end of a batch's rows when every file was set aside: the write is abandoned, not committed."""


def _unless_all_set_aside(
    batches: Iterator[pa.RecordBatch], request: BatchRequest, state: _StreamState
) -> Iterator[pa.RecordBatch]:
    yield from batches
    outcomes = [state.outcomes.get(f.path) for f in request.files]
    if outcomes and all(o is not None and o.quarantine_reason for o in outcomes):
        state.all_set_aside = True
        raise _AllSetAside


class EmbeddedEngine:
    name = "embedded"

    def __init__(self, warehouse: str, storage_options: dict[str, str] | None = None):
        self.warehouse = warehouse.rstrip("/")
        self.storage_options = storage_options or None
        self._parsed = ParsedByRun()

    # --- table --------------------------------------------------------------------------------
    def table_uri(self, destination: DestinationConfig) -> str:
        return f"{self.warehouse}/{destination.catalog}/{destination.database}/{destination.table}"

    def _table(self, destination: DestinationConfig) -> DeltaTable | None:
        try:
            return DeltaTable(self.table_uri(destination), storage_options=self.storage_options)
        except TableNotFoundError:
            return None
        except (DeltaError, OSError) as exc:
            raise self._failure(exc, destination, "Reading") from exc

    def _failure(self, exc: BaseException, destination: DestinationConfig, doing: str) -> AutoloaderError:
        """The store's failure typed (down: transient; credentials refused: terminal), else a table error; both
        in one plain line (warehouse_errors)."""
        uri = self.table_uri(destination)
        options = self.storage_options or {}
        typed = store_failure(exc, uri, options)
        if typed is not None:
            return typed
        return TableError(
            f"{doing} table {destination.full_name} ({uri}) failed: {plain_reason(exc, options)}",
            "Check that the warehouse location is writable and the table is a Delta table.",
            detail=repr(exc),
        )

    def table_schema(self, destination: DestinationConfig) -> pa.Schema | None:
        table = self._table(destination)
        return None if table is None else pa.schema(table.schema().to_arrow())

    def committed_version(self, destination: DestinationConfig, app_id: str) -> int | None:
        table = self._table(destination)
        return None if table is None else table.transaction_version(app_id)

    def count_rows_from(
        self, destination: DestinationConfig, paths: list[str], run_id: int | None = None
    ) -> dict[str, int]:
        table = self._table(destination)
        if table is None or not paths:
            return {}
        dataset = table.to_pyarrow_dataset()
        if "_source_file" not in dataset.schema.names:
            return {}
        # The filter compares as plain strings: files written by a merge (DataFusion) store the column as
        # string_view, and a filter on the table's declared `string` type fails on them (no kernel for the pair).
        as_text = pc.field("_source_file").cast(pa.string())
        wanted = as_text.isin(paths)
        if run_id is not None and "_run_id" in dataset.schema.names:
            wanted = wanted & (pc.field("_run_id") == run_id)
        rows = dataset.to_table(columns=["_source_file"], filter=wanted)
        files = pc.cast(rows.column("_source_file"), pa.string())
        counts = pa.table({"file": files}).group_by("file").aggregate([("file", "count")])
        return dict(zip(counts["file"].to_pylist(), counts["file_count"].to_pylist(), strict=True))

    def source_files_held(self, destination: DestinationConfig) -> dict[str, tuple[int, datetime | None]]:
        """Every source file the table holds rows of (its `_source_file` values): rows, and when the latest of them
        was ingested (`_ingested_at`); empty without a table or a lineage column."""
        table = self._table(destination)
        if table is None:
            return {}
        dataset = table.to_pyarrow_dataset()
        if "_source_file" not in dataset.schema.names:
            return {}
        timed = "_ingested_at" in dataset.schema.names
        rows = dataset.to_table(columns=["_source_file", "_ingested_at"] if timed else ["_source_file"])
        files = pc.cast(rows.column("_source_file"), pa.string())
        grouped = pa.table({"file": files, "at": rows.column("_ingested_at") if timed else pa.nulls(len(files))})
        counts = grouped.group_by("file").aggregate([("file", "count"), ("at", "max")])
        return {
            path: (n, at)
            for path, n, at in zip(
                counts["file"].to_pylist(), counts["file_count"].to_pylist(), counts["at_max"].to_pylist(), strict=True
            )
            if path is not None
        }

    def count_rows(self, destination: DestinationConfig) -> int | None:
        """The table's row count from its log's file statistics (no data file is read); None without a table."""
        table = self._table(destination)
        if table is None:
            return None
        actions = pa.table(table.get_add_actions(flatten=True))
        return int(pc.sum(actions.column("num_records")).as_py() or 0) if actions.num_rows else 0

    def settle_overwrite(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> None:
        """A Delta overwrite commit replaces the content atomically: nothing left to settle."""

    def fence_batch(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> None:
        """An empty append carrying the batch's application transaction. delta-rs fails a commit whose transaction
        id a concurrent commit also carries ("Concurrent transaction failed"), so the writer taken over, which read
        the table before its last check, cannot commit after it; tried again on other conflicts."""
        for _ in range(FENCE_ATTEMPTS):
            table = self._table(destination)
            if table is None or (table.transaction_version(app_id) or 0) >= batch_seq:
                return
            commit = CommitProperties(
                app_transactions=[Transaction(app_id, batch_seq), Transaction(fence_app_id(app_id), batch_seq)],
                custom_metadata={"userMetadata": fence_marker(app_id, batch_seq)},
            )
            try:
                table.create_write_transaction(
                    [],
                    mode="append",
                    schema=table.schema(),
                    partition_by=table.metadata().partition_columns or None,
                    commit_properties=commit,
                )
                return
            except CommitFailedError:
                continue  # another commit got in first: read the table again
            except (DeltaError, OSError) as exc:
                raise self._failure(exc, destination, "Fencing a batch of") from exc
        raise TableError(
            f"Table {destination.full_name}: batch {batch_seq} of an interrupted run could not be fenced: other "
            f"commits kept getting in first ({FENCE_ATTEMPTS} tries).",
            "Run the ingestion again; its files stay pending until then.",
        )

    def is_fence(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> bool:
        """From the snapshot (`fence_app_id`); reading the history instead hung on SeaweedFS's listing."""
        table = self._table(destination)
        return table is not None and table.transaction_version(fence_app_id(app_id)) == batch_seq

    def after_run(self, destination: DestinationConfig) -> None:
        if destination.z_order_columns and (table := self._table(destination)) is not None:
            try:
                columns = z_order_names(destination, pa.schema(table.schema().to_arrow()))
                table.optimize.z_order(columns, writer_properties=WRITER_PROPERTIES)
            except (DeltaError, OSError) as exc:
                raise self._failure(exc, destination, "Z-ordering") from exc

    # --- maintenance ----------------------------------------------------------------------------
    def compact(self, destination: DestinationConfig) -> CompactionResult:
        """delta-rs OPTIMIZE (compact): bins the current version's small files into files of up to the writers'
        target size, in one commit with dataChange=false. The log keeps every `txn` action, so the ingestion's
        committed batch is unchanged, and the old files stay on disk for readers of older versions (until vacuum)."""
        table = self._existing(destination)
        before = self._file_sizes(table)
        try:
            table.optimize.compact(target_size=TARGET_FILE_SIZE, writer_properties=WRITER_PROPERTIES)
        except (DeltaError, OSError) as exc:
            raise TableError(
                f"Compacting table {destination.full_name} failed: {exc}",
                "Check that the warehouse location is writable; the table is unchanged and the next maintenance "
                "tries again.",
                detail=repr(exc),
            ) from exc
        after = self._file_sizes(self._existing(destination))
        return CompactionResult(len(before), len(after), sum(before.values()), sum(after.values()))

    def vacuum(self, destination: DestinationConfig, retention_hours: int, allow_short: bool = False) -> int:
        table = self._existing(destination)
        try:
            removed = table.vacuum(
                retention_hours=retention_hours, dry_run=False, enforce_retention_duration=not allow_short
            )
        except (DeltaError, OSError) as exc:
            raise TableError(
                f"Vacuuming table {destination.full_name} (retention {retention_hours} h) failed: {exc}",
                "A table property delta.deletedFileRetentionDuration longer than the retention refuses it: raise "
                "vacuum_retention_hours to at least that, or check that the warehouse location is writable.",
                detail=repr(exc),
            ) from exc
        return len(removed)

    def drop_table(self, destination: DestinationConfig) -> None:
        import shutil
        from pathlib import Path

        uri = self.table_uri(destination)
        if "://" in uri and not uri.startswith("file://"):
            self._delete_object_store_folder(uri)
            return
        shutil.rmtree(Path(uri.removeprefix("file://")), ignore_errors=True)

    def _delete_object_store_folder(self, uri: str) -> None:
        """Every object under the table's prefix, through delta-rs's own store (the table's siblings whose names
        merely start the same, `events_old` beside `events`, are not under it); a table already gone is no error."""
        from deltalake.fs import DeltaStorageHandler

        parent, _, name = uri.rpartition("/")
        try:
            DeltaStorageHandler(parent, self.storage_options).delete_dir(name)
        except (DeltaError, OSError, ValueError) as exc:
            raise TableError(
                f"Dropping table {uri} failed: {exc}",
                "Check the warehouse credentials (AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS) allow deleting; the "
                "ingestion is kept, delete it again once fixed, or delete the folder by hand.",
                detail=repr(exc),
            ) from exc

    def delete_rows_from(self, destination: DestinationConfig, paths: list[str]) -> None:
        """Delete the rows loaded from these source files (by `_source_file`), in one Delta commit of its own:
        a changed file's rows are replaced by this delete followed by the batch's append, which is not atomic
        (see RunPipeline._load_batch for what a crash in between leaves)."""
        table = self._table(destination)
        if table is None or not paths:
            return
        quoted = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
        try:
            table.delete(f"_source_file IN ({quoted})", writer_properties=WRITER_PROPERTIES)
        except (DeltaError, OSError, ValueError) as exc:
            raise TableError(
                f"Deleting the rows of {len(paths)} changed file(s) from {destination.full_name} failed: {exc}",
                "Check that the warehouse location is writable; the files are reloaded at the next run.",
                detail=repr(exc),
            ) from exc

    # --- schema -------------------------------------------------------------------------------
    def drops_case_variants(self, fmt: FormatConfig) -> bool:
        return False  # the readers rescue a case-variant key's values into _rescued_data

    def infer_schema(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> InferResult:
        """The shared inference (core/engines/inference.py): the files unified, their folders' partition
        columns, the type hints; a manual schema is taken as declared. Small JSON-lines files parsed whole are kept
        for this run's load (core/engines/parsed_files.py)."""
        parsed = self._parsed.of(storage) if can_group(fmt) else None
        return inference.infer_schema(storage, files, fmt, parsed.keep if parsed is not None else None)

    def infer_each(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> dict[str, pa.Schema]:
        return inference.infer_each(storage, files, fmt)

    def count_records(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> dict[str, int]:
        counts = {}
        for info in files:
            stats = FileReadStats()
            try:
                with open_for(storage, info.path, fmt) as stream:
                    schema = infer_file_schema(stream, fmt, path=info.path)
                with open_for(storage, info.path, fmt) as stream:
                    for _ in read_file(stream, info.path, fmt, nulls_to_string(schema), stats):
                        pass
            except BadFileError:
                continue
            counts[info.path] = stats.records
        return counts

    # --- schema changes -------------------------------------------------------------------------
    def _existing(self, destination: DestinationConfig) -> DeltaTable:
        table = self._table(destination)
        if table is None:
            raise TableError(f"Table {destination.full_name} does not exist.", "Run the ingestion once to create it.")
        return table

    def add_columns(self, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        table = self._existing(destination)
        current = pa.schema(table.schema().to_arrow())
        new = [DeltaField.from_arrow(f.with_nullable(True)) for f in fields if f.name not in current.names]
        if new:
            table.alter.add_columns(new)
        grown = grown_structs(current, fields)
        if grown:  # delta-rs alters only top-level columns: an empty write merges the grown structs into the schema
            target = pa.schema([f.with_type(grown.get(f.name, f.type)) for f in current])
            write_deltalake(
                self.table_uri(destination),
                target.empty_table(),
                mode="append",
                schema_mode="merge",
                storage_options=self.storage_options,
            )

    def adds_nested_fields(self, destination: DestinationConfig) -> bool:
        return True

    def widen_columns(self, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        """delta-rs has no in-place type widening, so the table is rewritten (streamed) with the wider types."""
        table = self._existing(destination)
        current = pa.schema(table.schema().to_arrow())
        wider = {f.name: f.type for f in fields}
        refuse_lossy_widening(destination, table, current, wider)
        target = pa.schema([pa.field(f.name, wider.get(f.name, f.type), True) for f in current])
        batches = (batch.cast(target) for batch in table.to_pyarrow_dataset().to_batches())
        write_deltalake(
            self.table_uri(destination),
            pa.RecordBatchReader.from_batches(target, batches),
            mode="overwrite",
            schema_mode="overwrite",
            partition_by=table.metadata().partition_columns or None,
            storage_options=self.storage_options,
            writer_properties=WRITER_PROPERTIES,
        )

    def fill_column(self, destination: DestinationConfig, column: str, value: object) -> None:
        table = self._existing(destination)
        held = pa.schema(table.schema().to_arrow()).field(column).type
        try:
            table.update(updates={column: sql_literal(value, held)}, writer_properties=WRITER_PROPERTIES)
        except BaseException as exc:  # a panic inside delta-rs is a BaseException, which nothing above expects
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise TableError(
                f"Table {destination.full_name}: the default of column {column} could not be written "
                f"({plain_reason(exc, self.storage_options or {})}).",
                "Choose auto_merge (old rows keep NULL), or give another default.",
            ) from exc

    # --- load ---------------------------------------------------------------------------------
    def load_batch(self, request: BatchRequest) -> BatchResult:
        destination = request.destination
        table = self._table(destination)
        committed = None
        if table is not None:
            committed = table.transaction_version(request.app_id)
            if committed is not None and committed >= request.batch_seq:
                return BatchResult(outcomes={}, already_committed=True)
            if request.mode == "create" and committed is None:
                raise table_already_exists(destination)
        schema = output_schema(request.schema, destination.lineage_columns)
        state = _StreamState(outcomes=request.outcomes)
        batches = self._stream(request, schema, state)
        if not request.replace:  # a batch whose every file is set aside commits nothing, an overwrite included
            batches = _unless_all_set_aside(batches, request, state)
        before = self._file_sizes(table)
        commit = CommitProperties(
            app_transactions=[Transaction(request.app_id, request.batch_seq)],
            custom_metadata={"userMetadata": batch_message(request.app_id, request.batch_seq)},
        )
        try:
            if request.mode == "merge":
                self._merge(table, request, schema, batches, commit)
            else:
                self._write(table, request, schema, batches, commit)
        except Exception as exc:
            if state.all_set_aside:
                return BatchResult(state.outcomes, written=False)
            if not isinstance(exc, DeltaError | OSError | ValueError | pa.ArrowException):
                raise
            if state.abort is not None:
                raise state.abort from exc
            if self._lost_to_another_writer(exc, destination, schema):
                raise ConcurrentCommit(
                    f"Another writer committed to table {destination.full_name} while batch {request.batch_seq} was "
                    f"written, and both commits cannot stand ({plain_reason(exc, self.storage_options or {})}); "
                    "nothing of the batch was committed.",
                    CONFLICT_ACTION,
                    detail=repr(exc),
                ) from exc
            raise self._failure(exc, destination, "Writing to") from exc
        if state.abort is not None:
            raise state.abort
        after = self._file_sizes(self._table(destination))
        written = sum(size for path, size in after.items() if path not in before)
        return BatchResult(
            state.outcomes,
            rows_written=state.records,
            bytes_read=state.bytes_read,
            bytes_written=written,
            created_table=table is None or committed == 0,
        )

    def _lost_to_another_writer(self, exc: Exception, destination: DestinationConfig, schema: pa.Schema) -> bool:
        """Whether the batch failed because another writer committed first: a commit conflict (not a refusal such as
        an append-only table's), or a table with columns the batch's schema lacks (another ingestion added them
        after the batch was planned; planned again, the batch takes them)."""
        if isinstance(exc, CommitFailedError):
            return CONFLICT.search(str(exc)) is not None
        if isinstance(exc, SchemaMismatchError):
            now = self._table(destination)
            return now is not None and not set(pa.schema(now.schema().to_arrow()).names) <= set(schema.names)
        return False

    def _write(
        self,
        table: DeltaTable | None,
        request: BatchRequest,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        commit: CommitProperties,
    ) -> None:
        """A missing table is created on its own commit before the batch's: the batch's write then reads a table,
        so Delta's conflict checks apply to it (delta-rs checks none for a write that creates the table: a second
        run creating it at once committed its create on top of the first, replacing the table's schema and id;
        and a run taken over could not be fenced). Created once the first rows are read: a batch whose every file
        is set aside creates no table."""
        destination = request.destination
        uri = self.table_uri(destination)
        partition_by = partition_names(destination, schema) or None
        created = False
        target: str | DeltaTable = uri
        if table is None:
            first = next(batches, None)  # the first rows only: the end of the stream checks the run is still live
            created = self._create_table(uri, schema, partition_by, request)
            crash_point("table_created")
            rows = coalesced(itertools.chain([] if first is None else [first], batches))
        else:
            # Written on the snapshot read before the stream began: the stream's end checks that the run is still
            # live, and a fence committed after that check must be a concurrent commit to this write. The writer
            # settings are chosen on the first coalesced batch, which may hold the whole stream.
            joined = coalesced(batches)
            first = next(joined, None)
            rows = itertools.chain([] if first is None else [first], joined)
            target = table
        replacing = (request.mode == "overwrite" or request.replace) and not created  # a table just created is empty
        write_deltalake(
            target,
            pa.RecordBatchReader.from_batches(schema, rows),
            mode="overwrite" if replacing else "append",
            partition_by=partition_by,
            schema_mode="merge" if request.evolve else None,  # a table another run created meanwhile too
            storage_options=self.storage_options,
            commit_properties=commit,
            writer_properties=writer_properties(first),
            target_file_size=TARGET_FILE_SIZE,
        )

    def _create_table(self, uri: str, schema: pa.Schema, partition_by: list[str] | None, request: BatchRequest) -> bool:
        """The empty table, with the destination's properties (any: a delta-rs write takes only the protocol's own,
        `delta.*`, "Error parsing property 'owner':…" failed every run) and the application transaction 0 (created by
        this ingestion: write mode 'create new table' lets its batches in). Never retried on another commit: delta-rs
        would commit the create again on top of another run's (measured: 56 of 60 concurrent creates both
        committed), so the one that loses writes to the table the other created. A create that failed is judged by
        the table it left: none (raised), this ingestion's (its answer was lost: created), or another's. True: this
        call created the table (empty)."""
        destination = request.destination
        exclusive = request.mode == "create"
        try:
            DeltaTable.create(
                uri,
                schema=schema,
                mode="error",
                partition_by=partition_by,
                configuration=dict(destination.table_properties) or None,
                storage_options=self.storage_options,
                raise_if_key_not_exists=False,
                commit_properties=CommitProperties(
                    app_transactions=[Transaction(request.app_id, 0)], max_commit_retries=0
                ),
            )
        except (DeltaError, OSError) as exc:
            table = self._table(destination)
            if table is None:
                raise
            if table.version() == 0 and table.transaction_version(request.app_id) == 0:
                return True  # this create's answer was lost
            if exclusive:
                raise table_already_exists(destination) from exc
            log.info("table %s was created meanwhile (%s): writing to it", destination.full_name, type(exc).__name__)
            return False
        return True

    def _merge(
        self,
        table: DeltaTable | None,
        request: BatchRequest,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        commit: CommitProperties,
    ) -> None:
        """Upsert on the merge keys; within the batch the latest row per key wins (by order column, else file order).
        A replacing batch (full refresh) writes those latest rows in place of the table's."""
        destination = request.destination
        if table is not None and request.evolve and grown_structs(pa.schema(table.schema().to_arrow()), list(schema)):
            # Grown first: delta-rs's merge with merge_schema set the grown struct to NULL in every row it did not
            # match (measured with deltalake 1.6: the old rows lost the whole struct). Before the stream is read,
            # whose end checks the run is still live: the merge's snapshot must be older than that check.
            self.add_columns(destination, list(schema))
            table = DeltaTable(self.table_uri(destination), storage_options=self.storage_options)
        source = latest_per_key(
            pa.Table.from_batches(list(batches), schema), destination.merge_keys, destination.merge_order_by
        )
        if request.replace:
            self._write(table, request, schema, iter(source.to_batches()), commit)
            return
        if table is None:  # merged into even when this batch created it: another run's rows may be in by then
            uri = self.table_uri(destination)
            self._create_table(uri, schema, partition_names(destination, schema) or None, request)
            table = DeltaTable(uri, storage_options=self.storage_options)
        predicate = " AND ".join(f"t.`{key}` = s.`{key}`" for key in destination.merge_keys)
        (
            table.merge(
                source,
                predicate,
                source_alias="s",
                target_alias="t",
                merge_schema=request.evolve,
                writer_properties=WRITER_PROPERTIES,
                commit_properties=commit,
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )

    def _stream(self, request: BatchRequest, schema: pa.Schema, state: _StreamState) -> Iterator[pa.RecordBatch]:
        """Yield the batch's rows file by file, conformed to the target schema and stamped with lineage.

        A file that turns out unreadable before any of its rows were yielded is quarantined and
        skipped; one that fails half-way aborts the whole batch (nothing is committed) so the
        pipeline can retry the batch without it.

        Mid-sized files are read a few ahead on worker threads (Arrow's parsers release the GIL), whole, so their
        rows come in the same order and any error of theirs comes before their first row; small JSON-lines files
        are read in groups (core/formats/grouped.py), other small files inline, and large files stream.
        """
        stamp = LineageColumns(schema, request, request.destination.lineage_columns)
        partitions = [n for n in partition_names(request.destination, schema) if is_text(schema.field(n).type)]
        files = request.files
        grouped: dict[int, tuple[list[pa.RecordBatch], FileReadStats]] = {}
        tried_up_to = 0  # files before this index were part of a group read (or could not start one)
        with ThreadPoolExecutor(max_workers=_READ_THREADS, thread_name_prefix="read") as pool:
            ahead: dict[int, Future[tuple[list[pa.RecordBatch], FileReadStats]]] = {}
            scheduled = 0
            for index, info in enumerate(files):
                while scheduled < len(files) and scheduled <= index + _READ_AHEAD_FILES:
                    if _READ_AHEAD_MIN_BYTES < files[scheduled].size <= _READ_AHEAD_MAX_BYTES:
                        ahead[scheduled] = pool.submit(self._read_whole, request, files[scheduled], FileReadStats())
                    scheduled += 1
                outcome = state.outcomes.setdefault(info.path, FileOutcome())
                future = ahead.pop(index, None)
                stats = FileReadStats()
                yielded = False
                batches: Iterable[pa.RecordBatch]
                try:
                    if index >= tried_up_to:
                        tried_up_to = index + self._read_group(request, index, grouped)
                    if future is not None:
                        batches, stats = future.result()
                    elif index in grouped:
                        batches, stats = grouped.pop(index)
                    else:
                        batches = self._file_batches(request, info, stats)
                    for batch in batches:
                        yielded = True
                        if partitions:
                            check_partition_values(batch, partitions, info.path)
                        yield stamp.stamped(batch, info.path)
                except BadFileError as exc:
                    if yielded:
                        exc.field = info.path
                        state.abort = exc
                        raise
                    outcome.quarantine_reason, outcome.action = exc.message, exc.action
                    continue
                except AutoloaderError as exc:
                    state.abort = exc
                    raise
                except Exception as exc:  # any reader crash is this file's fault, not the batch's
                    bad = unreadable_file(info.path, exc)
                    if yielded:
                        state.abort = bad
                        raise bad from exc
                    outcome.quarantine_reason, outcome.action = bad.message, bad.action
                    continue
                outcome.records, outcome.bad_records = stats.records, stats.bad_records
                state.records += stats.records
                state.bad_records += stats.bad_records
                state.bytes_read += info.size
                if request.on_file_done is not None:
                    request.on_file_done(info)
        # Dropped records (mode dropmalformed) are not in `records`; the share is of every record read.
        dropped = request.format.options.mode == "dropmalformed"
        read = state.records + (state.bad_records if dropped else 0)
        if read and state.bad_records / read > request.max_bad_record_ratio:
            per_file = {
                path: (o.bad_records, o.records + (o.bad_records if dropped else 0))
                for path, o in state.outcomes.items()
                if o.quarantine_reason is None
            }
            worst = sorted((p for p, (bad, _) in per_file.items() if bad), key=lambda p: -per_file[p][0])
            named = ", ".join(f"{p} ({per_file[p][0]} of {per_file[p][1]})" for p in worst[:5])
            more = f" and {len(worst) - 5} more" if len(worst) > 5 else ""
            state.abort = TooManyBadRecords(
                f"{state.bad_records} of {read} records in this batch are malformed "
                f"({state.bad_records / read:.1%}, limit {request.max_bad_record_ratio:.0%}); "
                f"nothing was written. Malformed records in: {named}{more}.",
                "Look at the malformed records listed per file, fix the producer, or raise max_bad_record_ratio.",
                files=per_file,
            )
            raise state.abort
        if request.before_commit is not None:
            try:
                request.before_commit()
            except AutoloaderError as exc:  # e.g. the run was taken over: the writer gives up, nothing is committed
                state.abort = exc
                raise

    def _read_whole(
        self, request: BatchRequest, info: FileInfo, stats: FileReadStats
    ) -> tuple[list[pa.RecordBatch], FileReadStats]:
        """One small file's batches, read whole (on a worker thread)."""
        return list(self._file_batches(request, info, stats)), stats

    def _file_batches(self, request: BatchRequest, info: FileInfo, stats: FileReadStats) -> Iterator[pa.RecordBatch]:
        """One file's non-empty batches: conformed, ignored columns dropped, folder values added."""
        folders = file_partitions(request.storage, info.path, request.schema)
        data_schema = without_names(request.schema, folders)
        with open_for(request.storage, info.path, request.format) as stream:
            for batch in read_file(stream, info.path, request.format, data_schema, stats, size=info.size):
                if batch.num_rows:
                    yield finished_batch(request, batch, folders)

    def _read_group(
        self, request: BatchRequest, start: int, grouped: dict[int, tuple[list[pa.RecordBatch], FileReadStats]]
    ) -> int:
        """Read the run of small JSON-lines files from `request.files[start]` as one (core/formats/grouped.py),
        putting each file's batches in `grouped` by index; returns how many files the run spans (1 when there is
        no group to read there). Files whose rows the inference's parse gives are taken from it, the others read
        as one group. A group that cannot be read as one leaves its files out of `grouped`: they are then read one
        by one."""
        files = request.files
        if not can_group(request.format) or files[start].size > GROUP_FILE_MAX_BYTES:
            return 1
        windows = getattr(request.storage, "windows", {})
        first_folders = file_partitions(request.storage, files[start].path, request.schema)
        run: list[tuple[FileInfo, dict[str, str | None]]] = []
        total = 0
        for info in files[start : start + GROUP_MAX_FILES]:
            if info.size > GROUP_FILE_MAX_BYTES or info.path in windows or total + info.size > GROUP_MAX_BYTES:
                break
            folders = file_partitions(request.storage, info.path, request.schema)
            if folders.keys() != first_folders.keys():
                break
            run.append((info, folders))
            total += info.size
        if len(run) < 2:
            return 1
        data_schema = without_names(request.schema, first_folders)
        parsed = self._parsed_pieces(request, [info for info, _ in run], data_schema)
        self._put_grouped(request, start, run, parsed, grouped)
        left = [offset for offset, piece in enumerate(parsed) if piece is None]
        if len(left) < 2:
            return len(run)  # one file left over is read alone
        contents = []
        for offset in left:
            path = run[offset][0].path
            try:
                with open_for(request.storage, path, request.format) as stream:
                    contents.append((path, stream.read()))
            except BadFileError:  # this file cannot be opened: read alone, it is quarantined with its reason
                return len(run)
        pieces = read_group(contents, request.format, data_schema)
        if pieces is not None:
            read: list[pa.Table | None] = [None] * len(run)
            for offset, piece in zip(left, pieces, strict=True):
                read[offset] = piece
            self._put_grouped(request, start, run, read, grouped)
        return len(run)

    def _parsed_pieces(
        self, request: BatchRequest, files: list[FileInfo], data_schema: pa.Schema
    ) -> list[pa.Table | None]:
        """Each file's rows from the parse this run's inference kept, where it was kept and the reader would make
        the same rows of it (json_reader.parsed_rows) with nothing rescued; None where the file is to be read."""
        kept = self._parsed.existing(request.storage)
        tables = kept.take(files) if kept is not None else [None] * len(files)
        batch, fits = parsed_rows(tables, data_schema, request.format)
        if batch is None:
            return [None] * len(files)
        counts = [table.num_rows for table, fit in zip(tables, fits, strict=True) if fit and table is not None]
        pieces = iter(split_rows(pa.Table.from_batches([batch]), counts))
        found = [next(pieces) if fit else None for fit in fits]
        # As in a group read, a file with rescued values is read (alone, or with the other files left over).
        return [None if p is None or p.column(RESCUED).null_count != p.num_rows else p for p in found]

    @staticmethod
    def _put_grouped(
        request: BatchRequest,
        start: int,
        run: list[tuple[FileInfo, dict[str, str | None]]],
        pieces: list[pa.Table | None],
        grouped: dict[int, tuple[list[pa.RecordBatch], FileReadStats]],
    ) -> None:
        """Each run file's batches, where its piece is known, in `grouped` by the file's index."""
        for offset, ((info, folders), piece) in enumerate(zip(run, pieces, strict=True)):
            if piece is None:
                continue
            batches = [finished_batch(request, b, folders) for b in piece.to_batches() if b.num_rows]
            grouped[start + offset] = batches, FileReadStats(records=piece.num_rows, bytes_read=info.size)

    def _file_sizes(self, table: DeltaTable | None) -> dict[str, int]:
        if table is None:
            return {}
        actions = pa.table(table.get_add_actions(flatten=True))
        return dict(zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(), strict=True))


def coalesced(batches: Iterable[pa.RecordBatch], rows: int = WRITE_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The batches joined into batches of at least `rows` rows (the last may be smaller; a large one passes as it
    is), in order. The reader yields a batch per small file (2,000 JSON files: 2,000 batches of 200 rows) and per
    CSV block, and the Delta writer pays for every batch it is handed."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not held and batch.num_rows >= rows:
            yield batch
            continue
        held.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.concat_batches(held)
            held, count = [], 0
    if held:
        yield pa.concat_batches(held)


def finished_batch(request: BatchRequest, batch: pa.RecordBatch, folders: dict[str, str | None]) -> pa.RecordBatch:
    """A file's read batch with the ignored columns dropped from `_rescued_data` and its folder values added."""
    if request.ignored_columns:
        batch = drop_rescued_keys(batch, request.ignored_columns)
    if folders:
        batch = add_partitions(batch, request.schema, folders)
    return batch


def file_partitions(storage: Storage, path: str, schema: pa.Schema) -> dict[str, str | None]:
    """One file's folder values for the columns of `schema` (these columns are filled from the folders, not read).

    A column the path has no folder for is read from the data as usual."""
    wanted = storage.partition_columns
    if wanted is not None and not wanted:
        return {}
    found = partition_values(relative_path(storage.root, path), None)
    return {k: v for k, v in found.items() if k in schema.names and (wanted is None or k in wanted)}


def without_names(schema: pa.Schema, names: dict[str, str | None]) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in names]) if names else schema


def add_partitions(batch: pa.RecordBatch, schema: pa.Schema, folders: dict[str, str | None]) -> pa.RecordBatch:
    """A batch read without the partition columns, as `output_schema(schema)` with the folder values in them
    (a value the column type cannot hold is NULL there and kept as text in `_rescued_data`)."""
    target = read_schema(schema)
    columns = []
    for f in target:
        index = batch.schema.get_field_index(f.name)
        columns.append(batch.column(index) if index >= 0 else pa.nulls(batch.num_rows, f.type))
    return fill_partitions(pa.RecordBatch.from_arrays(columns, schema=target), folders, target, RESCUED)


def refuse_lossy_widening(
    destination: DestinationConfig, table: DeltaTable, current: pa.Schema, wider: dict[str, pa.DataType]
) -> None:
    """Raise SchemaChangeError when a stored integer would change as a double (beyond 2**53): the lattice
    calls bigint -> double safe, and for the values a table holds it checks, so no stored value is altered."""
    checked = [
        name
        for name, t in wider.items()
        if pa.types.is_floating(t) and name in current.names and pa.types.is_int64(current.field(name).type)
    ]
    if not checked:
        return
    for batch in table.to_pyarrow_dataset().to_batches(columns=checked):
        for name in checked:
            column = batch.column(name)
            as_double = pc.cast(column, pa.float64(), safe=False)
            changed = pc.not_equal(pc.cast(as_double, pa.int64(), safe=False), column)
            if pc.any(changed).as_py():
                example = column.filter(pc.fill_null(changed, False))[0].as_py()
                raise SchemaChangeError(
                    f"Column '{name}' of {destination.full_name} holds integers a double cannot hold exactly "
                    f"(e.g. {example}); widening it from bigint to double would change them, so nothing was loaded.",
                    f"Give '{name}' a type hint decimal(38,s) or string and load into a new table, or set the schema "
                    "policy to rescue (values that do not fit go to _rescued_data).",
                )


class LineageColumns:
    """A batch's rows stamped with the file's path in `_rescued_data` and, when on, the lineage columns.

    The lineage columns are slices of arrays made once per file and grown as needed: repeating the path for every
    block of a 1 GiB CSV cost about 1 ms a block (a string column of the block's 8,700 rows each time, with the GIL
    held), a slice costs a microsecond."""

    def __init__(self, schema: pa.Schema, request: BatchRequest, lineage: bool):
        self._schema = schema
        self._on = lineage
        self._stamps = (
            pa.scalar(request.ingested_at, pa.timestamp("us", tz="UTC")),
            pa.scalar(request.run_id, pa.int64()),
        )
        self._path: str | None = None
        self._columns: list[pa.Array] = []

    def stamped(self, batch: pa.RecordBatch, path: str) -> pa.RecordBatch:
        batch = tag_rescued(batch, path)
        if not self._on:
            return batch
        n = batch.num_rows
        if path != self._path or n > len(self._columns[0]):
            size = max(n, 2 * len(self._columns[0])) if path == self._path else n
            self._path = path
            self._columns = [pa.repeat(scalar, size) for scalar in (pa.scalar(path, pa.string()), *self._stamps)]
        extra = [column.slice(0, n) for column in self._columns]
        return pa.RecordBatch.from_arrays([*batch.columns, *extra], schema=self._schema)


def check_partition_values(batch: pa.RecordBatch, columns: list[str], path: str) -> None:
    """A text value too long to be a partition folder's name (`column=value`) is the file's error, named with the
    column and what to do: delta-rs panicked on it and the batch failed at every run, the other files of the batch
    with it, with an error naming neither (an outside attack)."""
    for column in columns:
        values = batch.column(batch.schema.get_field_index(column))
        room = partition_folder_room(column)
        longest = pc.max(pc.binary_length(values)).as_py() or 0
        if longest * 3 <= room:
            continue
        for value in pc.unique(values.filter(pc.greater(pc.binary_length(values), room // 3))).to_pylist():
            size = folder_bytes(value)
            if size > room:
                raise partition_value_too_long(
                    path, column, f"{size} bytes as a path, {room} at most: {value[:60]!r}..."
                )


def partition_names(destination: DestinationConfig, schema: pa.Schema) -> list[str]:
    """The partition columns as the data spells them: matched regardless of case, as Spark matches them (delta-rs
    refused `Part` for a column `part` with "not found in schema" and an action about the warehouse)."""
    names = []
    for wanted in destination.partition_columns:
        found = spelled_as(wanted, schema.names)
        if found is None:
            raise ConfigError(
                f"Partition column {wanted!r} of table {destination.full_name} is not a column of the data "
                f"({', '.join(schema.names)}).",
                "Partition by columns of the data: while the ingestion is a draft, edit destination.partition_columns; "
                "once it is activated the destination is fixed, so create a new ingestion (and delete this one).",
                field="destination.partition_columns",
            )
        names.append(found)
    return names


def spelled_as(wanted: str, names: list[str]) -> str | None:
    """`wanted` as `names` spell it: exactly, else regardless of case (as Spark matches columns); None if absent."""
    if wanted in names:
        return wanted
    return next((name for name in names if name.lower() == wanted.lower()), None)


def z_order_names(destination: DestinationConfig, schema: pa.Schema) -> list[str]:
    """The Z-order columns as the table spells them (a nested `meta.k` by its top-level column); one the table does
    not have is passed on as given, for delta-rs to refuse."""
    names = []
    for wanted in destination.z_order_columns:
        found = spelled_as(wanted, schema.names)
        head, dot, rest = wanted.partition(".")
        if found is None and dot:
            top = spelled_as(head, schema.names)
            found = None if top is None else f"{top}.{rest}"
        names.append(found or wanted)
    return names


def sql_literal(value: object, data_type: pa.DataType | None = None) -> str:
    """A DataFusion SQL literal (a dict as a struct, a list as an array); the column's type casts it, as an UPDATE
    does. delta-rs's own `new_values` quotes a string without escaping it (a default of O'Brien failed as an
    unterminated literal). With the column's `data_type`, NULLs and empty lists inside are typed: array elements of
    different literal types (`{"a": 1}` beside `{"b": "x"}`, `[1]` beside `[]`) made arrow-rs panic."""
    if value is None or (isinstance(value, list) and not value):
        empty = "NULL" if value is None else "make_array()"
        named = _arrow_name(data_type) if data_type is not None else None
        return empty if named is None else f"arrow_cast({empty}, {sql_literal(named)})"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        fields = {f.name: f.type for f in data_type} if data_type is not None and pa.types.is_struct(data_type) else {}
        items = (f"{sql_literal(k)}, {sql_literal(v, fields.get(k))}" for k, v in value.items())
        return "named_struct(" + ", ".join(items) + ")"
    if isinstance(value, list):
        item = data_type.value_type if data_type is not None and pa.types.is_list(data_type) else None
        return "make_array(" + ", ".join(sql_literal(v, item) for v in value) + ")"
    return "'" + str(value).replace("'", "''") + "'"


_ARROW_NAMES = {
    pa.int8(): "Int8",
    pa.int16(): "Int16",
    pa.int32(): "Int32",
    pa.int64(): "Int64",
    pa.float32(): "Float32",
    pa.float64(): "Float64",
    pa.string(): "Utf8",
    pa.large_string(): "LargeUtf8",
    pa.string_view(): "Utf8View",
    pa.bool_(): "Boolean",
}


def _arrow_name(data_type: pa.DataType) -> str | None:
    """`data_type` as DataFusion's arrow_cast names it, or None for a type it is not written for here."""
    if pa.types.is_list(data_type):
        inner = _arrow_name(data_type.value_type)
        return None if inner is None else f"List({inner})"
    if pa.types.is_struct(data_type):
        parts = [(f.name, _arrow_name(f.type)) for f in data_type]
        if any(name is None or '"' in field for field, name in parts):
            return None
        return "Struct(" + ", ".join(f'"{field}": {name}' for field, name in parts) + ")"
    return _ARROW_NAMES.get(data_type)


_POS, _VALID = "__al pos", "__al valid"  # a space, which no stored top-level name holds (core/formats/names.py)


def latest_per_key(table: pa.Table, keys: list[str], order_by: str | None) -> pa.Table:
    """One row per merge key: the highest `order_by` (NULL lowest, as on Spark), then the batch's latest row. A row
    with a NULL in its key is kept as it is: the MERGE matches it with nothing and inserts it, so collapsing such
    rows here dropped all but one of them without a word (an outside attack), while later runs inserted theirs."""
    missing = [k for k in [*keys, *([order_by] if order_by else [])] if k not in table.column_names]
    if missing:
        raise TableError(
            f"Merge column(s) {', '.join(missing)} are not in the incoming data.",
            "Pick merge keys and the ordering column from the detected schema.",
        )
    unkeyed = functools.reduce(pc.or_, [pc.is_null(table[k]) for k in keys])
    if pc.any(unkeyed).as_py():
        latest = latest_per_key(table.filter(pc.invert(unkeyed)), keys, order_by)
        return pa.concat_tables([latest, table.filter(unkeyed)])
    table = table.append_column(_POS, pa.array(range(table.num_rows), pa.int64()))
    if order_by:
        valid = pc.is_valid(table[order_by])  # NULL lowest; NaN highest, as Spark ranks them
        ranked = table.append_column(_VALID, valid)
        order = pc.sort_indices(ranked, [(_VALID, "ascending"), (order_by, "ascending"), (_POS, "ascending")])
        table = table.take(order)
        table = table.set_column(table.schema.get_field_index(_POS), _POS, pa.array(range(table.num_rows), pa.int64()))
    last = table.group_by(keys, use_threads=False).aggregate([(_POS, "max")])
    return table.filter(pc.is_in(table[_POS], value_set=last[_POS + "_max"])).drop_columns([_POS])

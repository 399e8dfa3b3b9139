"""SparkEngine: the engine port over a cluster, delegating to the session, the reader and the table's format."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pyarrow as pa

from core.config import DestinationConfig, FormatConfig
from core.engines import inference
from core.engines.base import BatchRequest, BatchResult, CompactionResult, InferResult, table_already_exists
from core.engines.spark.common import ROW_FILE, from_arrow, to_arrow
from core.engines.spark.formats import TABLE_FORMATS, OtherFormat, table_formats
from core.engines.spark.parquet import BATCH_COLUMN
from core.engines.spark.reading import Batch, Reader
from core.engines.spark.session import ClusterCheck, ClusterTarget, PooledSession, connect_session, require_pyspark
from core.engines.spark.table import TableFormat, Tables, rows_by_file
from core.errors import ConfigError, TableError
from core.storage.base import FileInfo, Storage

T = TypeVar("T")
log = logging.getLogger(__name__)


class SparkEngine:
    """The engine contract over one pooled Spark Connect session per cluster (recreated when the server lost it)."""

    name = "spark"

    def __init__(self, target: ClusterTarget, connect: Callable[[ClusterTarget], Any] = connect_session):
        require_pyspark()
        if target.table_format not in TABLE_FORMATS:
            raise ConfigError(
                f"Unknown table format '{target.table_format}'.", "Use delta, iceberg or parquet.", field="table_format"
            )
        self.target = target
        self._pool = PooledSession(target, connect)
        self._tables = Tables(target)
        self._reader = Reader(target)
        self._formats = table_formats(self._tables)

    # --- session ------------------------------------------------------------------------------------------------
    def session(self) -> Any:
        return self._pool.get()

    def close(self) -> None:
        self._pool.close()

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run `fn(spark)`; a session the server no longer knows is replaced once; errors come out typed."""
        return self._pool.call(what, fn)

    def check(self) -> ClusterCheck:
        """Test connection: reachable, Spark version, and whether the cluster has the table format's data source."""
        fmt = self._formats[self.target.table_format]
        return self._pool.check(lambda spark: fmt.probe(spark, self.target.name))

    def _format(self, provider: str) -> TableFormat:
        return self._formats.get(provider) or OtherFormat(self._tables, provider)

    # --- table --------------------------------------------------------------------------------------------------
    def qualified(self, destination: DestinationConfig) -> tuple[str, str, str]:
        """(catalog, database, table) on the cluster; the destination's default catalog means the cluster's."""
        return self._tables.qualified(destination)

    def table_uri(self, destination: DestinationConfig) -> str:
        return self._tables.uri(destination)

    def table_schema(self, destination: DestinationConfig) -> pa.Schema | None:
        info = self.call("reading the table schema", lambda spark: self._tables.info(spark, destination))
        if info is None:
            return None
        return to_arrow([f for f in info.schema.fields if f.name != BATCH_COLUMN])

    def committed_version(self, destination: DestinationConfig, app_id: str) -> int | None:
        def read(spark: Any) -> int | None:
            info = self._tables.info(spark, destination)
            return None if info is None else self._format(info.provider).committed(spark, info, app_id)

        return self.call("reading the committed batch", read)

    def count_rows_from(
        self, destination: DestinationConfig, paths: list[str], run_id: int | None = None
    ) -> dict[str, int]:
        if not paths:
            return {}

        def count(spark: Any) -> dict[str, int]:
            info = self._tables.info(spark, destination)
            if info is None or "_source_file" not in info.schema.names:
                return {}
            by_run = run_id if "_run_id" in info.schema.names else None
            return rows_by_file(spark.table(info.name), paths, by_run)

        return self.call("counting rows per file", count)

    def read_table(self, destination: DestinationConfig) -> pa.Table:
        """The whole table as Arrow (tests and small previews; not for large tables)."""

        def read(spark: Any) -> pa.Table:
            table = spark.table(self._tables.name(destination))
            table = table.drop(BATCH_COLUMN) if BATCH_COLUMN in table.columns else table
            return table.toArrow()

        return self.call("reading the table", read)

    def settle_overwrite(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> None:
        def settle(spark: Any) -> None:
            info = self._tables.info(spark, destination)
            if info is not None:
                self._format(info.provider).settle_overwrite(spark, info, app_id, batch_seq)

        self.call("finishing an overwrite", settle)

    def fence_batch(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> None:
        def fence(spark: Any) -> None:
            info = self._tables.info(spark, destination)
            if info is not None:
                self._format(info.provider).fence(spark, info, app_id, batch_seq)

        self.call("fencing an interrupted run's batch", fence)

    def is_fence(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> bool:
        def read(spark: Any) -> bool:
            info = self._tables.info(spark, destination)
            return info is not None and self._format(info.provider).is_fence(spark, info, app_id, batch_seq)

        return self.call("reading the table's fences", read)

    def after_run(self, destination: DestinationConfig) -> None:
        if not destination.z_order_columns:
            return

        def optimize(spark: Any) -> None:
            info = self._tables.info(spark, destination)
            if info is not None:
                self._format(info.provider).zorder(spark, info, destination)

        self.call("optimizing the table (Z-order)", optimize)

    def compact(self, destination: DestinationConfig) -> CompactionResult:
        def compact(spark: Any) -> CompactionResult:
            info = self._tables.existing(spark, destination)
            return self._format(info.provider).compact(spark, info)

        return self.call("compacting the table", compact)

    def vacuum(self, destination: DestinationConfig, retention_hours: int, allow_short: bool = False) -> int:
        def vacuum(spark: Any) -> int:
            info = self._tables.existing(spark, destination)
            return self._format(info.provider).vacuum(spark, info, retention_hours, allow_short)

        return self.call("vacuuming the table", vacuum)

    def drop_table(self, destination: DestinationConfig) -> None:
        self.call(
            "dropping the table", lambda spark: spark.sql(f"DROP TABLE IF EXISTS {self._tables.name(destination)}")
        )

    # --- schema -------------------------------------------------------------------------------------------------
    def drops_case_variants(self, fmt: FormatConfig) -> bool:
        """Spark's JSON reader matches keys by exact spelling: `name` beside a column `Name` is read under no column.
        CSV headers are set aside too (not checked); Parquet columns resolve without regard to case (Spark's
        default `spark.sql.caseSensitive=false`), so their values reach the column."""
        return fmt.type in ("json", "csv")

    def infer_schema(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> InferResult:
        """JSON, CSV and Parquet: the shared inference (core/engines/inference.py), the embedded engine's types
        and partition columns, read through `storage` by the service. Formats only a cluster reads (orc, xml,
        text, avro): Spark's own reader infers them on the cluster."""
        manual = inference.declared_schema(fmt)
        if manual is not None:
            return InferResult(manual)
        self._reader.check_source(files)
        if fmt.type in inference.SHARED_FORMATS:
            return inference.infer_schema(storage, files, fmt)
        return self.call(
            "inferring the schema", lambda spark: self._reader.infer(with_source(spark, storage), files, fmt)
        )

    def infer_each(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> dict[str, pa.Schema]:
        manual = inference.declared_schema(fmt)
        if manual is not None:
            return {f.path: manual for f in files}
        self._reader.check_source(files)
        if fmt.type in inference.SHARED_FORMATS:
            return inference.infer_each(storage, files, fmt)
        return self.call(
            "inferring the files' schemas",
            lambda spark: self._reader.infer_each(with_source(spark, storage), files, fmt),
        )

    def count_records(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> dict[str, int]:
        """Records per file (files held for review). Parquet from the footers, by the service: Spark's own read
        of a file with a nanosecond timestamp fails (`PARQUET_TYPE_ILLEGAL`), which failed the run holding it."""
        self._reader.check_source(files)
        if fmt.type == "parquet":
            return inference.parquet_row_counts(storage, files)
        return self.call(
            "counting records", lambda spark: self._reader.count_records(with_source(spark, storage), files, fmt)
        )

    # --- schema changes -----------------------------------------------------------------------------------------
    def add_columns(self, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        def add(spark: Any) -> None:
            info = self._tables.existing(spark, destination)
            self._format(info.provider).add_columns(spark, info, from_arrow(pa.schema(fields)))

        self.call("adding columns", add)

    def adds_nested_fields(self, destination: DestinationConfig) -> bool:
        info = self.call("reading the table", lambda spark: self._tables.info(spark, destination))
        return info is None or self._format(info.provider).adds_nested_fields

    def widen_columns(self, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        def widen(spark: Any) -> None:
            info = self._tables.existing(spark, destination)
            self._format(info.provider).widen(spark, info, destination, fields)

        self.call("widening column types", widen)

    def fill_column(self, destination: DestinationConfig, column: str, value: object) -> None:
        def fill(spark: Any) -> None:
            info = self._tables.existing(spark, destination)
            self._format(info.provider).fill(spark, info, destination, column, value)

        self.call("filling a column", fill)

    # --- load ---------------------------------------------------------------------------------------------------
    def load_batch(self, request: BatchRequest) -> BatchResult:
        self._reader.check_source(request.files)
        tag = f"autoloader-{request.app_id}-{request.batch_seq}"

        def load(spark: Any) -> BatchResult:
            with_source(spark, request.storage)
            spark.addTag(tag)
            try:
                result = self._load(spark, request)
            finally:
                spark.removeTag(tag)
            result.engine_job_id = tag
            return result

        return self.call(f"loading batch {request.batch_seq}", load)

    def _load(self, spark: Any, request: BatchRequest, one_pass: bool = True) -> BatchResult:
        destination = request.destination
        info = self._tables.info(spark, destination)
        fmt = self._format(info.provider if info is not None else self.target.table_format)
        if info is not None:
            committed = fmt.committed(spark, info, request.app_id)
            if committed is not None and committed >= request.batch_seq:
                # The outcomes decided before the commit (files set aside) stand; the others are counted.
                return BatchResult(outcomes=dict(request.outcomes), already_committed=True)
            if request.mode == "create" and committed is None and not spark.table(info.name).isEmpty():
                raise table_already_exists(destination)
        if request.mode == "merge" and not fmt.supports_merge:
            raise TableError(
                f"Write mode merge needs a delta or iceberg table; {destination.full_name} is {fmt.name}.",
                "Use a cluster whose table format is delta or iceberg, or switch the write mode to append/overwrite.",
            )
        # A table at a location of the user's is written only once it exists: a table created by a write that then
        # stopped is dropped (`_load_in_one_pass`), and a dropped external table's files would stay there.
        if one_pass and (info is not None or destination.location is None):
            loaded = self._load_in_one_pass(spark, request, fmt, info)
            if loaded is not None:
                return loaded
        batch = self._reader.read_batch(spark, request)
        if batch.rows == 0:
            cleared = request.replace and info is not None
            if request.replace and info is not None:
                fmt.clear(spark, request, info)
            _files_done(request, batch)
            return BatchResult(batch.outcomes, bytes_read=batch.bytes_read, written=cleared)
        return self._write(spark, request, fmt, info, batch)

    def _load_in_one_pass(self, spark: Any, request: BatchRequest, fmt: TableFormat, info: Any) -> BatchResult | None:
        """The batch read and written at once (`Reader.one_pass_batch`), or, where that write stops, loaded the
        careful way; None where the batch is to be counted first."""
        destination = request.destination

        def finds_run_rows(output: list[str]) -> bool:
            return fmt.finds_run_rows(spark, info, destination, info.schema.names if info is not None else output)

        one = None
        try:
            one = self._reader.one_pass_batch(spark, request, info is None, finds_run_rows)
            return None if one is None else self._write(spark, request, fmt, info, one)
        except Exception as exc:
            if not self._reader.one_pass_stopped(exc):
                raise
            first_line = str(exc).strip().split("\n", 1)[0][:300]
            log.info("batch %s of %s is counted first: %s", request.batch_seq, destination.full_name, first_line)
            self._reader.count_first(request.app_id)
            # Read again: if only the write's answer was lost, the batch is committed.
            made_table = one is not None and one.made_table
            try:
                result = self._load(spark, request, one_pass=False)
            except Exception:
                # Over the bad-record limit, say: the pipeline sets the files aside and may write none of them.
                if made_table:
                    self._drop_if_empty(spark, destination, quietly=True)
                raise
            if made_table and not result.rows_written:
                self._drop_if_empty(spark, destination)
            return result

    def _write(self, spark: Any, request: BatchRequest, fmt: TableFormat, info: Any, batch: Batch) -> BatchResult:
        """Commit the batch into the table; a one-pass batch learns its per-file counts from the write."""
        destination = request.destination
        request.outcomes.update(batch.outcomes)
        self._tables.ensure_database(spark, destination)
        if info is None:  # before the check: a run taken over after it finds a table to fence (Engine.fence_batch)
            info, batch.made_table = fmt.create(spark, destination, batch.data)
        elif request.evolve:
            fmt.add_columns(spark, info, batch.data.drop(ROW_FILE).schema)
        if request.before_commit is not None:
            request.before_commit()
        rows, written = fmt.commit(spark, request, batch.data, info)
        if batch.settle is not None:
            batch.settle(rows, lambda paths: fmt.rows_per_file(spark, info, request, paths))
            request.outcomes.update(batch.outcomes)
            if batch.rows != rows:
                log.warning("batch %s wrote %s rows, counted %s per file", request.batch_seq, rows, batch.rows)
        _files_done(request, batch)
        return BatchResult(batch.outcomes, rows_written=rows, bytes_read=batch.bytes_read, bytes_written=written)

    def _drop_if_empty(self, spark: Any, destination: DestinationConfig, quietly: bool = False) -> None:
        """Drop the table a stopped one-pass write created, when the batch's careful load then wrote nothing to it
        (all its files set aside, or the load failed): it was typed by those files, and the counted path would have
        created none. A row another run wrote to it meanwhile keeps it. `quietly`: a failure is logged, so that the
        load's own error is the one raised."""
        try:
            info = self._tables.info(spark, destination)
            if info is not None and spark.table(info.name).isEmpty():
                spark.sql(f"DROP TABLE IF EXISTS {info.name}")
                log.info("dropped the empty table %s that a stopped write had created", info.name)
        except Exception:
            if not quietly:
                raise
            log.warning("could not drop the empty table of %s", destination.full_name, exc_info=True)


def with_source(spark: Any, storage: Storage) -> Any:
    """The session, told how to reach the source (its S3 endpoint and access key, scoped to its bucket: see
    `Storage.cluster_options`), before it reads the source's files."""
    for key, value in storage.cluster_options().items():
        spark.conf.set(key, value)
    return spark


def _files_done(request: BatchRequest, batch: Batch) -> None:
    if request.on_file_done is not None:
        for info in batch.loaded:
            request.on_file_done(info)

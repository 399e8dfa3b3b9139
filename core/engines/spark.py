"""The Spark engine: a Spark cluster reached through Spark Connect reads the files and writes the table.

The service stays the control plane (discovery, ledger, schema decisions); this engine sends the cluster
exactly the discovered file list and commits one batch per call, under the same contract as the embedded one.

Exactly once, per table format:
- delta: the write carries `txnAppId` = app id and `txnVersion` = batch sequence (Delta skips a version it has
  seen); `committed_version` reads the `txn` actions back from the table's `_delta_log`.
- iceberg: the snapshot carries `autoloader.app_id` / `autoloader.batch_seq` summary properties.
- parquet (no transaction log): every batch is written to a hidden staging folder under the table location
  (`_autoloader_staging/<batch>`; names starting with `_` are invisible to readers) and then made visible in
  one metastore call, `ALTER TABLE … ADD PARTITION (…, _autoloader_batch = '<app id>-<seq>') LOCATION …`.
  The partition's existence is the commit marker: a crash before it leaves nothing visible, a crash after it
  leaves a committed batch that `committed_version` (SHOW PARTITIONS) reports. Such tables therefore carry the
  extra partition column `_autoloader_batch`.
MERGE is idempotent by nature (re-applying the same upsert gives the same table), so a batch re-run after a
crash cannot duplicate rows even where no marker is kept (iceberg merges).

pyspark is imported lazily: the embedded engine and the service work without it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

import pyarrow as pa

from core.config import DestinationConfig, FormatConfig
from core.engines.base import BatchRequest, BatchResult, FileOutcome, InferResult
from core.engines.spark_errors import (
    format_error,
    is_auth_failure,
    is_stale_session,
    is_unreachable,
    translate,
)
from core.errors import AutoloaderError, ConfigError, TableError, TooManyBadRecords
from core.faults import crash_point
from core.formats import apply_hints, nulls_to_string, schema_from_json
from core.schema import RESCUED
from core.storage.base import FileInfo, Storage

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_COLUMN = "_autoloader_batch"
STAGING_DIR = "_autoloader_staging"
DEFAULT_DESTINATION_CATALOG = DestinationConfig.model_fields["catalog"].default
INSTALL_HINT = "pip install -e '.[spark]'"
QUARANTINE_ACTION = "Check the file's format, or fix/remove it; it is quarantined and the rest of the run continues."
TABLE_FORMATS = ("delta", "iceberg", "parquet")

# Internal columns of a batch DataFrame, dropped before the write.
_PATH, _SIZE, _BAD = "__al_path", "__al_size", "__al_bad"
_CORRUPT_FORMATS = ("json", "csv", "xml")

_Partition = tuple[dict[str, object], str]  # (partition values, folder)


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """What the engine needs to know about a registered cluster."""

    name: str
    connect_url: str
    token: str | None = None
    table_format: str = "delta"
    catalog: str = "spark_catalog"
    kind: str = "remote"

    def url(self) -> str:
        """The Spark Connect URL with the token as a parameter (`sc://host:port/;token=…`)."""
        url = self.connect_url.rstrip("/")
        if not self.token:
            return url
        base, _, params = url.partition("/;")
        return f"{base}/;{params};token={self.token}" if params else f"{base}/;token={self.token}"


@dataclass(slots=True)
class ClusterCheck:
    """The answer of "test connection"."""

    reachable: bool
    spark_version: str | None = None
    table_format: str = ""
    format_ok: bool = False
    message: str = ""
    action: str = ""
    seconds: float = 0.0
    error_code: str | None = None


@dataclass(slots=True)
class _TableInfo:
    name: str
    provider: str
    location: str
    schema: Any  # pyspark StructType


@dataclass(slots=True)
class _FileStats:
    records: int = 0
    bad: int = 0
    rescued: int = 0
    size: int = 0


@dataclass(slots=True)
class _Batch:
    """A batch read and checked on the cluster, not yet written."""

    data: Any  # pyspark DataFrame with the output columns
    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    loaded: list[FileInfo] = field(default_factory=list)
    rows: int = 0
    bytes_read: int = 0


def require_pyspark() -> None:
    try:
        import pyspark.sql.connect.session  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "The Spark engine needs pyspark with Spark Connect support, which is not installed.",
            f"Install the Spark extra: {INSTALL_HINT}",
            detail=repr(exc),
        ) from None


def connect_session(target: ClusterTarget) -> Any:
    """A new Spark Connect session whose retries are bounded: a dead cluster fails in seconds, not 10 minutes."""
    from pyspark.sql.connect.client.retries import DefaultPolicy
    from pyspark.sql.connect.session import SparkSession

    session = SparkSession.builder.remote(target.url()).create()
    session.client.set_retry_policies([DefaultPolicy(max_retries=3, initial_backoff=50, max_backoff=500)])
    return session


# --- pure helpers (unit-testable without a cluster) -------------------------------------------------------------
def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def sql_value(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return literal(value)


def batch_value(app_id: str, seq: int) -> str:
    return f"{app_id}-{seq}"


def parse_batch_value(value: str) -> tuple[str, int] | None:
    app_id, _, seq = value.rpartition("-")
    return (app_id, int(seq)) if app_id and seq.isdigit() else None


def spark_path(path: str) -> str:
    """A ledger path as the cluster reads it: local paths as file: URIs, s3:// through the s3a connector."""
    if path.startswith("/"):
        return "file://" + path
    if path.startswith("s3://"):
        return "s3a://" + path[len("s3://") :]
    return path


def committed_from_partitions(partitions: list[str], app_id: str) -> int | None:
    """The highest batch sequence of `app_id` among SHOW PARTITIONS lines (`country=DE/_autoloader_batch=…`)."""
    best: int | None = None
    for line in partitions:
        for part in line.split("/"):
            name, _, raw = part.partition("=")
            if name != BATCH_COLUMN:
                continue
            parsed = parse_batch_value(unquote(raw))
            if parsed is not None and parsed[0] == app_id:
                best = parsed[1] if best is None else max(best, parsed[1])
    return best


def reader_options(fmt: FormatConfig, infer: bool) -> dict[str, str]:
    """DataFrameReader options for the ingestion's format; bad records stay (PERMISSIVE) in `_rescued_data`."""
    opts = fmt.options
    infer_types = fmt.schema_.infer_types
    options: dict[str, str] = {}
    if fmt.type in _CORRUPT_FORMATS:
        options |= {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": RESCUED}
    if fmt.type == "json":
        options["multiLine"] = str(opts.multiline).lower()
        if infer and not infer_types:
            options["primitivesAsString"] = "true"
    elif fmt.type == "csv":
        options |= {"header": str(opts.header).lower(), "sep": opts.delimiter, "quote": opts.quote}
        options["multiLine"] = str(opts.multiline).lower()
        if opts.escape:
            options["escape"] = opts.escape
        if infer:
            options["inferSchema"] = str(infer_types).lower()
        elif opts.header:
            # Spark maps CSV columns by position; with the header checked, a file whose columns are in
            # another order fails (and is quarantined) instead of loading values into the wrong columns.
            options["enforceSchema"] = "false"
    elif fmt.type == "xml":
        options["rowTag"] = opts.row_tag or "row"
        if infer:
            options["inferSchema"] = str(infer_types).lower()
    elif fmt.type in ("parquet", "orc") and infer:
        options["mergeSchema"] = "true"
    if opts.compression not in ("auto", "none") and fmt.type in ("json", "csv", "text", "xml"):
        options["compression"] = {"bz2": "bzip2"}.get(opts.compression, opts.compression)
    return options


def ledger_path_column(column: Any) -> Any:
    """`_metadata.file_path` in the ledger's form: `file:/data/x` → `/data/x`, `s3a://b/k` → `s3://b/k`, unescaped."""
    from pyspark.sql.connect import functions as F

    path = F.regexp_replace(column, r"^file:(//)?", "")
    path = F.regexp_replace(path, r"^s3[an]://", "s3://")
    return F.url_decode(F.regexp_replace(path, r"\+", "%2B"))


def without_keys(rescued: Any, keys: frozenset[str]) -> Any:
    """`_rescued_data` without the columns the user chose to ignore (raw text that is not a JSON object is kept)."""
    from pyspark.sql.connect import functions as F

    if not keys:
        return rescued
    parsed = F.from_json(rescued, "map<string,string>")
    kept = F.map_filter(parsed, lambda k, _: ~k.isin(sorted(keys)))
    cleaned = F.when(F.size(kept) > 0, F.to_json(kept))
    return F.when(parsed.isNull(), rescued).otherwise(cleaned)


def merge_sql(table: str, view: str, keys: list[str]) -> str:
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    return f"MERGE INTO {table} t USING {view} s ON {on} WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"


def add_partitions_sql(table: str, batch: str, partitions: list[_Partition]) -> str:
    """One ALTER TABLE for all of a batch's partitions: the metastore adds them in one transaction."""
    specs = []
    for values, location in partitions:
        spec = ", ".join(f"{quote(k)} = {literal(v)}" for k, v in [*values.items(), (BATCH_COLUMN, batch)])
        specs.append(f"PARTITION ({spec}) LOCATION {literal(location)}")
    return f"ALTER TABLE {table} ADD IF NOT EXISTS " + " ".join(specs)


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
        self._connect = connect
        self._session: Any = None
        self._lock = threading.Lock()
        self._conf_lock = threading.Lock()

    # --- session ------------------------------------------------------------------------------------------------
    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = self._connect(self.target)
            return self._session

    def _drop_session(self, stale: Any) -> None:
        with self._lock:
            if self._session is stale:
                self._session = None
        try:
            stale.client.close()
        except Exception:
            log.debug("closing a stale Spark Connect client failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            try:
                session.stop()
            except Exception:
                log.debug("stopping the Spark Connect session failed", exc_info=True)

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run `fn(spark)`; a session the server no longer knows is replaced once; errors come out typed."""
        for attempt in range(2):
            spark: Any = None
            try:
                spark = self.session()
                return fn(spark)
            except AutoloaderError:
                raise
            except Exception as exc:
                if spark is not None and (is_stale_session(exc) or is_unreachable(exc) or is_auth_failure(exc)):
                    self._drop_session(spark)
                if attempt == 0 and spark is not None and is_stale_session(exc):
                    continue
                raise translate(exc, self.target.name, what) from exc
        raise AssertionError("unreachable")

    def check(self) -> ClusterCheck:
        """Test connection: reachable, Spark version, and whether the cluster has the table format's data source."""
        import time

        started = time.monotonic()
        fmt = self.target.table_format
        try:
            version = self.call("testing the connection", lambda spark: str(spark.version))
        except AutoloaderError as exc:
            return ClusterCheck(False, None, fmt, False, exc.message, exc.action, time.monotonic() - started, exc.code)
        try:
            self.call("checking the table format", lambda spark: self._probe_format(spark, fmt))
        except AutoloaderError as exc:
            return ClusterCheck(
                True, version, fmt, False, exc.message, exc.action, time.monotonic() - started, exc.code
            )
        message = f"Connected: Spark {version}; table format {fmt} is available."
        return ClusterCheck(True, version, fmt, True, message, "", time.monotonic() - started)

    def _probe_format(self, spark: Any, fmt: str) -> None:
        """Resolve the data source without writing: a missing path is fine, a missing data source is not."""
        if fmt == "parquet":
            return
        probe = f"/nonexistent/autoloader-format-probe-{uuid.uuid4().hex}"
        try:
            spark.read.format(fmt).load(probe).schema  # noqa: B018  (the schema call is the probe)
        except Exception as exc:
            error = translate(exc, self.target.name, "checking the table format")
            if error.code in ("format_not_supported", "cluster_unreachable", "cluster_auth_failed"):
                raise error from exc

    # --- table --------------------------------------------------------------------------------------------------
    def qualified(self, destination: DestinationConfig) -> tuple[str, str, str]:
        """(catalog, database, table) on the cluster; the destination's default catalog means the cluster's."""
        catalog = destination.catalog
        if catalog == DEFAULT_DESTINATION_CATALOG:
            catalog = self.target.catalog
        return catalog, destination.database, destination.table

    def table_uri(self, destination: DestinationConfig) -> str:
        return ".".join(self.qualified(destination))

    def _name(self, destination: DestinationConfig) -> str:
        return ".".join(quote(p) for p in self.qualified(destination))

    def _info(self, spark: Any, destination: DestinationConfig) -> _TableInfo | None:
        if not spark.catalog.tableExists(self.table_uri(destination)):
            return None
        name = self._name(destination)
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
        details = {str(r[0]).strip(): str(r[1] or "").strip() for r in rows}
        provider = details.get("Provider", "").lower() or self.target.table_format
        return _TableInfo(name, provider, details.get("Location", ""), spark.table(name).schema)

    def table_schema(self, destination: DestinationConfig) -> pa.Schema | None:
        info = self.call("reading the table schema", lambda spark: self._info(spark, destination))
        if info is None:
            return None
        return to_arrow([f for f in info.schema.fields if f.name != BATCH_COLUMN])

    def committed_version(self, destination: DestinationConfig, app_id: str) -> int | None:
        def read(spark: Any) -> int | None:
            info = self._info(spark, destination)
            return None if info is None else self._committed(spark, info, app_id)

        return self.call("reading the committed batch", read)

    def _committed(self, spark: Any, info: _TableInfo, app_id: str) -> int | None:
        if info.provider == "delta":
            return self._delta_committed(spark, info, app_id)
        if info.provider == "iceberg":
            return self._iceberg_committed(spark, info, app_id)
        if BATCH_COLUMN not in info.schema.names:
            return None
        lines = [str(r[0]) for r in spark.sql(f"SHOW PARTITIONS {info.name}").collect()]
        return committed_from_partitions(lines, app_id)

    def _delta_committed(self, spark: Any, info: _TableInfo, app_id: str) -> int | None:
        """The Delta application transaction of `app_id`: max `txn.version` over the log's commits and checkpoints."""
        from pyspark.sql.connect import functions as F

        log_dir = info.location.rstrip("/") + "/_delta_log"
        schema = "txn struct<appId: string, version: bigint>"
        best: int | None = None
        for reader, pattern in (("json", "*.json"), ("parquet", "*.checkpoint*.parquet")):
            frame = spark.read.schema(schema).format(reader).load(f"{log_dir}/{pattern}")
            try:
                row = frame.where(F.col("txn.appId") == app_id).agg(F.max("txn.version")).collect()[0]
            except Exception as exc:
                if "PATH_NOT_FOUND" in str(exc) or "Path does not exist" in str(exc):
                    continue
                raise
            if row[0] is not None:
                best = int(row[0]) if best is None else max(best, int(row[0]))
        return best

    def _iceberg_committed(self, spark: Any, info: _TableInfo, app_id: str) -> int | None:
        query = (
            f"SELECT max(CAST(summary['autoloader.batch_seq'] AS BIGINT)) FROM {info.name}.snapshots "
            f"WHERE summary['autoloader.app_id'] = {literal(app_id)}"
        )
        value = spark.sql(query).collect()[0][0]
        return None if value is None else int(value)

    def count_rows_from(self, destination: DestinationConfig, paths: list[str]) -> dict[str, int]:
        if not paths:
            return {}

        def count(spark: Any) -> dict[str, int]:
            from pyspark.sql.connect import functions as F

            info = self._info(spark, destination)
            if info is None or "_source_file" not in info.schema.names:
                return {}
            rows = (
                spark.table(info.name)
                .where(F.col("_source_file").isin(paths))
                .groupBy("_source_file")
                .count()
                .collect()
            )
            return {str(r[0]): int(r[1]) for r in rows}

        return self.call("counting rows per file", count)

    def read_table(self, destination: DestinationConfig) -> pa.Table:
        """The whole table as Arrow (tests and small previews; not for large tables)."""

        def read(spark: Any) -> pa.Table:
            table = spark.table(self._name(destination))
            table = table.drop(BATCH_COLUMN) if BATCH_COLUMN in table.columns else table
            return table.toArrow()

        return self.call("reading the table", read)

    def settle_overwrite(self, destination: DestinationConfig, app_id: str, batch_seq: int) -> None:
        """Parquet overwrites add the new batch's partition, then drop the others: a crash in between leaves
        both visible until this runs again (the pipeline calls it when it finds the batch committed)."""

        def settle(spark: Any) -> None:
            info = self._info(spark, destination)
            if info is not None and info.provider == "parquet" and BATCH_COLUMN in info.schema.names:
                self._drop_other_batches(spark, info.name, batch_value(app_id, batch_seq))

        self.call("finishing an overwrite", settle)

    def after_run(self, destination: DestinationConfig) -> None:
        if not destination.z_order_columns:
            return

        def optimize(spark: Any) -> None:
            info = self._info(spark, destination)
            if info is None:
                return
            columns = ", ".join(quote(c) for c in destination.z_order_columns)
            if info.provider == "delta":
                spark.sql(f"OPTIMIZE {info.name} ZORDER BY ({columns})")
            elif info.provider == "iceberg":
                catalog, database, table = self.qualified(destination)
                order = "zorder(" + ",".join(destination.z_order_columns) + ")"
                spark.sql(
                    f"CALL {quote(catalog)}.system.rewrite_data_files(table => {literal(f'{database}.{table}')}, "
                    f"strategy => 'sort', sort_order => {literal(order)})"
                )
            else:
                log.warning("Z-order needs delta or iceberg; %s is %s: skipped", info.name, info.provider)

        self.call("optimizing the table (Z-order)", optimize)

    def drop_table(self, destination: DestinationConfig) -> None:
        self.call("dropping the table", lambda spark: spark.sql(f"DROP TABLE IF EXISTS {self._name(destination)}"))

    # --- schema -------------------------------------------------------------------------------------------------
    def infer_schema(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> InferResult:
        declared = fmt.schema_
        if declared.inference == "manual" and declared.schema_json:
            return InferResult(schema_from_json(declared.schema_json))
        self._check_source(files)
        return self.call("inferring the schema", lambda spark: self._infer(spark, files, fmt))

    def _infer(self, spark: Any, files: list[FileInfo], fmt: FormatConfig) -> InferResult:
        bad = {f.path: f"{f.path} is empty" for f in files if f.size == 0}
        readable = [f for f in files if f.size > 0]
        schema = None
        try:
            schema = self._reader(spark, fmt, None).load([spark_path(f.path) for f in readable]).schema
        except Exception as exc:
            if is_unreachable(exc) or is_stale_session(exc) or is_auth_failure(exc):
                raise
            self._raise_if_missing_format(exc, fmt)
            unreadable = self._probe_files(spark, fmt, readable, None)
            bad.update(unreadable)
            rest = [f for f in readable if f.path not in unreadable]
            if rest:
                schema = self._reader(spark, fmt, None).load([spark_path(f.path) for f in rest]).schema
        if schema is None:
            return InferResult(pa.schema([]), bad)
        arrow = to_arrow([f for f in schema.fields if f.name != RESCUED])
        return InferResult(apply_hints(nulls_to_string(arrow), fmt.schema_.hints), bad)

    def infer_each(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> dict[str, pa.Schema]:
        """Per-file schemas in two cluster jobs, not one per file: the files' merged schema, narrowed for each file
        to the columns it has values in. Types are the merged ones (a file's narrower type is not told apart)."""
        declared = fmt.schema_
        if declared.inference == "manual" and declared.schema_json:
            schema = schema_from_json(declared.schema_json)
            return {f.path: schema for f in files}
        self._check_source(files)
        return self.call("inferring the files' schemas", lambda spark: self._infer_each(spark, files, fmt))

    def _infer_each(self, spark: Any, files: list[FileInfo], fmt: FormatConfig) -> dict[str, pa.Schema]:
        from pyspark.sql.connect import functions as F

        merged = self._infer(spark, files, fmt)
        readable = [f for f in files if f.path not in merged.bad_files]
        if not readable or not len(merged.schema):
            return {f.path: merged.schema for f in readable}
        frame = self._reader(spark, fmt, from_arrow(merged.schema)).load([spark_path(f.path) for f in readable])
        path = ledger_path_column(F.col("_metadata.file_path")).alias(_PATH)
        present = [F.count(F.col(quote(name))).alias(name) for name in merged.schema.names]
        rows = frame.select(path, *[F.col(quote(n)) for n in merged.schema.names]).groupBy(_PATH).agg(*present)
        schemas = {}
        for row in rows.collect():
            keep = [f for f in merged.schema if row[f.name]]
            schemas[str(row[_PATH])] = pa.schema(keep)
        return {f.path: schemas.get(f.path, merged.schema) for f in readable}

    def count_records(self, storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> dict[str, int]:
        self._check_source(files)

        def count(spark: Any) -> dict[str, int]:
            from pyspark.sql.connect import functions as F

            readable = [f for f in files if f.size > 0]
            if not readable:
                return {}
            frame = self._reader(spark, fmt, None).load([spark_path(f.path) for f in readable])
            rows = frame.groupBy(ledger_path_column(F.col("_metadata.file_path")).alias(_PATH)).count().collect()
            return {str(r[0]): int(r[1]) for r in rows}

        return self.call("counting records", count)

    # --- schema changes -----------------------------------------------------------------------------------------
    def _existing(self, spark: Any, destination: DestinationConfig) -> _TableInfo:
        info = self._info(spark, destination)
        if info is None:
            raise TableError(f"Table {destination.full_name} does not exist.", "Run the ingestion once to create it.")
        return info

    def add_columns(self, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        def add(spark: Any) -> None:
            self._add_columns(spark, self._existing(spark, destination), from_arrow(pa.schema(fields)))

        self.call("adding columns", add)

    def widen_columns(self, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        """ALTER COLUMN … TYPE: Delta needs its type-widening table feature, Iceberg widens natively."""

        def widen(spark: Any) -> None:
            info = self._existing(spark, destination)
            if info.provider not in ("delta", "iceberg"):
                raise TableError(
                    f"Table {destination.full_name} is {info.provider}: its column types cannot be widened in place.",
                    "Resolve the change with a new table version instead, or use a delta or iceberg cluster.",
                )
            if info.provider == "delta":
                spark.sql(f"ALTER TABLE {info.name} SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
            for f in from_arrow(pa.schema(fields)).fields:
                spark.sql(f"ALTER TABLE {info.name} ALTER COLUMN {quote(f.name)} TYPE {f.dataType.simpleString()}")

        self.call("widening column types", widen)

    def fill_column(self, destination: DestinationConfig, column: str, value: object) -> None:
        def fill(spark: Any) -> None:
            info = self._existing(spark, destination)
            if info.provider not in ("delta", "iceberg"):
                raise TableError(
                    f"Table {destination.full_name} is {info.provider}, which has no UPDATE.",
                    "Leave the new column empty for old rows, or use a delta or iceberg cluster.",
                )
            spark.sql(f"UPDATE {info.name} SET {quote(column)} = {sql_value(value)}")

        self.call("filling a column", fill)

    def _reader(self, spark: Any, fmt: FormatConfig, schema: Any) -> Any:
        reader = spark.read.format(fmt.type).options(**reader_options(fmt, infer=schema is None))
        return reader if schema is None else reader.schema(schema)

    def _raise_if_missing_format(self, exc: Exception, fmt: FormatConfig) -> None:
        error = translate(exc, self.target.name, f"reading {fmt.type} files")
        if error.code == "format_not_supported":
            raise format_error(fmt.type, self.target.name, exc) from exc

    def _probe_files(self, spark: Any, fmt: FormatConfig, files: list[FileInfo], schema: Any) -> dict[str, str]:
        """Read each file alone (only after a batch failed) to find the ones that cannot be read at all."""
        from pyspark.sql.connect import functions as F

        bad: dict[str, str] = {}
        for info in files:
            try:
                self._reader(spark, fmt, schema).load(spark_path(info.path)).agg(F.count(F.lit(1))).collect()
            except Exception as exc:
                if is_unreachable(exc) or is_stale_session(exc) or is_auth_failure(exc):
                    raise
                reason = str(exc).strip().split("\n", 1)[0][:300]
                bad[info.path] = f"{info.path} could not be read as {fmt.type}: {reason}"
        return bad

    def _check_source(self, files: list[FileInfo]) -> None:
        if self.target.kind == "local" and any(f.path.startswith("s3://") for f in files):
            raise ConfigError(
                "The local Spark cluster cannot read S3: it has no hadoop-aws connector.",
                "Use the embedded engine for S3 sources, or a remote cluster that has hadoop-aws and S3 credentials.",
                field="cluster_id",
            )

    # --- load ---------------------------------------------------------------------------------------------------
    def load_batch(self, request: BatchRequest) -> BatchResult:
        self._check_source(request.files)
        tag = f"autoloader-{request.app_id}-{request.batch_seq}"

        def load(spark: Any) -> BatchResult:
            spark.addTag(tag)
            try:
                result = self._load(spark, request)
            finally:
                spark.removeTag(tag)
            result.engine_job_id = tag
            return result

        return self.call(f"loading batch {request.batch_seq}", load)

    def _load(self, spark: Any, request: BatchRequest) -> BatchResult:
        destination = request.destination
        info = self._info(spark, destination)
        provider = info.provider if info is not None else self.target.table_format
        if info is not None:
            committed = self._committed(spark, info, request.app_id)
            if committed is not None and committed >= request.batch_seq:
                return BatchResult(outcomes={}, already_committed=True)
            if request.mode == "create" and committed is None and not spark.table(info.name).isEmpty():
                raise TableError(
                    f"Table {destination.full_name} already exists and write mode is 'create new table'.",
                    "Pick another table name, or change the write mode to append.",
                )
        if request.mode == "merge" and provider not in ("delta", "iceberg"):
            raise TableError(
                f"Write mode merge needs a delta or iceberg table; {destination.full_name} is {provider}.",
                "Use a cluster whose table format is delta or iceberg, or switch the write mode to append/overwrite.",
            )
        batch = self._read_batch(spark, request)
        if batch.rows == 0:
            self._files_done(request, batch)
            return BatchResult(batch.outcomes, bytes_read=batch.bytes_read)
        self._ensure_database(spark, destination)
        if info is not None and request.evolve:
            self._add_columns(spark, info, batch.data.schema)
        if provider == "parquet":
            rows, written = self._commit_parquet(spark, request, batch, info)
        else:
            rows, written = self._commit_lake(spark, request, batch, info, provider)
        self._files_done(request, batch)
        return BatchResult(batch.outcomes, rows_written=rows, bytes_read=batch.bytes_read, bytes_written=written)

    @staticmethod
    def _files_done(request: BatchRequest, batch: _Batch) -> None:
        if request.on_file_done is not None:
            for info in batch.loaded:
                request.on_file_done(info)

    def _read_batch(self, spark: Any, request: BatchRequest) -> _Batch:
        """Read the batch once into the cluster (localCheckpoint), count per file, quarantine, check the threshold."""
        from pyspark.sql.connect import functions as F

        batch = _Batch(data=None)
        for info in request.files:
            if info.size == 0:
                batch.outcomes[info.path] = FileOutcome(
                    quarantine_reason=f"{info.path} is empty", action=QUARANTINE_ACTION
                )
        files = [f for f in request.files if f.path not in batch.outcomes]
        staged = None
        while files:
            try:
                staged = self._batch_frame(spark, request, files).localCheckpoint()
                break
            except Exception as exc:
                if is_unreachable(exc) or is_stale_session(exc) or is_auth_failure(exc):
                    raise
                self._raise_if_missing_format(exc, request.format)
                unreadable = self._probe_files(spark, request.format, files, self._read_schema(request))
                if not unreadable:
                    raise
                for path, reason in unreadable.items():
                    batch.outcomes[path] = FileOutcome(quarantine_reason=reason, action=QUARANTINE_ACTION)
                files = [f for f in files if f.path not in unreadable]
        if staged is None:
            return batch
        stats = self._file_stats(staged)
        keep = self._settle_files(request, files, stats, batch)
        self._check_threshold(request, batch)
        data = staged if len(keep) == len(files) else staged.where(F.col(_PATH).isin([f.path for f in keep]))
        batch.data = data.select(*self._output_columns(request, data))
        batch.loaded = keep
        return batch

    def _read_schema(self, request: BatchRequest) -> Any:
        from pyspark.sql.types import StringType, StructField, StructType

        try:
            schema = from_arrow(request.schema)
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise ConfigError(
                f"The target schema has a type Spark cannot read into: {exc}",
                "Use a type hint to pick a supported type for that column.",
                detail=repr(exc),
            ) from exc
        extras = self._extra_fields(request)
        if extras:
            schema = StructType([*schema.fields, *from_arrow(pa.schema(extras)).fields])
        if request.format.type in _CORRUPT_FORMATS:
            schema = StructType([*schema.fields, StructField(RESCUED, StringType(), True)])
        return schema

    @staticmethod
    def _extra_fields(request: BatchRequest) -> list[pa.Field]:
        """Columns in the files that the target does not take (policy rescue): read, then packed into _rescued_data."""
        if request.incoming is None or request.format.type not in ("json", "csv"):
            return []
        taken = set(request.schema.names) | {RESCUED} | set(request.ignored_columns)
        return [f for f in request.incoming if f.name not in taken]

    def _batch_frame(self, spark: Any, request: BatchRequest, files: list[FileInfo]) -> Any:
        """The files read with the target schema, plus ledger path, file size and a malformed-record flag."""
        from pyspark.sql.connect import functions as F

        frame = self._reader(spark, request.format, self._read_schema(request)).load(
            [spark_path(f.path) for f in files]
        )
        if RESCUED not in frame.columns:
            frame = frame.withColumn(RESCUED, F.lit(None).cast("string"))
        extras = [quote(f.name) for f in self._extra_fields(request)]
        if extras:
            present = (
                F.greatest(*(F.col(c).isNotNull() for c in extras)) if len(extras) > 1 else F.col(extras[0]).isNotNull()
            )
            packed = F.when(present, F.to_json(F.struct(*(F.col(c) for c in extras))))
            frame = frame.withColumn(RESCUED, F.coalesce(F.col(RESCUED), packed))
        frame = frame.withColumn(_PATH, ledger_path_column(F.col("_metadata.file_path")))
        frame = frame.withColumn(_SIZE, F.col("_metadata.file_size"))
        return frame.withColumn(_BAD, self._bad_record(request.format))

    @staticmethod
    def _bad_record(fmt: FormatConfig) -> Any:
        """Malformed = the raw text did not parse at all. A JSON record that parsed but whose values did not fit
        the table types is rescued, not malformed (as with the embedded engine)."""
        from pyspark.sql.connect import functions as F

        rescued = F.col(RESCUED).isNotNull()
        if fmt.type == "json":
            parses = F.from_json(F.col(RESCUED), "map<string,string>").isNotNull()
            return rescued & ~parses
        return rescued

    @staticmethod
    def _file_stats(staged: Any) -> dict[str, _FileStats]:
        from pyspark.sql.connect import functions as F

        rows = (
            staged.groupBy(_PATH)
            .agg(
                F.count(F.lit(1)).alias("records"),
                F.sum(F.col(_BAD).cast("long")).alias("bad"),
                F.count(F.col(RESCUED)).alias("rescued"),
                F.max(_SIZE).alias("size"),
            )
            .collect()
        )
        return {str(r[0]): _FileStats(int(r[1]), int(r[2] or 0), int(r[3]), int(r[4] or 0)) for r in rows}

    @staticmethod
    def _settle_files(
        request: BatchRequest, files: list[FileInfo], stats: dict[str, _FileStats], batch: _Batch
    ) -> list[FileInfo]:
        """Per-file outcomes; a file none of whose records parse is not that format at all: quarantined."""
        keep = []
        for info in files:
            stat = stats.get(info.path, _FileStats(size=info.size))
            if stat.records and stat.bad == stat.records and stat.records > 1:
                reason = f"{info.path} is not valid {request.format.type}: none of its {stat.records} records parse"
                batch.outcomes[info.path] = FileOutcome(quarantine_reason=reason, action=QUARANTINE_ACTION)
                continue
            batch.outcomes[info.path] = FileOutcome(
                records=stat.records, bad_records=stat.bad, rescued_records=stat.rescued
            )
            batch.rows += stat.records
            batch.bytes_read += stat.size or info.size
            keep.append(info)
        return keep

    @staticmethod
    def _check_threshold(request: BatchRequest, batch: _Batch) -> None:
        bad = sum(o.bad_records for o in batch.outcomes.values() if not o.quarantine_reason)
        if batch.rows and bad / batch.rows > request.max_bad_record_ratio:
            raise TooManyBadRecords(
                f"{bad} of {batch.rows} records in this batch are malformed "
                f"({bad / batch.rows:.1%}, limit {request.max_bad_record_ratio:.0%}); nothing was written.",
                "Look at the malformed records listed per file, fix the producer, or raise max_bad_record_ratio.",
            )

    @staticmethod
    def _output_columns(request: BatchRequest, frame: Any) -> list[Any]:
        from pyspark.sql.connect import functions as F

        columns = [F.col(quote(f.name)) for f in request.schema if f.name != RESCUED]
        columns.append(without_keys(F.col(RESCUED), request.ignored_columns).alias(RESCUED))
        if request.destination.lineage_columns:
            columns += [
                F.col(_PATH).alias("_source_file"),
                F.lit(request.ingested_at).cast("timestamp").alias("_ingested_at"),
                F.lit(request.run_id).cast("bigint").alias("_run_id"),
            ]
        return columns

    def _ensure_database(self, spark: Any, destination: DestinationConfig) -> None:
        catalog, database, _ = self.qualified(destination)
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {quote(catalog)}.{quote(database)}")

    def _add_columns(self, spark: Any, info: _TableInfo, schema: Any) -> None:
        """New columns first (parquet tables do not add columns on append, and an ALTER is explicit everywhere)."""
        existing = set(info.schema.names)
        new = [f for f in schema.fields if f.name not in existing]
        if new:
            columns = ", ".join(f"{quote(f.name)} {f.dataType.simpleString()}" for f in new)
            spark.sql(f"ALTER TABLE {info.name} ADD COLUMNS ({columns})")

    # --- commit: parquet (staged, then registered as partitions) ------------------------------------------------
    def _commit_parquet(
        self, spark: Any, request: BatchRequest, batch: _Batch, info: _TableInfo | None
    ) -> tuple[int, int]:
        from pyspark.sql.connect import functions as F
        from pyspark.sql.connect.observation import Observation

        destination = request.destination
        parts = destination.partition_columns
        value = batch_value(request.app_id, request.batch_seq)
        if info is None:
            info = self._create_parquet_table(spark, destination, batch.data)
        elif BATCH_COLUMN not in info.schema.names:
            raise TableError(
                f"Table {destination.full_name} was not created by Autoloader: a parquet table needs the "
                f"{BATCH_COLUMN} partition column for exactly-once loads.",
                "Load into a new table, or use a cluster with the delta table format.",
            )
        staging = f"{info.location.rstrip('/')}/{STAGING_DIR}/{value}"
        observation = Observation(f"rows_{uuid.uuid4().hex}")
        data = batch.data.observe(observation, F.count(F.lit(1)).alias("rows"))
        data.write.mode("overwrite").partitionBy(*parts).parquet(staging)
        partitions, written = self._staged_partitions(spark, staging, parts)
        spark.sql(add_partitions_sql(info.name, value, partitions))
        if request.mode == "overwrite":
            crash_point("spark_overwrite_before_drop")
            self._drop_other_batches(spark, info.name, value)
        return int(observation.get.get("rows", 0)), written

    def _create_parquet_table(self, spark: Any, destination: DestinationConfig, data: Any) -> _TableInfo:
        from pyspark.sql.connect import functions as F

        name = self._name(destination)
        empty = data.limit(0).withColumn(BATCH_COLUMN, F.lit("").cast("string"))
        empty.write.format("parquet").partitionBy(*destination.partition_columns, BATCH_COLUMN).saveAsTable(name)
        if destination.table_properties:
            props = ", ".join(f"{literal(k)} = {literal(v)}" for k, v in destination.table_properties.items())
            spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({props})")
        info = self._info(spark, destination)
        assert info is not None
        return info

    @staticmethod
    def _staged_partitions(
        spark: Any, staging: str, parts: list[str]
    ) -> tuple[list[tuple[dict[str, object], str]], int]:
        """The staged folders per partition value (as Spark wrote and escaped them) and the bytes written."""
        from pyspark.sql.connect import functions as F

        folder = F.regexp_extract(F.col("_metadata.file_path"), r"^(.*)/[^/]*$", 1)
        files = (
            spark.read.parquet(staging)
            .select(
                *[F.col(quote(p)) for p in parts],
                folder.alias("__dir"),
                F.col("_metadata.file_path").alias("__file"),
                F.col("_metadata.file_size").alias("__size"),
            )
            .distinct()
            .collect()
        )
        sizes = {r["__file"]: int(r["__size"]) for r in files}
        folders = {r["__dir"]: {p: r[p] for p in parts} for r in files}
        return [(values, location) for location, values in sorted(folders.items())], sum(sizes.values())

    @staticmethod
    def _drop_other_batches(spark: Any, table: str, keep: str) -> None:
        values = set()
        for row in spark.sql(f"SHOW PARTITIONS {table}").collect():
            for part in str(row[0]).split("/"):
                name, _, raw = part.partition("=")
                if name == BATCH_COLUMN and unquote(raw) != keep:
                    values.add(unquote(raw))
        if values:
            specs = ", ".join(f"PARTITION ({quote(BATCH_COLUMN)} = {literal(v)})" for v in sorted(values))
            spark.sql(f"ALTER TABLE {table} DROP IF EXISTS {specs}")

    # --- commit: delta and iceberg ------------------------------------------------------------------------------
    def _commit_lake(
        self, spark: Any, request: BatchRequest, batch: _Batch, info: _TableInfo | None, provider: str
    ) -> tuple[int, int]:
        from pyspark.sql.connect import functions as F
        from pyspark.sql.connect.observation import Observation

        destination = request.destination
        if info is None:
            self._create_lake_table(destination, batch.data, provider)
        observation = Observation(f"rows_{uuid.uuid4().hex}")
        data = batch.data.observe(observation, F.count(F.lit(1)).alias("rows"))
        if request.mode == "merge":
            self._merge(spark, request, data, provider)
        else:
            writer = self._lake_writer(request, data, provider)
            if request.mode == "overwrite":
                writer.overwrite(F.lit(True))
            else:
                writer.append()
        return int(observation.get.get("rows", 0)), 0

    def _create_lake_table(self, destination: DestinationConfig, data: Any, provider: str) -> None:
        """An empty table first, so that the data always goes through the one idempotent write below."""
        from pyspark.sql.connect import functions as F

        writer = data.limit(0).writeTo(self._name(destination)).using(provider)
        if destination.partition_columns:
            writer = writer.partitionedBy(*[F.col(quote(c)) for c in destination.partition_columns])
        for key, value in destination.table_properties.items():
            writer = writer.tableProperty(key, value)
        writer.create()

    def _lake_writer(self, request: BatchRequest, data: Any, provider: str) -> Any:
        """DataFrameWriterV2 carrying the batch's idempotency marker (Delta txn / Iceberg snapshot properties)."""
        writer = data.writeTo(self._name(request.destination))
        for key, value in commit_options(provider, request.app_id, request.batch_seq).items():
            writer = writer.option(key, value)
        return writer

    def _merge(self, spark: Any, request: BatchRequest, data: Any, provider: str) -> None:
        """MERGE INTO from a session temp view; Delta gets the txn through session conf, under a lock."""
        destination = request.destination
        source = latest_per_key(data, destination.merge_keys, destination.merge_order_by, request.files)
        view = f"autoloader_src_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        confs = merge_confs(provider, request.app_id, request.batch_seq)
        try:
            with self._conf_lock:
                for key, value in confs.items():
                    spark.conf.set(key, value)
                try:
                    spark.sql(merge_sql(self._name(destination), view, destination.merge_keys)).collect()
                finally:
                    for key in confs:
                        spark.conf.unset(key)
        finally:
            spark.catalog.dropTempView(view)


def commit_options(provider: str, app_id: str, seq: int) -> dict[str, str]:
    if provider == "delta":
        return {"txnAppId": app_id, "txnVersion": str(seq), "userMetadata": f"autoloader {app_id} batch {seq}"}
    if provider == "iceberg":
        return {"snapshot-property.autoloader.app_id": app_id, "snapshot-property.autoloader.batch_seq": str(seq)}
    return {}


def merge_confs(provider: str, app_id: str, seq: int) -> dict[str, str]:
    if provider != "delta":
        return {}
    return {
        "spark.databricks.delta.write.txnAppId": app_id,
        "spark.databricks.delta.write.txnVersion": str(seq),
        "spark.databricks.delta.commitInfo.userMetadata": f"autoloader {app_id} batch {seq}",
    }


def latest_per_key(frame: Any, keys: list[str], order_by: str | None, files: list[FileInfo]) -> Any:
    """One row per merge key: the highest `order_by`, then the latest file of the batch, then the latest row."""
    from pyspark.sql.connect import functions as F
    from pyspark.sql.connect.window import Window

    missing = [k for k in [*keys, *([order_by] if order_by else [])] if k not in frame.columns]
    if missing:
        raise TableError(
            f"Merge column(s) {', '.join(missing)} are not in the incoming data.",
            "Pick merge keys and the ordering column from the detected schema.",
        )
    positions = F.create_map(*[x for i, f in enumerate(files) for x in (F.lit(f.path), F.lit(i))])
    source_file = F.col("_source_file") if "_source_file" in frame.columns else F.lit(None)
    ordered = frame.withColumn("__file_pos", F.coalesce(positions[source_file], F.lit(0)))
    ordered = ordered.withColumn("__row_pos", F.monotonically_increasing_id())
    order = [F.col("__file_pos").desc(), F.col("__row_pos").desc()]
    if order_by:
        order.insert(0, F.col(quote(order_by)).desc_nulls_last())
    window = Window.partitionBy(*[F.col(quote(k)) for k in keys]).orderBy(*order)
    ranked = ordered.withColumn("__rank", F.row_number().over(window))
    return ranked.where(F.col("__rank") == 1).drop("__rank", "__file_pos", "__row_pos")


def to_arrow(fields: list[Any]) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    return to_arrow_schema(StructType(fields), timezone="UTC")


def from_arrow(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema, prefer_timestamp_ntz=False)

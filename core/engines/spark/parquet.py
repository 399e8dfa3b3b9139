"""Plain parquet tables in the cluster's metastore, which have no transaction log.

Exactly once: every batch is written to a hidden staging folder under the table location
(`_autoloader_staging/<batch>`; names starting with `_` are invisible to readers) and then made visible in one
metastore call, `ALTER TABLE … ADD PARTITION (…, _autoloader_batch = '<app id>-<seq>') LOCATION …`. The partition's
existence is the commit marker: a crash before it leaves nothing visible, a crash after it leaves a committed batch
that `committed` (SHOW PARTITIONS) reports. Such tables therefore carry the extra partition column
`_autoloader_batch`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from core.config import DestinationConfig
from core.engines.base import BatchRequest
from core.engines.spark.common import literal, quote
from core.engines.spark.reading import observe_rows
from core.engines.spark.table import TableFormat, TableInfo, grouped_by_file
from core.errors import TableError
from core.faults import crash_point
from core.formats.partitions import HIVE_NULL

BATCH_COLUMN = "_autoloader_batch"
STAGING_DIR = "_autoloader_staging"

_Partition = tuple[dict[str, object], str]  # (partition values, folder)


def batch_value(app_id: str, seq: int) -> str:
    return f"{app_id}-{seq}"


def parse_batch_value(value: str) -> tuple[str, int] | None:
    app_id, _, seq = value.rpartition("-")
    return (app_id, int(seq)) if app_id and seq.isdigit() else None


def batch_values(partitions: list[str]) -> set[str]:
    """The batch column's values among SHOW PARTITIONS lines (`country=DE/_autoloader_batch=…`), decoded."""
    values = set()
    for line in partitions:
        for part in line.split("/"):
            name, _, raw = part.partition("=")
            if name == BATCH_COLUMN:
                values.add(unquote(raw))
    return values


def committed_from_partitions(partitions: list[str], app_id: str) -> int | None:
    """The highest batch sequence of `app_id` among SHOW PARTITIONS lines."""
    parsed = (parse_batch_value(value) for value in batch_values(partitions))
    return max((seq for owner, seq in filter(None, parsed) if owner == app_id), default=None)


def committed_partition(spark: Any, info: TableInfo, app_id: str) -> int | None:
    """The last batch of `app_id` registered as a partition, None for a table without the batch column."""
    if BATCH_COLUMN not in info.schema.names:
        return None
    lines = [str(r[0]) for r in spark.sql(f"SHOW PARTITIONS {info.name}").collect()]
    return committed_from_partitions(lines, app_id)


def add_partitions_sql(table: str, batch: str, partitions: list[_Partition]) -> str:
    """One ALTER TABLE for all of a batch's partitions: the metastore adds them in one transaction."""
    specs = []
    for values, location in partitions:
        spec = ", ".join(f"{quote(k)} = {literal(v)}" for k, v in [*values.items(), (BATCH_COLUMN, batch)])
        specs.append(f"PARTITION ({spec}) LOCATION {literal(location)}")
    return f"ALTER TABLE {table} ADD IF NOT EXISTS " + " ".join(specs)


class ParquetFormat(TableFormat):
    """Staged, then registered as partitions."""

    name = "parquet"

    def committed(self, spark: Any, info: TableInfo, app_id: str) -> int | None:
        return committed_partition(spark, info, app_id)

    def commit(self, spark: Any, request: BatchRequest, data: Any, info: TableInfo | None) -> tuple[int, int]:
        destination = request.destination
        parts = destination.partition_columns
        value = batch_value(request.app_id, request.batch_seq)
        if info is None:
            info, _ = self.create(spark, destination, data)
        elif BATCH_COLUMN not in info.schema.names:
            raise TableError(
                f"Table {destination.full_name} was not created by Autoloader: a parquet table needs the "
                f"{BATCH_COLUMN} partition column for exactly-once loads.",
                "Load into a new table, or use a cluster with the delta table format.",
            )
        staging = f"{info.location.rstrip('/')}/{STAGING_DIR}/{value}"
        data, rows = observe_rows(_null_spellings_as_null(data, parts))
        data.write.mode("overwrite").partitionBy(*parts).parquet(staging)
        partitions, written = _staged_partitions(spark, staging, parts)
        crash_point("spark_parquet_staged")
        spark.sql(add_partitions_sql(info.name, value, partitions))
        if request.mode == "overwrite" or request.replace:
            crash_point("spark_overwrite_before_drop")
            _drop_other_batches(spark, info.name, value)
        return rows(), written

    def create(self, spark: Any, destination: DestinationConfig, data: Any) -> tuple[TableInfo, bool]:
        from pyspark.sql.connect import functions as F

        name = self.tables.name(destination)
        empty = data.limit(0).withColumn(BATCH_COLUMN, F.lit("").cast("string"))

        def create() -> None:
            empty.write.format("parquet").partitionBy(*destination.partition_columns, BATCH_COLUMN).saveAsTable(name)
            if not destination.table_properties:
                return
            props = ", ".join(f"{literal(k)} = {literal(v)}" for k, v in destination.table_properties.items())
            try:
                spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({props})")
            except Exception:
                # Refused properties (`owner`, `location`) fail the run, and the empty table goes, so that the next
                # run creates it again with them instead of finding a table without them.
                spark.sql(f"DROP TABLE IF EXISTS {name}")
                raise

        return self.created(spark, destination, empty.schema, create)

    def finds_run_rows(
        self, spark: Any, info: TableInfo | None, destination: DestinationConfig, columns: list[str]
    ) -> bool:
        return True  # the batch's partition

    def rows_per_file(self, spark: Any, info: TableInfo, request: BatchRequest, paths: list[str]) -> dict[str, int]:
        """Counted in the batch's own partition only."""
        from pyspark.sql.connect import functions as F

        mine = F.col(BATCH_COLUMN) == F.lit(batch_value(request.app_id, request.batch_seq))
        return grouped_by_file(spark.table(info.name).where(mine))

    def settle_overwrite(self, spark: Any, info: TableInfo, app_id: str, batch_seq: int) -> None:
        """An overwrite adds the new batch's partition, then drops the others: a crash in between leaves both
        visible until this runs again (the pipeline calls it when it finds the batch committed)."""
        if BATCH_COLUMN in info.schema.names:
            _drop_other_batches(spark, info.name, batch_value(app_id, batch_seq))


def _null_spellings_as_null(data: Any, parts: list[str]) -> Any:
    """Partition values spelled like Spark's NULL folder ("" or `HIVE_NULL`) as NULL, which they read back as anyway.

    Left alone, a task that meets both NULL and the text `HIVE_NULL` creates that folder's file twice and the write
    fails (FileAlreadyExistsException, Spark 4.2)."""
    from pyspark.sql.connect import functions as F

    if not parts:
        return data
    spelled = {p: F.col(quote(p)).cast("string").isin("", HIVE_NULL) for p in parts}
    return data.withColumns(
        {p: F.when(is_null, F.lit(None)).otherwise(F.col(quote(p))) for p, is_null in spelled.items()}
    )


def _staged_partitions(spark: Any, staging: str, parts: list[str]) -> tuple[list[_Partition], int]:
    """The staged folders with their partition values, and the bytes written.

    A binaryFile listing with no content column opens no file and names each file by its Hadoop path, as the
    metastore's LOCATION takes it. Reading the staged parquet back instead scanned every row (2.8 s of a 256 MiB
    batch), named files URI-encoded (`x%20y`: a partition LOCATION that does not exist) and inferred the values'
    types from the folder names (`007` became 7)."""
    listing = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(staging)
    files = listing.select("path", "length").collect()
    folders = {str(r["path"]).rpartition("/")[0] for r in files}
    partitions = [(folder_values(folder, parts), folder) for folder in sorted(folders)]
    return partitions, sum(int(r["length"]) for r in files)


def folder_values(folder: str, parts: list[str]) -> dict[str, object]:
    """The partition values Spark wrote into the last folder names of `folder` (`…/country=DE/day=2024-01-01`).

    Spark escapes a character a path cannot hold as `%XX` (only ASCII ones, `%` itself included) and names the
    folder by the data's column, which may differ from the setting in case only."""
    names = folder.split("/")[-len(parts) :] if parts else []
    values: dict[str, object] = {}
    for part, name in zip(parts, names, strict=True):
        column, _, escaped = name.partition("=")
        if unquote(column).lower() != part.lower():
            raise TableError(
                f"The staged folder {folder} is not partitioned by {part} as the batch was written.",
                "Run the ingestion again; report this if it repeats.",
            )
        values[part] = None if escaped == HIVE_NULL else unquote(escaped)
    return values


def _drop_other_batches(spark: Any, table: str, keep: str) -> None:
    lines = [str(row[0]) for row in spark.sql(f"SHOW PARTITIONS {table}").collect()]
    values = batch_values(lines) - {keep}
    if values:
        specs = ", ".join(f"PARTITION ({quote(BATCH_COLUMN)} = {literal(v)})" for v in sorted(values))
        spark.sql(f"ALTER TABLE {table} DROP IF EXISTS {specs}")

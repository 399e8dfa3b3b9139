"""Delta Lake tables.

Exactly once: every write carries `txnAppId` = app id and `txnVersion` = batch sequence (Delta skips a version it
has seen); `committed` reads the `txn` actions back from the table's `_delta_log`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from core.config import DestinationConfig
from core.engines.base import CompactionResult, batch_message, fence_app_id, fence_marker
from core.engines.spark.common import column_path
from core.engines.spark.lake import LakeFormat, write_v2
from core.engines.spark.table import TableInfo
from core.errors import TableError


class DeltaFormat(LakeFormat):
    name = "delta"

    @staticmethod
    def commit_options(app_id: str, seq: int) -> dict[str, str]:
        return {"txnAppId": app_id, "txnVersion": str(seq), "userMetadata": batch_message(app_id, seq)}

    @staticmethod
    def merge_confs(app_id: str, seq: int) -> dict[str, str]:
        return {
            "spark.databricks.delta.write.txnAppId": app_id,
            "spark.databricks.delta.write.txnVersion": str(seq),
            "spark.databricks.delta.commitInfo.userMetadata": batch_message(app_id, seq),
        }

    def committed(self, spark: Any, info: TableInfo, app_id: str) -> int | None:
        """The Delta application transaction of `app_id`: max `txn.version` over the log's commits and checkpoints."""
        from pyspark.sql.connect import functions as F

        log_dir = _log_dir(info)
        schema = "txn struct<appId: string, version: bigint>"
        best: int | None = None
        for reader, pattern in (("json", "*.json"), ("parquet", "*.checkpoint*.parquet")):
            frame = spark.read.schema(schema).format(reader).load(f"{log_dir}/{pattern}")
            try:
                row = frame.where(F.col("txn.appId") == app_id).agg(F.max("txn.version")).collect()[0]
            except Exception as exc:
                if _no_log(exc):
                    continue
                raise
            if row[0] is not None:
                best = int(row[0]) if best is None else max(best, int(row[0]))
        return best

    def fence(self, spark: Any, info: TableInfo, app_id: str, batch_seq: int) -> None:
        """An empty append carrying the batch's `txnAppId`/`txnVersion`: a writer taken over that read the table
        before it fails on the concurrent transaction, one that reads it after skips a version the table has. A
        Spark write carries one transaction id, so the fence's own (`fence_app_id`, which the embedded engine reads
        after a move) follows in a second empty commit."""
        if self._empty_commit(spark, info, app_id, batch_seq, fence_marker(app_id, batch_seq)):
            self._empty_commit(spark, info, fence_app_id(app_id), batch_seq, None)

    def _empty_commit(self, spark: Any, info: TableInfo, txn_app_id: str, seq: int, message: str | None) -> bool:
        """Commit no rows under (`txn_app_id`, `seq`), tried again when other commits get in first; False when the
        table has that version already (the writer's batch got in first)."""
        options = {"txnAppId": txn_app_id, "txnVersion": str(seq)} | ({"userMetadata": message} if message else {})
        for _ in range(FENCE_ATTEMPTS):
            if (self.committed(spark, info, txn_app_id) or 0) >= seq:
                return False
            try:
                write_v2(spark.table(info.name).limit(0), info.name, "append", options)
                return True
            except Exception as exc:
                if "CONCURRENT" not in str(exc).upper():
                    raise
        raise TableError(
            f"Table {info.name}: batch {seq} of an interrupted run could not be fenced: other commits kept getting "
            f"in first ({FENCE_ATTEMPTS} tries).",
            "Run the ingestion again; its files stay pending until then.",
        )

    def is_fence(self, spark: Any, info: TableInfo, app_id: str, batch_seq: int) -> bool:
        """The fence's own transaction id at the batch (kept by checkpoints, so past the log's cleanup), or a commit
        whose `userMetadata` is the batch's fence marker (a Spark fence whose second commit was lost)."""
        from pyspark.sql.connect import functions as F

        if self.committed(spark, info, fence_app_id(app_id)) == batch_seq:
            return True
        log = spark.read.schema("commitInfo struct<userMetadata: string>").json(_log_dir(info) + "/*.json")
        try:
            return bool(log.where(F.col("commitInfo.userMetadata") == fence_marker(app_id, batch_seq)).limit(1).count())
        except Exception as exc:
            if _no_log(exc):
                return False
            raise

    def widen(self, spark: Any, info: TableInfo, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        """In place where Delta's type widening can (its table feature switched on first): int → bigint, decimal
        precision, float → double, int → double. The lattice's other safe widenings (bigint → double, decimal →
        double, date → timestamp) Delta refuses to ALTER: those columns are rewritten in one overwrite commit, as
        the embedded engine does, once no stored value would change (docs/TYPES.md)."""
        spark.sql(f"ALTER TABLE {info.name} SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
        super().widen(spark, info, destination, fields)

    @staticmethod
    def alter_refused(message: str) -> bool:
        return "not supported for changing column" in message or "UNSUPPORTED" in message

    def rewrite_widened(self, spark: Any, info: TableInfo, destination: DestinationConfig, rows: Any) -> None:
        """An overwrite with the schema overwritten: partitioning and the log's `txn` actions are kept."""
        writer = rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        if destination.partition_columns:
            writer = writer.partitionBy(*destination.partition_columns)
        writer.save(info.location)

    def finds_run_rows(
        self, spark: Any, info: TableInfo | None, destination: DestinationConfig, columns: list[str]
    ) -> bool:
        """Delta keeps statistics of the first 32 data columns (delta.dataSkippingNumIndexedCols) or of those listed
        (delta.dataSkippingStatsColumns); past them, counting a batch's rows in the table read every data file of
        the table (an attack helper measured it on a 40-column table)."""
        properties = dict(destination.table_properties)
        if info is not None:
            shown = spark.sql(f"SHOW TBLPROPERTIES {info.name}").collect()
            properties |= {str(r[0]): str(r[1]) for r in shown}
        listed = properties.get("delta.dataSkippingStatsColumns")
        if listed:
            return "_run_id" in [c.strip().strip("`") for c in listed.split(",")]
        try:
            indexed = int(properties.get("delta.dataSkippingNumIndexedCols", "32"))
        except ValueError:
            indexed = 32
        data = [c for c in columns if c not in destination.partition_columns]
        return indexed < 0 or "_run_id" in data[:indexed]

    def zorder(self, spark: Any, info: TableInfo, destination: DestinationConfig) -> None:
        """Delta refuses to Z-order a column it keeps no statistics for (past the table's first 32 by default);
        the embedded engine (delta-rs) orders any column, so the check is off for this statement: the files are
        clustered either way, and skipping by the column starts once its statistics are kept
        (delta.dataSkippingNumIndexedCols)."""
        columns = ", ".join(column_path(c, info.schema.names) for c in destination.z_order_columns)
        with self.tables.conf_lock:
            spark.conf.set(ZORDER_STATS_CHECK, "false")
            try:
                spark.sql(f"OPTIMIZE {info.name} ZORDER BY ({columns})").collect()
            finally:
                spark.conf.unset(ZORDER_STATS_CHECK)

    def compact(self, spark: Any, info: TableInfo) -> CompactionResult:
        """OPTIMIZE: one commit with dataChange=false; the log's `txn` actions (the committed batches) stay."""
        files_before, bytes_before = _files_and_bytes(spark, info)
        spark.sql(f"OPTIMIZE {info.name}").collect()
        files_after, bytes_after = _files_and_bytes(spark, info)
        return CompactionResult(files_before, files_after, bytes_before, bytes_after)

    def vacuum(self, spark: Any, info: TableInfo, retention_hours: int, allow_short: bool) -> int:
        """VACUUM, counted by its DRY RUN first. Delta 4 ignores `RETAIN n HOURS` (other than 0) in favour of the
        table's delta.deletedFileRetentionDuration, so that property is set to the retention first when it differs;
        Delta refuses a retention under it unless its check is off: off for these statements only when allowed."""
        self._keep_history(spark, info, retention_hours)
        statement = f"VACUUM {info.name} RETAIN {int(retention_hours)} HOURS"
        if not allow_short:
            removed = spark.sql(f"{statement} DRY RUN").count()
            spark.sql(statement).collect()
            return int(removed)
        with self.tables.conf_lock:
            spark.conf.set(RETENTION_CHECK, "false")
            try:
                removed = spark.sql(f"{statement} DRY RUN").count()
                spark.sql(statement).collect()
            finally:
                spark.conf.unset(RETENTION_CHECK)
        return int(removed)

    @staticmethod
    def _keep_history(spark: Any, info: TableInfo, retention_hours: int) -> None:
        wanted = f"interval {int(retention_hours)} hours"
        row = spark.sql(f"DESCRIBE DETAIL {info.name}").select("properties").collect()[0]
        current = (row[0] or {}).get(RETENTION_PROPERTY)
        if current == wanted or (current is None and retention_hours == DELTA_DEFAULT_RETENTION_HOURS):
            return
        spark.sql(f"ALTER TABLE {info.name} SET TBLPROPERTIES ('{RETENTION_PROPERTY}' = '{wanted}')")


RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
ZORDER_STATS_CHECK = "spark.databricks.delta.optimize.zorder.checkStatsCollection.enabled"
RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
DELTA_DEFAULT_RETENTION_HOURS = 168


def _files_and_bytes(spark: Any, info: TableInfo) -> tuple[int, int]:
    row = spark.sql(f"DESCRIBE DETAIL {info.name}").select("numFiles", "sizeInBytes").collect()[0]
    return int(row[0] or 0), int(row[1] or 0)


# A fence tried again when other commits (another ingestion writing the table) keep getting in first.
FENCE_ATTEMPTS = 5


def _log_dir(info: TableInfo) -> str:
    return info.location.rstrip("/") + "/_delta_log"


def _no_log(exc: Exception) -> bool:
    return "PATH_NOT_FOUND" in str(exc) or "Path does not exist" in str(exc)

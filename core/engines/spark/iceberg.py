"""Apache Iceberg tables.

Exactly once: every snapshot carries the `autoloader.app_id` / `autoloader.batch_seq` summary properties, which
`committed` reads back from the table's snapshots: appends and overwrites through the `snapshot-property.*` write
options, MERGE through the session's `spark.sql.iceberg.snapshot-property.*` confs (Iceberg 1.10+ applies those to
SQL writes). A snapshot expired on the cluster takes its marker with it: keep at least the last run's snapshots.

Iceberg needs a runtime built for the cluster's Spark line (iceberg-spark-runtime-4.1_2.13 for Spark 4.1); there is
none for Spark 4.2 yet, and Test Connection and runs say so (errors.iceberg_runtime_error).
"""

from __future__ import annotations

from typing import Any

from core.config import DestinationConfig
from core.engines.spark.common import column_path, literal, quote
from core.engines.spark.errors import ICEBERG_RUNTIME_MISMATCH, FormatNotSupported, iceberg_runtime_error
from core.engines.spark.lake import LakeFormat, create_as
from core.engines.spark.table import TableInfo

SNAPSHOT_PROPERTY_CONF = "spark.sql.iceberg.snapshot-property."
# rewrite_data_files skips a file group with fewer files than this (Iceberg's default is 5): a load that added one
# file to a z-ordered table is sorted in after it, as Delta's OPTIMIZE ZORDER BY does after every load.
ZORDER_MIN_INPUT_FILES = 2


def _marker(app_id: str, seq: int) -> dict[str, str]:
    return {"autoloader.app_id": app_id, "autoloader.batch_seq": str(seq)}


class IcebergFormat(LakeFormat):
    name = "iceberg"

    @staticmethod
    def commit_options(app_id: str, seq: int) -> dict[str, str]:
        return {f"snapshot-property.{k}": v for k, v in _marker(app_id, seq).items()}

    @staticmethod
    def merge_confs(app_id: str, seq: int) -> dict[str, str]:
        return {SNAPSHOT_PROPERTY_CONF + k: v for k, v in _marker(app_id, seq).items()}

    @staticmethod
    def merge_source(source: Any) -> Any:
        """Materialized: Iceberg's copy-on-write MERGE also filters the table's files by the source in a subquery,
        which must be deterministic (the source's row order column, monotonically_increasing_id, is not:
        INVALID_NON_DETERMINISTIC_EXPRESSIONS)."""
        return source.localCheckpoint()

    def probe(self, spark: Any, cluster: str) -> None:
        """The data source must resolve, and through a runtime built for the cluster's Spark line."""
        try:
            super().probe(spark, cluster)
        except FormatNotSupported as exc:
            raise iceberg_runtime_error(cluster, str(spark.version), exc.__cause__ or exc) from exc
        except Exception as exc:
            if ICEBERG_RUNTIME_MISMATCH.search(str(exc)):
                raise iceberg_runtime_error(cluster, str(spark.version), exc) from exc
            raise

    def committed(self, spark: Any, info: TableInfo, app_id: str) -> int | None:
        query = (
            f"SELECT max(CAST(summary['autoloader.batch_seq'] AS BIGINT)) FROM {info.name}.snapshots "
            f"WHERE summary['autoloader.app_id'] = {literal(app_id)}"
        )
        value = spark.sql(query).collect()[0][0]
        return None if value is None else int(value)

    @staticmethod
    def alter_refused(message: str) -> bool:
        """In place where Iceberg's schema evolution can (int → bigint, float → double, decimal precision); the
        lattice's other safe widenings (bigint → double, int → double, decimal → double, date → timestamp) are
        refused and rewritten (`rewrite_widened`)."""
        return "Cannot change column type" in message

    def rewrite_widened(self, spark: Any, info: TableInfo, destination: DestinationConfig, rows: Any) -> None:
        """One REPLACE commit, the partitioning and the table's own properties set again. Iceberg keeps the table's
        snapshots (and so the batch markers) across a REPLACE."""
        create_as(spark, info.name, "iceberg", rows, destination, _kept_properties(spark, info), replace=True)

    def zorder(self, spark: Any, info: TableInfo, destination: DestinationConfig) -> None:
        catalog, database, table = self.tables.qualified(destination)
        order = "zorder(" + ",".join(column_path(c, info.schema.names) for c in destination.z_order_columns) + ")"
        spark.sql(
            f"CALL {quote(catalog)}.system.rewrite_data_files(table => {literal(f'{database}.{table}')}, "
            f"strategy => 'sort', sort_order => {literal(order)}, "
            f"options => map('min-input-files', '{ZORDER_MIN_INPUT_FILES}'))"
        ).collect()


# Table properties Iceberg derives itself: a REPLACE must not set them.
_DERIVED_PROPERTIES = ("current-snapshot-id", "format", "location", "provider", "owner", "sort-order")


def _kept_properties(spark: Any, info: TableInfo) -> dict[str, str]:
    """The table's own properties, to set again on a REPLACE (which otherwise drops them)."""
    rows = spark.sql(f"SHOW TBLPROPERTIES {info.name}").collect()
    return {str(r[0]): str(r[1]) for r in rows if str(r[0]) not in _DERIVED_PROPERTIES}

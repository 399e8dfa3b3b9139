"""Apache Iceberg tables.

Exactly once: every snapshot carries the `autoloader.app_id` / `autoloader.batch_seq` summary properties, which
`committed` reads back from the table's snapshots. Merges keep no marker (a MERGE re-applied changes nothing).
"""

from __future__ import annotations

from typing import Any

from core.config import DestinationConfig
from core.engines.spark.common import literal, quote
from core.engines.spark.lake import LakeFormat
from core.engines.spark.table import TableInfo


class IcebergFormat(LakeFormat):
    name = "iceberg"

    @staticmethod
    def commit_options(app_id: str, seq: int) -> dict[str, str]:
        return {"snapshot-property.autoloader.app_id": app_id, "snapshot-property.autoloader.batch_seq": str(seq)}

    def committed(self, spark: Any, info: TableInfo, app_id: str) -> int | None:
        query = (
            f"SELECT max(CAST(summary['autoloader.batch_seq'] AS BIGINT)) FROM {info.name}.snapshots "
            f"WHERE summary['autoloader.app_id'] = {literal(app_id)}"
        )
        value = spark.sql(query).collect()[0][0]
        return None if value is None else int(value)

    def zorder(self, spark: Any, info: TableInfo, destination: DestinationConfig) -> None:
        catalog, database, table = self.tables.qualified(destination)
        order = "zorder(" + ",".join(destination.z_order_columns) + ")"
        spark.sql(
            f"CALL {quote(catalog)}.system.rewrite_data_files(table => {literal(f'{database}.{table}')}, "
            f"strategy => 'sort', sort_order => {literal(order)})"
        )

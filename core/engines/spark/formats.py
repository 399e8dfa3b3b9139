"""The table formats by name: the three a cluster can be set to write, and any other a table may already have."""

from __future__ import annotations

from typing import Any

from core.engines.base import BatchRequest
from core.engines.spark.delta import DeltaFormat
from core.engines.spark.iceberg import IcebergFormat
from core.engines.spark.lake import write_v2
from core.engines.spark.parquet import ParquetFormat, committed_partition
from core.engines.spark.reading import observe_rows
from core.engines.spark.table import TableFormat, TableInfo, Tables

FORMATS: dict[str, type[TableFormat]] = {"delta": DeltaFormat, "iceberg": IcebergFormat, "parquet": ParquetFormat}
TABLE_FORMATS = tuple(FORMATS)


class OtherFormat(TableFormat):
    """An existing table of another provider (e.g. a Hive table made outside Autoloader): batches are appended or
    overwrite it with no commit marker of their own; it is read as committed only if it has parquet's batch column."""

    def __init__(self, tables: Tables, name: str):
        super().__init__(tables)
        self.name = name

    def committed(self, spark: Any, info: TableInfo, app_id: str) -> int | None:
        return committed_partition(spark, info, app_id)

    def commit(self, spark: Any, request: BatchRequest, data: Any, info: TableInfo | None) -> tuple[int, int]:
        data, rows = observe_rows(data)
        write_v2(data, self.tables.name(request.destination), request.mode, {})
        return rows(), 0


def table_formats(tables: Tables) -> dict[str, TableFormat]:
    """One instance of each format for an engine's tables."""
    return {name: cls(tables) for name, cls in FORMATS.items()}


def commit_options(provider: str, app_id: str, seq: int) -> dict[str, str]:
    """The write options marking batch `seq` of `app_id` in a `provider` table."""
    fmt = FORMATS.get(provider)
    return fmt.commit_options(app_id, seq) if fmt is not None else {}


def merge_confs(provider: str, app_id: str, seq: int) -> dict[str, str]:
    """The session confs marking a MERGE of batch `seq` of `app_id` into a `provider` table."""
    fmt = FORMATS.get(provider)
    return fmt.merge_confs(app_id, seq) if fmt is not None else {}

"""What Delta and Iceberg share: DataFrameWriterV2 writes carrying the format's commit marker, MERGE, in-place
schema changes (ALTER COLUMN … TYPE, UPDATE).

MERGE is idempotent by nature (re-applying the same upsert gives the same table), so a batch re-run after a crash
cannot duplicate rows even where no marker is kept (Iceberg merges).
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import pyarrow as pa

from core.config import DestinationConfig
from core.engines.base import BatchRequest
from core.engines.spark.common import ROW_FILE, ddl_type, from_arrow, literal, quote, sql_value
from core.engines.spark.errors import translate
from core.engines.spark.reading import observe_rows
from core.engines.spark.table import TableFormat, TableInfo
from core.errors import SchemaChangeError, TableError
from core.storage.base import FileInfo


def merge_sql(table: str, view: str, keys: list[str]) -> str:
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    return f"MERGE INTO {table} t USING {view} s ON {on} WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"


def write_v2(data: Any, table: str, mode: str, options: dict[str, str]) -> None:
    """Append, or overwrite the whole table, through DataFrameWriterV2 with `options` on the commit."""
    from pyspark.sql.connect import functions as F

    writer = data.writeTo(table)
    for key, value in options.items():
        writer = writer.option(key, value)
    if mode == "overwrite":
        writer.overwrite(F.lit(True))
    else:
        writer.append()


_FILE_POS, _ROW_POS, _RANK = "__al file pos", "__al row pos", "__al rank"  # spaced as ROW_FILE is


def latest_per_key(frame: Any, keys: list[str], order_by: str | None, files: list[FileInfo]) -> Any:
    """One row per merge key: the highest `order_by`, then the latest file of the batch, then the latest row. Rows
    with a NULL in their key are all kept (the MERGE inserts them, matching nothing), as on the embedded engine."""
    from pyspark.sql.connect import functions as F
    from pyspark.sql.connect.window import Window

    missing = [k for k in [*keys, *([order_by] if order_by else [])] if k not in frame.columns]
    if missing:
        raise TableError(
            f"Merge column(s) {', '.join(missing)} are not in the incoming data.",
            "Pick merge keys and the ordering column from the detected schema.",
        )
    positions = F.create_map(*[x for i, f in enumerate(files) for x in (F.lit(f.path), F.lit(i))])
    present = [c for c in (ROW_FILE, "_source_file") if c in frame.columns]
    source_file = F.col(present[0]) if present else F.lit(None)
    ordered = frame.withColumn(_FILE_POS, F.coalesce(positions[source_file], F.lit(0)))
    ordered = ordered.withColumn(_ROW_POS, F.monotonically_increasing_id())
    order = [F.col(_FILE_POS).desc(), F.col(_ROW_POS).desc()]
    if order_by:
        order.insert(0, F.col(quote(order_by)).desc_nulls_last())
    window = Window.partitionBy(*[F.col(quote(k)) for k in keys]).orderBy(*order)
    ranked = ordered.withColumn(_RANK, F.row_number().over(window))
    unkeyed = functools.reduce(lambda a, b: a | b, [F.col(quote(k)).isNull() for k in keys])
    return ranked.where((F.col(_RANK) == 1) | unkeyed).drop(_RANK, _FILE_POS, _ROW_POS, ROW_FILE)


def create_as(
    spark: Any,
    name: str,
    provider: str,
    rows: Any,
    destination: DestinationConfig,
    properties: dict[str, str],
    *,
    replace: bool = False,
) -> None:
    """CREATE [OR REPLACE] TABLE … AS SELECT from `rows`, partitioned as the destination says. SQL, not
    DataFrameWriterV2: its partitionedBy column reaches Delta as text parsed again, so a partition column named
    `a-b` or `größe` failed as an invalid identifier."""
    view = f"autoloader_create_{uuid.uuid4().hex}"
    rows.createOrReplaceTempView(view)
    clauses = [f"{'CREATE OR REPLACE' if replace else 'CREATE'} TABLE {name} USING {provider}"]
    if destination.partition_columns:
        clauses.append("PARTITIONED BY (" + ", ".join(quote(c) for c in destination.partition_columns) + ")")
    if destination.location is not None and not replace:  # an external table where the embedded engine writes
        clauses.append(f"LOCATION {literal(destination.location)}")
    if properties:
        clauses.append(
            "TBLPROPERTIES (" + ", ".join(f"{literal(k)} = {literal(v)}" for k, v in properties.items()) + ")"
        )
    try:
        spark.sql(" ".join([*clauses, f"AS SELECT * FROM {view}"])).collect()
    finally:
        spark.catalog.dropTempView(view)


def widened_frame(spark: Any, info: TableInfo, destination: DestinationConfig, fields: list[Any]) -> Any:
    """The table's rows with `fields` (Spark fields) cast to their wider types, for a rewrite; refused first when a
    stored bigint would change as a double."""
    from pyspark.sql.connect import functions as F

    frame = spark.table(info.name)
    wider = {f.name: ddl_type(f.dataType) for f in fields}
    _refuse_inexact_widening(frame, info, destination, wider)
    return frame.select(
        *[F.col(quote(c)).cast(wider[c]).alias(c) if c in wider else F.col(quote(c)) for c in frame.columns]
    )


def _refuse_inexact_widening(
    frame: Any, info: TableInfo, destination: DestinationConfig, wider: dict[str, str]
) -> None:
    """Before a rewrite to wider types: refuse when a stored bigint would change as a double (above 2**53)."""
    from pyspark.sql.connect import functions as F

    current = {f.name: ddl_type(f.dataType) for f in info.schema.fields}
    for name, target in wider.items():
        if current.get(name) != "bigint" or target != "double":
            continue
        column = F.col(quote(name))
        found = frame.where(column.cast("double").cast("bigint") != column).select(column).limit(1).collect()
        if found:
            raise SchemaChangeError(
                f"Column '{name}' of {destination.full_name} holds integers a double cannot hold exactly "
                f"(e.g. {found[0][0]}); widening it from bigint to double would change them, so nothing was loaded.",
                f"Give '{name}' a type hint decimal(38,s) or string and load into a new table, or set the schema "
                "policy to rescue (values that do not fit go to _rescued_data).",
            )


class LakeFormat(TableFormat):
    """A table format with its own transaction log, available on the cluster as a data source of that name."""

    supports_merge = True
    adds_nested_fields = True

    def probe(self, spark: Any, cluster: str) -> None:
        """Resolve the data source without writing: a missing path is fine, a missing data source is not."""
        probe = f"/nonexistent/autoloader-format-probe-{uuid.uuid4().hex}"
        try:
            spark.read.format(self.name).load(probe).schema  # noqa: B018  (the schema call is the probe)
        except Exception as exc:
            error = translate(exc, cluster, "checking the table format")
            if error.code in ("format_not_supported", "cluster_unreachable", "cluster_auth_failed"):
                raise error from exc

    def commit(self, spark: Any, request: BatchRequest, data: Any, info: TableInfo | None) -> tuple[int, int]:
        if info is None:
            self.create(spark, request.destination, data)
        data, rows = observe_rows(data)
        if request.mode == "merge" and not request.replace:
            self._merge(spark, request, data)
            return rows(), 0
        if request.mode == "merge":  # a full refresh's first batch: its latest row per key, in place of the table
            destination = request.destination
            data = latest_per_key(data, destination.merge_keys, destination.merge_order_by, request.files)
        options = self.commit_options(request.app_id, request.batch_seq)
        mode = "overwrite" if request.replace else request.mode
        write_v2(data, self.tables.name(request.destination), mode, options)
        return rows(), 0

    def clear(self, spark: Any, request: BatchRequest, info: TableInfo) -> None:
        """Replace the table's rows with none, the columns kept, in one commit carrying the batch's marker."""
        empty = spark.table(info.name).limit(0)
        write_v2(empty, info.name, "overwrite", self.commit_options(request.app_id, request.batch_seq))

    def create(self, spark: Any, destination: DestinationConfig, data: Any) -> tuple[TableInfo, bool]:
        """An empty table first, so that the data always goes through the one idempotent write."""
        properties = dict(destination.table_properties)
        name = self.tables.name(destination)
        empty = data.drop(ROW_FILE).limit(0)
        return self.created(
            spark, destination, empty.schema, lambda: create_as(spark, name, self.name, empty, destination, properties)
        )

    @staticmethod
    def merge_source(source: Any) -> Any:
        """The MERGE's source as the format's MERGE can take it."""
        return source

    def _merge(self, spark: Any, request: BatchRequest, data: Any) -> None:
        """MERGE INTO from a session temp view, the commit marker passed through session confs under a lock."""
        destination = request.destination
        source = self.merge_source(
            latest_per_key(data, destination.merge_keys, destination.merge_order_by, request.files)
        )
        view = f"autoloader_src_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        confs = self.merge_confs(request.app_id, request.batch_seq)
        try:
            with self.tables.conf_lock:
                for key, value in confs.items():
                    spark.conf.set(key, value)
                try:
                    spark.sql(merge_sql(self.tables.name(destination), view, destination.merge_keys)).collect()
                finally:
                    for key in confs:
                        spark.conf.unset(key)
        finally:
            spark.catalog.dropTempView(view)

    def widen(self, spark: Any, info: TableInfo, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        """ALTER COLUMN … TYPE in place; the columns the format refuses to widen that way (`alter_refused`) are
        rewritten together in one commit (`rewrite_widened`), once no stored value would change."""
        refused = []
        for f in from_arrow(pa.schema(fields)).fields:
            try:
                spark.sql(f"ALTER TABLE {info.name} ALTER COLUMN {quote(f.name)} TYPE {ddl_type(f.dataType)}")
            except Exception as exc:
                if not self.alter_refused(str(exc)):
                    raise
                refused.append(f)
        if refused:
            self.rewrite_widened(spark, info, destination, widened_frame(spark, info, destination, refused))

    @staticmethod
    def alter_refused(message: str) -> bool:
        """Whether an ALTER COLUMN … TYPE failed because the format does not take that widening in place."""
        return False

    def rewrite_widened(self, spark: Any, info: TableInfo, destination: DestinationConfig, rows: Any) -> None:
        """Replace the table's content and schema with `rows` in one commit, keeping its partitioning and markers."""
        raise NotImplementedError(f"{self.name} tables take every widening in place")

    def fill(self, spark: Any, info: TableInfo, destination: DestinationConfig, column: str, value: object) -> None:
        """Cast to the column's own type: Iceberg's UPDATE refused a date given as text (CANNOT_SAFELY_CAST)."""
        held = next(f.dataType for f in info.schema.fields if f.name.lower() == column.lower())
        spark.sql(f"UPDATE {info.name} SET {quote(column)} = CAST({sql_value(value)} AS {ddl_type(held)})")

"""The destination table on the cluster, and the interface each table format implements (delta, iceberg, parquet).

Each format keeps its own exactly-once marker (see its module): `committed` reads it back, `commit` writes a batch
together with it. The engine asks the format of the existing table (the catalog's provider), or of the cluster
for a table it is about to create.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from core.config import DestinationConfig
from core.engines.base import BatchRequest, CompactionResult
from core.engines.spark.common import ddl_type, literal, quote
from core.engines.spark.session import ClusterTarget
from core.errors import MaintenanceNotSupported, TableError

log = logging.getLogger(__name__)

DEFAULT_DESTINATION_CATALOG = DestinationConfig.model_fields["catalog"].default


@dataclass(slots=True)
class TableInfo:
    name: str  # quoted, qualified
    provider: str
    location: str
    schema: Any  # pyspark StructType


class Tables:
    """Destination tables as named in the cluster's catalog."""

    def __init__(self, target: ClusterTarget):
        self.target = target
        # Session confs are global to the pooled session: a write that passes its marker through them (a Delta
        # MERGE) holds this lock from set to unset, so that concurrent runs do not commit under each other's marker.
        self.conf_lock = threading.Lock()

    def qualified(self, destination: DestinationConfig) -> tuple[str, str, str]:
        """(catalog, database, table) on the cluster; the destination's default catalog means the cluster's."""
        catalog = destination.catalog
        if catalog == DEFAULT_DESTINATION_CATALOG:
            catalog = self.target.catalog
        return catalog, destination.database, destination.table

    def uri(self, destination: DestinationConfig) -> str:
        return ".".join(self.qualified(destination))

    def name(self, destination: DestinationConfig) -> str:
        return ".".join(quote(p) for p in self.qualified(destination))

    def info(self, spark: Any, destination: DestinationConfig) -> TableInfo | None:
        if not spark.catalog.tableExists(self.uri(destination)) and not self._register(spark, destination):
            return None
        name = self.name(destination)
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
        details = {str(r[0]).strip(): str(r[1] or "").strip() for r in rows}
        provider = details.get("Provider", "").lower() or self.target.table_format
        return TableInfo(name, provider, details.get("Location", ""), spark.table(name).schema)

    def _register(self, spark: Any, destination: DestinationConfig) -> bool:
        """Register the Delta table at `destination.location` (written by the embedded engine before the ingestion
        moved to this cluster) in the catalog under the destination's name, as an external table. False when the
        location is not set or holds no Delta table yet (the first write creates the table there)."""
        location = destination.location
        if location is None:
            return False
        path = location.replace("`", "``")
        try:
            spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()
        except Exception as exc:
            if not _no_delta_table(exc):
                raise
            return False
        self.ensure_database(spark, destination)
        spark.sql(f"CREATE TABLE IF NOT EXISTS {self.name(destination)} USING DELTA LOCATION {literal(location)}")
        log.info("registered the Delta table at %s as %s", location, self.uri(destination))
        return True

    def create_once(
        self, spark: Any, destination: DestinationConfig, provider: str, schema: Any, create: Callable[[], None]
    ) -> tuple[TableInfo, bool]:
        """Run `create` (a `provider` table of `schema`, a Spark StructType) and return the table, and whether this
        run created it. If `create` fails because another run created the table meanwhile (two ingestions writing
        one table, started together: one failed terminally with TABLE_OR_VIEW_ALREADY_EXISTS), that table."""
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                create()
                break
            except Exception as exc:
                info = self.info(spark, destination)
                if info is not None:
                    log.info("table %s was created by another run meanwhile (%s)", info.name, type(exc).__name__)
                    return info, False
                refused = _unholdable_fields(exc, f"{self.name(destination)} ({provider})", list(schema.fields), True)
                if refused is not None:
                    raise refused from exc
                if attempt == _CREATE_ATTEMPTS and _taken(exc):
                    raise _stale_location(exc, destination, provider) from exc
                if attempt == _CREATE_ATTEMPTS or not _another_create_under_way(exc):
                    raise
                time.sleep(attempt)
        return self.existing(spark, destination), True

    def existing(self, spark: Any, destination: DestinationConfig) -> TableInfo:
        info = self.info(spark, destination)
        if info is None:
            raise TableError(f"Table {destination.full_name} does not exist.", "Run the ingestion once to create it.")
        return info

    def ensure_database(self, spark: Any, destination: DestinationConfig) -> None:
        catalog, database, _ = self.qualified(destination)
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {quote(catalog)}.{quote(database)}")


def _no_delta_table(exc: Exception) -> bool:
    """Whether Spark's error says a path holds no Delta table (nothing there yet, or no `_delta_log`)."""
    text = str(exc)
    return any(marker in text for marker in ("DELTA_MISSING_DELTA_TABLE", "is not a Delta table", "PATH_NOT_FOUND"))


_FIELD_NAME_REFUSED = ("DELTA_INVALID_CHARACTERS_IN_COLUMN_NAMES", "types incompatible with the existing columns")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_]+$")


_SHARED_FOLDER_LOST = ("_temporary", "chmod: cannot access", "No such file or directory", "FileNotFoundException")
_LOCATION_TAKEN = ("LOCATION_ALREADY_EXISTS", "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION")
_CREATE_ATTEMPTS = 5


def _another_create_under_way(exc: Exception) -> bool:
    """Two writers of one new managed table: the one that started second finds the other's files in the table's
    folder before the other has registered the table (LOCATION_ALREADY_EXISTS), or, when both had started, loses
    the shared _temporary folder (chmod: cannot access …: No such file or directory). Such a CREATE is tried again
    (for up to 10 s, by when the other run's empty table is registered); another failure is not."""
    return any(marker in str(exc) for marker in (*_SHARED_FOLDER_LOST, *_LOCATION_TAKEN))


def _taken(exc: Exception) -> bool:
    return any(marker in str(exc) for marker in _LOCATION_TAKEN)


def _stale_location(exc: Exception, destination: DestinationConfig, provider: str) -> TableError:
    """The table's folder still holds files and no run registered a table there: they were left by a dropped
    table, or by a create cut off before its end. Autoloader does not delete them: they may be someone's data."""
    found = re.search(r"location\s+\(?'([^']+)'", str(exc), re.IGNORECASE)
    where = f" ({found.group(1)})" if found else ""
    return TableError(
        f"Table {destination.full_name} ({provider}) cannot be created: its folder in the cluster's warehouse"
        f"{where} already holds files, and no table is registered there.",
        "Remove the folder if its files are not needed (a dropped table or a cut-off create left them), or choose "
        "another table name, then run again.",
        detail=str(exc)[:2000],
    )


def added_inside(table: Any, incoming: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """The fields the struct columns of `incoming` (a Spark StructType) add inside those of `table`, at any depth and
    inside the structs of arrays and maps (`items.element.qty`, `attrs.value.unit`, the steps Delta's and Iceberg's
    ADD COLUMNS take): (path, type) each, as `core.schema.with_added_fields` grows a struct (a field spelled
    differently is no new field)."""
    found: list[tuple[tuple[str, ...], Any]] = []
    known = {f.name.lower(): f for f in table.fields}
    for field in incoming.fields:
        old = known.get(field.name.lower())
        if old is None:
            if path:
                found.append(((*path, field.name), field.dataType))
        elif old.name == field.name:
            found += _added_inside_type(old.dataType, field.dataType, (*path, field.name))
    return found


def _added_inside_type(table: Any, incoming: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    kinds = (_kind(table), _kind(incoming))
    if kinds == ("StructType", "StructType"):
        return added_inside(table, incoming, path)
    if kinds == ("ArrayType", "ArrayType"):
        return _added_inside_type(table.elementType, incoming.elementType, (*path, "element"))
    if kinds == ("MapType", "MapType"):
        return _added_inside_type(table.valueType, incoming.valueType, (*path, "value"))
    return []


def _kind(data_type: Any) -> str:
    return type(data_type).__name__


def _nested_names(data_type: Any) -> list[str]:
    names = []
    for field in getattr(data_type, "fields", None) or []:
        names += [field.name, *_nested_names(field.dataType)]
    for inner in ("elementType", "keyType", "valueType"):
        if hasattr(data_type, inner):
            names += _nested_names(getattr(data_type, inner))
    return names


def _refuses_field_names(exc: Exception) -> bool:
    return any(marker in str(exc) for marker in _FIELD_NAME_REFUSED)


def _awkward(names: list[str]) -> list[str]:
    """The names a catalog may refuse (anything but letters, digits and `_`), sorted, once each."""
    return sorted({n for n in names if not _PLAIN_NAME.match(n)})


def _unholdable_fields(exc: Exception, table: str, new: list[Any], creating: bool = False) -> TableError | None:
    """Delta without column mapping, and a Hive metastore's Hive-compatible tables, refuse a struct field named
    with a space or punctuation (top-level names are made safe on reading; nested ones are kept as the files
    have them): said with the fields' names instead of the catalog's error."""
    if not _refuses_field_names(exc):
        return None
    awkward = _awkward([n for f in new for n in _nested_names(f.dataType)])
    columns = ", ".join(f.name for f in new if _nested_names(f.dataType))
    action = "be created with the column(s)" if creating else "take the new column(s)"
    return TableError(
        f"Table {table} cannot {action} {columns}: the cluster refuses the nested field name(s) "
        f"{', '.join(repr(n) for n in awkward) or '(see the details)'}.",
        "Rename the fields at the source, or ignore the column(s) in the schema settings (they are then not "
        "loaded), or load into an Iceberg table, which takes such names.",
        detail=str(exc)[:2000],
    )


class TableFormat:
    """What differs between table formats. The defaults are those of a format that can only take appends."""

    name: str
    supports_merge = False
    adds_nested_fields = False  # ALTER TABLE … ADD COLUMNS (`s`.`f` …) is for tables of the v2 catalog API

    def __init__(self, tables: Tables):
        self.tables = tables

    @staticmethod
    def commit_options(app_id: str, seq: int) -> dict[str, str]:
        """Write options that mark the commit as batch `seq` of `app_id`."""
        return {}

    @staticmethod
    def merge_confs(app_id: str, seq: int) -> dict[str, str]:
        """Session confs that mark a MERGE's commit (a MERGE statement takes no write options)."""
        return {}

    def probe(self, spark: Any, cluster: str) -> None:
        """Raise if the cluster lacks this format's data source (test connection)."""

    def committed(self, spark: Any, info: TableInfo, app_id: str) -> int | None:
        """The last batch sequence of `app_id` committed to the table."""
        raise NotImplementedError

    def commit(self, spark: Any, request: BatchRequest, data: Any, info: TableInfo | None) -> tuple[int, int]:
        """Write `data` as the request's batch in one commit (creating the table when `info` is None).

        Returns (rows written, bytes written; 0 where the format does not tell)."""
        raise NotImplementedError

    def finds_run_rows(
        self, spark: Any, info: TableInfo | None, destination: DestinationConfig, columns: list[str]
    ) -> bool:
        """Whether `rows_per_file` reads only the data files of the run (the table's `columns` in its order):
        Iceberg keeps the bounds of a table's first 100 columns by default."""
        return "_run_id" in columns[:100]

    def rows_per_file(self, spark: Any, info: TableInfo, request: BatchRequest, paths: list[str]) -> dict[str, int]:
        """The rows the request's committed batch wrote per source file, from the lineage columns (the run's rows
        only: Delta and Iceberg skip the data files whose statistics hold other runs)."""
        return rows_by_file(spark.table(info.name), paths, request.run_id)

    def settle_overwrite(self, spark: Any, info: TableInfo, app_id: str, batch_seq: int) -> None:
        """Finish an overwrite whose batch is committed; nothing to do where the commit itself replaced the rows."""

    def fence(self, spark: Any, info: TableInfo, app_id: str, batch_seq: int) -> None:
        """Commit nothing as the batch so a writer taken over cannot commit it (Engine.fence_batch); formats whose
        commits carry no transaction id another writer checks cannot, and do nothing."""

    def is_fence(self, spark: Any, info: TableInfo, app_id: str, batch_seq: int) -> bool:
        return False

    def clear(self, spark: Any, request: BatchRequest, info: TableInfo) -> None:
        """A full refresh that found no file to load: the table's rows replaced by none, marked as the batch."""
        raise TableError(
            f"A full refresh found no file to load, and table {request.destination.full_name} ({info.provider}) "
            "cannot be emptied by Autoloader.",
            "Empty or drop the table on the cluster, or put the files back at the source and run again.",
        )

    def create(self, spark: Any, destination: DestinationConfig, data: Any) -> tuple[TableInfo, bool]:
        """An empty table of `data`'s columns, and whether this run made it (see `created`)."""
        raise NotImplementedError

    def created(
        self, spark: Any, destination: DestinationConfig, schema: Any, create: Callable[[], None]
    ) -> tuple[TableInfo, bool]:
        """The table `create` makes for `schema`, or the one another run made meanwhile, given this batch's columns
        it lacks (without them, a parquet batch's new column was staged but never part of the table); and whether
        this run made it."""
        info, ours = self.tables.create_once(spark, destination, self.name, schema, create)
        if ours:
            return info, True
        self.add_columns(spark, info, schema)
        return self.tables.existing(spark, destination), False

    def add_columns(self, spark: Any, info: TableInfo, schema: Any) -> None:
        """New columns first (parquet tables do not add columns on append, and an ALTER is explicit everywhere)."""
        existing = set(info.schema.names)
        new = [f for f in schema.fields if f.name not in existing]
        if new:
            columns = ", ".join(f"{quote(f.name)} {ddl_type(f.dataType)}" for f in new)
            try:
                spark.sql(f"ALTER TABLE {info.name} ADD COLUMNS ({columns})")
            except Exception as exc:
                refused = _unholdable_fields(exc, f"{info.name} ({info.provider})", new)
                if refused is None:
                    raise
                raise refused from exc
        inside = added_inside(info.schema, schema)
        if not inside:
            return
        paths = ", ".join(".".join(path) for path, _ in inside)
        if not self.adds_nested_fields:
            raise TableError(
                f"Table {info.name} ({info.provider}) cannot take fields added inside its struct columns ({paths}).",
                "Choose 'new table' (the new schema in a new table), or load into a Delta or Iceberg table.",
            )
        columns = ", ".join(f"{'.'.join(quote(p) for p in path)} {ddl_type(t)}" for path, t in inside)
        try:
            spark.sql(f"ALTER TABLE {info.name} ADD COLUMNS ({columns})")
        except Exception as exc:
            if not _refuses_field_names(exc):
                raise
            awkward = _awkward([n for path, _ in inside for n in path[1:]])
            raise TableError(
                f"Table {info.name} ({info.provider}) cannot take the fields {paths}: the cluster refuses the nested "
                f"field name(s) {', '.join(repr(n) for n in awkward) or '(see the details)'}.",
                "Rename the fields at the source, set the schema policy to rescue (the table keeps its columns), "
                "or load into an Iceberg table, which takes such names.",
                detail=str(exc)[:2000],
            ) from exc

    def widen(self, spark: Any, info: TableInfo, destination: DestinationConfig, fields: list[pa.Field]) -> None:
        raise TableError(
            f"Table {destination.full_name} is {info.provider}: its column types cannot be widened in place.",
            "Resolve the change with a new table version instead, or use a delta or iceberg cluster.",
        )

    def fill(self, spark: Any, info: TableInfo, destination: DestinationConfig, column: str, value: object) -> None:
        raise TableError(
            f"Table {destination.full_name} is {info.provider}, which has no UPDATE.",
            "Leave the new column empty for old rows, or use a delta or iceberg cluster.",
        )

    def zorder(self, spark: Any, info: TableInfo, destination: DestinationConfig) -> None:
        log.warning("Z-order needs delta or iceberg; %s is %s: skipped", info.name, info.provider)

    def compact(self, spark: Any, info: TableInfo) -> CompactionResult:
        raise no_maintenance(info, "compaction")

    def vacuum(self, spark: Any, info: TableInfo, retention_hours: int, allow_short: bool) -> int:
        raise no_maintenance(info, "vacuum")


def grouped_by_file(rows: Any) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in rows.groupBy("_source_file").count().collect()}


def rows_by_file(table: Any, paths: list[str], run_id: int | None) -> dict[str, int]:
    """The rows of `table` per `_source_file` among `paths`, of run `run_id` only when given (a reprocessed file
    has rows of earlier runs too)."""
    from pyspark.sql.connect import functions as F

    wanted = F.col("_source_file").isin(paths)
    if run_id is not None:
        wanted = wanted & (F.col("_run_id") == F.lit(run_id))
    return grouped_by_file(table.where(wanted))


def no_maintenance(info: TableInfo, what: str) -> MaintenanceNotSupported:
    return MaintenanceNotSupported(
        f"Table {info.name} is a {info.provider} table: Autoloader runs {what} on delta tables only.",
        "Turn table maintenance off for this ingestion (PUT …/maintenance with enabled false), run the format's own "
        "maintenance on the cluster, or load into a cluster whose table format is delta.",
    )

"""Reading source files on the cluster: the DataFrame reader per source format, schema inference, and a batch: its
per-file counts (malformed files quarantined), then its frame for the write, with lineage columns and rescued data."""

from __future__ import annotations

import functools
import logging
import math
import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import pyarrow as pa

from core.config import FormatConfig
from core.engines.base import (
    BatchRequest,
    FileOutcome,
    InferResult,
    folder_bytes,
    is_text,
    partition_folder_room,
    partition_value_too_long,
)
from core.engines.spark import arrow_csv, text_rules
from core.engines.spark.common import ROW_FILE, from_arrow, quote, spark_path, to_arrow
from core.engines.spark.errors import format_error, is_auth_failure, is_stale_session, is_unreachable, translate
from core.engines.spark.session import ClusterTarget
from core.errors import AutoloaderError, BadFileError, ConfigError, TooManyBadRecords
from core.formats import apply_hints, nulls_to_string
from core.formats.names import source_name
from core.formats.partitions import partition_values, relative_path
from core.formats.text_types import TextRules
from core.schema import RESCUED
from core.spark_sources import refuse_paths_spark_cannot_read
from core.storage.base import FileInfo
from core.wording import counted

log = logging.getLogger(__name__)
T = TypeVar("T")
QUARANTINE_ACTION = "Check the file's format, or fix/remove it; it is quarantined and the rest of the run continues."

# Internal columns of a batch DataFrame, dropped before the write.
# Working columns hold a space, which no stored top-level name does (core/formats/names.py): a source column
# named like one of them is neither overwritten nor dropped.
_PATH, _BAD, _STAGED, _GUARD = arrow_csv.PATH_COLUMN, "__al bad", "__al staged ", "__al guard"
_WIDTH, _POSITION, _UNTAKEN = "__al width", "__al column ", "__al untaken "
_LAYOUT_THREADS = 8
_EXTRA_FIELDS = 16
"""A permissive CSV row may have this many fields more than the columns read (rescued as `_c<i>`, as the embedded
engine rescues them); a longer one is malformed."""
_CORRUPT_FORMATS = ("json", "csv", "xml")
_WRITE_PARTITION_BYTES = 128 * 1024 * 1024
_TASK_BYTES_MIN = 8 * 1024 * 1024
_ONE_PASS_FORMATS = ("json", "csv")
_ONE_PASS_MAX_FILES = 32
"""A batch of more files is counted first: its per-file counts would each be one aggregate of the write's
observation. Such batches are small files, whose counting pass is cheap beside their listing and opening."""
ONE_PASS_STOPPED = arrow_csv.STOPPED


@dataclass(slots=True)
class _FileStats:
    records: int = 0
    bad: int = 0
    too_long: tuple[str, ...] = ()
    """The partition columns with a value too long for a folder name (`_too_long_for_folders`)."""


@dataclass(slots=True)
class Batch:
    """A batch read and checked on the cluster, not yet written."""

    data: Any  # pyspark DataFrame with the output columns
    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    loaded: list[FileInfo] = field(default_factory=list)
    rows: int = 0
    bytes_read: int = 0
    settle: Callable[[int, RowsPerFile], None] | None = None
    """A batch read in one pass (`Reader.one_pass_batch`): fills `outcomes` and `rows` once the write is done,
    given the rows the write committed and how to count them in the table per file."""
    made_table: bool = False
    """Whether writing this batch created its table (a one-pass batch that stops may leave it empty)."""


RowsPerFile = Callable[[list[str]], dict[str, int]]
"""The rows a committed batch wrote per source file (ledger path), counted in the table."""


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
        options |= {"header": str(opts.header).lower(), **_csv_quoting(fmt), "encoding": _java_charset(opts.encoding)}
        options["multiLine"] = str(opts.multiline).lower()
        if infer:
            options["inferSchema"] = str(infer_types).lower()
        # With a header and a schema, Spark maps columns by position: the service reads each file's header and
        # each group of files with one header is read in its order (`_header_frame`, which turns Spark's header
        # check on where the written names can be the schema). The check against the batch's cleaned names (`""`
        # against `_c0`) failed the whole batch for a file with another order or another set of columns.
    elif fmt.type == "xml":
        # The embedded engine's names for attributes and element text (spark-xml's defaults, said explicitly).
        options |= {"rowTag": opts.row_tag or "row", "attributePrefix": "_", "valueTag": "_VALUE"}
        if infer:
            options["inferSchema"] = str(infer_types).lower()
    elif fmt.type == "text":
        options["wholetext"] = str(opts.wholetext).lower()
    elif fmt.type in ("parquet", "orc") and infer:
        options["mergeSchema"] = "true"
    if fmt.type in ("json", "csv"):
        # Read values as the shared inference typed them (docs/TYPES.md): text without a zone is UTC,
        # the ingestion's date and timestamp patterns, its NULL and NaN text.
        options["timeZone"] = "UTC"
        if opts.date_format:
            options["dateFormat"] = opts.date_format
        if opts.timestamp_format:
            options["timestampFormat"] = opts.timestamp_format
        if fmt.type == "csv":
            if opts.null_value:
                options["nullValue"] = opts.null_value
            options["nanValue"] = opts.nan_value
            if opts.comment:
                options["comment"] = opts.comment
    # LZ4 and Snappy frames have no Hadoop codec (Hadoop's .lz4 and .snappy are block formats): Spark picks the codec
    # by file extension, so those two are not passed on.
    if opts.compression not in ("auto", "none", "lz4", "snappy") and fmt.type in ("json", "csv", "text", "xml"):
        options["compression"] = {"bz2": "bzip2"}.get(opts.compression, opts.compression)
    return options


_SPARK_CHARSETS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "ascii": "US-ASCII",
    "iso8859-1": "ISO-8859-1",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16LE",
    "utf-16-be": "UTF-16BE",
    "utf-32": "UTF-32",
}
"""Python's codec → the charset Spark 4 reads text in: it reads no other (`spark.sql.legacy.javaCharsets` off)."""


def _java_charset(encoding: str) -> str:
    """The charset name Spark reads a text encoding the product accepts under (Python's names: `latin-1` is none);
    ConfigError for one Spark does not read (it quarantined every file with Spark's own charset error)."""
    from core.formats.encoding import codec_name

    name = _SPARK_CHARSETS.get(codec_name(encoding))
    if name is None:
        raise ConfigError(
            f"The Spark engine cannot read text in {encoding}: Spark reads UTF-8, UTF-16, UTF-32, ISO-8859-1 "
            "(latin-1) and US-ASCII only.",
            "Move the ingestion to the embedded engine, which reads it, or have the producer write UTF-8; nothing "
            "was loaded or set aside.",
            field="format.options.encoding",
        )
    return name


def _csv_quoting(fmt: FormatConfig) -> dict[str, str]:
    """How Spark splits a CSV row into fields, for the reader and for `from_csv`. A quote inside a quoted value is
    doubled, as RFC 4180 and the embedded engine have it, unless an escape character is set: Spark's own default,
    a backslash, kept `"x""y"` as that text."""
    opts = fmt.options
    quoting = {"sep": opts.delimiter, "quote": opts.quote}
    if opts.escape or opts.quote:
        quoting["escape"] = opts.escape or opts.quote
    return quoting


def ledger_path_column(column: Any) -> Any:
    """`_metadata.file_path` in the ledger's form: `file:/data/x` → `/data/x`, `s3a://b/k` → `s3://b/k`, unescaped."""
    from pyspark.sql.connect import functions as F

    # It runs for every row, so prefix tests and a substring rather than regexes (three regexes and url_decode cost
    # 1.5 µs a row: 8 s of a 5.2M-row batch); a path without `%` has nothing to decode (`+` is kept as it is).
    rest = 1 << 20  # to the end
    s3 = column.startswith("s3a://") | column.startswith("s3n://")
    path = (
        F.when(column.startswith("file://"), column.substr(8, rest))
        .when(column.startswith("file:"), column.substr(6, rest))
        .when(s3, F.concat(F.lit("s3"), column.substr(4, rest)))
        .otherwise(column)
    )
    return F.when(path.contains("%"), F.url_decode(F.replace(path, F.lit("+"), F.lit("%2B")))).otherwise(path)


def _path_column(files: list[FileInfo]) -> Any:
    """Each row's file as the ledger names it: the file's path itself when the read has one file (taking it apart
    from `_metadata` for every row cost about 1 s of a 256 MiB CSV's read on 2 cores)."""
    from pyspark.sql.connect import functions as F

    if len(files) == 1:
        return F.lit(files[0].path)
    return ledger_path_column(F.col("_metadata.file_path"))


def _write_partitions(bytes_read: int, cores: int) -> int:
    """How many partitions, so tasks and table files, a JSON, CSV or XML batch is read and written in: one per
    128 MiB of input (Spark's own split size), and no fewer than the cluster's cores, as long as each has 8 MiB.

    Spark counts each file as at least 4 MiB when it splits a read (its open cost), so a batch of many small files
    is read in many partitions, and each would be a small table file (100 files of 3 rows: 4 table files on
    local[2]). Merged into one, the batch was read and written by one core: 2,000 small JSON files (20 MiB) into
    Delta took 10.4 s that way, 9.6 s in Spark's 63 partitions, 8.3 s in 2 on local[2]. A large batch keeps about
    the partitions it had."""
    by_size = math.ceil(bytes_read / _WRITE_PARTITION_BYTES)
    spread = min(cores, math.ceil(bytes_read / _TASK_BYTES_MIN))
    return max(1, by_size, spread)


def without_keys(rescued: Any, keys: frozenset[str]) -> Any:
    """`_rescued_data` without the columns the user chose to ignore (raw text that is not a JSON object is kept)."""
    from pyspark.sql.connect import functions as F

    if not keys:
        return rescued
    parsed = F.from_json(rescued, "map<string,string>")
    kept = F.map_filter(parsed, lambda k, _: ~k.isin(sorted(keys)))
    cleaned = F.when(F.size(kept) > 0, F.to_json(kept))
    return F.when(parsed.isNull(), rescued).otherwise(cleaned)


def observe_rows(data: Any) -> tuple[Any, Callable[[], int]]:
    """`data` counting its rows as the write runs, and how to read that count once the write is done."""
    from pyspark.sql.connect import functions as F
    from pyspark.sql.connect.observation import Observation

    observation = Observation(f"rows_{uuid.uuid4().hex}")
    observed = data.observe(observation, F.count(F.lit(1)).alias("rows"))
    return observed, lambda: int(observation.get.get("rows", 0))


def _fatal(exc: Exception) -> bool:
    """Errors of the connection, not of a file: they must not be taken for an unreadable file."""
    return is_unreachable(exc) or is_stale_session(exc) or is_auth_failure(exc)


class Reader:
    """Reads an ingestion's files on one cluster."""

    def __init__(self, target: ClusterTarget):
        self.target = target
        self._cores: int | None = None
        self._counted_first: set[str] = set()  # app ids whose last one-pass batch stopped
        self._workers_parse: bool | None = None  # whether the cluster's Python workers can run `arrow_csv`

    def cores(self, spark: Any) -> int:
        """The cluster's default parallelism (its cores), asked once: Spark splits a range into that many partitions
        when none is given. Spark Connect has no SparkContext to ask."""
        from pyspark.sql.connect import functions as F

        if self._cores is None:
            ids = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("p"))
            self._cores = int(ids.agg(F.max("p")).collect()[0][0]) + 1
        return self._cores

    def check_source(self, files: list[FileInfo]) -> None:
        refuse_paths_spark_cannot_read(f.path for f in files)
        if self.target.kind == "local" and any(f.path.startswith("s3://") for f in files):
            raise ConfigError(
                "The local Spark cluster cannot read S3: it has no hadoop-aws connector.",
                "Use the embedded engine for S3 sources, or a remote cluster that has hadoop-aws and S3 credentials.",
                field="cluster_id",
            )

    def reader(self, spark: Any, fmt: FormatConfig, schema: Any) -> Any:
        reader = spark.read.format(fmt.type).options(**reader_options(fmt, infer=schema is None))
        return reader if schema is None else reader.schema(schema)

    def _raise_if_missing_format(self, exc: Exception, fmt: FormatConfig) -> None:
        error = translate(exc, self.target.name, f"reading {fmt.type} files")
        if error.code == "format_not_supported":
            raise format_error(fmt.type, self.target.name, exc) from exc

    @staticmethod
    def _probe_files(fmt: FormatConfig, files: list[FileInfo], frame_of: Callable[[FileInfo], Any]) -> dict[str, str]:
        """Read each file alone (`frame_of` it; only after a batch failed) to find the ones that cannot be read."""
        from pyspark.sql.connect import functions as F

        bad: dict[str, str] = {}
        for info in files:
            try:
                frame_of(info).agg(F.count(F.lit(1))).collect()
            except Exception as exc:
                if _fatal(exc):
                    raise
                reason = str(exc).strip().split("\n", 1)[0][:300]
                bad[info.path] = f"{info.path} could not be read as {fmt.type}: {reason}"
        return bad

    def _probe_batch_files(
        self, spark: Any, request: BatchRequest, files: list[FileInfo], layouts: Layouts | None
    ) -> dict[str, str]:
        """`_probe_files` for a batch: each file read alone as the batch reads it."""
        if layouts is not None:
            return self._probe_files(
                request.format, files, lambda info: self._raw_frame(spark, request, [info], layouts)
            )
        schema = self._read_schema(request)
        return self._probe_files(
            request.format, files, lambda info: self.reader(spark, request.format, schema).load(spark_path(info.path))
        )

    # --- schema -------------------------------------------------------------------------------------------------
    def infer(self, spark: Any, files: list[FileInfo], fmt: FormatConfig) -> InferResult:
        """Spark's own inference, for the formats only a cluster reads (orc, xml, text, avro); JSON, CSV and
        Parquet are inferred by the shared inference (core/engines/inference.py) before they get here."""
        bad = {f.path: f"{f.path} is empty" for f in files if f.size == 0}
        readable = [f for f in files if f.size > 0]
        schema = None
        try:
            schema = self.reader(spark, fmt, None).load([spark_path(f.path) for f in readable]).schema
        except Exception as exc:
            if _fatal(exc):
                raise
            self._raise_if_missing_format(exc, fmt)
            unreadable = self._probe_files(
                fmt, readable, lambda info: self.reader(spark, fmt, None).load(spark_path(info.path))
            )
            bad.update(unreadable)
            rest = [f for f in readable if f.path not in unreadable]
            if rest:
                schema = self.reader(spark, fmt, None).load([spark_path(f.path) for f in rest]).schema
        if schema is None:
            return InferResult(pa.schema([]), bad)
        arrow = to_arrow([f for f in schema.fields if f.name != RESCUED])
        return InferResult(apply_hints(nulls_to_string(arrow), fmt.schema_.hints), bad)

    def infer_each(self, spark: Any, files: list[FileInfo], fmt: FormatConfig) -> dict[str, pa.Schema]:
        """Per-file schemas in two cluster jobs, not one per file: the files' merged schema, narrowed for each file
        to the columns it has values in. Types are the merged ones (a file's narrower type is not told apart)."""
        from pyspark.sql.connect import functions as F

        merged = self.infer(spark, files, fmt)
        readable = [f for f in files if f.path not in merged.bad_files]
        if not readable or not len(merged.schema):
            return {f.path: merged.schema for f in readable}
        frame = self.reader(spark, fmt, from_arrow(merged.schema)).load([spark_path(f.path) for f in readable])
        path = ledger_path_column(F.col("_metadata.file_path")).alias(_PATH)
        present = [F.count(F.col(quote(name))).alias(name) for name in merged.schema.names]
        rows = frame.select(path, *[F.col(quote(n)) for n in merged.schema.names]).groupBy(_PATH).agg(*present)
        schemas = {}
        for row in rows.collect():
            keep = [f for f in merged.schema if row[f.name]]
            schemas[str(row[_PATH])] = pa.schema(keep)
        return {f.path: schemas.get(f.path, merged.schema) for f in readable}

    def count_records(self, spark: Any, files: list[FileInfo], fmt: FormatConfig) -> dict[str, int]:
        from pyspark.sql.connect import functions as F

        readable = [f for f in files if f.size > 0]
        if not readable:
            return {}
        frame = self.reader(spark, fmt, None).load([spark_path(f.path) for f in readable])
        rows = frame.groupBy(ledger_path_column(F.col("_metadata.file_path")).alias(_PATH)).count().collect()
        return {str(r[0]): int(r[1]) for r in rows}

    # --- batch --------------------------------------------------------------------------------------------------
    def read_batch(self, spark: Any, request: BatchRequest) -> Batch:
        """Count per file, quarantine, check the threshold; then hand over the batch's frame for the write.

        The files are read twice. A counting pass finds each file's records and malformed records from the raw
        read, without the text rules' conversion; the write then reads the files that passed and converts as it
        writes. Both passes read with the same schema, so Spark marks the same records malformed in both. Holding
        the converted rows between the two instead (localCheckpoint) cost more than reading again: the checkpoint
        ran the whole conversion and stored every row (13 s of a 27 s load of a 256 MiB CSV on 2 cores), and the
        write read it all back."""
        batch = Batch(data=None)
        files = _set_aside_long_folder_values(request, _set_aside_empty(request, batch), batch)
        layouts = _layouts(request, files, batch)
        files = [f for f in files if f.path not in batch.outcomes]
        stats: dict[str, _FileStats] = {}
        general: set[str] = set()
        while files:
            try:
                stats, general = self._counted(spark, request, files, layouts)
                break
            except Exception as exc:
                if _fatal(exc):
                    raise
                self._raise_if_missing_format(exc, request.format)
                unreadable = self._probe_batch_files(spark, request, files, layouts)
                if not unreadable:
                    raise
                for path, reason in unreadable.items():
                    batch.outcomes[path] = FileOutcome(quarantine_reason=reason, action=QUARANTINE_ACTION)
                files = [f for f in files if f.path not in unreadable]
        keep = _settle_files(request, files, stats, batch)
        if not general and not any(stat.bad for stat in stats.values()):
            self._counted_first.discard(request.app_id)
        _check_threshold(request, batch)
        if batch.rows:
            data = self._batch_frame(spark, request, keep, general, layouts)
            if request.format.type in _CORRUPT_FORMATS:
                data = data.coalesce(_write_partitions(batch.bytes_read, self.cores(spark)))
            batch.data = _output(data, request)
        batch.loaded = keep
        return batch

    def one_pass_batch(
        self, spark: Any, request: BatchRequest, new_table: bool, finds_run_rows: Callable[[list[str]], bool]
    ) -> Batch | None:
        """The batch to be read and written in one pass, counted as it is written; None where it is counted first.

        `read_batch` reads the files twice: the counting pass of one large CSV file was 3.5-4.2 s of a 14 s load
        (256 MiB, 2 cores), more than the hand-written job spends inferring its schema. Most batches hold no
        malformed record and no text that needs the general form of its rule; for those the counting pass decides
        nothing. So an appending JSON or CSV batch is written straight away, each file's rows counted by the write's
        observation (one `count_if` per file, up to 32 files) or, for more files, in the table once the batch is
        committed (grouped by the lineage column `_source_file`; such a batch is counted first without lineage
        columns, or where the table cannot find the run's rows without reading all of it: `finds_run_rows` of the
        output's columns), and the first row that would need the counting pass's decisions (a malformed
        record, a rare form of a value) stops the write before anything is committed (`ONE_PASS_STOPPED`); the
        engine then loads the batch by `read_batch`. An ingestion whose batch stopped is counted first until one of
        its batches counts clean, so that a source with malformed records does not pay for both every time."""
        from pyspark.sql.connect import functions as F

        fmt = request.format
        if (
            fmt.type not in _ONE_PASS_FORMATS
            or request.mode != "append"
            or request.replace
            # New columns are added to an existing table before the write, and would stay if the write stopped.
            or (request.evolve and not new_table)
            or request.app_id in self._counted_first
        ):
            return None
        batch = Batch(data=None)
        files = _set_aside_long_folder_values(request, _set_aside_empty(request, batch), batch)
        observed = len(files) <= _ONE_PASS_MAX_FILES
        if not files or not (observed or request.destination.lineage_columns):
            return None
        layouts = _layouts(request, files, batch)
        if len(batch.outcomes) > len(request.files) - len(files):
            return None  # a header that cannot be read: `read_batch` sets the file aside
        batch.bytes_read = sum(f.size for f in files)
        if layouts is not None and _lines_parse(request.format) and self.workers_parse(spark):
            data = _parsed_lines_frame(spark, request, files, layouts).withColumn(_GUARD, F.lit(False))
        else:
            data = self._batch_frame(spark, request, files, set(), layouts, guarded=True)
        if too_long := _too_long_for_folders(request):
            data = data.withColumn(_GUARD, functools.reduce(operator.or_, too_long.values(), F.col(_GUARD)))
        data = data.coalesce(_write_partitions(batch.bytes_read, self.cores(spark)))
        counts = None
        if observed and len(files) > 1:
            data, counts = _observe_files(data, files)
        batch.data = _output(data, request, guarded=True)
        if not observed and not finds_run_rows(batch.data.columns):
            return None
        batch.loaded = files

        def settle(rows: int, written: RowsPerFile) -> None:
            if len(files) == 1:
                # The commit's own count of the same rows (a second observation of them is left out of the plan).
                per_file = {files[0].path: rows}
            else:
                per_file = counts() if counts is not None else written([f.path for f in files])
            for info in files:
                batch.outcomes[info.path] = FileOutcome(records=per_file.get(info.path, 0))
            batch.rows = sum(per_file.values())

        batch.settle = settle
        return batch

    def workers_parse(self, spark: Any) -> bool:
        """Whether the cluster's Python workers can parse CSV with the product's reader (`arrow_csv`), asked once:
        the local cluster's can (its workers run the service's Python); a remote cluster's have the product only
        where it was installed there."""
        if not self.target.csv_on_workers:
            return False
        if self._workers_parse is None:
            try:
                spark.range(1).mapInArrow(arrow_csv.probe, "ok boolean").collect()
                self._workers_parse = True
            except Exception as exc:
                if _fatal(exc):
                    raise
                log.info("cluster %s: its Python workers cannot parse CSV, Spark's reader is used", self.target.name)
                log.debug("the workers' answer", exc_info=True)
                self._workers_parse = False
        return self._workers_parse

    def count_first(self, app_id: str) -> None:
        """Count the ingestion's batches before writing them, until one counts clean (see `one_pass_batch`)."""
        self._counted_first.add(app_id)

    @staticmethod
    def one_pass_stopped(exc: Exception) -> bool:
        """Whether a one-pass write failed in a way `read_batch` may settle: its guard stopped it, or a file could
        not be read (the counting pass finds which). Not a lost connection, not one of the product's own errors."""
        return not isinstance(exc, AutoloaderError) and not _fatal(exc)

    def _read_schema(self, request: BatchRequest) -> Any:
        """The schema the files are read with: the target's columns, with the ones `text_rules` converts (CSV
        typed columns, JSON date and timestamp columns) and CSV's extra columns read as text, under the names the
        files give them (`_file_keys`)."""
        from pyspark.sql.types import StructField, StructType

        keys = _file_keys(request)
        schema = self._target_read_schema(request)
        return StructType([StructField(keys.get(f.name, f.name), f.dataType, f.nullable) for f in schema.fields])

    @staticmethod
    def _target_read_schema(request: BatchRequest) -> Any:
        """`_read_schema` under the target's column names."""
        from pyspark.sql.types import StringType, StructField, StructType

        folders = _folder_columns(request)
        text = set(_text_columns(request))
        fields = [pa.field(f.name, pa.string()) if f.name in text else f for f in request.schema]
        try:
            schema = from_arrow(pa.schema([f for f in fields if f.name not in folders]))
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise ConfigError(
                f"The target schema has a type Spark cannot read into: {exc}",
                "Use a type hint to pick a supported type for that column.",
                detail=repr(exc),
            ) from exc
        # Extra columns are read as text: CSV's are text anyway, and Spark hands over a JSON value read as text
        # exactly as it was written (numbers keep every digit), to be rescued as that value.
        extras = [pa.field(f.name, pa.string()) for f in _extra_fields(request)]
        if extras:
            schema = StructType([*schema.fields, *from_arrow(pa.schema(extras)).fields])
        if request.format.type in _CORRUPT_FORMATS:
            schema = StructType([*schema.fields, StructField(RESCUED, StringType(), True)])
        return schema

    def _raw_frame(self, spark: Any, request: BatchRequest, files: list[FileInfo], layouts: Layouts | None) -> Any:
        """The files read with the read schema, under the target's column names, plus the ledger path and a
        malformed-record flag. CSV files with a header and Parquet files: each group of files with one layout
        read as that layout needs (`_header_frame`, `_parquet_frame`), the groups put together by column name."""
        if layouts is None:
            schema = self._read_schema(request)
            frame = self.reader(spark, request.format, schema).load([spark_path(f.path) for f in files])
            if renamed := {key: name for name, key in _file_keys(request).items()}:
                frame = frame.withColumnsRenamed(renamed)
            return self._flagged(frame, request, files, _width(schema))
        groups: dict[tuple[Any, ...], list[FileInfo]] = {}
        for info in files:
            groups.setdefault(layouts[info.path], []).append(info)
        group_frame = self._parquet_frame if request.format.type == "parquet" else self._header_frame
        target = self._target_read_schema(request)  # once, not per group (a batch may have 1,000 layouts)
        frames = [group_frame(spark, request, target, layout, group) for layout, group in groups.items()]
        return _with_missing_columns(_union_by_name(frames), target)

    def _header_frame(
        self,
        spark: Any,
        request: BatchRequest,
        target: Any,
        columns: tuple[tuple[str, str, str], ...],
        files: list[FileInfo],
    ) -> Any:
        """CSV files whose header is `columns` (`csv_columns`: stored, written and cleaned name each), read by
        position and then named as the target's columns: a column the files have in another order lands in its
        column, one they lack is NULL. One the target does not take (a name stored like another, `a b` beside
        `a_b`; a column the folders fill, `year` under `year=2024/`; an ignored one) is kept as
        `_UNTAKEN<cleaned name>`, for `_rescued_data` (as on the embedded engine; it was dropped).

        Where the written names can be Spark's schema (none blank, none twice without regard to case, the common
        case), the files are read under them with Spark's header check on, so a file whose header is no longer the
        one the service read (rewritten meanwhile, or text Spark decodes otherwise) fails the read instead of
        loading values into other columns; else under placeholder names, unchecked."""
        from pyspark.sql.connect import functions as F
        from pyspark.sql.types import StringType, StructField, StructType

        written = [name for _, name, _ in columns]
        checked = all(written) and len({name.lower() for name in written}) == len(written)
        known = {f.name: f for f in target.fields if f.name != RESCUED}
        fields, named = [], {}
        for index, (name, as_written, cleaned) in enumerate(columns):
            read_as = as_written if checked else f"{_POSITION}{index}"
            taken = known.pop(name, None)
            fields.append(StructField(read_as, taken.dataType if taken else StringType(), True))
            named[read_as] = name if taken is not None else f"{_UNTAKEN}{cleaned}"
        fields.append(StructField(RESCUED, StringType(), True))
        schema = StructType(fields)
        reader = self.reader(spark, request.format, schema)
        if checked:
            reader = reader.option("enforceSchema", "false")
        frame = reader.load([spark_path(f.path) for f in files])
        frame = frame.select(*[F.col(quote(p)).alias(name) for p, name in named.items()], F.col(RESCUED))
        frame = self._flagged(frame, request, files, len(columns))
        return frame.withColumn(_WIDTH, F.lit(len(columns)))

    def _parquet_frame(
        self, spark: Any, request: BatchRequest, target: Any, layout: tuple[tuple[str, str], ...], files: list[FileInfo]
    ) -> Any:
        """Parquet files of one layout (`_parquet_layout`): a column they lack or hold only NULLs in is left out
        of the read (NULL), nanosecond timestamps are read as the long they are stored as and cut to microseconds
        as the embedded engine cuts them (Spark reads no TIMESTAMP(NANOS) column into a timestamp: pandas writes
        them by default, and every such batch failed inside its write)."""
        from pyspark.sql.types import LongType, StructField, StructType

        how = dict(layout)
        keys = _file_keys(request)
        fields, nanos = [], {}
        for f in target.fields:
            kind = how.get(f.name, _ABSENT)
            if kind == _ABSENT:
                continue
            fields.append(StructField(keys.get(f.name, f.name), LongType() if kind == _NANOS else f.dataType, True))
            if kind == _NANOS:
                nanos[f.name] = f.dataType
        frame = self.reader(spark, request.format, StructType(fields)).load([spark_path(f.path) for f in files])
        if renamed := {key: name for name, key in keys.items() if name in how}:
            frame = frame.withColumnsRenamed(renamed)
        if nanos:
            frame = frame.withColumns({name: _from_nanos(name, t) for name, t in nanos.items()})
        return self._flagged(frame, request, files, len(fields))

    @staticmethod
    def _flagged(frame: Any, request: BatchRequest, files: list[FileInfo], width: int) -> Any:
        """`frame` with the malformed-record flag and the ledger path."""
        raw = _raw_record(frame)
        if _ragged_rows_load(request.format):  # And stops at the first False: only such rows are parsed again
            bad = raw.isNotNull() & (_too_long(raw, request.format, width) | _badly_quoted(raw, request.format))
        else:
            bad = _bad_record(request.format, raw)
        return frame.withColumns({_BAD: bad, _PATH: _path_column(files)})

    def _counted(
        self, spark: Any, request: BatchRequest, files: list[FileInfo], layouts: Layouts | None
    ) -> tuple[dict[str, _FileStats], set[str]]:
        """Records and malformed records per file, from the raw read, and the text columns that hold rows of the
        general forms of their rules (`text_rules.rare_rows`).

        For JSON, CSV and XML every column is read: Spark parses only the columns a query uses, and a record is
        malformed by the ones it parses, so the count must see the columns the write sees. Other formats are
        counted reading no column."""
        from pyspark.sql.connect import functions as F

        frame = self._raw_frame(spark, request, files, layouts)
        rules = _text_rules(request)
        targets = {f.name: f.type for f in request.schema}
        rare = {}
        for name in _text_columns(request):
            rows = text_rules.rare_rows(F.col(quote(name)), targets[name], rules) if name in frame.columns else None
            if rows is not None:
                rare[name] = rows
        parsed = frame.columns if request.format.type in _CORRUPT_FORMATS else []
        too_long = {name: check for name, check in _too_long_for_folders(request).items() if name in frame.columns}
        return _file_stats(frame, [c for c in parsed if c not in (_PATH, _BAD, _WIDTH)], rare, too_long)

    def _batch_frame(
        self,
        spark: Any,
        request: BatchRequest,
        files: list[FileInfo],
        general: set[str],
        layouts: Layouts | None,
        guarded: bool = False,
    ) -> Any:
        """The files read with the target schema, plus the ledger path and a malformed-record flag.

        Text columns of typed targets become values by text_types' rules (`text_rules`; the columns in `general`
        by the general forms); a value its column cannot hold is NULL there and its text is in `_rescued_data`
        under the column's name (not a malformed record). A record that did not parse at all is
        `{"_malformed": raw text}` with its data columns NULL (CSV). `guarded`: with the `_GUARD` column, true
        where a row needs the counting pass (`one_pass_batch`); the mode's filter is then left to that pass."""
        from pyspark.sql.connect import functions as F

        frame = self._raw_frame(spark, request, files, layouts)
        if request.format.options.mode == "dropmalformed" and not guarded:
            frame = frame.where(~F.col(_BAD))
        staging = Staging()
        raw = _raw_record(frame)
        bad = F.col(_BAD)
        csv = request.format.type == "csv"
        rules = _text_rules(request)
        zone = _session_zone(spark, rules)
        targets = {f.name: f.type for f in request.schema}
        void = bad if csv else None
        steps = {}
        for name in _text_columns(request):
            if name in frame.columns:
                spark_type = from_arrow(pa.schema([pa.field(name, targets[name])]))[0].dataType
                text = F.col(quote(name))
                steps[name] = text_rules.convert(text, targets[name], spark_type, rules, zone, name in general, void)
        frame, conversions = staging.run(frame, text_rules.together(steps))
        frame, values = staging.stage(frame, {name: c.value for name, c in conversions.items()})
        columns: dict[str, Any] = {}
        misfits: dict[str, Any] = {}
        for name, converted in conversions.items():
            misfits[name] = converted.misfit(values[name])
            columns[name] = values[name]
        if guarded:
            columns[_GUARD] = _needs_counting(bad, conversions, misfits, targets, rules)
        extras = [f.name for f in _extra_fields(request)]
        packed = None
        if csv:
            misfits |= {name: F.when(~bad, F.col(quote(name))) for name in extras}
        elif extras:
            packed = text_rules.rescued_object([(c, F.col(quote(c))) for c in extras], json_values=True)
        kept = [c for c in frame.columns if c.startswith(_UNTAKEN)]
        untaken = [(c.removeprefix(_UNTAKEN), F.when(~bad, F.col(quote(c)))) for c in kept]
        if csv:
            for name in request.schema.names:
                if name != RESCUED and name not in columns and name in frame.columns:
                    columns[name] = F.when(~bad, F.col(quote(name)))
        else:  # JSON values are read several times each to be written as JSON (text_rules.rescued_text)
            frame, misfits = staging.stage(frame, misfits)
        base = F.when(bad, text_rules.malformed(raw))
        if _ragged_rows_load(request.format):  # a CSV row of the wrong width: padded, its extra fields rescued
            ragged = _ragged(raw, request.format, _widths(files, layouts, self._read_schema(request)))
            frame, staged = staging.stage(frame, {"ragged": F.when(raw.isNotNull() & ~bad, ragged)})
            base = base.when(staged["ragged"].isNotNull(), staged["ragged"])  # in a projection of its own
        if not csv:  # a JSON record that parsed, with values its columns cannot hold: rescued as it is
            base = base.otherwise(raw)
        if packed is not None:
            base = F.coalesce(base, packed)
        # A malformed CSV row has no misfits (`void`): its whole line is kept instead.
        rescued = text_rules.rescued_text([*misfits.items(), *untaken], json_values=not csv)
        frame, parts = staging.stage(frame, {"base": base, "rescued": rescued})
        columns[RESCUED] = text_rules.merge_objects(parts["base"], text_rules.as_object(parts["rescued"]))
        frame = frame.withColumns(columns)
        for column in _folder_columns(request):
            spark_type = from_arrow(pa.schema([request.schema.field(column)]))[0].dataType
            frame = frame.withColumn(column, F.lit(None).cast(spark_type))
        frame = _with_partitions(frame, request, files, staging)
        frame = staging.dropped(frame)
        return frame.drop(_WIDTH) if layouts is not None else frame


class Staging:
    """Expressions stored in temporary columns, each in a projection of its own, dropped at the end.

    Spark inlines a projection's column into the next projection only where it is cheap or read once
    (CollapseProject); an expression built into several others is copied whole into each instead, and computed once
    per copy. The text rules read each converted value twice (the value, its misfit) and the rescued objects read
    their parts several times: built as one expression, a 2,000-file JSON batch with a few double columns had a
    1.6 MB plan and read 12 times slower than its plain columns (bench/bench_spark.py)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def stage(self, frame: Any, expressions: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """`frame` with each expression in a new column, and a reference to that column under the same key."""
        from pyspark.sql.connect import functions as F

        if not expressions:
            return frame, {}
        columns = {key: f"{_STAGED}{len(self.names) + i}" for i, key in enumerate(expressions)}
        self.names += columns.values()
        frame = frame.withColumns({columns[key]: expression for key, expression in expressions.items()})
        return frame, {key: F.col(column) for key, column in columns.items()}

    def run(self, frame: Any, steps: text_rules.Steps[T]) -> tuple[Any, T]:
        """`frame` with each step's expressions staged (text_rules.Steps), and what the steps return."""
        try:
            expressions = next(steps)
            while True:
                frame, columns = self.stage(frame, expressions)
                expressions = steps.send(columns)
        except StopIteration as done:
            return frame, done.value

    def dropped(self, frame: Any) -> Any:
        return frame.drop(*self.names) if self.names else frame


def _text_partition_columns(request: BatchRequest) -> list[str]:
    """The table's text partition columns, named as the target schema spells them (matched regardless of case)."""
    texts = {f.name.lower(): f.name for f in request.schema if is_text(f.type) and f.name != RESCUED}
    return [texts[c.lower()] for c in request.destination.partition_columns if c.lower() in texts]


def _too_long_for_folders(request: BatchRequest) -> dict[str, Any]:
    """Per text partition column of the table: where a row's value is too long for a folder name, measured as the
    embedded engine measures it (`base.folder_bytes`). Spark failed the whole batch on such a value at every run,
    naming neither the file nor the column; the counting pass now quarantines the file instead."""
    from pyspark.sql.connect import functions as F

    checks = {}
    for name in _text_partition_columns(request):
        text = F.col(quote(name))
        escaped = F.octet_length(F.regexp_replace(text, F.lit("[A-Za-z0-9._-]"), F.lit("")))
        size = F.octet_length(text) + escaped * 2
        checks[name] = F.coalesce(size > F.lit(partition_folder_room(name)), F.lit(False))
    return checks


def _lines_parse(fmt: FormatConfig) -> bool:
    """Whether a CSV batch can be parsed from its lines by the workers (`arrow_csv`): rows within one line, UTF-8
    text, and no compression Spark would not take off by the file's extension as the embedded engine does."""
    from core.formats.encoding import codec_name

    opts = fmt.options
    return (
        fmt.type == "csv"
        and opts.header
        and not opts.multiline
        and opts.compression in ("auto", "none")
        and codec_name(opts.encoding) in ("utf-8", "utf-8-sig")
    )


def _parsed_lines_frame(spark: Any, request: BatchRequest, files: list[FileInfo], layouts: Layouts) -> Any:
    """The CSV files' rows with the target's columns, `_rescued_data` and the ledger path, parsed on the workers
    by the embedded engine's reader (`arrow_csv`); folder values as `_batch_frame` adds them."""
    from pyspark.sql.connect import functions as F

    opts = request.format.options
    folders = _folder_columns(request)
    data_schema = pa.schema([f for f in request.schema if f.name != RESCUED and f.name not in folders])
    only = files[0].path if len(files) == 1 else None
    paths = [pa.field(_PATH, pa.string())] if only is None else []
    spark_schema = from_arrow(pa.schema([*data_schema, pa.field(RESCUED, pa.string()), *paths]))
    headers = {
        f.path: arrow_csv.header_line([w for _, w, _ in layouts[f.path]], opts.delimiter, opts.quote, opts.escape)
        for f in files
    }
    plain = request.format.model_copy(update={"options": opts.model_copy(update={"compression": "none"})})
    parser = arrow_csv.ChunkParser(plain, headers, data_schema, to_arrow(spark_schema.fields), only)
    columns = [F.col(arrow_csv.LINE), F.col("_metadata.file_block_start").alias(arrow_csv.START)]
    if only is None:
        columns.append(F.col("_metadata.file_path").alias(arrow_csv.FILE))
    lines = spark.read.text([spark_path(f.path) for f in files]).select(*columns)
    frame = lines.mapInArrow(parser, spark_schema)
    if only is not None:
        frame = frame.withColumn(_PATH, F.lit(only))
    for column in folders:
        spark_type = from_arrow(pa.schema([request.schema.field(column)]))[0].dataType
        frame = frame.withColumn(column, F.lit(None).cast(spark_type))
    staging = Staging()
    return staging.dropped(_with_partitions(frame, request, files, staging))


def _text_rules(request: BatchRequest) -> TextRules:
    return TextRules.of(request.format.options, json=request.format.type != "csv")


def _session_zone(spark: Any, rules: TextRules) -> str:
    """The session's time zone, needed only to read wall-clock text of a timestamp pattern as UTC."""
    if rules.timestamp_format is None:
        return "UTC"
    return str(spark.conf.get("spark.sql.session.timeZone") or "UTC")


def _text_columns(request: BatchRequest) -> list[str]:
    """The target's columns read as text and converted by `text_rules`: CSV's typed columns; JSON's date and
    timestamp columns (JSON has no such values: they are strings, parsed here by the same rules as CSV) and its
    double and decimal columns (Spark's own JSON parser rounds a number those types cannot hold: `1e400` becomes
    Infinity; read as text, the number keeps every digit and a misfit is rescued as written)."""
    fmt = request.format.type
    folders = set(_folder_columns(request))
    names = []
    for f in request.schema:
        if f.name == RESCUED or f.name in folders or not text_rules.handled(f.type):
            continue
        if fmt == "csv" or (fmt == "json" and _json_text_type(f.type)):
            names.append(f.name)
    return names


def _file_keys(request: BatchRequest) -> dict[str, str]:
    """Column name → the key or header the files have for it, where the two differ: a name Spark and Delta refuse
    (`a b`, `x.y`) is stored as `a_b` with the original recorded (core/formats/names.py). Spark matches JSON keys
    and checks CSV headers by the files' names, so it reads with those and renames after (read under the stored
    name, such a column was silently all NULL)."""
    fields = [*(request.incoming or []), *request.schema]
    return {f.name: key for f in fields if (key := source_name(f)) is not None and key != f.name}


def _json_text_type(t: pa.DataType) -> bool:
    return pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _with_partitions(frame: Any, request: BatchRequest, files: list[FileInfo], staging: Staging) -> Any:
    """Hive-style folder values (core/formats/partitions.py, the embedded engine's rules) into the target's columns
    of those names: a file with such a folder takes the folder's value (Spark's rule), cast to the column type; a
    file without one keeps what its data holds. The values are worked out here from the listed paths, so both
    engines agree (Spark's own partition discovery would read `01` as the integer 1).

    The shared inference (JSON, CSV, Parquet) adds these columns; Spark's own inference (orc, xml, text, avro)
    does not, but a target that has them (a manual schema, a table first loaded by the embedded engine) is
    filled. A folder value the column type cannot hold is NULL there and its text is in `_rescued_data`."""
    from pyspark.sql.connect import functions as F

    wanted = request.storage.partition_columns
    if wanted is not None and not wanted:
        return frame
    types = {f.name: f for f in request.schema if f.name != RESCUED}
    per_file = {f.path: partition_values(relative_path(request.storage.root, f.path), None) for f in files}
    inputs: dict[str, Any] = {}
    for name in types:
        having = {path: found[name] for path, found in per_file.items() if name in found}
        if having and (wanted is None or name in wanted):
            pairs = [F.lit(x).cast("string") for path, value in having.items() for x in (path, value)]
            inputs[f"{name}.text"] = F.element_at(F.create_map(*pairs), F.col(_PATH))
            inputs[f"{name}.in"] = F.col(_PATH).isin(list(having))
    if not inputs:
        return frame
    # Every partition column's steps side by side, so the plan's depth does not grow with their number.
    frame, staged = staging.stage(frame, inputs)
    names = [key.removesuffix(".text") for key in inputs if key.endswith(".text")]
    spark_types = {name: from_arrow(pa.schema([types[name]]))[0].dataType for name in names}
    # Folder values follow the default text rules, as on the embedded engine (partitions.partition_array).
    steps = {
        name: text_rules.convert(staged[f"{name}.text"], types[name].type, spark_types[name], TextRules(), "UTC")
        for name in names
        if text_rules.handled(types[name].type)
    }
    frame, conversions = staging.run(frame, text_rules.together(steps))
    frame, values = staging.stage(frame, {name: c.value for name, c in conversions.items()})
    columns = {}
    misfits: list[tuple[str, Any]] = []
    for name in names:
        text, in_folder = staged[f"{name}.text"], staged[f"{name}.in"]
        folder = values[name] if name in values else text.cast(spark_types[name])
        columns[name] = F.when(in_folder, folder).otherwise(F.col(quote(name)))
        if name in conversions:
            misfits.append((name, F.when(in_folder, conversions[name].misfit(values[name]))))
    frame = frame.withColumns(columns)
    if misfits:
        frame, rescued = staging.stage(frame, {"rescued": text_rules.rescued_object(misfits)})
        frame = frame.withColumn(RESCUED, text_rules.merge_objects(F.col(RESCUED), rescued["rescued"]))
    return frame


def _folder_columns(request: BatchRequest) -> list[str]:
    """CSV: the target's columns that every file's folders fill (Hive-style), left out of the read schema (a CSV
    that also holds such a column has its value rescued, as on the embedded engine: `_header_frame`)."""
    if request.format.type != "csv" or not request.files:
        return []
    wanted = request.storage.partition_columns
    if wanted is not None and not wanted:
        return []
    found = [partition_values(relative_path(request.storage.root, f.path), None) for f in request.files]
    return [
        f.name
        for f in request.schema
        if f.name != RESCUED and (wanted is None or f.name in wanted) and all(f.name in keys for keys in found)
    ]


def _extra_fields(request: BatchRequest) -> list[pa.Field]:
    """Columns in the files that the target does not take (policy rescue): read, then packed into _rescued_data."""
    if request.incoming is None or request.format.type not in ("json", "csv"):
        return []
    taken = set(request.schema.names) | {RESCUED} | set(request.ignored_columns)
    return [f for f in request.incoming if f.name not in taken]


def _raw_record(frame: Any) -> Any:
    """The text of a record Spark could not parse (its corrupt-record column), NULL for formats without one."""
    from pyspark.sql.connect import functions as F

    return F.col(RESCUED) if RESCUED in frame.columns else F.lit(None).cast("string")


def _ragged_rows_load(fmt: FormatConfig) -> bool:
    """Whether CSV rows of the wrong width load (permissive mode: padded with NULL, extra fields rescued), as on the
    embedded engine; in the other modes they are malformed, as Spark has them."""
    return fmt.type == "csv" and fmt.options.mode == "permissive"


Layouts = dict[str, tuple[Any, ...]]
"""A batch's files (ledger path) and how each is laid out, where Spark cannot be given one schema for all of
them: a CSV file's columns as its header names them (`core.formats.csv_columns`), a Parquet file's columns and
how each is read (`_parquet_layout`)."""
_ABSENT, _AS_IS, _NANOS = "absent", "as is", "nanos"


def _layouts(request: BatchRequest, files: list[FileInfo], batch: Batch) -> Layouts | None:
    """Each file's layout, read by the service (a CSV file's first block, a Parquet file's footer) on a few
    threads; a file that cannot be read so, or that Spark cannot load, is set aside in `batch`. None for the other
    formats and headerless CSV."""
    from concurrent.futures import ThreadPoolExecutor

    fmt = request.format
    if fmt.type == "csv" and fmt.options.header:
        layout_of: Callable[[FileInfo], tuple[Any, ...]] = partial(_csv_layout, request)
    elif fmt.type == "parquet":
        layout_of = partial(_parquet_layout, request)
    else:
        return None
    if not files:
        return {}

    def layout(info: FileInfo) -> tuple[Any, ...] | BadFileError:
        try:
            return layout_of(info)
        except BadFileError as exc:
            return exc

    if len(files) == 1:
        found = [layout(files[0])]
    else:
        with ThreadPoolExecutor(max_workers=_LAYOUT_THREADS, thread_name_prefix="file-layout") as pool:
            found = list(pool.map(layout, files))
    layouts: Layouts = {}
    for info, got in zip(files, found, strict=True):
        if isinstance(got, BadFileError):
            batch.outcomes[info.path] = FileOutcome(quarantine_reason=got.message, action=got.action)
        else:
            layouts[info.path] = got
    return layouts


def _csv_layout(request: BatchRequest, info: FileInfo) -> tuple[tuple[str, str, str], ...]:
    """The file's header; BadFileError for UTF-16 or UTF-32 text Spark would split into lines by bytes (only its
    multiline reader decodes the whole file), or UTF-16 found by its byte order mark under another encoding option
    (Spark reads by the option: every row would be text in other columns)."""
    from core.formats import csv_columns
    from core.formats.encoding import codec_name

    fmt = request.format
    with request.storage.open(info.path) as stream:
        header = csv_columns(stream, info.path, fmt)
    wide = header.codec.startswith(("utf-16", "utf-32"))
    if wide and (not fmt.options.multiline or codec_name(fmt.options.encoding) != header.codec):
        raise BadFileError(
            f"{info.path} is {header.codec.upper()} text, which the Spark engine reads only with the encoding option "
            "set to it and multiline on (Spark splits lines by bytes)",
            f"Set format.options.encoding to {header.codec} and turn on format.options.multiline, or move the "
            "ingestion to the embedded engine, which reads it as it is; the file is picked up again once it changes.",
        )
    return header.columns


def _parquet_layout(request: BatchRequest, info: FileInfo) -> tuple[tuple[str, str], ...]:
    """(target column, how Spark reads it: as is, as the long of nanoseconds, or absent) for each target column;
    BadFileError for a file with a column Spark cannot load exactly (the embedded engine can: named, with the way
    out). A footer that cannot be read leaves every column as is: Spark's read then names the file."""
    import pyarrow.parquet as pq

    try:
        with request.storage.open_seekable(info.path) as stream:
            schema = pq.read_schema(stream)
    except pa.ArrowException:
        schema = None
    keys = _file_keys(request)
    layout = []
    for target in request.schema:
        if target.name == RESCUED:
            continue
        found = _parquet_type(schema, keys.get(target.name, target.name))
        if (refusal := _spark_cannot_load(found)) is not None:
            raise BadFileError(
                f"{info.path}: column '{target.name}' is {found}, {refusal}",
                "Write the column as a type Spark reads (int64, decimal(38) or less, a timestamp), or move the "
                "ingestion to the embedded engine, which loads it; the file is picked up again once it changes.",
            )
        if found is not None and pa.types.is_null(found):
            layout.append((target.name, _ABSENT))
        elif found is not None and pa.types.is_timestamp(found) and found.unit == "ns":
            layout.append((target.name, _NANOS))
        else:
            layout.append((target.name, _AS_IS))
    return tuple(layout)


def _parquet_type(schema: pa.Schema | None, name: str) -> pa.DataType | None:
    """The type of the file's column `name` (without regard to case, as Spark resolves Parquet columns): null when
    the file has none, None when the footer was not read."""
    if schema is None:
        return None
    wanted = name.lower()
    return next((f.type for f in schema if f.name.lower() == wanted), pa.null())


def _spark_cannot_load(t: pa.DataType | None) -> str | None:
    """Why Spark cannot load a Parquet column of type `t` into the table exactly, or None."""
    if t is None:
        return None
    if pa.types.is_uint64(t):
        return "which Spark reads as decimal(20,0): values past int64 would not fit the column"
    if pa.types.is_decimal(t) and t.precision > 38:
        return "wider than Spark's decimals (38 digits)"
    if pa.types.is_time(t) or pa.types.is_duration(t):
        return "a type Spark has none for"
    return None


def _from_nanos(name: str, target: Any) -> Any:
    """A timestamp column read as its long of nanoseconds since the epoch, as `target`, cut to microseconds toward
    zero (as Arrow casts, so as the embedded engine loads it)."""
    from pyspark.sql.connect import functions as F
    from pyspark.sql.types import TimestampNTZType

    micros = f"{quote(name)} div 1000"
    if isinstance(target, TimestampNTZType):
        return F.expr(f"timestampadd(MICROSECOND, {micros}, TIMESTAMP_NTZ'1970-01-01 00:00:00')")
    return F.expr(f"timestamp_micros({micros})").cast(target)


def _union_by_name(frames: list[Any]) -> Any:
    """The frames put together by column name, in a balanced tree: folded one by one, 1,000 headers made a plan
    1,000 unions deep, which Spark Connect's client could not serialise (maximum recursion depth exceeded)."""
    while len(frames) > 1:
        pairs = [frames[i : i + 2] for i in range(0, len(frames), 2)]
        frames = [p[0].unionByName(p[1], allowMissingColumns=True) if len(p) == 2 else p[0] for p in pairs]
    return frames[0]


def _with_missing_columns(frame: Any, schema: Any) -> Any:
    """`frame` with the columns of `schema` that no file of the batch has, as NULL (a table's column the new files
    lack; the embedded engine's rows have it NULL too)."""
    from pyspark.sql.connect import functions as F

    present = set(frame.columns)
    missing = {f.name: F.lit(None).cast(f.dataType) for f in schema.fields if f.name not in present}
    return frame.withColumns(missing) if missing else frame


def _widths(files: list[FileInfo], layouts: Layouts | None, schema: Any) -> set[int]:
    """The numbers of columns the CSV files are read with."""
    if layouts is None:
        return {_width(schema)}
    return {len(layouts[f.path]) for f in files}


def _ragged(raw: Any, fmt: FormatConfig, widths: set[int]) -> Any:
    """The rescued object of a row's fields past its file's columns (`_c<index>`), for files of these widths (a
    file's width in the `_WIDTH` column where they differ)."""
    from pyspark.sql.connect import functions as F

    fields = _fields_of(raw, fmt, max(widths))

    def past(width: int) -> Any:
        return text_rules.rescued_object(
            [(f"_c{i}", fields.getField(f"_c{i}")) for i in range(width, width + _EXTRA_FIELDS)]
        )

    if len(widths) == 1:
        return past(next(iter(widths)))
    ordered = sorted(widths)
    chosen = F.when(F.col(_WIDTH) == ordered[0], past(ordered[0]))
    for width in ordered[1:]:
        chosen = chosen.when(F.col(_WIDTH) == width, past(width))
    return chosen


def _width(schema: Any) -> int:
    """The number of a CSV file's columns read with `schema` (its last field is the corrupt-record column)."""
    return len(schema.fields) - 1


def _fields_of(raw: Any, fmt: FormatConfig, width: int) -> Any:
    """The fields of a row Spark found of the wrong width (its corrupt-record text, parsed again as CSV), as
    `_c0`, `_c1`, … text. Used only where `raw` is not NULL, so that no other row is parsed twice."""
    from pyspark.sql.connect import functions as F

    names = ", ".join(f"_c{i} STRING" for i in range(width + _EXTRA_FIELDS + 1))
    return F.from_csv(raw, names, {**_csv_quoting(fmt), "nullValue": fmt.options.null_value or ""})


def _too_long(raw: Any, fmt: FormatConfig, width: int) -> Any:
    fields = _fields_of(raw, fmt, width)
    return fields.isNull() | fields.getField(f"_c{width + _EXTRA_FIELDS}").isNotNull()


def _badly_quoted(raw: Any, fmt: FormatConfig) -> Any:
    """A row with an odd number of quote characters (escaped ones aside): a quote left open, which the embedded
    engine takes for malformed, where Spark reads it as a row with a field running to the end of the line."""
    from pyspark.sql.connect import functions as F

    quote, escape = fmt.options.quote, fmt.options.escape
    if not quote:
        return F.lit(False)
    text = raw
    if escape and escape != quote:
        text = F.replace(text, F.lit(escape + escape), F.lit(""))
        text = F.replace(text, F.lit(escape + quote), F.lit(""))
    quotes = F.length(text) - F.length(F.replace(text, F.lit(quote), F.lit("")))
    return quotes % 2 == 1


def _bad_record(fmt: FormatConfig, raw: Any) -> Any:
    """Malformed = the raw text did not parse at all (`raw`: Spark's corrupt-record column). A JSON record that
    parsed but whose values did not fit the table types is rescued, not malformed (as with the embedded engine)."""
    from pyspark.sql.connect import functions as F

    rescued = raw.isNotNull()
    if fmt.type == "json":
        parses = F.from_json(raw, "map<string,string>").isNotNull()
        return rescued & ~parses
    return rescued


def _file_stats(
    frame: Any, touched: list[str], rare: dict[str, Any], too_long: dict[str, Any]
) -> tuple[dict[str, _FileStats], set[str]]:
    """Records and malformed records per ledger path, the `too_long` columns with rows where their expression holds,
    and which of the `rare` columns have rows where the expression holds. The `touched` columns are counted too,
    and the counts dropped, only so that the read parses them."""
    from pyspark.sql.connect import functions as F

    counts = F.count(F.lit(1)).alias("records"), F.sum(F.col(_BAD).cast("long")).alias("bad")
    rares = [F.count_if(where).alias(f"rare_{i}") for i, where in enumerate(rare.values())]
    longs = [F.count_if(where).alias(f"long_{i}") for i, where in enumerate(too_long.values())]
    touches = [F.count(F.col(quote(name))) for name in touched]
    rows = frame.groupBy(_PATH).agg(*counts, *rares, *longs, *touches).collect()
    stats = {
        str(r[0]): _FileStats(
            int(r[1]), int(r[2] or 0), tuple(name for i, name in enumerate(too_long) if r[f"long_{i}"])
        )
        for r in rows
    }
    general = {name for i, name in enumerate(rare) if any(r[f"rare_{i}"] for r in rows)}
    return stats, general


def _settle_files(
    request: BatchRequest, files: list[FileInfo], stats: dict[str, _FileStats], batch: Batch
) -> list[FileInfo]:
    """Per-file outcomes; a file none of whose records parse is not that format at all: quarantined. The format's
    mode as on the embedded engine: dropmalformed leaves malformed records out of the file's count (the write drops
    them), failfast quarantines a file that has any."""
    mode = request.format.options.mode if request.format.type in _CORRUPT_FORMATS else "permissive"
    keep = []
    for info in files:
        stat = stats.get(info.path, _FileStats())
        if stat.too_long:
            column = stat.too_long[0]
            error = partition_value_too_long(
                info.path, column, f"more than {partition_folder_room(column)} bytes as a path"
            )
            batch.outcomes[info.path] = FileOutcome(quarantine_reason=error.message, action=error.action)
            continue
        if stat.records and stat.bad == stat.records and stat.records > 1:
            reason = f"{info.path} is not valid {request.format.type}: none of its {stat.records} records parse"
            batch.outcomes[info.path] = FileOutcome(quarantine_reason=reason, action=QUARANTINE_ACTION)
            continue
        if stat.bad and mode == "failfast":
            bad = counted(stat.bad, "malformed record")
            reason = f"{info.path} has {bad} (mode failfast); nothing of it was loaded"
            batch.outcomes[info.path] = FileOutcome(quarantine_reason=reason, action=QUARANTINE_ACTION)
            continue
        kept = stat.records - stat.bad if mode == "dropmalformed" else stat.records  # as the embedded engine counts
        batch.outcomes[info.path] = FileOutcome(records=kept, bad_records=stat.bad)
        batch.rows += stat.records
        batch.bytes_read += info.size
        keep.append(info)
    return keep


def _check_threshold(request: BatchRequest, batch: Batch) -> None:
    """Nothing is written from a batch over the bad-record limit. Each file's (malformed, read) counts go with the
    error, as from the embedded engine, so that the pipeline sets aside the files that pushed it over and loads
    the rest (without them, every such batch failed the run)."""
    dropped = request.format.options.mode == "dropmalformed"  # their records are counted without the dropped ones
    per_file = {
        path: (o.bad_records, o.records + (o.bad_records if dropped else 0))
        for path, o in batch.outcomes.items()
        if not o.quarantine_reason
    }
    bad = sum(malformed for malformed, _ in per_file.values())
    if batch.rows and bad / batch.rows > request.max_bad_record_ratio:
        raise TooManyBadRecords(
            f"{bad} of {batch.rows} records in this batch are malformed "
            f"({bad / batch.rows:.1%}, limit {request.max_bad_record_ratio:.0%}); nothing was written.",
            "Look at the malformed records listed per file, fix the producer, or raise max_bad_record_ratio.",
            files=per_file,
        )


def _set_aside_empty(request: BatchRequest, batch: Batch) -> list[FileInfo]:
    """The batch's files that have bytes; an empty one is quarantined in `batch`."""
    for info in request.files:
        if info.size == 0:
            batch.outcomes[info.path] = FileOutcome(quarantine_reason=f"{info.path} is empty", action=QUARANTINE_ACTION)
    return [f for f in request.files if f.path not in batch.outcomes]


def _set_aside_long_folder_values(request: BatchRequest, files: list[FileInfo], batch: Batch) -> list[FileInfo]:
    """`files` without those whose Hive-style folder gives a text partition column of the table a value too long
    for a folder name, set aside in `batch` (`_too_long_for_folders` sees the files' data only: Spark failed the
    whole write on such a folder, TASK_WRITE_FAILED at every run)."""
    wanted = request.storage.partition_columns
    targets = _text_partition_columns(request)
    if not targets or (wanted is not None and not wanted):
        return files
    kept = []
    for info in files:
        found = partition_values(relative_path(request.storage.root, info.path), None)
        long = [
            name
            for name, value in found.items()
            if name in targets
            and (wanted is None or name in wanted)
            and value is not None
            and folder_bytes(value) > partition_folder_room(name)
        ]
        if not long:
            kept.append(info)
            continue
        room = partition_folder_room(long[0])
        error = partition_value_too_long(info.path, long[0], f"its folder's value, more than {room} bytes as a path")
        batch.outcomes[info.path] = FileOutcome(quarantine_reason=error.message, action=error.action)
    return kept


def _needs_counting(
    bad: Any, conversions: dict[str, Any], misfits: dict[str, Any], targets: dict[str, pa.DataType], rules: TextRules
) -> Any:
    """Where a row of a one-pass batch needs the counting pass: a malformed record, long number text for a double
    (`text_rules.rare_rows`), or timestamp text the short rule did not take (a rare form, or a misfit: the
    counting pass tells them apart)."""
    from pyspark.sql.connect import functions as F

    needs = bad
    for name, converted in conversions.items():
        target = targets[name]
        rare = text_rules.rare_rows(converted.text, target, rules) if pa.types.is_floating(target) else None
        if rare is not None:
            needs = needs | F.coalesce(rare, F.lit(False))
        elif pa.types.is_timestamp(target) and rules.timestamp_format is None:
            needs = needs | misfits[name].isNotNull()
    return needs


def _observe_files(data: Any, files: list[FileInfo]) -> tuple[Any, Callable[[], dict[str, int]]]:
    """`data` counting each file's rows as the write runs, and how to read those counts once it is done."""
    from pyspark.sql.connect import functions as F
    from pyspark.sql.connect.observation import Observation

    observation = Observation(f"files_{uuid.uuid4().hex}")
    counts = [F.count_if(F.col(_PATH) == F.lit(f.path)).alias(f"f{i}") for i, f in enumerate(files)]
    observed = data.observe(observation, *counts)

    def per_file() -> dict[str, int]:
        got = observation.get
        return {f.path: int(got.get(f"f{i}") or 0) for i, f in enumerate(files)}

    return observed, per_file


def _output(data: Any, request: BatchRequest, guarded: bool = False) -> Any:
    """The table's columns, `_rescued_data` without the ignored keys (in a projection of its own: see Staging),
    and the lineage columns if asked for. `guarded`: a row where the `_GUARD` column holds stops the write."""
    from pyspark.sql.connect import functions as F

    if request.ignored_columns:
        data = data.withColumn(RESCUED, without_keys(F.col(RESCUED), request.ignored_columns))
    columns = [F.col(quote(f.name)) for f in request.schema if f.name != RESCUED]
    rescued = text_rules.with_file_path(F.col(RESCUED), F.col(_PATH))
    if guarded:
        rescued = F.when(F.col(_GUARD), F.raise_error(F.lit(ONE_PASS_STOPPED))).otherwise(rescued)
    columns.append(rescued.alias(RESCUED))
    if request.mode == "merge" and not request.destination.lineage_columns:
        columns.append(F.col(_PATH).alias(ROW_FILE))
    if request.destination.lineage_columns:
        columns += [
            F.col(_PATH).alias("_source_file"),
            F.lit(request.ingested_at).cast("timestamp").alias("_ingested_at"),
            F.lit(request.run_id).cast("bigint").alias("_run_id"),
        ]
    return data.select(*columns)

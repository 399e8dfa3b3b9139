"""Test a configuration against the real source without writing anything (PRODUCT.md §8).

The sample files are read with the run's readers, so the record estimate, null percentages and malformed
record counts are what a run would see; the per-file schemas show columns that differ between files.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from core.config import IngestionSpec
from core.engines.base import Engine
from core.engines.embedded import add_partitions, file_partitions, open_for, without_names
from core.errors import BadFileError
from core.formats import RESCUED, FileReadStats, read_file
from core.formats.csv_reader import one_column_hint
from core.formats.date_shapes import DateShape, date_shape
from core.formats.text_types import TYPED_NULL_MARKERS, TextRules
from core.formats.types import schema_to_json
from core.run_messages import unmatched_files
from core.storage.base import FileInfo, Storage
from core.table_files import files_the_table_holds
from core.wording import counted

SAMPLE_ROWS = 5
MAX_ANALYSED_ROWS_PER_FILE = 200_000
TEXT_VALUES_CHECKED = 200
"""Values per text column kept from the sample to tell dates in another shape (`date_shapes`)."""
MANY_FILES = 10_000
LARGE_SOURCE_BYTES = 100 * 10**9
_TIME_TYPES = ("timestamp", "date")


@dataclass(slots=True)
class PreviewResult:
    files: int
    total_bytes: int
    listing_seconds: float
    schema: list[dict[str, Any]]
    sample_rows: list[dict[str, Any]]
    sample_files: list[str]
    bad_files: dict[str, str] = field(default_factory=dict)
    files_truncated: bool = False
    message: str = ""
    estimated_records: int = 0
    records_sampled: int = 0
    malformed_records: int = 0
    null_percent: dict[str, float] = field(default_factory=dict)
    differing_columns: list[dict[str, Any]] = field(default_factory=list)
    sample_rows_by_file: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    recommendations: list[str] = field(default_factory=list)
    delimiter_hint: str = ""
    """CSV read as one column whose header holds another usual delimiter: which to set (also the first
    recommendation), for the wizard to show beside the inferred schema."""
    text_markers: dict[str, dict[str, int]] = field(default_factory=dict)
    """CSV text columns holding missing-value markers (`NA`, `N/A`, ...) the sample read as text: column ->
    marker -> count. A typed column reads them as NULL; a text column keeps them unless `null_value` says so."""
    date_shapes: dict[str, DateShape] = field(default_factory=dict)
    """Text columns holding dates or times in a shape the default rules keep as text: the option that types them."""


@dataclass(slots=True)
class _SampleStats:
    records: int = 0
    bytes: int = 0
    malformed: int = 0
    nulls: Counter[str] = field(default_factory=Counter)
    markers: Counter[tuple[str, str]] = field(default_factory=Counter)
    text_values: dict[str, list[str]] = field(default_factory=dict)
    rows_by_file: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)


def preview(
    spec: IngestionSpec,
    storage: Storage,
    engine: Engine,
    *,
    max_listed: int = 1_000_000,
    rows: int = SAMPLE_ROWS,
    new_ingestion: bool = False,
) -> PreviewResult:
    """Connect, list the path with the pattern, infer the schema from a sample, and analyse the sample files.
    `new_ingestion`: the configuration is not saved yet, so files an existing table holds are named."""
    started = time.monotonic()
    listing = storage.list_files(spec.source.file_pattern)
    files: list[FileInfo] = list(itertools.islice(listing, max_listed))
    truncated = next(listing, None) is not None
    total = sum(f.size for f in files)
    listed_in = time.monotonic() - started
    files.sort(key=lambda f: (f.modified, f.path))
    sample = files[: spec.format.schema_.sample_files]
    inferred = engine.infer_schema(storage, sample, spec.format)
    stats = _read_sample(spec, storage, [f for f in sample if f.path not in inferred.bad_files], inferred.schema, rows)
    bad = dict(sorted({**storage.skipped, **inferred.bad_files, **stats.bad}.items()))  # shown in path order
    schema = schema_to_json(inferred.schema)
    size_gb = total / 1e9
    message = f"Connection successful — {counted(len(files), 'file', more=truncated)}, {size_gb:.2f} GB"
    if not files:
        message = no_files_message(storage, spec.source.file_pattern)
    estimated = round(stats.records / stats.bytes * total) if stats.bytes else stats.records
    result = PreviewResult(
        files=len(files),
        total_bytes=total,
        listing_seconds=round(listed_in, 3),
        schema=schema,
        sample_rows=[row for file_rows in stats.rows_by_file.values() for row in file_rows][:rows],
        sample_files=[f.path for f in sample],
        bad_files=bad,
        files_truncated=truncated,
        message=message,
        estimated_records=estimated,
        records_sampled=stats.records,
        malformed_records=stats.malformed,
        null_percent={
            name: round(100 * stats.nulls[name] / stats.records, 1) if stats.records else 0.0
            for name in inferred.schema.names
        },
        differing_columns=_differing_columns(spec, storage, engine, sample, bad),
        sample_rows_by_file=stats.rows_by_file,
    )
    for (column, marker), times in sorted(stats.markers.items()):
        result.text_markers.setdefault(column, {})[marker] = times
    result.date_shapes = _date_shapes(spec, stats.text_values)
    result.recommendations = recommendations(spec, result, files) + marker_advice(result.text_markers)
    result.recommendations += date_advice(result.date_shapes)
    if hint := one_column_hint(inferred.schema, spec.format):
        result.delimiter_hint = hint[0].upper() + hint[1:] + "."
        result.recommendations.insert(0, result.delimiter_hint)
    if new_ingestion and (held := _files_the_table_holds(spec, engine, files)):
        result.recommendations.insert(0, held)
    if not files:
        result.recommendations.insert(0, message)
    return result


def _files_the_table_holds(spec: IngestionSpec, engine: Engine, files: list[FileInfo]) -> str:
    """What activating will do with listed files an existing table already holds rows of (by `_source_file`), or
    that it cannot tell them (no such column)."""
    destination = spec.destination
    schema = engine.table_schema(destination) if destination.write_mode == "append" and files else None
    if schema is None:
        return ""
    if "_source_file" not in schema.names:
        return (
            f"Table {destination.full_name} already exists without a _source_file column, so the files loaded into "
            "it before cannot be told: activating with backfill 'all' loads every listed file into it (choose "
            "'new files only' if they are in it already)."
        )
    held = files_the_table_holds(engine, spec, files, set())
    if not held:
        return ""
    modified = {f.path: f.modified for f in files}
    changed = sum(entry.modified != modified[entry.path] for entry in held)
    since = f" ({counted(changed, 'file')} changed since: the first run reports them)" if changed else ""
    return (
        f"Table {destination.full_name} already holds {counted(sum(e.records for e in held), 'row')} of "
        f"{counted(len(held), 'listed file')}: activating records them as loaded, so they are not loaded twice"
        f"{since}; Reprocess loads them again on purpose."
    )


def no_files_message(storage: Storage, pattern: str | None, shown: int = 3) -> str:
    """What Test & Preview says when the listing found nothing: never a bare "successful, 0 files".

    With a pattern, a bounded second listing without it tells a pattern that matches nothing from an empty path."""
    where = storage.root
    if not pattern:
        return f"Connected, but 0 files were found under {where}: nothing would be loaded. Check the path."
    text = f"Connected, but 0 files match the pattern '{pattern}' under {where}: nothing would be loaded."
    unmatched = unmatched_files(storage, shown)
    if unmatched is None:
        return f"{text} The path holds no files at all; check the path."
    return f"{text} {unmatched}."


def _read_sample(
    spec: IngestionSpec, storage: Storage, sample: list[FileInfo], schema: pa.Schema, rows: int
) -> _SampleStats:
    stats = _SampleStats()
    markers = _text_markers(spec) if spec.format.type == "csv" else None
    for info in sample:
        read = FileReadStats()
        nulls: Counter[str] = Counter()
        shown: list[dict[str, Any]] = []
        folders = file_partitions(storage, info.path, schema)  # Hive-style folder columns, as a run fills them
        try:
            with open_for(storage, info.path, spec.format) as stream:
                for batch in read_file(stream, info.path, spec.format, without_names(schema, folders), read):
                    if folders:
                        batch = add_partitions(batch, schema, folders)
                    if len(shown) < rows:
                        head = batch.slice(0, rows - len(shown)).to_pylist()
                        shown.extend({"_source_file": info.path, **r} for r in head)
                    for name in schema.names:
                        nulls[name] += batch.column(batch.schema.get_field_index(name)).null_count
                    if markers is not None:
                        _count_text_markers(batch, markers, stats.markers)
                    _keep_text_values(batch, stats.text_values)
                    if read.records >= MAX_ANALYSED_ROWS_PER_FILE:
                        break
        except BadFileError as exc:
            stats.bad[info.path] = exc.message
            continue
        stats.records += read.records
        stats.bytes += read.bytes_read if read.records < MAX_ANALYSED_ROWS_PER_FILE else 0
        stats.malformed += read.bad_records
        stats.nulls.update(nulls)
        stats.rows_by_file[info.path] = shown
    return stats


def _text_markers(spec: IngestionSpec) -> pa.Array:
    """The missing-value markers a CSV text column keeps as text (those that are not its null token)."""
    tokens = TextRules.of(spec.format.options).null_tokens
    return pa.array([m for m in TYPED_NULL_MARKERS if m not in tokens], pa.string())


def _count_text_markers(batch: pa.RecordBatch, wanted: pa.Array, markers: Counter[tuple[str, str]]) -> None:
    """Count the `wanted` markers the text columns of a CSV sample's batch hold."""
    for index, f in enumerate(batch.schema):
        if f.name.startswith("_") or not pa.types.is_string(f.type):
            continue
        column = batch.column(index)
        for value in pc.filter(column, pc.is_in(column, value_set=wanted)).to_pylist():
            markers[(f.name, value)] += 1


def _keep_text_values(batch: pa.RecordBatch, kept: dict[str, list[str]]) -> None:
    """The first `TEXT_VALUES_CHECKED` values of each text column of the sample (nulls left out)."""
    for index, f in enumerate(batch.schema):
        if f.name.startswith("_") or not pa.types.is_string(f.type):
            continue
        values = kept.setdefault(f.name, [])
        if len(values) < TEXT_VALUES_CHECKED:
            head = batch.column(index).drop_null().slice(0, TEXT_VALUES_CHECKED - len(values))
            values.extend(head.to_pylist())


def _date_shapes(spec: IngestionSpec, text_values: dict[str, list[str]]) -> dict[str, DateShape]:
    """Text columns whose sampled values are all dates or times in one shape an unset option would read."""
    if spec.format.type not in ("csv", "json") or spec.format.schema_.inference == "manual":
        return {}
    options = spec.format.options
    unset = {"date_format": options.date_format is None, "timestamp_format": options.timestamp_format is None}
    shapes = {column: date_shape(values) for column, values in text_values.items()}
    return {column: shape for column, shape in shapes.items() if shape is not None and unset[shape.option]}


def date_advice(shapes: dict[str, DateShape]) -> list[str]:
    """One line per text column of dates in another shape: the option and pattern that load it typed."""
    advice = []
    for column, shape in shapes.items():
        kind = "a timestamp" if shape.option == "timestamp_format" else "a date"
        patterns = " or ".join(f"'{p}'" for p in shape.patterns)
        which = (
            " (the sample does not tell whether the day or the month comes first)" if len(shape.patterns) > 1 else ""
        )
        advice.append(
            f"Column '{column}' holds dates written like '{shape.example}', which load as text: set "
            f"format.options.{shape.option} to {patterns}{which} to load it as {kind}."
        )
    return advice


def marker_advice(text_markers: dict[str, dict[str, int]]) -> list[str]:
    """One line per text column holding missing-value markers: what they load as, and the option to change it."""
    advice = []
    for column, found in text_markers.items():
        marker, times = max(found.items(), key=lambda item: item[1])
        advice.append(
            f"Column '{column}' holds '{marker}' {counted(times, 'time')} in the sample: a text column keeps it as "
            f"text; set format.options.null_value to '{marker}' to load it as NULL."
        )
    return advice


def _differing_columns(
    spec: IngestionSpec, storage: Storage, engine: Engine, sample: list[FileInfo], bad: dict[str, str]
) -> list[dict[str, Any]]:
    """Columns found in some sample files but not in others (manual schemas are not compared)."""
    if spec.format.schema_.inference == "manual":
        return []
    readable = [f for f in sample if f.path not in bad]
    if len(readable) < 2:
        return []
    names = {f.path: set(engine.infer_schema(storage, [f], spec.format).schema.names) for f in readable}
    every = set().union(*names.values()) - {RESCUED}
    return [
        {
            "column": column,
            "present_in": [p for p, cols in names.items() if column in cols],
            "missing_in": [p for p, cols in names.items() if column not in cols],
        }
        for column in sorted(every)
        if not all(column in cols for cols in names.values())
    ]


def recommendations(spec: IngestionSpec, result: PreviewResult, files: list[FileInfo]) -> list[str]:
    advice: list[str] = []
    time_columns = [c["name"] for c in result.schema if str(c.get("type", "")).startswith(_TIME_TYPES)]
    if time_columns and not spec.destination.partition_columns:
        advice.append(
            f"Consider partitioning by a date derived from '{time_columns[0]}' for faster time-range queries."
        )
    if cadence := _arrival_cadence(files):
        every, frequency = cadence
        advice.append(f"Files arrive about {every}; a {frequency} schedule fits the observed arrivals.")
    if result.files >= MANY_FILES:
        advice.append(
            f"The source holds {result.files:,} files; listing it every run is slow — prefer a narrower file "
            "pattern or dated sub-folders (event-notification discovery is coming)."
        )
    if result.total_bytes >= LARGE_SOURCE_BYTES:
        advice.append("More than 100 GB to load: a Spark cluster will load this faster than the embedded engine.")
    else:
        advice.append("The embedded engine handles this volume; no cluster is needed.")
    if result.estimated_records and spec.quality.row_count_min is None:
        per_file = result.estimated_records / max(result.files, 1)
        advice.append(
            f"Set a minimum row count alert (about {counted(max(1, int(per_file // 2)), 'row')} per file) to catch "
            "producers that stop sending data."
        )
    if result.malformed_records:
        advice.append(
            f"{counted(result.malformed_records, 'malformed record')} in the sample will go to _rescued_data; "
            "check the producer."
        )
    return advice


def _arrival_cadence(files: list[FileInfo]) -> tuple[str, str] | None:
    if len(files) < 3:
        return None
    stamps = sorted(f.modified.timestamp() for f in files[-200:])
    gaps = [b - a for a, b in itertools.pairwise(stamps) if b > a]
    if not gaps:
        return None
    gap = statistics.median(gaps)
    if gap >= 5 * 86400:
        return "once a week", "weekly"
    if gap >= 18 * 3600:
        return "once a day", "daily"
    if gap >= 40 * 60:
        return "once an hour", "hourly"
    return None

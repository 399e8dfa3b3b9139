"""Schema inference shared by both engines: the product's one set of type rules (docs/TYPES.md).

The files are read through `storage` by the service (each within the per-file budget of
`infer_bytes_per_file`), typed with `core.formats.infer_file_schema`, unified on the lattice, given the
Hive-style partition columns of their folders, then the type hints. The embedded engine infers every format
with it (JSON, CSV, Parquet, ORC, Avro, XML, text); the Spark engine for JSON, CSV and Parquet
(`SHARED_FORMATS`), so a column is the same type whichever engine loads it. ORC, XML, text and Avro keep
Spark's own inference on a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import pyarrow as pa

from core.config import FormatConfig
from core.engines.base import InferResult, infer_bytes_per_file
from core.errors import BadFileError
from core.formats import apply_hints, infer_file_schema, nulls_to_string, schema_from_json, unify_schemas
from core.formats.grouped import GROUP_FILE_MAX_BYTES
from core.formats.partitions import partition_fields, relative_path, with_partitions
from core.formats.readers import csv_sample, infer_csv_schemas, infer_json_lines_schemas, json_lines_sample_whole
from core.formats.unify import CASE_VARIANTS
from core.storage.base import FileInfo, Storage

# The formats both engines infer with the shared inference (the embedded engine infers every format with it).
SHARED_FORMATS = frozenset({"json", "csv", "parquet"})
SEEKABLE_FORMATS = frozenset({"parquet", "orc"})
"""Formats whose metadata is at the end of the file (a footer), so they are read with random access."""
WHOLE_SCHEMA_FORMATS = frozenset({"parquet", "orc", "avro", "text"})
"""Formats whose schema is in the file's metadata (or fixed): inference never samples them."""


def open_for(storage: Storage, path: str, fmt: FormatConfig) -> BinaryIO:
    """Parquet and ORC need random access for their footer; the other formats are read as a stream."""
    return storage.open_seekable(path) if fmt.type in SEEKABLE_FORMATS else storage.open(path)


def folder_fields(storage: Storage, files: list[FileInfo]) -> list[pa.Field]:
    """The partition columns of these files' folders, typed over all of them (none when the source turns it off)."""
    wanted = storage.partition_columns
    if wanted is not None and not wanted:
        return []
    return partition_fields([relative_path(storage.root, f.path) for f in files], wanted)


def parquet_row_counts(storage: Storage, files: list[FileInfo]) -> dict[str, int]:
    """Rows per Parquet file, from its footer (a file whose footer cannot be read is left out)."""
    import pyarrow.parquet as pq

    counts = {}
    for info in files:
        try:
            with storage.open_seekable(info.path) as stream:
                counts[info.path] = pq.ParquetFile(stream).metadata.num_rows
        except pa.ArrowException:
            continue
    return counts


def declared_schema(fmt: FormatConfig) -> pa.Schema | None:
    """The manual schema, taken as declared (its columns named like a folder key are filled from the folders)."""
    declared = fmt.schema_
    if declared.inference == "manual" and declared.schema_json:
        return schema_from_json(declared.schema_json)
    return None


ParsedRows = Callable[[FileInfo, pa.Table], None]
"""Called with a JSON-lines file read whole and its rows as parsed for inference (readers.infer_json_lines_schemas)."""


def infer_schema(
    storage: Storage, files: list[FileInfo], fmt: FormatConfig, keep: ParsedRows | None = None
) -> InferResult:
    """The files' data columns unified, then the Hive-style partition columns of their folders
    (core/formats/partitions.py: after the data columns; one the data also has keeps its place and
    takes the folder's type and value, as in Spark), then the type hints.

    A manual schema is taken as declared. With `keep`, the JSON-lines files sampled whole are handed their parsed
    rows (the embedded engine loads them from those instead of parsing them again)."""
    manual = declared_schema(fmt)
    if manual is not None:
        return InferResult(manual)
    budget = infer_bytes_per_file(len(files))
    read_whole = _read_whole(files, budget) if keep is not None else frozenset()
    if (fmt.type == "json" and not fmt.options.multiline) or fmt.type == "csv":
        schemas, bad = _grouped_schemas(storage, files, fmt, budget, keep, read_whole)
    else:
        schemas, bad = [], {}
        for info in files:
            try:
                with open_for(storage, info.path, fmt) as stream:
                    schemas.append(infer_file_schema(stream, fmt, sample_bytes=budget, path=info.path))
            except BadFileError as exc:
                bad[info.path] = exc.message
    unified = unify_schemas(schemas) if schemas else pa.schema([])
    merged = nulls_to_string(unified)
    if schemas:
        folders = folder_fields(storage, [f for f in files if f.path not in bad])
        merged, unified = with_partitions(merged, folders), with_partitions(unified, folders)
    sampled = [
        f.path
        for f in files
        if f.size > budget
        and f.path not in read_whole
        and fmt.type not in WHOLE_SCHEMA_FORMATS
        and not fmt.options.multiline
    ]
    hints = fmt.schema_.hints
    with_nulls = apply_hints(unified, hints) if not unified.equals(merged) else None
    return InferResult(apply_hints(merged, hints), bad, sampled, budget, _spelled_twice(schemas), with_nulls)


KEEP_WHOLE_BYTES = 64 * 1024 * 1024
"""When the parses are kept for the load, small files are read whole, up to this many bytes in all per call."""


def _read_whole(files: list[FileInfo], budget: int) -> frozenset[str]:
    """The small files (ones a load reads in groups) that are read whole although larger than the per-file budget:
    the load would read them anyway, and their kept parse spares it that. Within KEEP_WHOLE_BYTES in all."""
    chosen: list[str] = []
    total = 0
    for info in files:
        if budget < info.size <= GROUP_FILE_MAX_BYTES and total + info.size <= KEEP_WHOLE_BYTES:
            chosen.append(info.path)
            total += info.size
    return frozenset(chosen)


def _spelled_twice(schemas: list[pa.Schema]) -> tuple[str, ...]:
    """The top-level names spelled differently by case from the first spelling of theirs: across the schemas, or
    within one (which kept the first spelling and lists the others in its metadata)."""
    first: dict[str, str] = {}
    others: dict[str, None] = {}
    for schema in schemas:
        dropped = (schema.metadata or {}).get(CASE_VARIANTS)
        names = [*schema.names, *(dropped.decode().split(",") if dropped else [])]
        for name in names:
            seen = first.setdefault(name.lower(), name)
            if seen != name:
                others[name] = None
    return tuple(others)


def case_variant_keys(result: InferResult, columns: pa.Schema) -> list[tuple[str, str]]:
    """(key, column) for each top-level key the inferred files spell differently from a column only by case."""
    spelled = {f.name.lower(): f.name for f in columns}
    keys = dict.fromkeys([*result.schema.names, *result.case_variants])
    return [(k, spelled[k.lower()]) for k in keys if k.lower() in spelled and spelled[k.lower()] != k]


_SAMPLING_THREADS = 2
_THREADED_SAMPLE_BYTES = 8 * 1024
_CHUNK_FILES = 256


def _grouped_schemas(
    storage: Storage,
    files: list[FileInfo],
    fmt: FormatConfig,
    budget: int,
    keep: ParsedRows | None = None,
    read_whole: frozenset[str] = frozenset(),
) -> tuple[list[pa.Schema], dict[str, str]]:
    """JSON lines and CSV: the files' samples read and typed in groups (one Arrow call per group), chunks of files
    on a few threads when samples are large enough for Arrow's parsing (which releases the GIL) to outweigh the
    Python work per file, which threads only contend for (2 cores: 10,000 samples of 0.5 KiB 0.46-0.56 s on one
    thread, 1.1-1.2 s on 2 or 4; 2,000 of 16 KiB 0.55-0.74 s on one, 0.45-0.57 s on 2 or 4)."""
    chunks = [files[i : i + _CHUNK_FILES] for i in range(0, len(files), _CHUNK_FILES)]
    mean_sample = sum(min(f.size, budget) for f in files) / max(len(files), 1)
    if len(chunks) <= 1 or mean_sample < _THREADED_SAMPLE_BYTES:
        return _merged(_sampled_chunk(storage, chunk, fmt, budget, keep, read_whole) for chunk in chunks)
    with ThreadPoolExecutor(max_workers=_SAMPLING_THREADS, thread_name_prefix="infer") as pool:
        return _merged(pool.map(lambda c: _sampled_chunk(storage, c, fmt, budget, keep, read_whole), chunks))


def _merged(
    results: Iterable[tuple[list[pa.Schema], dict[str, str]]],
) -> tuple[list[pa.Schema], dict[str, str]]:
    schemas: list[pa.Schema] = []
    bad: dict[str, str] = {}
    for chunk_schemas, chunk_bad in results:
        schemas.extend(chunk_schemas)
        bad.update(chunk_bad)
    return schemas, bad


def _sampled_chunk(
    storage: Storage,
    files: list[FileInfo],
    fmt: FormatConfig,
    budget: int,
    keep: ParsedRows | None = None,
    read_whole: frozenset[str] = frozenset(),
) -> tuple[list[pa.Schema], dict[str, str]]:
    samples: list[tuple[str, bytes]] = []
    bad: dict[str, str] = {}
    whole: set[str] = set()
    for info in files:
        try:
            with open_for(storage, info.path, fmt) as stream:
                if fmt.type == "csv":
                    samples.append((info.path, csv_sample(stream, fmt, budget, info.path)))
                    continue
                wanted = max(budget, info.size + 1) if info.path in read_whole else budget  # +1: the end is seen
                data, is_whole = json_lines_sample_whole(stream, fmt, wanted, info.path)
                samples.append((info.path, data))
                if is_whole and len(data) == info.size:
                    whole.add(info.path)
        except BadFileError as exc:
            bad[info.path] = exc.message
    if fmt.type == "csv":
        schemas, unreadable = infer_csv_schemas(samples, fmt)
    elif keep is None or not whole:
        schemas, unreadable = infer_json_lines_schemas(samples, fmt)
    else:
        by_path = {info.path: info for info in files}
        schemas, unreadable = infer_json_lines_schemas(
            samples, fmt, lambda path, rows: keep(by_path[path], rows), frozenset(whole)
        )
    return schemas, {**bad, **unreadable}


CHECK_GROUP_FILES = 1024
"""Files checked together against an existing table (see `check_groups`)."""
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd", ".lz4", ".snappy")


def check_groups(files: list[FileInfo], fmt: FormatConfig) -> tuple[list[list[FileInfo]], list[FileInfo]]:
    """The files whose schema can be checked in groups, and those that must be inferred alone.

    A group's unified schema reads as much of each member as inferring it alone would: files whose schema is in
    their metadata (Parquet, ORC, Avro, text), and uncompressed text files small enough to be read whole within a
    group's per-file budget (multiline JSON is parsed whole either way). Larger or compressed text files are
    inferred alone, where the budget is 8 MiB."""
    budget = infer_bytes_per_file(CHECK_GROUP_FILES)

    def whole_in_group(info: FileInfo) -> bool:
        if fmt.type in WHOLE_SCHEMA_FORMATS or (fmt.type == "json" and fmt.options.multiline):
            return True
        if fmt.options.compression not in ("auto", "none"):
            return False
        return info.size <= budget and not info.path.lower().endswith(COMPRESSED_SUFFIXES)

    groupable = [info for info in files if whole_in_group(info)]
    alone = [info for info in files if not whole_in_group(info)]
    groups = [groupable[i : i + CHECK_GROUP_FILES] for i in range(0, len(groupable), CHECK_GROUP_FILES)]
    return groups, alone


def infer_each(storage: Storage, files: list[FileInfo], fmt: FormatConfig) -> dict[str, pa.Schema]:
    """Each file's own schema, inferred alone (files that cannot be read are left out), for the check against an
    existing table: columns without a value keep the null type (`InferResult.checked_schema`)."""
    schemas = {}
    for info in files:
        result = infer_schema(storage, [info], fmt)
        if info.path not in result.bad_files:
            schemas[info.path] = result.checked_schema
    return schemas

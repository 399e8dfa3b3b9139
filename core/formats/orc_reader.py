"""ORC files into Arrow batches, stripe by stripe (`pyarrow.orc`).

The file's own schema is its columns. Arrow reads ORC's types as their Arrow twins; the ones a table cannot hold
are turned into ones it can before conforming: a union column becomes the JSON text of each value (ORC's
`uniontype`, as the Avro reader does with unions of several types). ORC timestamps are read as UTC and, like
Parquet's, cut to microseconds (Delta's unit). Memory is one stripe (ORC writers make them 64-256 MiB).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.orc as orc

from core.formats.compression import detect_compression
from core.formats.conform import RESCUED, conform_batch, json_text
from core.formats.nesting import MAX_COLUMN_DEPTH, deepest_column
from core.formats.streams import ARROW_ERRORS, DEEP_ACTION, FileReadStats, Source, bad_file, empty_file
from core.formats.unify import normalize_schema

ORC_MAGIC = b"ORC"


def _has_union(t: pa.DataType) -> bool:
    if pa.types.is_union(t):
        return True
    return any(_has_union(t.field(i).type) for i in range(t.num_fields))


def _readable_type(t: pa.DataType) -> pa.DataType:
    """`t` with every union (and anything holding one) as string: its values' JSON text."""
    return pa.string() if _has_union(t) else t


def _readable_column(column: pa.Array) -> pa.Array:
    if not _has_union(column.type):
        return column
    return pa.array([None if v is None else json_text(v) for v in column.to_pylist()], pa.string())


def _reason(exc: BaseException, head: bytes) -> str:
    """What is wrong, in the file's terms (Arrow's ORC messages name its internals)."""
    packed = detect_compression(head)
    if packed is not None:
        return f"it is a {packed}-compressed file; ORC compresses inside the file, so decompress it first"
    if not head.startswith(ORC_MAGIC):
        return "it does not start with the ORC marker (ORC): it is not an ORC file"
    text = str(exc)
    if "postscript" in text.lower() or "Failed to parse" in text or "past EOF" in text:
        return "its metadata (the footer at the end of the file) is missing or corrupt: it is cut short or damaged"
    return "its data is corrupt"


def orc_file(source: Source, path: str) -> orc.ORCFile:
    """The opened ORC file (its footer read); BadFileError for an empty, non-ORC, corrupt or too deep file."""
    head = source.read(8)
    source.seek(0)
    if not head:
        raise empty_file(path)
    try:
        opened = orc.ORCFile(source)
        schema = opened.schema
    except ARROW_ERRORS as exc:
        if source.error is not None:
            raise
        raise bad_file(path, "ORC", _reason(exc, head)) from None
    deep = deepest_column(schema)
    if deep is not None:
        raise bad_file(
            path,
            "ORC",
            f"column '{deep}' nests structs, lists and maps more than {MAX_COLUMN_DEPTH} levels deep, more than a "
            "table column can hold",
            DEEP_ACTION,
        )
    return opened


def orc_schema(source: Source, path: str) -> pa.Schema:
    """The ORC file's columns, normalised (`unify.normalize_schema`)."""
    schema = orc_file(source, path).schema
    fields = [pa.field(f.name, _readable_type(f.type)) for f in schema if f.name != RESCUED]
    return normalize_schema(pa.schema(fields))


def read_orc(source: Source, path: str, schema: pa.Schema, stats: FileReadStats) -> Iterator[pa.RecordBatch]:
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    opened = orc_file(source, path)
    for index in range(opened.nstripes):
        try:
            stripe = opened.read_stripe(index)
        except ARROW_ERRORS as exc:
            if source.error is not None:
                raise
            error = bad_file(path, "ORC", f"stripe {index + 1} of {opened.nstripes} is corrupt")
            error.detail = f"{type(exc).__name__}: {exc}"
            raise error from None
        if isinstance(stripe, pa.Table):
            stripe = stripe.combine_chunks().to_batches()[0] if stripe.num_rows else None
        if stripe is None or not stripe.num_rows:
            continue
        columns = [_readable_column(column) for column in stripe.columns]
        batch = conform_batch(pa.RecordBatch.from_arrays(columns, names=stripe.schema.names), data_schema)
        stats.records += batch.num_rows
        yield batch

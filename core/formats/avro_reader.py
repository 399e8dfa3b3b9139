"""Avro object container files into Arrow batches, block by block (`fastavro`).

The writer's schema (in the file's header) gives the columns: a record's fields, or one `value` column when the
top-level type is not a record. Avro types map exactly (docs/TYPES.md): `int` int, `long` bigint, `float`,
`double`, `boolean`, `string`, `bytes` and `fixed` binary, `enum` string, `array` array, `map` map<string,...>,
`record` struct; logical types `decimal(p,s)` decimal (string beyond 38 digits), `date` date, `timestamp-millis`,
`timestamp-micros` and `timestamp-nanos` timestamp (UTC; nanoseconds cut to microseconds like Parquet's),
`local-timestamp-*` timestamp (the wall clock taken as UTC), `uuid` string, `time-millis`/`time-micros` string
(`HH:MM:SS.ffffff`: Delta has no time type). A union with `null` is its other branch, nullable; a union of
several types is their join on the type lattice when that is a number type (`int`|`long` bigint, `int`|`double`
double), else string holding each value's JSON text (a string value as itself). A record that contains itself
(a recursive type) is string at the point where it recurs, holding that value's JSON text.

Blocks are decoded one at a time and turned into a batch every `_BATCH_ROWS` records, so memory is a block and a
batch whatever the file's size.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import pyarrow as pa

from core.formats.compression import detect_compression
from core.formats.conform import RESCUED, conform_batch, json_text, merge_rescued
from core.formats.nesting import MAX_COLUMN_DEPTH, deepest_column
from core.formats.streams import DEEP_ACTION, FileReadStats, Source, bad_file, empty_file
from core.formats.text_types import TIMESTAMP
from core.formats.unify import normalize_schema, unify_types

AVRO_MAGIC = b"Obj\x01"
VALUE = "value"
_BATCH_ROWS = 16_384
_MAX_DECIMAL_DIGITS = 38

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class Mapped:
    """An Avro type as an Arrow type, and how a value fastavro decoded becomes one `pa.array` takes for it (None:
    as it is)."""

    type: pa.DataType
    convert: Convert | None = None


_PRIMITIVES: dict[str, pa.DataType] = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}


def _as_text(value: Any) -> Any:
    """A value for a string column: text as itself, anything else as its JSON text."""
    return value if value is None or isinstance(value, str) else json_text(value)


def _time_text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.time) else _as_text(value)


def _uuid_text(value: Any) -> Any:
    if isinstance(value, bytes | bytearray) and len(value) == 16:
        return str(uuid.UUID(bytes=bytes(value)))
    return None if value is None else str(value)


def _decimal_text(value: Any) -> Any:
    return None if value is None else str(value)


def _map_items(convert: Convert | None) -> Convert:
    """A map's dict as the (key, value) pairs `pa.array` takes for a map type, values converted."""
    if convert is None:
        return lambda value: list(value.items())
    return lambda value: [(k, None if v is None else convert(v)) for k, v in value.items()]


def _number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


class _Types:
    """Maps one file's writer schema, resolving named types (records, enums, fixed) by their full names."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}
        self.open_records: list[str] = []

    @staticmethod
    def _full_name(name: str, namespace: str | None) -> str:
        return name if "." in name or not namespace else f"{namespace}.{name}"

    def map(self, schema: Any, namespace: str | None = None) -> Mapped:
        if isinstance(schema, list):
            return self._union(schema, namespace)
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return Mapped(_PRIMITIVES[schema])
            return self._reference(schema, namespace)
        if not isinstance(schema, dict):
            raise ValueError(f"unknown Avro type {schema!r}")
        logical = schema.get("logicalType")
        if logical is not None:
            mapped = self._logical(schema, logical)
            if mapped is not None:
                if schema.get("type") == "fixed":
                    self._register(schema, namespace)
                return mapped
        kind = schema.get("type")
        if kind in ("record", "error"):
            return self._record(schema, namespace)
        if kind == "enum":
            self._register(schema, namespace)
            return Mapped(pa.string())
        if kind == "fixed":
            self._register(schema, namespace)
            return Mapped(pa.binary())
        if kind == "array":
            item = self.map(schema.get("items"), namespace)
            convert = item.convert
            return Mapped(pa.list_(item.type), None if convert is None else lambda v: [convert(x) for x in v])
        if kind == "map":
            values = self.map(schema.get("values"), namespace)
            fix = values.convert
            to_items: Convert = (
                (lambda v: list(v.items())) if fix is None else (lambda v: [(k, fix(x)) for k, x in v.items()])
            )
            return Mapped(pa.map_(pa.string(), values.type), to_items)
        return self.map(kind, namespace)  # {"type": "string"} and the like

    def _register(self, schema: dict[str, Any], namespace: str | None) -> str:
        full = self._full_name(str(schema.get("name", "")), schema.get("namespace", namespace))
        self.named[full] = schema
        return full

    def _reference(self, name: str, namespace: str | None) -> Mapped:
        full = self._full_name(name, namespace)
        if full not in self.named and name in self.named:
            full = name
        if full not in self.named:
            raise ValueError(f"the schema names a type '{name}' it does not define")
        if full in self.open_records:
            return Mapped(pa.string(), _as_text)  # the record recurs: its JSON text from here down
        space = full.rsplit(".", 1)[0] if "." in full else None
        return self.map(self.named[full], space)

    def _record(self, schema: dict[str, Any], namespace: str | None) -> Mapped:
        full = self._register(schema, namespace)
        space = full.rsplit(".", 1)[0] if "." in full else None
        self.open_records.append(full)
        try:
            fields = [(str(f["name"]), self.map(f["type"], space)) for f in schema.get("fields", [])]
        finally:
            self.open_records.pop()
        struct = pa.struct([pa.field(name, m.type) for name, m in fields])
        converters = {name: m.convert for name, m in fields if m.convert is not None}
        if not converters:
            return Mapped(struct)

        def convert(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            return {k: (converters[k](v) if k in converters and v is not None else v) for k, v in value.items()}

        return Mapped(struct, convert)

    def _logical(self, schema: dict[str, Any], logical: str) -> Mapped | None:
        base = schema.get("type")
        if logical == "decimal" and base in ("bytes", "fixed"):
            precision, scale = int(schema.get("precision", 0)), int(schema.get("scale", 0))
            if 1 <= precision <= _MAX_DECIMAL_DIGITS and 0 <= scale <= precision:
                return Mapped(pa.decimal128(precision, scale))
            return Mapped(pa.string(), _decimal_text)
        if logical == "date" and base == "int":
            return Mapped(pa.date32())
        if logical in ("time-millis", "time-micros") and base in ("int", "long"):
            return Mapped(pa.string(), _time_text)
        if logical in ("timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros"):
            return Mapped(TIMESTAMP) if base == "long" else None
        if logical in ("timestamp-nanos", "local-timestamp-nanos") and base == "long":
            return Mapped(pa.timestamp("ns", tz="UTC"))  # fastavro hands these over as the integer
        if logical == "uuid" and base in ("string", "fixed"):
            return Mapped(pa.string(), _uuid_text)
        return None  # another logical type: its underlying type

    def _union(self, branches: list[Any], namespace: str | None) -> Mapped:
        mapped = [self.map(b, namespace) for b in branches if b != "null"]
        if not mapped:
            return Mapped(pa.null())
        if len(mapped) == 1:
            return mapped[0]
        joined = mapped[0].type
        for m in mapped[1:]:
            joined = unify_types(joined, m.type)
        if _number(joined) and all(_number(m.type) for m in mapped):
            return Mapped(joined)
        return Mapped(pa.string(), _as_text)


@dataclass
class AvroLayout:
    """A file's columns: their raw Arrow fields and converters, and whether the top level is a record."""

    fields: list[tuple[str, Mapped]]
    record: bool

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(name, m.type) for name, m in self.fields])


def layout_of(writer_schema: Any) -> AvroLayout:
    types = _Types()
    top = writer_schema
    if isinstance(top, dict) and top.get("type") in ("record", "error"):
        full = types._register(top, None)
        space = full.rsplit(".", 1)[0] if "." in full else None
        types.open_records.append(full)
        fields = [(str(f["name"]), types.map(f["type"], space)) for f in top.get("fields", [])]
        return AvroLayout(fields, record=True)
    return AvroLayout([(VALUE, types.map(top))], record=False)


def _reason(exc: BaseException, head: bytes) -> str:
    packed = detect_compression(head)
    if packed is not None:
        return f"it is a {packed}-compressed file; Avro compresses inside the file, so decompress it first"
    if not head.startswith(AVRO_MAGIC):
        if head.startswith(b"PAR1"):
            return "it looks like a Parquet file; set the format to parquet"
        if head.startswith(b"ORC"):
            return "it looks like an ORC file; set the format to orc"
        return "it does not start with the Avro marker (Obj 1): it is not an Avro data file"
    text = str(exc)
    if "codec" in text.lower() and ("install" in text.lower() or "unrecognized" in text.lower()):
        return f"it is compressed with a codec this installation cannot read ({text})"
    if "sync marker" in text:
        return "a block does not end with the file's sync marker: the file is corrupt or cut short"
    if isinstance(exc, EOFError | StopIteration) or "header" in text:
        return "it ends before its data does: the file is cut short"
    return "its data is corrupt"


class _Opened:
    def __init__(self, source: Source, path: str):
        import fastavro

        self.source = source
        self.path = path
        self.head = source.read(len(AVRO_MAGIC))
        if not self.head:
            raise empty_file(path)
        if not self.head.startswith(AVRO_MAGIC):
            raise bad_file(path, "Avro", _reason(ValueError(), self.head))
        stream = _Rewound(self.head, source)
        try:
            self.blocks = fastavro.block_reader(cast(IO[bytes], stream))
            self.layout = layout_of(json.loads(self.blocks.metadata["avro.schema"]))
        except Exception as exc:
            raise self.error(exc) from None
        deep = deepest_column(self.layout.schema)
        if deep is not None:
            raise bad_file(
                path,
                "Avro",
                f"column '{deep}' nests records, arrays and maps more than {MAX_COLUMN_DEPTH} levels deep, more "
                "than a table column can hold",
                DEEP_ACTION,
            )

    def error(self, exc: BaseException) -> BaseException:
        if self.source.error is not None:
            return self.source.error
        error = bad_file(self.path, "Avro", _reason(exc, self.head))
        error.detail = f"{type(exc).__name__}: {exc}"
        return error


class _Rewound:
    """The file from its start again, after its first bytes were read to check the marker (fastavro asks `tell`)."""

    def __init__(self, head: bytes, rest: Source):
        self._head = head
        self._rest = rest
        self._position = 0

    def tell(self) -> int:
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            data, self._head = self._head + self._rest.read(), b""
        elif self._head:
            data, self._head = self._head[:size], self._head[size:]
            if len(data) < size:
                data += self._rest.read(size - len(data))
        else:
            data = self._rest.read(size)
        self._position += len(data)
        return data


def avro_schema(source: Source, path: str) -> pa.Schema:
    """The Avro file's columns from its header, normalised (`unify.normalize_schema`)."""
    schema = _Opened(source, path).layout.schema
    return normalize_schema(pa.schema([f for f in schema if f.name != RESCUED]))


def _column(values: list[Any], mapped: Mapped) -> tuple[pa.Array, dict[int, Any]]:
    """One column's values as an array of `mapped.type`; values that do not fit are NULL and returned by row."""
    convert = mapped.convert
    if convert is not None:
        values = [None if v is None else convert(v) for v in values]
    try:
        return pa.array(values, mapped.type), {}
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    misfits: dict[int, Any] = {}
    kept: list[Any] = []
    for i, value in enumerate(values):
        try:
            pa.array([value], mapped.type)
            kept.append(value)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            kept.append(None)
            misfits[i] = value
    return pa.array(kept, mapped.type), misfits


def _batch(records: list[Any], layout: AvroLayout, data_schema: pa.Schema) -> pa.RecordBatch:
    """Decoded records as a batch conformed to `data_schema`; values their own column could not hold are rescued."""
    rows = records if layout.record else [{VALUE: r} for r in records]
    columns: list[pa.Array] = []
    rescued: dict[int, dict[str, Any]] = {}
    for name, mapped in layout.fields:
        column, misfits = _column([r.get(name) if isinstance(r, dict) else None for r in rows], mapped)
        columns.append(column)
        for i, value in misfits.items():
            rescued.setdefault(i, {})[name] = value
    batch = conform_batch(pa.RecordBatch.from_arrays(columns, names=[name for name, _ in layout.fields]), data_schema)
    if not rescued:
        return batch
    index = batch.schema.get_field_index(RESCUED)
    texts = batch.column(index).to_pylist()
    merged = [merge_rescued(text, rescued[i]) if i in rescued else text for i, text in enumerate(texts)]
    return batch.set_column(index, batch.schema.field(index), pa.array(merged, pa.string()))


def read_avro(source: Source, path: str, schema: pa.Schema, stats: FileReadStats) -> Iterator[pa.RecordBatch]:
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    opened = _Opened(source, path)
    pending: list[Any] = []
    blocks = iter(opened.blocks)
    while True:
        try:
            block = next(blocks, None)
            if block is not None:
                pending.extend(block)
        except Exception as exc:
            raise opened.error(exc) from None
        if pending and (block is None or len(pending) >= _BATCH_ROWS):
            batch = _batch(pending, opened.layout, data_schema)
            pending = []
            stats.records += batch.num_rows
            yield batch
        if block is None:
            return

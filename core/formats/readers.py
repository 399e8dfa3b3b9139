"""The embedded engine's file readers: JSON (lines and multiline), CSV and Parquet into Arrow batches.

Every reader yields record batches conformed to the caller's schema plus a trailing
`_rescued_data` string column, so nothing in a file is silently dropped:

* `_rescued_data` is NULL when a row lost nothing. Otherwise it is a JSON object string whose keys
  are column names and whose values are the original values that did not fit:
  - columns in the file but not in the schema: `{"extra_col": <value>}` (only non-null values);
  - values that could not be cast to the column's type (the column is NULL in that row):
    `{"id": "abc"}`, `{"id": 4.7}` -- no silent truncation or rounding;
  - a line/row that could not be parsed at all (all data columns NULL):
    `{"_malformed": "<the raw line or row text>"}`.
  Values keep their JSON type where they have one (JSON input); CSV values are the field text.
  Values from typed sources (Parquet, re-conformed tables) are written as JSON: timestamps and dates
  as ISO 8601 strings, decimals as strings (exact digits), bytes as base64 strings.
* A file that cannot be read at all (empty, truncated, wrong format, not UTF-8 text) raises
  `BadFileError`; the pipeline quarantines it and carries on with the other files.

Speed: the pyarrow (C++) paths run first. Python takes over only for a block that pyarrow rejects
(a malformed line, a type clash), and only for that block.

Memory: JSON lines are read in blocks of about `block_bytes`, CSV through pyarrow's streaming
reader, Parquet by row groups in batches, so peak memory is a few blocks, not the file size.
Exception: multiline JSON (one document per file) is parsed whole and so held in memory.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from core.config import FormatConfig
from core.errors import AutoloaderError, BadFileError
from core.formats.compression import open_decompressed_detect
from core.formats.conform import (
    MALFORMED,
    RESCUED,
    cast_array,
    column_from_python,
    conform_batch,
    json_text,
    malformed_batch,
    merge_rescued,
    output_schema,
)
from core.formats.unify import normalize_schema, unify_schemas, unify_types

QUARANTINE_ACTION = "Check the file's format, or fix/remove it; it is quarantined and the rest of the run continues."
EMPTY_ACTION = (
    "There is nothing to load; check the producer. The file is quarantined and the rest of the run continues."
)

# A first block with more than this share of malformed lines means the file is not in the declared format.
MAX_MALFORMED_SHARE = 0.9
_PARQUET_BATCH_ROWS = 65_536
_PROBE_BYTES = 1024 * 1024
_ARROW_JSON_BLOCK = 1024 * 1024
_INFER_LEAF = 16  # runs of at most this many clashing lines are typed in Python

_ARROW_ERRORS: tuple[type[BaseException], ...] = (pa.ArrowException, OSError, EOFError, ValueError)


@dataclass
class FileReadStats:
    """What reading one file produced: rows yielded, malformed lines/rows, raw bytes consumed."""

    records: int = 0
    bad_records: int = 0
    bytes_read: int = 0


# ---------------------------------------------------------------------------------------------------------------------
# Streams and errors


class _Source(io.RawIOBase):
    """The caller's stream, counting raw bytes and remembering its own errors.

    An error raised by the source (network, disk) is not the file's fault and must not get the file
    quarantined, so it is re-raised as is instead of becoming a BadFileError.
    """

    def __init__(self, raw: BinaryIO):
        super().__init__()
        self._raw = raw
        self.bytes = 0  # the furthest offset read: raw bytes consumed, counting re-reads once
        self._position = 0
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        try:
            return bool(self._raw.seekable())
        except Exception:
            return False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        try:
            self._position = self._raw.seek(offset, whence)
        except Exception as exc:
            self.error = exc
            raise
        return self._position

    def tell(self) -> int:
        return self._raw.tell()

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = self._raw.read() if size is None or size < 0 else self._raw.read(size)
        except Exception as exc:
            self.error = exc
            raise
        self._position += len(data)
        self.bytes = max(self.bytes, self._position)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


# Arrow's streaming CSV reader queues up to 32 blocks ahead of the consumer: 1 MiB blocks keep
# that read-ahead near 32 MiB (16 MiB blocks measured 930 MiB RSS on a 1 GiB file).
CSV_BLOCK_BYTES = 1024 * 1024


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^(JSON parse error|CSV parse error|In CSV column #\d+): ", "", text)
    return text if len(text) <= 200 else text[:197] + "..."


def _bad(path: str, what: str, exc: BaseException | str, action: str = QUARANTINE_ACTION) -> BadFileError:
    reason = exc if isinstance(exc, str) else _short(exc)
    detail = "" if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return BadFileError(f"{path} is not valid {what}: {reason}", action, detail=detail)


def _empty(path: str) -> BadFileError:
    return BadFileError(f"{path} is empty", EMPTY_ACTION)


def _translate(exc: BaseException, source: _Source, path: str, what: str) -> BaseException:
    """The error to raise for `exc` met while reading: source errors and our own errors pass unchanged."""
    if isinstance(exc, AutoloaderError) or source.error is not None:
        return exc
    if isinstance(exc, UnicodeDecodeError) or "invalid UTF8" in str(exc):
        return _bad(path, what, "the text is not UTF-8 encoded")
    return _bad(path, what, exc)


def _check_head(head: bytes, path: str, what: str) -> None:
    """Reject binary content early: a Parquet (or other binary) file given as JSON/CSV."""
    if head.startswith(b"PAR1"):
        raise _bad(path, what, "it looks like a Parquet file; set the format to parquet")
    if head.startswith((b"ORC", b"Obj\x01")):
        raise _bad(path, what, "it looks like an ORC/Avro file, which is binary")
    if b"\x00" in head[:65536]:
        raise _bad(path, what, "it contains binary data (NUL bytes)")


def _read_up_to(stream: BinaryIO, size: int | None) -> bytes:
    """Up to `size` bytes (everything when None), however short the stream's reads are."""
    parts: list[bytes] = []
    got = 0
    while size is None or got < size:
        chunk = stream.read(16 * 1024 * 1024 if size is None else min(size - got, 64 * 1024 * 1024))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


_BOM = b"\xef\xbb\xbf"


def _first_content(stream: BinaryIO, block_bytes: int | None, path: str, what: str) -> tuple[bytes, bool]:
    """The first block of a text stream (everything when `block_bytes` is None) and whether the stream ended.

    Leading blank blocks and a UTF-8 byte order mark are dropped. Raises BadFileError for an empty or
    blank file, or binary content.
    """
    head = _read_up_to(stream, block_bytes)
    exhausted = block_bytes is None or len(head) < block_bytes
    while not head.strip() and not exhausted:
        head = _read_up_to(stream, block_bytes)  # leading blank space carries no data
        exhausted = block_bytes is None or len(head) < block_bytes
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    if not head.strip():
        raise _empty(path)
    _check_head(head[:65536].lstrip(), path, what)
    return head, exhausted


class _Chained(io.RawIOBase):
    """`first` bytes, then the rest of `rest` (hands an already-read block back to a streaming parser)."""

    def __init__(self, first: bytes, rest: BinaryIO | None):
        super().__init__()
        self._first = memoryview(first)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._first:
            n = min(len(view), len(self._first))
            view[:n] = self._first[:n]
            self._first = self._first[n:]
            return n
        if self._rest is None:
            return 0
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


# ---------------------------------------------------------------------------------------------------------------------
# JSON


def _json_lines_blocks(stream: BinaryIO, first: bytes, exhausted: bool, block_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines: about `block_bytes` each, cut after the last newline (a longer line grows a block)."""
    buffer = first
    while True:
        if exhausted:
            if buffer:
                yield buffer
            return
        cut = buffer.rfind(b"\n")
        if cut != -1:
            yield buffer[: cut + 1]
            buffer = buffer[cut + 1 :]
        chunk = _read_up_to(stream, block_bytes)
        exhausted = len(chunk) < block_bytes
        buffer = buffer + chunk if buffer else chunk


def _arrow_json(block: bytes, explicit: pa.Schema | None) -> pa.Table:
    size = len(block) + 1
    options = pjson.ReadOptions(use_threads=size > _ARROW_JSON_BLOCK, block_size=min(size, _ARROW_JSON_BLOCK))
    parse = pjson.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
    try:
        return pjson.read_json(pa.BufferReader(block), read_options=options, parse_options=parse)
    except pa.ArrowInvalid as exc:
        if size <= _ARROW_JSON_BLOCK or "straddl" not in str(exc):
            raise
    # A record longer than Arrow's block: parse the block in one piece.
    options = pjson.ReadOptions(use_threads=False, block_size=size)
    return pjson.read_json(pa.BufferReader(block), read_options=options, parse_options=parse)


def _json_parse_type(t: pa.DataType) -> pa.DataType | None:
    """The type to ask Arrow's JSON parser for, for a column of type `t` (None: let Arrow infer it).

    Arrow's JSON parser cannot read dates or times from text (they are read as text and cast by
    `conform_batch`), nor maps or the null type (inferred, then cast or rescued).
    """
    if pa.types.is_date(t) or pa.types.is_time(t):
        return pa.string()
    if pa.types.is_map(t) or pa.types.is_null(t):
        return None
    if pa.types.is_struct(t):
        fields = [(f.name, _json_parse_type(f.type)) for f in t]
        if any(ft is None for _, ft in fields):
            return None
        return pa.struct([pa.field(name, ft) for name, ft in fields if ft is not None])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        item = _json_parse_type(t.value_type)
        return None if item is None else pa.list_(item)
    return t


@dataclass
class _JsonPlan:
    """How the blocks of one file are handed to Arrow's JSON parser.

    `strict` types every column, so Arrow parses straight into the target types. Arrow will not read
    a JSON number or object as text, so for files whose text columns hold other JSON values `loose`
    leaves those columns to Arrow's inference and turns the values back into their JSON text.
    Which of the two works is remembered per schema (`_LOOSE_WORKS`), so the next block or file of
    the same shape is parsed once.
    """

    schema: pa.Schema  # the data columns
    strict: pa.Schema | None
    loose: pa.Schema | None  # None when there are no text columns
    first_block: bool = True


# Per target schema: the loose parse schema that worked last (files of one source tend to look alike).
_LOOSE_WORKS: dict[pa.Schema, pa.Schema] = {}
_LOOSE_WORKS_MAX = 64


@functools.lru_cache(maxsize=64)
def _json_schemas(schema: pa.Schema) -> tuple[pa.Schema, pa.Schema | None, pa.Schema | None]:
    data = pa.schema([pa.field(f.name, f.type) for f in schema if f.name != RESCUED])
    parse = [(f.name, _json_parse_type(f.type)) for f in data]
    strict = [pa.field(name, t) for name, t in parse if t is not None]
    loose = [f for f in strict if not pa.types.is_string(data.field(f.name).type)]
    return data, pa.schema(strict) if strict else None, pa.schema(loose) if len(loose) < len(strict) else None


def _json_plan(schema: pa.Schema) -> _JsonPlan:
    data, strict, loose = _json_schemas(schema)
    return _JsonPlan(schema=data, strict=strict, loose=loose)


def _exact_as_text(t: pa.DataType) -> bool:
    """Whether values Arrow inferred as `t` convert back to their exact JSON text.

    Numbers, booleans and lists of them do (cast / JSON-encoded); objects (Arrow adds null members
    for keys a row lacks) and text Arrow parsed as timestamps do not.
    """
    if pa.types.is_list(t):
        return _exact_as_text(t.value_type)
    return (
        pa.types.is_string(t)
        or pa.types.is_null(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
    )


def _loose_ok(table: pa.Table, schema: pa.Schema) -> bool:
    """Whether every text column of `schema` that Arrow typed itself can be turned back into its JSON text."""
    for name in table.schema.names:
        index = schema.get_field_index(name)
        field_type = table.schema.field(name).type
        if index != -1 and pa.types.is_string(schema.field(index).type) and not _exact_as_text(field_type):
            return False
    return True


def _strict_json(block: bytes, plan: _JsonPlan) -> pa.RecordBatch | None:
    try:
        return conform_batch(_arrow_json(block, plan.strict), plan.schema)
    except (pa.ArrowException, UnicodeDecodeError):
        return None


def _loose_json(block: bytes, plan: _JsonPlan, explicit: pa.Schema) -> pa.RecordBatch | None:
    for _ in range(2):
        try:
            table = _arrow_json(block, explicit if len(explicit) else None)
        except (pa.ArrowException, UnicodeDecodeError):
            return None
        # Text columns Arrow parsed as timestamps hold JSON strings: pin them as text and parse again.
        pins = [
            pa.field(name, pa.string())
            for name in table.schema.names
            if name in plan.schema.names
            and pa.types.is_string(plan.schema.field(name).type)
            and pa.types.is_timestamp(table.schema.field(name).type)
        ]
        if pins:
            explicit = pa.schema([*explicit, *pins])
            continue
        if not _loose_ok(table, plan.schema):
            return None
        if len(_LOOSE_WORKS) >= _LOOSE_WORKS_MAX:
            _LOOSE_WORKS.clear()
        _LOOSE_WORKS[plan.schema] = explicit
        return conform_batch(table, plan.schema)
    return None


def _fast_json(block: bytes, plan: _JsonPlan) -> pa.RecordBatch | None:
    """The block parsed by Arrow and conformed, or None when Python must parse it line by line."""
    if plan.loose is None:
        return _strict_json(block, plan)
    learned = _LOOSE_WORKS.get(plan.schema)
    if learned is not None:
        batch = _loose_json(block, plan, learned)
        if batch is not None:
            return batch
    batch = _strict_json(block, plan)
    if batch is None and (learned is None or not learned.equals(plan.loose)):
        batch = _loose_json(block, plan, plan.loose)
    return batch


def _parse_lines(text: str) -> tuple[list[dict[str, Any] | None], dict[int, str], list[str]]:
    """Parsed JSON-lines rows (None for a malformed line), malformed line texts by row, good line texts."""
    rows: list[dict[str, Any] | None] = []
    malformed: dict[int, str] = {}
    good: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict):
            rows.append(value)
            good.append(stripped)
        else:
            malformed[len(rows)] = stripped
            rows.append(None)
    return rows, malformed, good


def _check_malformed_share(text: str, rows: int, malformed: dict[int, str], path: str) -> None:
    """A first block that is mostly not JSON objects is a file in another format, not bad records."""
    if not rows or len(malformed) / rows <= MAX_MALFORMED_SHARE:
        return
    sample = next(iter(malformed.values()))
    hint = ""
    if text.lstrip().startswith("["):
        hint = " (it looks like one JSON document: turn on the multiline option)"
    raise _bad(
        path, "JSON", f"{len(malformed)} of the first {rows} lines are not JSON objects{hint}, e.g. {sample[:80]!r}"
    )


def _python_json(text: str, plan: _JsonPlan, stats: FileReadStats, path: str) -> pa.RecordBatch:
    """A block parsed line by line: bad lines become `{"_malformed": line}` rows."""
    rows, malformed, _ = _parse_lines(text)
    if plan.first_block:
        _check_malformed_share(text, len(rows), malformed, path)
    stats.bad_records += len(malformed)
    return _rows_to_batch(rows, malformed, plan.schema)


def _rows_to_batch(rows: list[dict[str, Any] | None], malformed: dict[int, str], schema: pa.Schema) -> pa.RecordBatch:
    target = output_schema(schema)
    failed_by_row: dict[int, set[str]] = {}
    arrays: list[pa.Array] = []
    for f in schema:
        values = [None if r is None else r.get(f.name) for r in rows]
        arr, failed = column_from_python(values, f.type)
        arrays.append(arr)
        for i in failed:
            failed_by_row.setdefault(i, set()).add(f.name)
    names = set(schema.names)
    no_failures: set[str] = set()
    rescued: list[str | None] = []
    for i, row in enumerate(rows):
        if row is None:
            rescued.append(json_text({MALFORMED: malformed[i]}))
            continue
        bad = failed_by_row.get(i, no_failures)
        new = {k: v for k, v in row.items() if k != RESCUED and v is not None and (k not in names or k in bad)}
        existing = row.get(RESCUED)
        if existing is not None and not isinstance(existing, str):
            existing = json_text(existing)
        rescued.append(merge_rescued(existing, new) if new else existing)
    arrays.append(pa.array(rescued, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _decode(block: bytes, path: str) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(path, "JSON", "the text is not UTF-8 encoded") from None


def _json_block_batch(block: bytes, plan: _JsonPlan, stats: FileReadStats, path: str) -> pa.RecordBatch | None:
    # Arrow's JSON parser does not check that text is UTF-8; Python's decoder does, at memory speed for ASCII.
    text = _decode(block, path)
    batch = _fast_json(block, plan)
    if batch is None:
        batch = _python_json(text, plan, stats, path)
    plan.first_block = False
    return batch if batch.num_rows else None


def _multiline_documents(data: bytes, path: str) -> list[Any]:
    """The values of a whole-file JSON document: an array's elements, one object, or concatenated values."""
    text = _decode(data, path)
    decoder = json.JSONDecoder()
    whitespace = re.compile(r"\s*")
    values: list[Any] = []
    index = 0
    while True:
        index = whitespace.match(text, index).end()  # type: ignore[union-attr]  # \s* always matches
        if index >= len(text):
            break
        try:
            value, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise _bad(path, "JSON", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise _bad(path, "JSON", "it is nested too deeply") from None
        if isinstance(value, list):
            values.extend(value)
        else:
            values.append(value)
    return values


def _multiline_as_lines(stream: BinaryIO, path: str) -> bytes:
    """A multiline JSON file re-written as JSON lines (one value per line), so it takes the JSON-lines paths.

    The whole file is held in memory: a JSON document cannot be parsed in pieces.
    """
    data, _ = _first_content(stream, None, path, "JSON")
    values = _multiline_documents(data, path)
    if not values:
        raise _empty(path)
    return "\n".join(json_text(v) for v in values).encode("utf-8") + b"\n"


def _read_json(
    stream: BinaryIO, path: str, fmt: FormatConfig, schema: pa.Schema, stats: FileReadStats, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    plan = _json_plan(schema)
    if fmt.options.multiline:
        lines = _multiline_as_lines(stream, path)
        blocks = _json_lines_blocks(io.BytesIO(lines), b"", False, block_bytes)
    else:
        first, exhausted = _first_content(stream, block_bytes, path, "JSON")
        blocks = _json_lines_blocks(stream, first, exhausted, block_bytes)
    for block in blocks:
        batch = _json_block_batch(block, plan, stats, path)
        if batch is not None:
            stats.records += batch.num_rows
            yield batch


def _infer_json_lines(lines: list[str]) -> pa.Schema:
    """Arrow's inference over JSON object lines; halves that clash are inferred apart and unified.

    Small runs of clashing lines are typed in Python, which bounds the work when types clash everywhere.
    """
    if not lines:
        return pa.schema([])
    try:
        return _arrow_json(("\n".join(lines) + "\n").encode("utf-8"), None).schema
    except pa.ArrowException:
        if len(lines) <= _INFER_LEAF:
            return unify_schemas(
                pa.schema([pa.field(k, _python_type(v)) for k, v in json.loads(line).items()]) for line in lines
            )
    mid = len(lines) // 2
    return unify_schemas([_infer_json_lines(lines[:mid]), _infer_json_lines(lines[mid:])])


def _python_type(value: Any) -> pa.DataType:
    """The Arrow type of a parsed JSON value (used only for the few lines Arrow cannot type together)."""
    if value is None:
        return pa.null()
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64() if -(2**63) <= value < 2**63 else pa.float64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, str):
        return pa.string()
    if isinstance(value, dict):
        return pa.struct([pa.field(k, _python_type(v)) for k, v in value.items()])
    item: pa.DataType = pa.null()
    for v in value:
        item = unify_types(item, _python_type(v))
    return pa.list_(item)


def _infer_json(data: bytes, path: str, fmt: FormatConfig) -> pa.Schema:
    text = _decode(data, path)
    try:
        schema = _arrow_json(data, None).schema
    except (pa.ArrowException, UnicodeDecodeError):
        rows, malformed, good = _parse_lines(text)
        _check_malformed_share(text, len(rows), malformed, path)
        schema = _infer_json_lines(good)
    fields = [f for f in schema if f.name != RESCUED]
    if not fmt.schema_.infer_types:
        fields = [pa.field(f.name, pa.string()) for f in fields]
    return normalize_schema(pa.schema(fields))


# ---------------------------------------------------------------------------------------------------------------------
# CSV


def _csv_parse_options(fmt: FormatConfig, handler: Callable[[Any], str] | None) -> pcsv.ParseOptions:
    options = fmt.options
    return pcsv.ParseOptions(
        delimiter=options.delimiter,
        quote_char=options.quote or False,
        escape_char=options.escape or False,
        double_quote=True,
        newlines_in_values=options.multiline,
        ignore_empty_lines=True,
        invalid_row_handler=handler,
    )


def _clean_names(names: list[str], header: bool) -> list[str]:
    """Column names like Spark: `_c0, _c1...` without a header (or for a blank header cell); duplicates numbered."""
    cleaned = [name.strip() if header and name.strip() else f"_c{i}" for i, name in enumerate(names)]
    counts: dict[str, int] = {}
    for name in cleaned:
        counts[name] = counts.get(name, 0) + 1
    if all(c == 1 for c in counts.values()):
        return cleaned
    return [f"{name}{i}" if counts[name] > 1 else name for i, name in enumerate(cleaned)]


def _skip_row(_row: Any) -> str:
    return "skip"


def _csv_probe(head: bytes, exhausted: bool, fmt: FormatConfig) -> list[str]:
    """The raw column names (or, without a header, placeholders) from the start of the file."""
    probe = head
    if not exhausted:
        cut = head.rfind(b"\n")
        probe = head[: cut + 1] if cut > 0 else head
    header = fmt.options.header
    parse = _csv_parse_options(fmt, _skip_row)
    for block_size in (min(len(probe) + 1, 64 * 1024), len(probe) + 1):
        read = pcsv.ReadOptions(use_threads=False, block_size=block_size, autogenerate_column_names=not header)
        try:
            reader = pcsv.open_csv(pa.BufferReader(probe), read_options=read, parse_options=parse)
        except pa.ArrowInvalid:
            if block_size > len(probe):
                raise
            continue
        return list(reader.schema.names)
    raise AssertionError("unreachable")


def _read_csv(
    stream: BinaryIO, path: str, fmt: FormatConfig, schema: pa.Schema, stats: FileReadStats, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    first, exhausted = _first_content(stream, min(block_bytes, _PROBE_BYTES), path, "CSV")
    raw_names = _csv_probe(first, exhausted, fmt)
    names = _clean_names(raw_names, fmt.options.header)
    bad_rows: list[str] = []

    def on_invalid(row: Any) -> str:
        bad_rows.append(row.text)
        return "skip"

    reader = pcsv.open_csv(
        io.BufferedReader(_Chained(first, None if exhausted else stream), buffer_size=1024 * 1024),
        read_options=pcsv.ReadOptions(
            use_threads=True,
            block_size=min(block_bytes, CSV_BLOCK_BYTES),
            autogenerate_column_names=not fmt.options.header,
        ),
        parse_options=_csv_parse_options(fmt, on_invalid),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in raw_names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    first_batch = True
    while True:
        try:
            raw = reader.read_next_batch()
        except StopIteration:
            break
        batch = conform_batch(pa.RecordBatch.from_arrays(raw.columns, names=names), data_schema)
        if first_batch:
            _check_bad_rows_share(path, batch.num_rows, len(bad_rows), len(names))
            first_batch = False
        yield from _with_bad_rows(batch, bad_rows, data_schema, stats)
    if bad_rows:
        if first_batch:
            _check_bad_rows_share(path, 0, len(bad_rows), len(names))
        yield from _with_bad_rows(None, bad_rows, data_schema, stats)


def _check_bad_rows_share(path: str, good: int, bad: int, fields: int) -> None:
    """A first block that is mostly rows of the wrong width means the CSV options (or the format) are wrong."""
    if bad and bad / (good + bad) > MAX_MALFORMED_SHARE:
        raise _bad(
            path,
            "CSV",
            f"{bad} of the first {good + bad} rows do not have {fields} fields; check the delimiter and quote options",
        )


def _with_bad_rows(
    batch: pa.RecordBatch | None, bad_rows: list[str], schema: pa.Schema, stats: FileReadStats
) -> Iterator[pa.RecordBatch]:
    if batch is not None and batch.num_rows:
        stats.records += batch.num_rows
        yield batch
    if bad_rows:
        # Arrow's threads may append while this runs: take a prefix, atomically under the GIL.
        count = len(bad_rows)
        texts = bad_rows[:count]
        del bad_rows[:count]
        stats.bad_records += len(texts)
        stats.records += len(texts)
        yield malformed_batch(texts, schema)


def _infer_csv(data: bytes, exhausted: bool, fmt: FormatConfig) -> pa.Schema:
    if not exhausted:
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut > 0 else data
    header = fmt.options.header
    table = pcsv.read_csv(
        pa.BufferReader(data),
        read_options=pcsv.ReadOptions(autogenerate_column_names=not header),
        parse_options=_csv_parse_options(fmt, _skip_row),
        convert_options=pcsv.ConvertOptions(strings_can_be_null=True),
    )
    names = _clean_names(table.schema.names, header)
    if fmt.schema_.infer_types:
        fields = [pa.field(name, f.type) for name, f in zip(names, table.schema, strict=True)]
    else:
        fields = [pa.field(name, pa.string()) for name in names]
    return normalize_schema(pa.schema([f for f in fields if f.name != RESCUED]))


# ---------------------------------------------------------------------------------------------------------------------
# Parquet


def _parquet_file(source: _Source, path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(source)
    except _ARROW_ERRORS as exc:
        if source.error is not None:
            raise
        if source.bytes == 0 or "size is 0" in str(exc):
            raise _empty(path) from None
        raise _bad(path, "Parquet", exc) from None


def _read_parquet(source: _Source, path: str, schema: pa.Schema, stats: FileReadStats) -> Iterator[pa.RecordBatch]:
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    parquet = _parquet_file(source, path)
    for raw in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
        batch = conform_batch(raw, data_schema)
        stats.records += batch.num_rows
        yield batch


# ---------------------------------------------------------------------------------------------------------------------
# Public entry points


_WHAT = {"json": "JSON", "csv": "CSV", "parquet": "Parquet"}


def _binary(source: _Source) -> BinaryIO:
    return source  # type: ignore[return-value]  # an io.RawIOBase is a binary stream


class _Opened:
    """The decompressed text stream of a JSON/CSV file and how to name its format in messages."""

    def __init__(self, source: _Source, fmt: FormatConfig):
        self.what = _WHAT.get(fmt.type, fmt.type)
        self.stream, kind = open_decompressed_detect(_binary(source), fmt.options.compression)
        if kind is not None:
            self.what = f"{kind}-compressed {self.what}"


def infer_file_schema(
    stream: BinaryIO, fmt: FormatConfig, sample_bytes: int = 8 * 1024 * 1024, path: str = "file"
) -> pa.Schema:
    """The data columns of one file, inferred by Arrow from at most `sample_bytes` of its content.

    JSON lines and CSV are cut at the last newline of the sample; multiline JSON is parsed whole.
    With `fmt.schema_.infer_types` off every top-level column is a string (nested JSON values are then
    read as their JSON text). Parquet returns the file's own schema (pass a seekable stream).
    Types are normalised (`unify.normalize_type`); columns that only held nulls keep the null type.
    Raises BadFileError for a file that cannot be read; `path` names the file in messages.
    """
    what = _WHAT.get(fmt.type, fmt.type)
    source = _Source(stream)
    try:
        if fmt.type == "parquet":
            schema = _parquet_file(source, path).schema_arrow
            return normalize_schema(pa.schema([f for f in schema if f.name != RESCUED]))
        if fmt.type not in ("json", "csv"):
            raise _bad(path, what, f"the {fmt.type} format is not supported by the embedded engine")
        opened = _Opened(source, fmt)
        what = opened.what
        if fmt.type == "json" and fmt.options.multiline:
            return _infer_json(_multiline_as_lines(opened.stream, path), path, fmt)
        data, exhausted = _first_content(opened.stream, sample_bytes, path, what)
        if fmt.type == "csv":
            return _infer_csv(data, exhausted, fmt)
        if not exhausted:
            data = data[: data.rfind(b"\n") + 1] or data
        return _infer_json(data, path, fmt)
    except _ARROW_ERRORS as exc:
        raise _translate(exc, source, path, what) from None


def read_file(
    stream: BinaryIO,
    path: str,
    fmt: FormatConfig,
    schema: pa.Schema,
    stats: FileReadStats,
    block_bytes: int = 16 * 1024 * 1024,
    size: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the file's rows as record batches of exactly `output_schema(schema)`.

    `schema` holds the data columns (a `_rescued_data` field in it is ignored); the batches have those
    columns, all nullable, then `_rescued_data`. Peak memory is a few `block_bytes` blocks for JSON, and
    Arrow's read-ahead queue of CSV_BLOCK_BYTES blocks (up to 32 of them) for CSV (except for
    multiline JSON, which is held whole). `stats` is updated as batches are yielded; `bytes_read` is
    `size` when given, else the raw bytes consumed. JSON/CSV need only a sequential stream; Parquet
    needs a seekable one.

    Raises BadFileError for a file that cannot be read. It can come after some batches were yielded
    (e.g. a corrupt block in the middle of a file), so callers must discard the file's partial output.
    Errors raised by the stream itself (network, disk) pass through unchanged.
    """
    what = _WHAT.get(fmt.type, fmt.type)
    source = _Source(stream)
    try:
        if fmt.type == "parquet":
            yield from _read_parquet(source, path, schema, stats)
            return
        if fmt.type not in ("json", "csv"):
            raise _bad(path, what, f"the {fmt.type} format is not supported by the embedded engine")
        opened = _Opened(source, fmt)
        what = opened.what
        if fmt.type == "json":
            yield from _read_json(opened.stream, path, fmt, schema, stats, block_bytes)
        else:
            yield from _read_csv(opened.stream, path, fmt, schema, stats, block_bytes)
    except _ARROW_ERRORS as exc:
        raise _translate(exc, source, path, what) from None
    finally:
        stats.bytes_read += size if size is not None else source.bytes


__all__ = [
    "MALFORMED",
    "RESCUED",
    "FileReadStats",
    "cast_array",
    "conform_batch",
    "infer_file_schema",
    "json_text",
    "output_schema",
    "read_file",
]

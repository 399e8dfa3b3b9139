"""Conforming Arrow data to a target schema without losing anything.

`conform_batch` gives a batch exactly the target columns plus `_rescued_data`; values that do not fit
are moved into `_rescued_data` as a JSON object string (see `core.formats.readers` for the conventions).
Casting is vectorised first (`pc.cast`); only when a cast fails are values examined individually,
with the same cast rules, so the fast path and the fallback agree.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import secrets
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from core.formats.names import column_name
from core.formats.text_types import (
    DEFAULT_RULES,
    TextRules,
    cast_text,
    double_exact,
    float32_holds,
    narrow_floats,
)

RESCUED = "_rescued_data"
MALFORMED = "_malformed"
_LEAF = 16  # below this many values a failing cast is retried value by value


# ---------------------------------------------------------------------------------------------------------------------
# Schemas and JSON text of values


@functools.lru_cache(maxsize=64)
def output_schema(schema: pa.Schema) -> pa.Schema:
    """`schema`'s data columns, all nullable, followed by the `_rescued_data` string column."""
    fields = [pa.field(f.name, f.type) for f in schema if f.name != RESCUED]
    return pa.schema([*fields, pa.field(RESCUED, pa.string())])


class JsonNumber:
    """A JSON number no double holds exactly (`1e400`, `1e-400`, 20 significant digits), kept as its text."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"JsonNumber({self.text!r})"


class JsonFloat(float):
    """A JSON number a double holds, with the text it was written as: a string column and `_rescued_data` keep
    `1.50`, `1E5` and `1e20` as written (the double alone would give `1.5`, `100000.0` and `1e+20`)."""

    __slots__ = ("text",)
    text: str


def _json_float(text: str) -> JsonFloat:
    """(A function, not `JsonFloat.__new__`: the float's own constructor, called from C, is twice as fast.)"""
    value = JsonFloat(text)
    value.text = text
    return value


def parse_float(text: str) -> float | JsonNumber:
    """`json.loads`'s float parser that never rounds silently: an inexact number stays a JsonNumber, the others
    are JsonFloats (doubles that remember their text)."""
    value = _json_float(text)
    if math.isfinite(value) and value != 0.0 and len(text) <= 16:
        return value
    if double_exact(text) or (value == 0.0 and not _NONZERO_MANTISSA.search(text)):
        return value
    return JsonNumber(text)


_NONZERO_MANTISSA = re.compile(r"^[^eE]*[1-9]")


def loads(text: str) -> Any:
    """`json.loads` keeping numbers exact (see `parse_float`)."""
    return json.loads(text, parse_float=parse_float)


# A number's text goes through the encoder as a marked string, unmarked after: the mark holds a per-process random
# part, so a string in the data (`"\u0000N1"`) is never taken for a number.
_NUMBER_MARK = f"\x00{secrets.token_hex(8)}:"
_NUMBER_MARK_JSON = json.dumps(_NUMBER_MARK)[1:-1]
_NUMBER_MARKED = re.compile('"' + re.escape(_NUMBER_MARK_JSON) + r'([^"\\]*)"')


def _json_default(value: Any) -> Any:
    if isinstance(value, JsonNumber):
        return _NUMBER_MARK + value.text
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, tuple):
        return list(value)
    return str(value)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _number_texts(value: Any) -> Any:
    """`value` with each JsonFloat made a JsonNumber, which the encoder writes as its text (it writes a float
    subclass as the float)."""
    if isinstance(value, JsonFloat):
        return value if float.__repr__(value) == value.text else JsonNumber(value.text)
    # Loops, not comprehensions: one stack frame per level, so a value as deep as the encoder takes is walked.
    if isinstance(value, dict):
        members = {}
        for key, member in value.items():
            members[key] = _number_texts(member)
        return members
    if isinstance(value, list):
        items = []
        for item in value:
            items.append(_number_texts(item))
        return items
    return value


def json_text(value: Any) -> str:
    """Compact JSON text of a Python value (see the module docstring for non-JSON types); a JsonNumber is
    written as the number it was."""
    if isinstance(value, str):
        return _ENCODER.encode(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, JsonFloat | JsonNumber):
        return value.text
    text = _ENCODER.encode(value)
    return _NUMBER_MARKED.sub(r"\1", text) if _NUMBER_MARK_JSON in text else text


def json_text_as_written(value: Any) -> str:
    """`json_text` of a value parsed by `loads`, its numbers nested in objects and lists written as they were
    (`json_text` writes a nested JsonFloat as its double: walking every value written costs as much as encoding
    it, so only values that can hold JsonFloats take this)."""
    if isinstance(value, dict | list):
        value = _number_texts(value)
    return json_text(value)


def _is_nested(t: pa.DataType) -> bool:
    return pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t)


def _is_stringlike(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


# ---------------------------------------------------------------------------------------------------------------------
# Casting with per-value fallback


def _cast_primitive(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """`pc.cast` with the readers' rules (for typed values; text goes through `cast_text`); raises when any value
    does not fit."""
    # Timestamps may lose sub-microsecond digits (Delta stores microseconds); nothing else may lose data.
    safe = not (pa.types.is_timestamp(arr.type) and pa.types.is_timestamp(target))
    return pc.cast(arr, target, safe=safe)


def _find_failing(arr: pa.Array, target: pa.DataType, offset: int, failed: list[int]) -> None:
    """Append to `failed` the indices (plus `offset`) of the values of `arr` that do not cast to `target`.

    Halves failing parts until they are small, then tries values one by one: exactly the fast path's
    cast rules, at a cost of about 2*k*log2(n/k) casts for k bad values.
    """
    try:
        _cast_primitive(arr, target)
        return
    except pa.ArrowException:
        pass
    if len(arr) <= _LEAF:
        for i in range(len(arr)):
            try:
                _cast_primitive(arr.slice(i, 1), target)
            except pa.ArrowException:
                failed.append(offset + i)
        return
    mid = len(arr) // 2
    _find_failing(arr.slice(0, mid), target, offset, failed)
    _find_failing(arr.slice(mid), target, offset + mid, failed)


def _fields_fit(source: pa.DataType, target: pa.DataType) -> bool:
    """True when every (nested) struct field of `source` exists in `target`, so a cast drops nothing."""
    if pa.types.is_struct(source):
        if not pa.types.is_struct(target):
            return False
        names = {f.name: f.type for f in target}
        return all(f.name in names and _fields_fit(f.type, names[f.name]) for f in source)
    if pa.types.is_list(source) or pa.types.is_large_list(source):
        return (pa.types.is_list(target) or pa.types.is_large_list(target)) and _fields_fit(
            source.value_type, target.value_type
        )
    if pa.types.is_map(source):
        return pa.types.is_map(target) and _fields_fit(source.item_type, target.item_type)
    # A double into a float: Arrow's cast rounds, so such values go one by one (`_coerce`).
    return not _is_nested(target) and not (pa.types.is_float32(target) and pa.types.is_float64(source))


def cast_array(arr: pa.Array, target: pa.DataType, rules: TextRules = DEFAULT_RULES) -> tuple[pa.Array, list[int]]:
    """`arr` cast to `target`, and the indices of the values that could not be cast (NULL in the result).

    Text goes through `text_types.cast_text` (exact: `01234` is not the integer 1234, `1e400` is not a
    double). Otherwise the fast path is one vectorised cast; only when it fails are values checked
    individually. Nested and floating-point values cast to string become their JSON text (not a failure).
    """
    source = arr.type
    if source.equals(target):
        return arr, []
    if pa.types.is_dictionary(source):
        return cast_array(arr.dictionary_decode(), target, rules)
    if pa.types.is_null(source) or arr.null_count == len(arr):
        return pa.nulls(len(arr), target), []
    if _is_stringlike(source) and not _is_nested(target) and not _is_stringlike(target):
        return cast_text(arr, target, rules)
    if pa.types.is_string(target) and (_is_nested(source) or pa.types.is_floating(source)):
        # JSON text, as the Python path writes it (Arrow's float formatting differs: 100.0 -> "100").
        texts = [None if v is None else json_text(v) for v in arr.to_pylist()]
        return pa.array(texts, pa.string()), []
    if _is_nested(source) or _is_nested(target):
        if _fields_fit(source, target):
            try:
                return pc.cast(arr, target), []
            except pa.ArrowException:
                pass
        return _coerce_array(arr.to_pylist(), target)
    if pa.types.is_float32(target) and pa.types.is_float64(source):
        return narrow_floats(arr, target)  # Arrow rounds a double into a float32 without a word
    if pa.types.is_time(source) and pa.types.is_string(target):
        micros = pc.cast(arr, pa.time64("us"), safe=False)  # nanoseconds cut, as timestamps are
        return pc.cast(micros, target), []  # `HH:MM:SS.ffffff` whatever the unit
    try:
        return _cast_primitive(arr, target), []
    except pa.ArrowNotImplementedError:
        # No cast exists between the types: every non-null value is rescued.
        valid = pc.indices_nonzero(arr.is_valid()).to_pylist()
        return pa.nulls(len(arr), target), valid
    except pa.ArrowException:
        pass
    failed: list[int] = []
    _find_failing(arr, target, 0, failed)
    keep = [True] * len(arr)
    for i in failed:
        keep[i] = False
    candidates = pc.if_else(pa.array(keep), arr, pa.scalar(None, arr.type))
    return _cast_primitive(candidates, target), failed


# ---------------------------------------------------------------------------------------------------------------------
# Python values (the JSON fallback path) to Arrow


class _NoFit(Exception):
    """A Python value that does not fit an Arrow type without loss."""


def _int_bounds(t: pa.DataType) -> tuple[int, int]:
    bits = t.bit_width
    if pa.types.is_unsigned_integer(t):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _coerce_text(value: str, t: pa.DataType, rules: TextRules = DEFAULT_RULES) -> Any:
    """Text into a temporal/decimal/binary type, with the same parser as the Arrow paths."""
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return value.encode("utf-8")
    result, failed = cast_text(pa.array([value], pa.string()), t, rules)
    if failed:
        raise _NoFit
    return result[0].as_py()


def _coerce(value: Any, t: pa.DataType) -> Any:
    """`value` as the Python value Arrow stores for `t`, or `_NoFit`. Never truncates or rounds."""
    if value is None:
        return None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return value if isinstance(value, str) else json_text_as_written(value)
    if pa.types.is_boolean(t):
        if isinstance(value, bool):
            return value
        raise _NoFit
    if pa.types.is_integer(t):
        if isinstance(value, bool):
            raise _NoFit
        if isinstance(value, float):
            if not value.is_integer() or abs(value) >= 2**53:
                raise _NoFit  # beyond 2**53 a double is not the integer its text wrote
            value = int(value)
        if isinstance(value, int):
            low, high = _int_bounds(t)
            if low <= value <= high:
                return value
        raise _NoFit
    if pa.types.is_floating(t):
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                as_float = float(value)
            except OverflowError as exc:
                raise _NoFit from exc
            if isinstance(value, int) and as_float != value:
                raise _NoFit  # an integer beyond 2**53 that a double would round
            if pa.types.is_float32(t) and not float32_holds(as_float):
                raise _NoFit  # a float would round it (16777217) or overflow
            return as_float
        raise _NoFit
    if pa.types.is_null(t):
        raise _NoFit
    if pa.types.is_struct(t):
        if not isinstance(value, dict):
            raise _NoFit
        fields = {f.name: f.type for f in t}
        if any(k not in fields and v is not None for k, v in value.items()):
            raise _NoFit  # a member the struct has no field for would be dropped
        return {k: _coerce(v, fields[k]) for k, v in value.items() if k in fields}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if not isinstance(value, list):
            raise _NoFit
        return [_coerce(v, t.value_type) for v in value]
    if pa.types.is_map(t):
        items = value.items() if isinstance(value, dict) else value
        try:
            return [(_coerce(k, t.key_type), _coerce(v, t.item_type)) for k, v in items]
        except (TypeError, ValueError) as exc:
            raise _NoFit from exc
    if pa.types.is_decimal(t) and isinstance(value, int | float) and not isinstance(value, bool):
        return _coerce_text(repr(value), t)
    if isinstance(value, JsonNumber):
        if pa.types.is_decimal(t):
            return _coerce_text(value.text, t)
        raise _NoFit
    if isinstance(value, str):
        return _coerce_text(value, t)
    if isinstance(value, datetime | date | Decimal | bytes):
        try:
            return _cast_primitive(pa.array([value]), t)[0].as_py()
        except pa.ArrowException as exc:
            raise _NoFit from exc
    raise _NoFit


def _coerce_array(values: list[Any], t: pa.DataType) -> tuple[pa.Array, list[int]]:
    out: list[Any] = []
    failed: list[int] = []
    for i, value in enumerate(values):
        try:
            out.append(_coerce(value, t))
        except _NoFit:
            out.append(None)
            failed.append(i)
    return pa.array(out, type=t), failed


def column_from_python(
    values: list[Any], t: pa.DataType, rules: TextRules = DEFAULT_RULES
) -> tuple[pa.Array, list[int]]:
    """Parsed JSON values of one column as an Arrow array of type `t`, and the indices that did not fit."""
    if pa.types.is_string(t):
        written = [v if v is None or isinstance(v, str) else json_text_as_written(v) for v in values]
        return pa.array(written, pa.string()), []
    if pa.types.is_temporal(t) or pa.types.is_decimal(t):
        # Text goes through one vectorised (Arrow) parse; JSON numbers only fit decimals.
        texts: list[str | None] = []
        failed: list[int] = []
        for i, v in enumerate(values):
            if v is None or isinstance(v, str):
                texts.append(v)
            elif pa.types.is_decimal(t) and isinstance(v, int | float) and not isinstance(v, bool):
                texts.append(repr(v))
            elif pa.types.is_decimal(t) and isinstance(v, JsonNumber):
                texts.append(v.text)
            else:
                texts.append(None)
                failed.append(i)
        arr, more = cast_array(pa.array(texts, pa.string()), t, rules)
        return arr, sorted(failed + more)
    return _coerce_array(values, t)


# ---------------------------------------------------------------------------------------------------------------------
# Conforming batches to a schema


def merge_rescued(existing: str | None, new: dict[str, Any], from_loads: bool = False) -> str:
    """One rescued JSON object from an existing `_rescued_data` value and newly rescued values (`from_loads`: values
    parsed by `loads`, whose numbers are written as they were).

    Existing keys win; a new value whose key is taken is kept under `<key>_2`, `<key>_3`, ...
    An existing value that is not a JSON object is kept under the key `_rescued_data`.
    """
    if existing is None:
        return json_text_as_written(new) if from_loads else json_text(new)
    try:
        parsed = loads(existing)  # numbers as written (json.loads would make 1e400 inf, written as Infinity)
    except ValueError:
        parsed = None
    merged: dict[str, Any] = parsed if isinstance(parsed, dict) else {RESCUED: existing}
    for key, value in new.items():
        name, n = key, 1
        while name in merged:
            n += 1
            name = f"{key}_{n}"
        merged[name] = value
    return json_text_as_written(merged)


def _to_batch(data: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    if isinstance(data, pa.RecordBatch):
        return data
    if data.num_rows == 0:
        return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in data.schema], schema=data.schema)
    batches = data.combine_chunks().to_batches()
    return batches[0] if len(batches) == 1 else pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def conform_batch(
    batch: pa.RecordBatch | pa.Table,
    schema: pa.Schema,
    rules: TextRules = DEFAULT_RULES,
    rescued_from: set[int] | None = None,
) -> pa.RecordBatch:
    """`batch` with exactly `schema`'s columns (in order, all nullable) plus `_rescued_data`.

    Missing columns are NULL; extra columns and values that do not fit their column's type move into
    `_rescued_data` (merged with any `_rescued_data` the input already has). See the module docstring.
    `rescued_from`, when given, receives the indices of the input's columns whose values were rescued.
    """
    data = _to_batch(batch)
    target = output_schema(schema)
    n = data.num_rows
    wanted = {f.name: f.type for f in target if f.name != RESCUED}
    columns: dict[str, pa.Array] = {}
    rescued: dict[int, dict[str, Any]] = {}
    existing: pa.Array | None = None
    for index, (name, column) in enumerate(zip(data.schema.names, data.columns, strict=True)):
        if name == RESCUED:
            existing = column
            continue
        stored = column_name(name)
        if stored in columns and columns[stored].null_count < n:
            # A duplicate column name: the first one is the column, later ones are extra data.
            bad = pc.indices_nonzero(column.is_valid()).to_pylist()
        elif stored in wanted:
            # (An all-NULL column under the stored name -- a parser's placeholder -- gives way to the data.)
            columns[stored], bad = cast_array(column, wanted[stored], rules)
        else:
            bad = pc.indices_nonzero(column.is_valid()).to_pylist()
        if bad:
            if rescued_from is not None:
                rescued_from.add(index)
            for row, value in zip(bad, column.take(bad).to_pylist(), strict=True):
                rescued.setdefault(row, {})[name] = value
    arrays = [columns[name] if name in columns else pa.nulls(n, t) for name, t in wanted.items()]
    arrays.append(_rescued_column(n, existing, rescued))
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _rescued_column(n: int, existing: pa.Array | None, rescued: dict[int, dict[str, Any]]) -> pa.Array:
    if existing is not None and not pa.types.is_string(existing.type):
        if _is_stringlike(existing.type):
            existing = existing.cast(pa.string())
        else:
            existing = pa.array([None if v is None else json_text(v) for v in existing.to_pylist()], pa.string())
    if not rescued:
        return existing if existing is not None else pa.nulls(n, pa.string())
    values: list[str | None] = existing.to_pylist() if existing is not None else [None] * n
    for row, new in rescued.items():
        values[row] = merge_rescued(values[row], new)
    return pa.array(values, pa.string())


def malformed_batch(texts: list[str], schema: pa.Schema) -> pa.RecordBatch:
    """Rows for unparseable lines: every data column NULL, `_rescued_data` = {"_malformed": text}."""
    target = output_schema(schema)
    n = len(texts)
    arrays = [pa.nulls(n, f.type) for f in target if f.name != RESCUED]
    arrays.append(pa.array([json_text({MALFORMED: t}) for t in texts], pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def drop_rescued_keys(batch: pa.RecordBatch, keys: frozenset[str]) -> pa.RecordBatch:
    """Remove ignored columns from `_rescued_data` (the user chose to drop them, not to keep them)."""
    index = batch.schema.get_field_index(RESCUED)
    column = batch.column(index)
    if column.null_count == len(column):
        return batch
    values: list[str | None] = []
    for text in column.to_pylist():
        if text is None:
            values.append(None)
            continue
        data = loads(text)
        kept = {k: v for k, v in data.items() if k not in keys} if isinstance(data, dict) else data
        values.append(json_text_as_written(kept) if kept else None)
    return batch.set_column(index, RESCUED, pa.array(values, pa.string()))


FILE_PATH_KEY = "_file_path"


def tag_rescued(batch: pa.RecordBatch, path: str) -> pa.RecordBatch:
    """Every non-null `_rescued_data` object gains `"_file_path": path`, as Auto Loader writes it."""
    index = batch.schema.get_field_index(RESCUED)
    column = batch.column(index)
    if index == -1 or column.null_count == len(column):
        return batch
    addition = "," + json_text(FILE_PATH_KEY) + ":" + json_text(path) + "}"
    tagged = pc.replace_substring_regex(
        column, pattern=r"([^{\s])\s*}$", replacement="\\1" + addition.replace("\\", "\\\\")
    )
    return batch.set_column(index, RESCUED, tagged)

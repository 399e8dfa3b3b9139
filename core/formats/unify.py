"""Type normalisation and unification: one stable Arrow type per column across files and blocks.

Readers produce whatever Arrow infers (int64 in one file, double in the next, timestamp[s] from
JSON, large_string from Parquet...). Tables need one type per column, so types are first
normalised (`normalize_type`) and then widened pairwise (`unify_types`). Anything that cannot be
widened without losing values becomes a string, which every value can be represented as.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
_MAX_DECIMAL_PRECISION = 38


def normalize_type(t: pa.DataType) -> pa.DataType:
    """The stable form of a type: string not large_string, timestamp[us, tz=UTC] for every timestamp
    (naive timestamps are taken as UTC), date32, list not large_list, dictionary -> its value type.

    The null type stays null: it means "no value seen yet" and is resolved by unification
    (or turned into string by the caller when nothing else is ever seen).
    """
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_timestamp(t):
        return TIMESTAMP
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_dictionary(t):
        return normalize_type(t.value_type)
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_unsigned_integer(t):
        # Delta has no unsigned types: widen to the next signed type that holds every value.
        width = {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}
        return width.get(t.bit_width, pa.int64())
    if pa.types.is_decimal(t) and t.precision > _MAX_DECIMAL_PRECISION:
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, normalize_type(f.type)) for f in t])
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    ):
        return pa.list_(normalize_type(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(normalize_type(t.key_type), normalize_type(t.item_type))
    return t


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    """Every field normalised and nullable (files never promise non-null across a whole table)."""
    return pa.schema([pa.field(f.name, normalize_type(f.type)) for f in schema])


def _unify_decimals(a: pa.Decimal128Type, b: pa.Decimal128Type) -> pa.DataType:
    scale = max(a.scale, b.scale)
    integer_digits = max(a.precision - a.scale, b.precision - b.scale)
    if integer_digits + scale > _MAX_DECIMAL_PRECISION:
        return pa.float64()
    return pa.decimal128(integer_digits + scale, scale)


def _integer_as_decimal(t: pa.DataType) -> pa.Decimal128Type:
    digits = {8: 3, 16: 5, 32: 10, 64: 19}[t.bit_width]
    return pa.decimal128(digits, 0)


def unify_types(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type both `a` and `b` values fit into without loss (string when none)."""
    a, b = normalize_type(a), normalize_type(b)
    if a.equals(b):
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return a if a.bit_width >= b.bit_width else b
    if pa.types.is_floating(a) and pa.types.is_floating(b):
        return pa.float64()
    if (pa.types.is_integer(a) and pa.types.is_floating(b)) or (pa.types.is_floating(a) and pa.types.is_integer(b)):
        return pa.float64()
    if pa.types.is_decimal(a) and pa.types.is_decimal(b):
        return _unify_decimals(a, b)
    if pa.types.is_decimal(a) and pa.types.is_integer(b):
        return _unify_decimals(a, _integer_as_decimal(b))
    if pa.types.is_integer(a) and pa.types.is_decimal(b):
        return _unify_decimals(_integer_as_decimal(a), b)
    if (pa.types.is_decimal(a) and pa.types.is_floating(b)) or (pa.types.is_floating(a) and pa.types.is_decimal(b)):
        return pa.float64()
    if (pa.types.is_date(a) or pa.types.is_timestamp(a)) and (pa.types.is_date(b) or pa.types.is_timestamp(b)):
        return TIMESTAMP
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        fields: dict[str, pa.DataType] = {f.name: f.type for f in a}
        for f in b:
            fields[f.name] = unify_types(fields[f.name], f.type) if f.name in fields else f.type
        return pa.struct([pa.field(name, t) for name, t in fields.items()])
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(unify_types(a.value_type, b.value_type))
    if pa.types.is_map(a) and pa.types.is_map(b):
        return pa.map_(unify_types(a.key_type, b.key_type), unify_types(a.item_type, b.item_type))
    return pa.string()


def unify_schemas(schemas: Iterable[pa.Schema]) -> pa.Schema:
    """The union of the schemas' fields in first-seen order, types unified, every field nullable."""
    fields: dict[str, pa.DataType] = {}
    for schema in schemas:
        for f in schema:
            fields[f.name] = unify_types(fields[f.name], f.type) if f.name in fields else normalize_type(f.type)
    return pa.schema([pa.field(name, t) for name, t in fields.items()])


def nulls_to_string(schema: pa.Schema) -> pa.Schema:
    """Null-typed columns (never saw a value) as string, recursively, so the table gets a real type."""

    def fix(t: pa.DataType) -> pa.DataType:
        if pa.types.is_null(t):
            return pa.string()
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, fix(f.type)) for f in t])
        if pa.types.is_list(t):
            return pa.list_(fix(t.value_type))
        if pa.types.is_map(t):
            return pa.map_(fix(t.key_type), fix(t.item_type))
        return t

    return pa.schema([pa.field(f.name, fix(f.type), nullable=f.nullable) for f in schema])

"""The type lattice (docs/TYPES.md): one stable Arrow type per column across files, blocks and runs.

Readers produce whatever the file holds (int64 in one file, double in the next, large_string from
Parquet...). Tables need one type per column, so types are first normalised (`normalize_type`) and
then joined pairwise (`unify_types`): integers widen, decimals grow their precision and scale without
loss, integers and decimals meet doubles at double, dates meet timestamps at timestamp, structs join
field by field. Anything else meets at string, which every value can be written as.

The same join decides schema changes: incoming values of a type the column already holds
(`holds`) are no change at all, and a join that is not string is a safe widening.

Column names are matched without regard to case, as Delta and Spark do: the first spelling seen is
the column, and values under another spelling go to `_rescued_data` (Auto Loader's behaviour).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import pyarrow as pa

from core.formats.names import stored_field

TIMESTAMP = pa.timestamp("us", tz="UTC")
_MAX_DECIMAL_PRECISION = 38
_EXACT_DOUBLE_DIGITS = 15  # every decimal of up to 15 digits is exact as a double


@functools.lru_cache(maxsize=4096)
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
    if pa.types.is_time(t):
        return pa.string()  # Delta has no time type: `HH:MM:SS.ffffff`, as Avro's times
    if pa.types.is_struct(t):
        return pa.struct(unify_fields([list(t)]))
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


CASE_VARIANTS = b"autoloader.case_variants"
"""Schema metadata set by `normalize_schema` when it left out spellings: them, comma-separated (an engine that
cannot rescue such a key's values asks)."""


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    """Every field normalised and nullable (files never promise non-null across a whole table); of names that
    differ only by case, the first (the others are listed in the metadata, `CASE_VARIANTS`)."""
    normalized = pa.schema(unify_fields([schema], top_level=True))
    kept = {name.lower(): name for name in normalized.names}
    dropped = [f.name for f in schema if f.name.lower() in kept and kept[f.name.lower()] != f.name]
    if dropped:
        return normalized.with_metadata({CASE_VARIANTS: ",".join(dropped).encode()})
    return normalized


def _unify_decimals(a: pa.Decimal128Type, b: pa.Decimal128Type) -> pa.DataType:
    scale = max(a.scale, b.scale)
    integer_digits = max(a.precision - a.scale, b.precision - b.scale)
    if integer_digits + scale > _MAX_DECIMAL_PRECISION:
        return pa.float64()
    return pa.decimal128(integer_digits + scale, scale)


def _integer_as_decimal(t: pa.DataType) -> pa.Decimal128Type:
    digits = {8: 3, 16: 5, 32: 10, 64: 19}[t.bit_width]
    return pa.decimal128(digits, 0)


@functools.lru_cache(maxsize=4096)
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
        return pa.struct(unify_fields([list(a), list(b)]))
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(unify_types(a.value_type, b.value_type))
    if pa.types.is_map(a) and pa.types.is_map(b):
        return pa.map_(unify_types(a.key_type, b.key_type), unify_types(a.item_type, b.item_type))
    return pa.string()


def holds(column: pa.DataType, incoming: pa.DataType) -> bool:
    """Whether every value of type `incoming` fits a column of type `column` exactly (no schema change).

    Whole numbers in a double or decimal column, dates in a timestamp column, a struct with fewer fields:
    all held (an integer too large for the decimal's precision is rescued when read). A null type (never seen
    a value) is held by every column.
    """
    column, incoming = normalize_type(column), normalize_type(incoming)
    if pa.types.is_decimal(column) and pa.types.is_integer(incoming):
        return True  # inferred integers say nothing of their size: each value is checked when read, misfits rescued
    return unify_types(column, incoming).equals(column)


def widening(column: pa.DataType, incoming: pa.DataType) -> pa.DataType | None:
    """The wider type the column needs for `incoming` values, when the lattice has one short of string and the
    stored values survive it, at every depth of a list, map or struct (`_survives`): a decimal of more than 15 digits
    never becomes a double (bigint -> double is checked against the stored values when the table is rewritten)."""
    if holds(column, incoming):
        return None
    joined = unify_types(column, incoming)
    return joined if _survives(normalize_type(column), joined) else None


def _survives(column: pa.DataType, joined: pa.DataType) -> bool:
    """Whether values stored as `column` keep their meaning as `joined`: no value, nor a list's element, a map's
    value or a struct's field, turned into text (a list of structs joined with a list of strings is a list of
    strings: the stored structs would become their JSON), and no decimal of more than 15 digits into a double."""
    if column.equals(joined) or pa.types.is_null(column):
        return True
    if pa.types.is_struct(column) and pa.types.is_struct(joined):
        theirs = {f.name: f.type for f in joined}
        return all(_survives(normalize_type(f.type), theirs[f.name]) for f in column if f.name in theirs)
    if pa.types.is_list(column) and pa.types.is_list(joined):
        return _survives(column.value_type, joined.value_type)
    if pa.types.is_map(column) and pa.types.is_map(joined):
        return _survives(column.key_type, joined.key_type) and _survives(column.item_type, joined.item_type)
    if pa.types.is_string(joined):
        return False
    rounded = pa.types.is_floating(joined) and pa.types.is_decimal(column)
    return not (rounded and column.precision > _EXACT_DOUBLE_DIGITS)


def unify_fields(groups: Iterable[Iterable[pa.Field]], top_level: bool = False) -> list[pa.Field]:
    """Fields joined by name in first-seen order, case-insensitively: the first spelling is kept, and a later
    spelling of the same name is left out (its values are rescued when the data is conformed). Table columns
    (`top_level`) take their stored names (core/formats/names.py)."""
    fields: dict[str, pa.Field] = {}
    for group in groups:
        for f in group:
            if top_level:
                f = stored_field(f)
            key = f.name.lower()
            seen = fields.get(key)
            if seen is None:
                fields[key] = pa.field(f.name, normalize_type(f.type), metadata=f.metadata)
            elif seen.name == f.name and not seen.type.equals(f.type):
                fields[key] = pa.field(f.name, unify_types(seen.type, f.type), metadata=seen.metadata)
    return list(fields.values())


def unify_schemas(schemas: Iterable[pa.Schema]) -> pa.Schema:
    """The union of the schemas' fields in first-seen order, types unified, every field nullable."""
    return pa.schema(unify_fields(dict.fromkeys(schemas), top_level=True))  # files of one source mostly share a schema


def nulls_to_string(schema: pa.Schema) -> pa.Schema:
    """Null-typed columns (never saw a value) and empty structs (`{}`, which Parquet cannot store) as string,
    recursively, so the table gets a real type; `{}` is then kept as its JSON text."""

    def fix(t: pa.DataType) -> pa.DataType:
        if pa.types.is_null(t) or (pa.types.is_struct(t) and t.num_fields == 0):
            return pa.string()
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, fix(f.type)) for f in t])
        if pa.types.is_list(t):
            return pa.list_(fix(t.value_type))
        if pa.types.is_map(t):
            return pa.map_(fix(t.key_type), fix(t.item_type))
        return t

    return pa.schema([pa.field(f.name, fix(f.type), nullable=f.nullable, metadata=f.metadata) for f in schema])


def _is_any_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def nulls_to_table_types(schema: pa.Schema, table: pa.Schema | None) -> pa.Schema:
    """Null-typed columns (no value in the files) take the type of the table's column of that name, nested fields
    included; the rest become string (`nulls_to_string`). An empty column of a day's file is no change to the table:
    its rows load as NULL in the column's own type."""
    if table is None:
        return nulls_to_string(schema)

    def resolve(t: pa.DataType, existing: pa.DataType | None) -> pa.DataType:
        if existing is None:
            return nulls_to_string(pa.schema([pa.field("_", t)])).field(0).type
        if pa.types.is_null(t):
            return existing
        if pa.types.is_struct(t) and pa.types.is_struct(existing):
            inner = {f.name: f.type for f in existing}
            return pa.struct([pa.field(f.name, resolve(f.type, inner.get(f.name)), f.nullable) for f in t])
        if _is_any_list(t) and _is_any_list(existing):  # a file of empty lists: list<null> is the column's list
            return pa.list_(t.value_field.with_type(resolve(t.value_type, existing.value_type)))
        if pa.types.is_map(t) and pa.types.is_map(existing):
            key, item = resolve(t.key_type, existing.key_type), resolve(t.item_type, existing.item_type)
            return pa.map_(t.key_field.with_type(key), t.item_field.with_type(item), t.keys_sorted)
        return resolve(t, None)

    columns = {f.name: f.type for f in table}
    return pa.schema(
        [pa.field(f.name, resolve(f.type, columns.get(f.name)), f.nullable, metadata=f.metadata) for f in schema]
    )

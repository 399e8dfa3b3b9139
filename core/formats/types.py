"""SQL-ish type names <-> Arrow types, for manual schemas, type hints, the UI and the API.

Names follow Spark SQL (`bigint`, `double`, `struct<a:bigint,b:string>`, `array<string>`), so
`parse_type(type_name(t))` round-trips every type the readers produce.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from core.errors import ConfigError
from core.formats.names import column_name, source_name

TIMESTAMP = pa.timestamp("us", tz="UTC")

_SIMPLE: dict[str, pa.DataType] = {
    "string": pa.string(),
    "varchar": pa.string(),
    "text": pa.string(),
    "bigint": pa.int64(),
    "long": pa.int64(),
    "int64": pa.int64(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "int32": pa.int32(),
    "smallint": pa.int16(),
    "short": pa.int16(),
    "tinyint": pa.int8(),
    "byte": pa.int8(),
    "double": pa.float64(),
    "float64": pa.float64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "float32": pa.float32(),
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": TIMESTAMP,
    "binary": pa.binary(),
    "void": pa.null(),
    "null": pa.null(),
}

VALID_TYPES = (
    "string, bigint (long), int (integer), smallint, tinyint, double, float (real), boolean, date, timestamp, "
    "decimal(p,s), binary, array<type>, struct<name:type,...>, map<key,value>"
)

_DECIMAL = re.compile(r"^decimal\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unknown(name: str) -> ConfigError:
    return ConfigError(
        f"unknown column type '{name}'",
        f"Use one of: {VALID_TYPES}.",
        field="format.schema",
    )


def _split_top(body: str, sep: str = ",") -> list[str]:
    """Split `body` on `sep` outside <...>, (...) and backticks."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(body):
        if ch == "`":
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [p.strip() for p in parts]


def _struct_field(spec: str, original: str) -> pa.Field:
    spec = spec.strip()
    if spec.startswith("`"):
        end = spec.find("`", 1)
        while end != -1 and spec.startswith("``", end):  # a doubled backtick is one backtick of the name
            end = spec.find("`", end + 2)
        if end == -1:
            raise _unknown(original)
        name, rest = spec[1:end].replace("``", "`"), spec[end + 1 :].lstrip()
        if not rest.startswith(":"):
            raise _unknown(original)
        return pa.field(name, _parse(rest[1:]))
    name, colon, rest = spec.partition(":")
    if not colon or not name.strip():
        raise _unknown(original)
    return pa.field(name.strip(), _parse(rest))


def parse_type(name: str) -> pa.DataType:
    """The Arrow type for a SQL-ish type name (case-insensitive). Unknown names raise ConfigError."""
    try:
        return _parse(name)
    except ConfigError as exc:
        if exc.message.endswith(f"'{name.strip()}'"):
            raise
        raise ConfigError(f"{exc.message} in '{name.strip()}'", exc.action, field=exc.field) from None


def _parse(name: str) -> pa.DataType:
    text = name.strip()
    lower = text.lower()
    simple = _SIMPLE.get(lower)
    if simple is not None:
        return simple
    decimal = _DECIMAL.match(lower)
    if decimal:
        precision = int(decimal.group(1) or 10)
        scale = int(decimal.group(2) or 0)
        if not 1 <= precision <= 38 or scale > precision:
            raise ConfigError(
                f"invalid decimal type '{name}'",
                "Use decimal(p,s) with 1 <= p <= 38 and 0 <= s <= p, e.g. decimal(10,2) (Delta's limits).",
                field="format.schema",
            )
        return pa.decimal128(precision, scale)
    if lower.endswith(">") and "<" in lower:
        kind = lower[: lower.index("<")].strip()
        body = text[text.index("<") + 1 : -1]
        if kind == "array":
            return pa.list_(_parse(body))
        if kind == "struct":
            if not body.strip():
                return pa.struct([])
            return pa.struct([_struct_field(part, name) for part in _split_top(body)])
        if kind == "map":
            parts = _split_top(body)
            if len(parts) == 2:
                return pa.map_(_parse(parts[0]), _parse(parts[1]))
    raise _unknown(name)


def _quote(name: str) -> str:
    return name if _IDENT.match(name) else "`" + name.replace("`", "``") + "`"


def type_name(t: pa.DataType) -> str:
    """The SQL-ish name of an Arrow type (the reverse of `parse_type`)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        if pa.types.is_int8(t):
            return "tinyint"
        if pa.types.is_int16(t) or pa.types.is_uint8(t):
            return "smallint"
        if pa.types.is_int32(t) or pa.types.is_uint16(t):
            return "int"
        return "bigint"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "float"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_null(t):
        return "void"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{_quote(f.name)}:{type_name(f.type)}" for f in t) + ">"
    if pa.types.is_map(t):
        return f"map<{type_name(t.key_type)},{type_name(t.item_type)}>"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return f"array<{type_name(t.value_type)}>"
    if pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return f"array<{type_name(t.value_type)}>"
    if pa.types.is_dictionary(t):
        return type_name(t.value_type)
    return str(t)


def schema_from_json(columns: list[dict[str, Any]]) -> pa.Schema:
    """An Arrow schema from `[{"name": ..., "type": ..., "nullable": ...}, ...]` (nullable defaults to true)."""
    fields: list[pa.Field] = []
    seen: set[str] = set()
    for i, column in enumerate(columns):
        name = column.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"schema column {i + 1} has no name",
                'Give every column a "name" and a "type".',
                field="format.schema.schema_json",
            )
        if name in seen:
            raise ConfigError(
                f"schema column '{name}' appears twice",
                "Give every column a unique name.",
                field="format.schema.schema_json",
            )
        seen.add(name)
        type_text = column.get("type")
        if not isinstance(type_text, str):
            raise ConfigError(
                f"schema column '{name}' has no type",
                f"Set its type to one of: {VALID_TYPES}.",
                field="format.schema.schema_json",
            )
        fields.append(pa.field(name, parse_type(type_text), nullable=bool(column.get("nullable", True))))
    return pa.schema(fields)


def schema_to_json(schema: pa.Schema) -> list[dict[str, Any]]:
    """`[{"name", "type", "nullable"}, ...]` for a schema (the form shown in the UI and the API); a column stored
    under another name than the files' also has `"source_name"`."""
    columns: list[dict[str, Any]] = []
    for f in schema:
        column: dict[str, Any] = {"name": f.name, "type": type_name(f.type), "nullable": f.nullable}
        if (raw := source_name(f)) is not None:
            column["source_name"] = raw
        columns.append(column)
    return columns


def apply_hints(schema: pa.Schema, hints: dict[str, str]) -> pa.Schema:
    """`schema` with the hinted columns' types replaced (`{column: type name}`). A dotted name (`user.age`)
    hints a nested struct field when no top-level column has that name. Hinted columns the schema lacks
    are appended, since the user asked for them."""
    types = {name: parse_type(text) for name, text in hints.items()}
    for name in [n for n in types if n not in schema.names and column_name(n) in schema.names]:
        types[column_name(name)] = types.pop(name)  # a hint may use the files' name of a renamed column
    fields = [pa.field(f.name, types.pop(f.name, f.type), nullable=f.nullable, metadata=f.metadata) for f in schema]
    for name in [n for n in types if "." in n]:
        head, _, rest = name.partition(".")
        index = next((i for i, f in enumerate(fields) if f.name == head and pa.types.is_struct(f.type)), None)
        if index is not None:
            hinted = _hint_nested(fields[index].type, rest, types[name])
            if hinted is not None:
                fields[index] = pa.field(head, hinted, nullable=fields[index].nullable)
                del types[name]
    fields.extend(pa.field(name, t) for name, t in types.items())
    return pa.schema(fields)


def _hint_nested(struct: pa.StructType, path: str, hinted: pa.DataType) -> pa.DataType | None:
    """`struct` with the field at the dotted `path` retyped (added when the last step is missing); None when
    a step on the way is not a struct."""
    head, dot, rest = path.partition(".")
    children = list(struct)
    for i, child in enumerate(children):
        if child.name != head:
            continue
        if not dot:
            children[i] = pa.field(head, hinted)
            return pa.struct(children)
        if not pa.types.is_struct(child.type):
            return None
        inner = _hint_nested(child.type, rest, hinted)
        if inner is None:
            return None
        children[i] = pa.field(head, inner)
        return pa.struct(children)
    if dot:
        return None
    return pa.struct([*children, pa.field(head, hinted)])

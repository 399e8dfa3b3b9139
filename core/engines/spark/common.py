"""Small helpers shared by the parts of the Spark engine: SQL quoting, Arrow ↔ Spark schemas, ledger paths."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def column_path(name: str, top_level: list[str]) -> str:
    """A column as SQL names it: quoted whole when the table has a top-level column of that name (regardless of
    case), else as a nested path (`meta.k`) with each part quoted."""
    if "." not in name or name.lower() in {column.lower() for column in top_level}:
        return quote(name)
    return ".".join(quote(part) for part in name.split("."))


def ddl_type(data_type: Any) -> str:
    """A Spark type as SQL DDL text, nested field names quoted: `simpleString()` leaves them bare, so a new struct
    column with a field named `content-type` or `x y` failed ADD COLUMNS with a syntax error."""
    name = type(data_type).__name__
    if name == "StructType":
        return "struct<" + ",".join(f"{quote(f.name)}:{ddl_type(f.dataType)}" for f in data_type.fields) + ">"
    if name == "ArrayType":
        return f"array<{ddl_type(data_type.elementType)}>"
    if name == "MapType":
        return f"map<{ddl_type(data_type.keyType)},{ddl_type(data_type.valueType)}>"
    return str(data_type.simpleString())


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def sql_value(value: object) -> str:
    """A Spark SQL literal (a dict as a struct, a list as an array); the column's type casts it, as UPDATE does."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "named_struct(" + ", ".join(f"{literal(k)}, {sql_value(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return "array(" + ", ".join(map(sql_value, value)) + ")"
    return literal(value)


ROW_FILE = "__al row file"
"""The file a row came from, carried in a MERGE batch without lineage columns only so that `latest_per_key` can
tell which file is the batch's latest; dropped before anything is written (DataFrame.drop ignores a missing
column, so dropping it is always safe). Its space keeps it apart from every source column: no stored top-level
name holds one (core/formats/names.py); a source column `__al_row_file` made the merge ambiguous."""
_GLOB_CHARACTERS = frozenset("\\[]{}*?")


def spark_path(path: str) -> str:
    """A ledger path as the cluster reads it: local paths as file: URIs, s3:// through the s3a connector, and the
    characters of Hadoop's glob patterns escaped. Spark reads every path it is given as a pattern: `data[12].json`
    read `data1.json` and `data2.json` instead of itself."""
    path = "".join("\\" + c if c in _GLOB_CHARACTERS else c for c in path)
    if path.startswith("/"):
        return "file://" + path
    if path.startswith("s3://"):
        return "s3a://" + path[len("s3://") :]
    return path


def to_arrow(fields: list[Any]) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    return to_arrow_schema(StructType(fields), timezone="UTC")


def from_arrow(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema, prefer_timestamp_ntz=False)

"""Small helpers shared by the parts of the Spark engine: SQL quoting, Arrow ↔ Spark schemas, ledger paths."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def sql_value(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return literal(value)


ROW_FILE = "__al_row_file"
"""The file a row came from, carried in a MERGE batch without lineage columns only so that `latest_per_key` can
tell which file is the batch's latest; dropped before anything is written (DataFrame.drop ignores a missing
column, so dropping it is always safe)."""
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

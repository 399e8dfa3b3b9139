"""Hive-style partition folders (`year=2024/month=01/part-0.json`) read as columns, as Auto Loader does by default.

Pure functions over relative paths and Arrow values; the engines call them (core/engines/embedded.py).

* Only folder segments of the form `key=value` count (never the file name); values are URL-decoded like Hive's
  escaped paths (`a%2Fb` is `a/b`); `__HIVE_DEFAULT_PARTITION__` and an empty value are NULL.
* `wanted` is `source.partition_columns`: None takes every such folder (Auto Loader's default inference),
  `[]` none, a list only those names (a file whose path lacks one gets NULL in it).
* Types come from the values of all the files seen, through the same text rules as CSV fields
  (core/formats/text_types.py): `2024` is a bigint, `01` stays text (leading zeros are kept), as a column of
  every value NULL is a string.
* A file whose data has a column of the same name: the folder value wins, and the column keeps its place in the
  data schema with the partition's type. That is Spark's rule for file sources (HadoopFsRelation: "when data and
  partition schemas have overlapping columns, the output schema respects the order of the data schema for the
  overlapping columns, and it respects the data types of the partition schema"; the values are the partition's).
  Spark drops the file's own value; here it is not read into the column, so it lands in `_rescued_data`
  like any field the table does not take (nothing is lost silently).
"""

from __future__ import annotations

from urllib.parse import unquote

import pyarrow as pa

from core.formats.conform import json_text, json_text_as_written, loads
from core.formats.text_types import cast_text, infer_text_type

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def relative_path(root: str, path: str) -> str:
    """`path` (absolute, or a URI as listings give it) relative to the source root, with `/` separators."""
    base = root.rstrip("/") + "/"
    if path.startswith(base):
        return path[len(base) :]
    return path.lstrip("/")


def partition_values(relative: str, wanted: list[str] | None) -> dict[str, str | None]:
    """The `key=value` folders of a relative path, decoded (NULL for Hive's default partition or no value).

    The innermost folder wins when a key repeats (`a=1/a=2/f.json` gives a=2), as a path lookup would."""
    if wanted is not None and not wanted:
        return {}
    found: dict[str, str | None] = {}
    for segment in relative.split("/")[:-1]:
        key, eq, raw = segment.partition("=")
        if not eq or not key:
            continue
        name = unquote(key)
        if wanted is not None and name not in wanted:
            continue
        value = unquote(raw)
        found[name] = None if value in ("", HIVE_NULL) else value
    if wanted is not None:  # every wanted column, NULL where the path has no such folder
        return {name: found.get(name) for name in wanted}
    return found


def partition_fields(paths: list[str], wanted: list[str] | None) -> list[pa.Field]:
    """The partition columns of these relative paths, typed over all their values (in first-seen order)."""
    per_path = [partition_values(p, wanted) for p in paths]
    names: list[str] = list(dict.fromkeys(wanted or []))
    for found in per_path:
        names.extend(n for n in found if n not in names)
    fields = []
    for name in names:
        inferred = infer_text_type(pa.array([found.get(name) for found in per_path], pa.string()))
        fields.append(pa.field(name, pa.string() if pa.types.is_null(inferred) else inferred))
    return fields


def with_partitions(data: pa.Schema, fields: list[pa.Field]) -> pa.Schema:
    """The data schema with the partition columns: an overlapping column keeps its place and takes the partition's
    type, the others follow the data columns (Spark's mergeDataAndPartitionSchema)."""
    by_name = {f.name: f for f in fields}
    merged = [by_name.get(f.name, f) for f in data]
    present = set(data.names)
    return pa.schema(merged + [f for f in fields if f.name not in present])


def partition_array(name: str, value: str | None, target: pa.DataType, rows: int) -> tuple[pa.Array, str | None]:
    """The column of one file's folder value, `rows` long, and the raw text when `target` cannot hold it exactly
    (the column is then NULL and the caller rescues the text)."""
    cast, failed = cast_text(pa.array([value], pa.string()), target)
    scalar = cast[0]
    return pa.repeat(scalar, rows) if rows else pa.array([], target), (value if failed else None)


def rescue_text(rescued: pa.Array, extra: dict[str, str]) -> pa.Array:
    """`_rescued_data` with `extra` keys merged into each row's JSON object (a row's own keys come first)."""
    if not extra:
        return rescued
    added = json_text(extra)
    out: list[str] = []
    for text in rescued.to_pylist():
        if text is None:
            out.append(added)
            continue
        try:
            current = loads(text)  # numbers as written (see conform.loads)
        except ValueError:
            current = None
        if isinstance(current, dict):
            out.append(json_text_as_written({**current, **{k: v for k, v in extra.items() if k not in current}}))
        else:  # the raw text of a malformed record stays as it is
            out.append(text)
    return pa.array(out, pa.string())


def fill_partitions(
    batch: pa.RecordBatch, values: dict[str, str | None], schema: pa.Schema, rescued_name: str
) -> pa.RecordBatch:
    """Set the partition columns of a batch (already of `schema`) to the file's folder values."""
    columns = list(batch.columns)
    unfit: dict[str, str] = {}
    for name, value in values.items():
        index = schema.get_field_index(name)
        if index < 0:
            continue
        column, raw = partition_array(name, value, schema.field(index).type, batch.num_rows)
        columns[index] = column
        if raw is not None:
            unfit[name] = raw
    if unfit:
        index = schema.get_field_index(rescued_name)
        if index >= 0:
            columns[index] = rescue_text(columns[index], unfit)
    return pa.RecordBatch.from_arrays(columns, schema=schema)

"""Column names every reader of the table accepts.

Delta (without column mapping) and Spark refuse column names holding any of ` ,;{}()\\n\\t=`, and a dot makes
a name Spark must quote everywhere. delta-rs writes such names, so the table would load and then fail in the
user's Spark job; and delta-rs 1.6 cannot read back the column-mapping tables it writes (measured: every value
NULL), so mapping is no way out. Top-level names are therefore stored with each such character as `_`; the
original is kept in the field's metadata (`autoloader.source_name`), shown by the schema views and named in the
run's notes. Nested struct fields keep their names (values are matched by them inside the struct).
"""

from __future__ import annotations

import functools

import pyarrow as pa

REFUSED = frozenset(" ,;{}()\n\t=.")
SOURCE_NAME = b"autoloader.source_name"


@functools.lru_cache(maxsize=65536)
def column_name(raw: str) -> str:
    """The stored name of a column named `raw` in the files."""
    if not any(ch in REFUSED for ch in raw):
        return raw or "_"
    return "".join("_" if ch in REFUSED else ch for ch in raw)


def stored_field(f: pa.Field) -> pa.Field:
    """`f` under its stored name, with the original recorded in its metadata when they differ."""
    name = column_name(f.name)
    if name == f.name:
        return f
    return pa.field(name, f.type, f.nullable, metadata={**(f.metadata or {}), SOURCE_NAME: f.name.encode()})


def source_name(f: pa.Field) -> str | None:
    """The name the files gave a renamed column, or None."""
    raw = (f.metadata or {}).get(SOURCE_NAME)
    return raw.decode() if raw is not None else None


def renamed_note(schema: pa.Schema) -> str | None:
    """The run's note on columns stored under another name, or None."""
    renamed = [(source_name(f), f.name) for f in schema if source_name(f) is not None]
    if not renamed:
        return None
    shown = ", ".join(f"'{raw}' as '{name}'" for raw, name in renamed[:5])
    more = f" and {len(renamed) - 5} more" if len(renamed) > 5 else ""
    columns = "column" if len(renamed) == 1 else "columns"
    return f"{columns} stored under names Spark and Delta readers accept: {shown}{more}"

"""The fields the Spark engine adds inside a table's struct columns (`core.engines.spark.table.added_inside`), in
the same places `core.schema.with_added_fields` grows an Arrow struct."""

from __future__ import annotations

import pyarrow as pa
import pytest

from core.engines.spark.table import added_inside
from core.schema import with_added_fields

types = pytest.importorskip("pyspark.sql.types")
from core.engines.spark.common import from_arrow  # noqa: E402  (pyspark is an extra)

TABLE = pa.schema(
    [("id", pa.int64()), ("user", pa.struct([("name", pa.string()), ("geo", pa.struct([("lat", pa.float64())]))]))]
)
INCOMING = pa.schema(
    [
        ("id", pa.int64()),
        (
            "user",
            pa.struct(
                [
                    ("NAME", pa.string()),
                    ("geo", pa.struct([("lat", pa.float64()), ("lon", pa.float64())])),
                    ("age", pa.int32()),
                ]
            ),
        ),
        ("new", pa.string()),
    ]
)


def test_the_paths_and_types_of_the_fields_added_inside_structs() -> None:
    """A new top-level column is not among them (ADD COLUMNS takes it apart), nor a field spelled differently."""
    found = [(path, t.simpleString()) for path, t in added_inside(from_arrow(TABLE), from_arrow(INCOMING))]
    assert found == [(("user", "geo", "lon"), "double"), (("user", "age"), "int")]


def test_the_arrow_growth_adds_the_same_fields() -> None:
    grown = with_added_fields(TABLE.field("user").type, INCOMING.field("user").type)
    assert grown == pa.struct(
        [("name", pa.string()), ("geo", pa.struct([("lat", pa.float64()), ("lon", pa.float64())])), ("age", pa.int32())]
    )
    assert added_inside(from_arrow(pa.schema([("user", grown)])), from_arrow(INCOMING)) == []


def test_fields_added_inside_the_structs_of_arrays_and_maps() -> None:
    """`element` and `value` are the steps of Delta's and Iceberg's ADD COLUMNS; the Arrow growth has them too."""
    item = pa.struct([("sku", pa.string())])
    grown_item = pa.struct([("sku", pa.string()), ("qty", pa.int64())])
    table = pa.schema(
        [("items", pa.list_(item)), ("attrs", pa.map_(pa.string(), item)), ("tags", pa.list_(pa.string()))]
    )
    incoming = pa.schema(
        [("items", pa.list_(grown_item)), ("attrs", pa.map_(pa.string(), grown_item)), ("tags", pa.list_(pa.string()))]
    )
    found = [(path, t.simpleString()) for path, t in added_inside(from_arrow(table), from_arrow(incoming))]
    assert found == [(("items", "element", "qty"), "bigint"), (("attrs", "value", "qty"), "bigint")]
    grown = pa.schema([f.with_type(with_added_fields(f.type, incoming.field(f.name).type)) for f in table])
    assert added_inside(from_arrow(grown), from_arrow(incoming)) == []

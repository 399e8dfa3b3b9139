"""CSV with an escape character, read whole: a line set aside for Python is taken once and keeps its text."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa

from core.config import FormatConfig
from core.formats.readers import read_file
from core.formats.streams import FileReadStats

SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string())])


def read(data: bytes) -> tuple[list[dict[str, Any]], int]:
    fmt = FormatConfig.model_validate({"type": "csv", "options": {"header": True, "escape": "\\"}})
    stats = FileReadStats()
    table = pa.Table.from_batches(list(read_file(io.BytesIO(data), "f.csv", fmt, SCHEMA, stats)))
    return table.to_pylist(), stats.bad_records


def test_a_line_with_a_stray_quote_and_an_escaped_line_feed_is_one_malformed_row() -> None:
    rows, bad = read(b'a,b\nx"y\\\n2,3\n')
    assert bad == 1
    assert [r["_rescued_data"] for r in rows if r["a"] is None] == ['{"_malformed":"x\\"y\\\\"}']
    assert [(r["a"], r["b"]) for r in rows if r["a"] is not None] == [("2", "3")]


def test_an_escaped_carriage_return_before_the_line_feed_stays_in_the_value() -> None:
    rows, bad = read(b"a,b\r\n1,x\\\r\n2,3\r\n")
    assert bad == 0
    assert sorted((r["a"], r["b"]) for r in rows) == [("1", "x\r"), ("2", "3")]

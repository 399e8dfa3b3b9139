"""A CSV file's last line without a line break reads as it would with one (Arrow's reader alone makes an empty
last field `""` there, where an empty field is NULL everywhere else)."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pytest

from core.config import FormatConfig
from core.formats.readers import read_file
from core.formats.streams import FileReadStats

SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string()), ("c", pa.string())])


def rows(data: bytes, **options: Any) -> list[dict[str, Any]]:
    fmt = FormatConfig.model_validate({"type": "csv", "options": {"header": True, **options}})
    batches = list(read_file(io.BytesIO(data), "f.csv", fmt, SCHEMA, FileReadStats()))
    return pa.Table.from_batches(batches).select(SCHEMA.names).to_pylist()


@pytest.mark.parametrize("options", [{}, {"multiline": True}], ids=["lines", "multiline"])
@pytest.mark.parametrize(
    "last",
    [b',"",', b'1,"x",', b',"",""', b"1,2,3", b"1,2,"],
    ids=["empty-after-quoted", "value-after-quoted", "quoted-empty", "plain", "empty-after-plain"],
)
def test_the_last_line_reads_the_same_with_or_without_a_line_break(last: bytes, options: dict[str, Any]) -> None:
    data = b"a,b,c\n" + last
    assert rows(data, **options) == rows(data + b"\n", **options)


def test_an_empty_last_field_is_null_and_a_quoted_empty_one_is_text() -> None:
    assert rows(b'a,b,c\n,"",') == [{"a": None, "b": "", "c": None}]
    assert rows(b'a,b,c\n,,""') == [{"a": None, "b": None, "c": ""}]

"""Residuals of issue #11 (values arrive exactly as they were in the files) on the embedded engine's readers:
multiline JSON honours allow_single_quotes and primitives_as_string, text that is not UTF-8 is reported with its
byte offset in the file, and Python-parsed CSV rows keep a quoted empty string apart from an empty field."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pytest

from core.config import FormatConfig
from core.errors import BadFileError
from core.formats import RESCUED, FileReadStats, infer_file_schema, read_file


def fmt(kind: str, **options: Any) -> FormatConfig:
    return FormatConfig.model_validate({"type": kind, "options": options})


def load(
    data: bytes,
    kind: str = "json",
    schema: pa.Schema | None = None,
    block_bytes: int = 16 * 1024 * 1024,
    **options: Any,
) -> tuple[pa.Schema, list[dict[str, Any]]]:
    config = fmt(kind, **options)
    if schema is None:
        schema = infer_file_schema(io.BytesIO(data), config, path="f")
    batches = read_file(io.BytesIO(data), "f", config, schema, FileReadStats(), block_bytes=block_bytes)
    return schema, [r for b in batches for r in b.to_pylist()]


# ---------------------------------------------------------------------------------------------------------------------
# multiline JSON: single quotes and primitives as string, as on the JSON-lines path

SINGLE_QUOTED_DOCUMENT = b"""[
  {'name': 'it\\'s "here"', 'n': 1},
  {"name": "plain", 'nested': {'k': 'v'}, "n": 2}
]
"""


def test_multiline_json_reads_single_quotes_by_default() -> None:
    _, rows = load(SINGLE_QUOTED_DOCUMENT, multiline=True)
    assert [(r["name"], r["n"]) for r in rows] == [('it\'s "here"', 1), ("plain", 2)]
    assert rows[1]["nested"] == {"k": "v"} and rows[0][RESCUED] is None


def test_multiline_json_refuses_single_quotes_when_off() -> None:
    schema = pa.schema([("name", pa.string()), ("n", pa.int64())])
    with pytest.raises(BadFileError, match=r"^f is not valid JSON: Expecting property name .* at line 2 column 4"):
        load(SINGLE_QUOTED_DOCUMENT, schema=schema, multiline=True, allow_single_quotes=False)
    with pytest.raises(BadFileError):
        infer_file_schema(io.BytesIO(SINGLE_QUOTED_DOCUMENT), fmt("json", multiline=True, allow_single_quotes=False))


def test_multiline_json_single_quotes_do_not_hide_other_errors() -> None:
    with pytest.raises(BadFileError, match="at line 3 column"):
        load(b"[\n  {'a': 1},\n  {'a' 2}\n]\n", schema=pa.schema([("a", pa.int64())]), multiline=True)


def test_multiline_json_primitives_as_string_keep_the_exact_text() -> None:
    data = b'[{"a": 1.50, "b": true, "c": {"d": 10}, "e": [1, 2.0], "f": -3E5, "s": "x 12"},\n {"a": 0.10}]'
    schema, rows = load(data, multiline=True, primitives_as_string=True)
    assert schema.field("a").type == pa.string() and schema.field("c").type == pa.struct([("d", pa.string())])
    assert rows[0] == {
        "a": "1.50",
        "b": "true",
        "c": {"d": "10"},
        "e": ["1", "2.0"],
        "f": "-3E5",
        "s": "x 12",
        RESCUED: None,
    }
    assert rows[1]["a"] == "0.10"
    _, single = load(b"{'a': 0.10, 'b': 'v 1'}", multiline=True, primitives_as_string=True)
    assert (single[0]["a"], single[0]["b"]) == ("0.10", "v 1")

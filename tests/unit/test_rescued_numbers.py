"""JSON text kept as written: numbers keep their text wherever the Python path or `_rescued_data` writes JSON
again (a number in a `string` column or text nested in a map, rescued values merged with more, ignored columns
dropped from `_rescued_data`, unfit partition values added to it: `json.loads` there made `1e400` inf, written
`Infinity`, which is not JSON, and `1.50` became `1.5`); a string is never taken for a number; a record holding no
Unicode text is malformed, not a crash."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import FormatConfig
from core.formats.conform import RESCUED, drop_rescued_keys, json_text, json_text_as_written, loads, merge_rescued
from core.formats.json_reader import multiline_as_lines, read_json
from core.formats.partitions import rescue_text
from core.formats.readers import FileReadStats

NUMBERS = st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?", fullmatch=True).filter(
    lambda text: text != "-0"  # an integer: Python's parser reads it as 0 (a known difference, docs/TYPES.md)
)


@given(st.lists(NUMBERS, min_size=1, max_size=4))
def test_parsed_numbers_are_written_back_as_they_were(texts: list[str]) -> None:
    document = '{"a":[' + ",".join(texts) + '],"b":{"c":' + texts[0] + "}}"
    assert json_text_as_written(loads(document)) == document
    assert json_text(loads(texts[0])) == json_text_as_written(loads(texts[0])) == texts[0]


def test_merged_rescued_values_keep_their_numbers() -> None:
    assert merge_rescued('{"a":1e400,"b":1.50}', {"c": 1}) == '{"a":1e400,"b":1.50,"c":1}'


def test_dropping_an_ignored_column_keeps_the_other_numbers() -> None:
    batch = pa.RecordBatch.from_arrays(
        [pa.array([1, 2]), pa.array(['{"a":1e400,"b":1.50,"x":1}', '{"x":2}'])], names=["id", RESCUED]
    )
    assert drop_rescued_keys(batch, frozenset({"x"})).column(1).to_pylist() == ['{"a":1e400,"b":1.50}', None]


def test_unfit_partition_values_join_rescued_numbers_as_written() -> None:
    rescued = pa.array(['{"a":1e400,"b":[1.50]}', None])
    assert rescue_text(rescued, {"p": "x"}).to_pylist() == ['{"a":1e400,"b":[1.50],"p":"x"}', '{"p":"x"}']


def test_a_string_never_reads_as_a_number_mark() -> None:
    """Numbers go through the encoder as marked strings; a string in the data that looked like the mark
    (`"\\u0000Nabc"`) was written unquoted: `{"x":abc}`, not JSON."""
    value = {"x": "\x00Nabc", "y": "\x00N1", "n": loads("1.50")}
    assert json.loads(json_text_as_written(value)) == {"x": "\x00Nabc", "y": "\x00N1", "n": 1.5}
    assert '"n":1.50' in json_text_as_written(value)


def _read(data: bytes, schema: pa.Schema) -> tuple[list[dict[str, Any]], FileReadStats]:
    stats = FileReadStats()
    batches = read_json(io.BytesIO(data), "/x.json", FormatConfig(type="json"), schema, stats, 1 << 20)
    return [row for batch in batches if batch is not None for row in batch.to_pylist()], stats


@pytest.mark.parametrize(
    ("column", "line", "expected"),
    [
        (pa.map_(pa.string(), pa.string()), b'{"v":{"k":1.50}}', [("k", "1.50")]),
        (pa.map_(pa.string(), pa.list_(pa.string())), b'{"v":{"k":[1E5]}}', [("k", ["1E5"])]),
        (pa.struct([("m", pa.map_(pa.string(), pa.string()))]), b'{"v":{"m":{"k":1E5}}}', {"m": [("k", "1E5")]}),
        (pa.list_(pa.struct([("t", pa.string())])), b'{"v":[{"t":1.50}]}', [{"t": "1.50"}]),
    ],
)
def test_a_number_in_text_nested_in_a_column_arrow_types_is_its_text(
    column: pa.DataType, line: bytes, expected: Any
) -> None:
    """A map column is typed by Arrow's parse (the fast path), which read `1.50` as the double 1.5; such a block
    is parsed in Python, which keeps the text, as it does for a text column."""
    rows, _ = _read(b'{"v":null}\n' + line + b"\n", pa.schema([("v", column), (RESCUED, pa.string())]))
    assert [row["v"] for row in rows] == [None, expected]


@pytest.mark.parametrize("multiline", [False, True])
def test_a_lone_surrogate_escape_makes_its_record_malformed(multiline: bool) -> None:
    """`"\\ud800"` alone is no character UTF-8 can hold: the record is malformed (kept as its text in
    `_rescued_data`), where building the text column crashed the read; a surrogate pair is its character."""
    records = [b'{"id":1,"x":"ok"}', b'{"id":2,"x":"\\ud800","n":1.50}', b'{"id":3,"x":"\\ud83d\\ude00"}']
    data = b"\n".join(records) + b"\n"
    if multiline:
        data = multiline_as_lines(io.BytesIO(b"[" + b",\n".join(records) + b"]"), "/x.json")
    rows, stats = _read(data, pa.schema([("id", pa.int64()), ("x", pa.string()), (RESCUED, pa.string())]))
    assert [(row["id"], row["x"]) for row in rows] == [(1, "ok"), (None, None), (3, "\N{GRINNING FACE}")]
    assert json.loads(json.loads(rows[1][RESCUED])["_malformed"])["n"] == 1.5 and stats.bad_records == 1


@pytest.mark.parametrize(
    ("column", "line", "rescued"),
    [
        (pa.struct([("x", pa.float64()), ("y", pa.string())]), b'{"v":{"x":1,"z":2}}', '{"v":{"x":1,"z":2}}'),
        (pa.float32(), b'{"v":16777217}', '{"v":16777217}'),
        (pa.int64(), b'{"v":2.50}', '{"v":2.50}'),
        (pa.int64(), b'{"v":1,"new":{"a":1}}', '{"new":{"a":1}}'),
    ],
)
def test_a_value_rescued_from_arrows_parse_is_as_written(column: pa.DataType, line: bytes, rescued: str) -> None:
    """Arrow's struct has a member for every key of the block and types its numbers over the block, and a double's
    text is its shortest form: a block where such a value would be rescued is parsed in Python. The lines before
    it are ones Arrow parses alone."""
    data = b'{"v":null,"new":{"b":2.5}}\n' * 3 + line + b"\n"
    rows, _ = _read(data, pa.schema([("v", column), (RESCUED, pa.string())]))
    assert [json.loads(r[RESCUED]) if r[RESCUED] else None for r in rows[:3]] == [{"new": {"b": 2.5}}] * 3
    assert rows[3][RESCUED] == rescued

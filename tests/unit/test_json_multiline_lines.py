"""A multiline JSON document as JSON lines (`core.formats.json_reader.multiline_as_lines`): each value's own text on
one line, checked by Python's JSON scanner. Compared with building every value as Python objects and writing it
back (the reader before 2026-12-06: 23 s and 1.2 GB for a 119 MB array), over generated documents."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import FormatConfig
from core.errors import AutoloaderError
from core.formats import FileReadStats, infer_file_schema, read_file
from core.formats.json_reader import LineOptions, multiline_as_lines

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=12)


def _lines(document: str, options: LineOptions = LineOptions()) -> list[str]:
    text = multiline_as_lines(io.BytesIO(document.encode()), "doc.json", options).decode()
    assert text.endswith("\n")
    return text[:-1].split("\n")  # lines end at line feeds only (str.splitlines breaks at U+2028 too)


def _expected(values: list[Any]) -> list[Any]:
    """The values a document holds one per record: a top-level array's elements spread."""
    spread: list[Any] = []
    for value in values:
        spread.extend(value if isinstance(value, list) else [value])
    return spread


@settings(max_examples=300, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=4), st.sampled_from([None, 2]), st.sampled_from(["\n", " ", "\r\n"]))
def test_every_value_on_its_own_line_as_written(values: list[Any], indent: int | None, between: str) -> None:
    document = between.join(json.dumps(v, indent=indent, ensure_ascii=False) for v in values)
    expected = _expected(values)
    if not expected:  # only empty arrays: no record
        with pytest.raises(AutoloaderError, match="empty"):
            _lines(document)
        return
    assert [json.loads(line) for line in _lines(document)] == expected


def test_numbers_and_escapes_stay_as_written() -> None:
    document = '[\n  {"price": 0.10, "big": 12345678901234567890123, "e": 1E+2, "s": "a\\nb \\u00e9"},\n  [1, 2]\n]\n'
    assert _lines(document) == [
        '{"price": 0.10, "big": 12345678901234567890123, "e": 1E+2, "s": "a\\nb \\u00e9"}',
        "[1, 2]",
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('[{"a": 1},\n {"a": 2}', "Expecting ',' delimiter at line 2 column 10"),
        ('[{"a": 1},]', "Expecting value at line 1 column 11"),
        ('[{"a": 1} {"a": 2}]', "Expecting ',' delimiter at line 1 column 11"),
        ('[{"a": "line\nbreak"}]', "Invalid control character at line 1 column 13"),
        ("[", "Expecting value at line 1 column 2"),
    ],
)
def test_a_document_that_is_not_json_is_a_bad_file_located_in_its_lines(document: str, message: str) -> None:
    with pytest.raises(AutoloaderError) as caught:
        _lines(document)
    assert message in caught.value.message, caught.value.message


def test_an_empty_array_and_concatenated_documents() -> None:
    assert _lines('[]\n{"a": 1}\n[{"b": 2}, {"c": 3}]') == ['{"a": 1}', '{"b": 2}', '{"c": 3}']
    with pytest.raises(AutoloaderError, match="empty"):
        _lines("[ ]")


def _load(document: str, multiline: bool) -> tuple[pa.Schema, list[dict[str, Any]]]:
    """Inferred and read as a run does (`infer_file_schema`, then `read_file` with that schema)."""
    fmt = FormatConfig.model_validate({"type": "json", "options": {"multiline": multiline}})
    schema = infer_file_schema(io.BytesIO(document.encode()), fmt, path="doc.json")
    batches = read_file(io.BytesIO(document.encode()), "doc.json", fmt, schema, FileReadStats())
    return schema, [row for batch in batches for row in batch.to_pylist()]


def test_a_key_written_twice_reads_as_before_the_last_one_wins() -> None:
    """Arrow refuses an object with a key written twice; such an element is written back as Python reads it (as the
    reader did before 2026-12-06: the Python typing of the refused text lost the column's source name and its
    timestamps, found by an attack)."""
    assert _lines('[{"a": 1, "a": 2}, {"b": {"c": 1, "c": 2.50}}]') == ['{"a":2}', '{"b":{"c":2.50}}']
    assert _lines('[{"a": 1, "a": "x\\ud800"}]') == ['{"a":"x\\ud800"}']  # a lone surrogate: that escape again
    schema, rows = _load('[{"c d": "2024-01-01T00:00:00Z", "c d": "2024-01-02T00:00:00Z"}]', multiline=True)
    assert pa.types.is_timestamp(schema.field("c_d").type) and schema.field("c_d").metadata
    assert [str(row["c_d"]) for row in rows] == ["2024-01-02 00:00:00+00:00"]


@pytest.mark.parametrize("multiline", [True, False])
def test_an_escaped_surrogate_pair_beside_a_number_no_double_holds(multiline: bool) -> None:
    """`\\ud83d\\ude00` (an emoji as json.dumps writes it) and a 19-digit number in one record: the check for lone
    surrogates wrote the record with json.dumps, which cannot write the exact number (TypeError: the file was
    quarantined); found by an attack, in JSON lines before and in every multiline document since its text is kept."""
    record = '{"id": 1, "s": "\\ud83d\\ude00", "x": 3.141592653589793238}'
    _, rows = _load(f"[{record}]" if multiline else record + "\n", multiline)
    assert [row["s"] for row in rows] == ["\U0001f600"] and str(rows[0]["x"]) == "3.141592653589793238"

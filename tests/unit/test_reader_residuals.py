"""Residuals of issue #11 (values arrive exactly as they were in the files) on the embedded engine's readers:
multiline JSON honours allow_single_quotes and primitives_as_string, text that is not UTF-8 is reported with its
byte offset in the file, and Python-parsed CSV rows keep a quoted empty string apart from an empty field."""

from __future__ import annotations

import codecs
import gzip
import io
from typing import Any

import pyarrow as pa
import pytest

from core.config import FormatConfig
from core.errors import BadFileError
from core.formats import RESCUED, FileReadStats, infer_file_schema, read_file
from core.formats.csv_lines import quoted_fields
from core.formats.readers import infer_csv_schemas, infer_json_lines_schemas


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


# ---------------------------------------------------------------------------------------------------------------------
# text that is not UTF-8: the message names the byte's offset in the file (and its line where it is known)

GOOD_LINES = b'{"a": "x"}\n' * 40  # 440 bytes
NOT_UTF8 = r"the text is not UTF-8 encoded at byte "


def read_error(data: bytes, kind: str, schema: pa.Schema, stream: Any = None, **kwargs: Any) -> str:
    options = kwargs.pop("options", {})
    with pytest.raises(BadFileError) as err:
        list(read_file(stream or io.BytesIO(data), "f", fmt(kind, **options), schema, FileReadStats(), **kwargs))
    return err.value.message


def test_json_lines_not_utf8_names_the_byte_in_the_file_across_blocks() -> None:
    data = codecs.BOM_UTF8 + GOOD_LINES + b'{"a": "caf\xe9"}\n' + GOOD_LINES
    message = read_error(data, "json", pa.schema([("a", pa.string())]), block_bytes=64)
    assert message == (
        "f is not valid JSON: the text is not UTF-8 encoded at byte 453; set the format's encoding option "
        "(e.g. latin-1, windows-1252, utf-16)"
    )
    assert data[453:454] == b"\xe9"
    first_block = read_error(b'{"a": 1}\n{"a": "caf\xe9"}\n', "json", pa.schema([("a", pa.string())]))
    assert NOT_UTF8 + "19 (line 2);" in first_block
    failfast = read_error(data, "json", pa.schema([("a", pa.string())]), block_bytes=64, options={"mode": "failfast"})
    assert NOT_UTF8 + "453 (line 41);" in failfast


def test_multiline_json_and_text_not_utf8_name_byte_and_line() -> None:
    document = b'[\n  {"a": "x"},\n  {"a": "caf\xe9"}\n]\n'
    message = read_error(document, "json", pa.schema([("a", pa.string())]), options={"multiline": True})
    assert NOT_UTF8 + "28 (line 3);" in message and document[28:29] == b"\xe9"
    with pytest.raises(BadFileError, match="at byte 31 \\(line 3\\)"):
        infer_file_schema(io.BytesIO(codecs.BOM_UTF8 + document), fmt("json", multiline=True), path="f")
    text = b"one\r\ntwo\rthree\n" * 30 + b"caf\xe9\n"
    assert NOT_UTF8 + "453 (line 91);" in read_error(text, "text", pa.schema([("value", pa.string())]), block_bytes=64)
    assert NOT_UTF8 + "453 (line 91);" in read_error(
        text, "text", pa.schema([("value", pa.string())]), options={"wholetext": True}
    )


CSV_GOOD = b"a,b\n" + b"x,y\n" * 40  # 164 bytes


# pyarrow cannot hand the wrong-width row to the row handler (its text is not UTF-8) and reports that as unraisable
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("bad_row", "case"),
    [
        (b"caf\xe9,1\n", "Arrow's reader says invalid UTF8"),
        (b"caf\xe9,1,2,3\n", "Arrow rejects the row's width, showing U+FFFD"),
    ],
)
def test_csv_not_utf8_names_the_byte_in_the_file(bad_row: bytes, case: str) -> None:
    data = CSV_GOOD + bad_row + CSV_GOOD[4:]
    schema = pa.schema([("a", pa.string()), ("b", pa.string())])
    assert NOT_UTF8 + "167 (line 42);" in read_error(data, "csv", schema, block_bytes=64), case
    compressed = read_error(gzip.compress(data), "csv", schema)
    assert "not valid gzip-compressed CSV: the text is not UTF-8 encoded at byte 167 of the decompressed text" in (
        compressed
    )


class SequentialStream(io.RawIOBase):
    """A stream that cannot seek, like an object store's response body."""

    def __init__(self, data: bytes):
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def test_csv_not_utf8_in_a_stream_that_cannot_seek_names_the_byte() -> None:
    schema = pa.schema([("a", pa.string()), ("b", pa.string())])
    message = read_error(b"", "csv", schema, stream=SequentialStream(CSV_GOOD + b"caf\xe9,1\n"))
    assert NOT_UTF8 + "167 (line 42); set the format's encoding option" in message


def test_csv_badly_quoted_row_that_is_not_utf8_is_refused_not_replaced() -> None:
    data = CSV_GOOD + b'"caf\xe9 "x" y",1\n'
    schema = pa.schema([("a", pa.string()), ("b", pa.string())])
    assert NOT_UTF8 + "168 (line 42);" in read_error(data, "csv", schema)
    assert NOT_UTF8 + "168 (line 42);" in read_error(data, "csv", schema, options={"mode": "failfast"})


def test_inference_names_the_byte_or_the_line() -> None:
    data = codecs.BOM_UTF8 + GOOD_LINES + b'{"a": "caf\xe9"}\n'
    with pytest.raises(BadFileError, match=NOT_UTF8 + "453 \\(line 41\\);"):
        infer_file_schema(io.BytesIO(data), fmt("json"), path="f")
    with pytest.raises(BadFileError, match=NOT_UTF8 + "167 \\(line 42\\);"):
        infer_file_schema(io.BytesIO(CSV_GOOD + b"caf\xe9,1\n"), fmt("csv"), path="f")
    commented = b"# note\n" + CSV_GOOD + b"caf\xe9,1\n"  # found before the comment is blanked: the file's offset
    with pytest.raises(BadFileError, match=NOT_UTF8 + "174 \\(line 43\\);"):
        infer_file_schema(io.BytesIO(commented), fmt("csv", comment="#"), path="f")
    json_samples = [("f.json", GOOD_LINES + b'{"a": "caf\xe9"}\n'), ("g.json", GOOD_LINES)]
    schemas, bad = infer_json_lines_schemas(json_samples, fmt("json"))
    assert len(schemas) == 1 and "not UTF-8 encoded on line 41;" in bad["f.json"]
    csv_samples = [("f.csv", CSV_GOOD + b"caf\xe9,1\n"), ("g.csv", CSV_GOOD)]
    schemas, bad = infer_csv_schemas(csv_samples, fmt("csv"))
    assert len(schemas) == 1 and "not UTF-8 encoded on line 42;" in bad["f.csv"]


# ---------------------------------------------------------------------------------------------------------------------
# CSV: a quoted empty string is a value, an empty field is NULL, on Arrow's path and on Python's

CSV_HEAD = b"a,b,c\n" + b"q,r,s\n" * 20  # enough good rows that the odd ones are a minority
STRINGS = pa.schema([("a", pa.string()), ("b", pa.string()), ("c", pa.string())])


def last_rows(data: bytes, count: int, **options: Any) -> list[dict[str, Any]]:
    return load(CSV_HEAD + data, "csv", STRINGS, **options)[1][-count:]


def test_csv_quoted_empty_string_is_not_null_on_arrows_path() -> None:
    assert last_rows(b'"",,x\n', 1) == [{"a": "", "b": None, "c": "x", RESCUED: None}]


def test_csv_quoted_empty_string_is_not_null_in_rows_python_parses() -> None:
    ragged = last_rows(b'"",,x,extra,""\n"",\n', 2)  # wrong width: Arrow hands them to Python
    assert ragged[0] == {"a": "", "b": None, "c": "x", RESCUED: '{"_c3":"extra","_c4":""}'}
    assert (ragged[1]["a"], ragged[1]["b"], ragged[1]["c"]) == ("", None, None)
    badly_quoted = last_rows(b'"",,x"y"z\n', 1)  # a quote inside a value: set aside for Python
    assert badly_quoted == [{"a": "", "b": None, "c": 'x"y"z', RESCUED: None}]
    marker = last_rows(b'"NA",NA,x"y"z\n', 1, null_value="NA")
    assert (marker[0]["a"], marker[0]["b"]) == ("NA", None)


@pytest.mark.parametrize(
    ("row", "options", "expected"),
    [
        ('"a"",b",,"",x,', {}, [True, False, True, False, False]),
        ('"a\\",b",,"",x\\,y,', {"escape": "\\"}, [True, False, True, False, False]),
        (' "x",y', {}, [False, False]),
        ("'',b", {"quote": "'"}, [True, False]),
    ],
)
def test_quoted_fields_follow_the_csv_options(row: str, options: dict[str, str], expected: list[bool]) -> None:
    assert quoted_fields(row, fmt("csv", **options).options) == expected


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see test_csv_not_utf8_names_...
def test_csv_inference_names_a_wrong_width_row_that_is_not_utf8() -> None:
    with pytest.raises(BadFileError, match=NOT_UTF8 + "167 \\(line 42\\);"):
        infer_file_schema(io.BytesIO(CSV_GOOD + b"caf\xe9,1,2,3\n"), fmt("csv"), path="f")
    written = CSV_GOOD + "caf\ufffd,1\n".encode()  # U+FFFD written in the file is text
    assert infer_file_schema(io.BytesIO(written), fmt("csv"), path="f").names == ["a", "b"]

"""Reader options of the embedded engine (encoding, comment, mode, ragged and badly quoted CSV rows, JSON
single quotes and primitives as string), at the reader level: infer_file_schema/read_file on in-memory files."""

from __future__ import annotations

import codecs
import io
import json
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from core.config import FormatConfig
from core.errors import BadFileError
from core.formats import RESCUED, FileReadStats, infer_file_schema, read_file


def fmt(kind: str, **options: Any) -> FormatConfig:
    return FormatConfig.model_validate({"type": kind, "options": options})


def load(
    data: bytes, kind: str = "csv", schema: pa.Schema | None = None, **options: Any
) -> tuple[list[dict[str, Any]], FileReadStats]:
    config = fmt(kind, **options)
    if schema is None:
        schema = infer_file_schema(io.BytesIO(data), config, path="f")
    stats = FileReadStats()
    rows = [r for b in read_file(io.BytesIO(data), "f", config, schema, stats) for r in b.to_pylist()]
    return rows, stats


def rescued(row: dict[str, Any]) -> Any:
    return None if row[RESCUED] is None else json.loads(row[RESCUED])


TEXT = "name,city\nJosé,Zürich €\nÅsa,Malmö\n"
EXPECTED = [("José", "Zürich €"), ("Åsa", "Malmö")]


# ---------------------------------------------------------------------------------------------------------------------
# encoding


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("cp1252"), "windows-1252"),
        (TEXT.replace(" €", "").encode("latin-1"), "latin-1"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-8"),  # the BOM wins over the default
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-8"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8"),
    ],
)
def test_csv_encodings_are_transcoded(data: bytes, encoding: str) -> None:
    rows, _ = load(data, encoding=encoding)
    expected = EXPECTED if encoding != "latin-1" else [("José", "Zürich"), ("Åsa", "Malmö")]
    assert [(r["name"], r["city"]) for r in rows] == expected


def test_json_utf16_with_bom() -> None:
    data = codecs.BOM_UTF16_LE + '{"name": "José"}\n{"name": "Åsa"}\n'.encode("utf-16-le")
    rows, _ = load(data, "json")
    assert [r["name"] for r in rows] == ["José", "Åsa"]


def test_large_file_is_transcoded_in_blocks() -> None:
    line = "ümlaut,€uro\n"
    data = ("a,b\n" + line * 200_000).encode("cp1252")  # several 1 MiB blocks
    rows, stats = load(data, schema=pa.schema([("a", pa.string()), ("b", pa.string())]), encoding="windows-1252")
    assert len(rows) == 200_000 and stats.bad_records == 0
    assert rows[-1]["a"] == "ümlaut" and rows[-1]["b"] == "€uro"


def test_text_invalid_in_the_encoding_is_quarantined_with_the_offset() -> None:
    data = "a,b\nx,é\n".encode("cp1252") + b"y,\x81\n"  # 0x81 is undefined in windows-1252
    with pytest.raises(BadFileError, match=r"windows-1252 \(byte offset 10"):
        load(data, encoding="windows-1252")
    odd = codecs.BOM_UTF16_LE + "a,b\n1,2\n".encode("utf-16-le") + b"\x00\xdc"  # a lone low surrogate
    with pytest.raises(BadFileError, match="UTF-16"):
        load(odd, schema=pa.schema([("a", pa.string()), ("b", pa.string())]))


# ---------------------------------------------------------------------------------------------------------------------
# CSV comment, ragged rows, badly quoted rows


def test_comment_lines_are_skipped_everywhere() -> None:
    data = b"# exported 2024\nid,name\n1,a\n# a note\n2,b\n  # not at the start: a value\n"
    rows, stats = load(data, comment="#")
    assert [(r["id"], r["name"]) for r in rows[:2]] == [(1, "a"), (2, "b")]
    assert rows[2]["id"] is None and rescued(rows[2]) == {"id": "  # not at the start: a value"}
    assert stats.bad_records == 0 and len(rows) == 3


def test_comment_inside_a_multiline_value_is_data() -> None:
    data = b'id,note\n1,"first\n#not a comment"\n#a comment\n2,x\n'
    rows, _ = load(data, comment="#", multiline=True)
    assert [(r["id"], r["note"]) for r in rows] == [(1, "first\n#not a comment"), (2, "x")]


def test_short_rows_are_null_padded_and_long_rows_rescue_the_extra_fields() -> None:
    data = b"a,b,c\n1,2,3\n4,5\n6,7,8,9,\n"
    rows, stats = load(data)
    assert [(r["a"], r["b"], r["c"]) for r in rows] == [(1, 2, 3), (4, 5, None), (6, 7, 8)]
    assert [rescued(r) for r in rows] == [None, None, {"_c3": "9"}]
    assert stats.bad_records == 0 and stats.records == 3


def test_badly_quoted_field_is_rescued_not_garbled() -> None:
    data = b'a,b\n"a \\"quoted\\" word",1\n"ok ""doubled""",2\n5"6,3\n'
    rows, stats = load(data, schema=pa.schema([("a", pa.string()), ("b", pa.int64())]))
    by_b = {r["b"]: r for r in rows}
    assert by_b[2]["a"] == 'ok "doubled"' and by_b[3]["a"] == '5"6'  # a quote inside an unquoted field is text
    bad = [r for r in rows if r["b"] is None]
    assert [rescued(r) for r in bad] == [{"_malformed": '"a \\"quoted\\" word",1'}]
    assert stats.bad_records == 1
    # With the escape option the same row is read as meant.
    rows, stats = load(data, schema=pa.schema([("a", pa.string()), ("b", pa.int64())]), escape="\\")
    assert rows[0]["a"] == 'a "quoted" word' and stats.bad_records == 0


def test_header_with_odd_quotes_is_not_set_aside() -> None:
    rows, _ = load(b'na"me,b\nx,1\n')
    assert rows == [{'na"me': "x", "b": 1, RESCUED: None}]


# ---------------------------------------------------------------------------------------------------------------------
# mode


CSV_BAD = b'a,b\n1,2\n"x"y,3\n4,5,6\n7,8\n'


def test_csv_permissive_keeps_malformed_rows() -> None:
    rows, stats = load(CSV_BAD, schema=pa.schema([("a", pa.int64()), ("b", pa.int64())]))
    assert len(rows) == 4 and stats.bad_records == 1
    assert {"_malformed": '"x"y,3'} in [rescued(r) for r in rows]


def test_csv_dropmalformed_drops_and_counts() -> None:
    rows, stats = load(CSV_BAD, schema=pa.schema([("a", pa.int64()), ("b", pa.int64())]), mode="dropmalformed")
    assert sorted((r["a"], r["b"]) for r in rows) == [(1, 2), (7, 8)]  # wrong width is malformed here (Spark)
    assert stats.bad_records == 2 and stats.records == 2


@pytest.mark.parametrize(("data", "line"), [(CSV_BAD, 3), (b"a,b\n1,2\n\n#c\n3,4,5\n", 5)])
def test_csv_failfast_names_the_line(data: bytes, line: int) -> None:
    with pytest.raises(BadFileError, match=rf"^f is not valid CSV: malformed row at line {line} "):
        load(data, schema=pa.schema([("a", pa.int64()), ("b", pa.int64())]), mode="failfast", comment="#")


def test_failfast_on_a_clean_file_loads_it() -> None:
    rows, stats = load(b"a,b\n1,2\n\n3,4\n", mode="failfast")
    assert [(r["a"], r["b"]) for r in rows] == [(1, 2), (3, 4)] and stats.bad_records == 0


# ---------------------------------------------------------------------------------------------------------------------
# Save-time checks


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"comment": ","}, "comment and delimiter"),
        ({"comment": '"'}, "comment and quote"),
        ({"delimiter": "\\", "escape": "\\"}, "escape and delimiter"),
        ({"quote": ","}, "quote and delimiter"),
        ({"delimiter": "é"}, "single ASCII character"),
        ({"comment": "\n"}, "line break"),
        ({"encoding": "no-such-codec"}, "unknown text encoding"),
        ({"encoding": "rot13"}, "not a text encoding"),
        ({"mode": "lenient"}, "permissive"),
    ],
)
def test_unworkable_options_are_refused_at_save(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        fmt("csv", **options)


def test_escape_equal_to_quote_means_doubled_quotes() -> None:
    config = fmt("csv", escape='"')
    assert config.options.escape is None
    rows, _ = load(b'a,b\n"x ""y"" z",2\n', escape='"')
    assert rows[0]["a"] == 'x "y" z'


# ---------------------------------------------------------------------------------------------------------------------
# JSON: single quotes, primitives as string, mode


def test_json_single_quotes_are_read_by_default() -> None:
    data = b"{'name': 'it\\'s \"here\"', 'n': 1}\n{\"name\": \"plain\", \"n\": 2}\n{'nested': {'k': 'v'}, 'n': 3}\n"
    rows, stats = load(data, "json")
    assert [r["name"] for r in rows] == ['it\'s "here"', "plain", None]
    assert rows[2]["nested"] == {"k": "v"} and stats.bad_records == 0


def test_json_single_quotes_refused_when_off() -> None:
    rows, stats = load(b"{'n': 1}\n{\"n\": 2}\n", "json", allow_single_quotes=False)
    assert [rescued(r) for r in rows] == [{"_malformed": "{'n': 1}"}, None] and stats.bad_records == 1


def test_json_primitives_as_string_keep_the_exact_text() -> None:
    data = b'{"a": 1.50, "b": true, "c": {"d": 10}, "e": [1, 2.0], "s": "x 12"}\n{"a": -3e5, "b": false}\nnot json 7\n'
    rows, stats = load(data, "json", primitives_as_string=True)
    assert rows[0] == {"a": "1.50", "b": "true", "c": {"d": "10"}, "e": ["1", "2.0"], "s": "x 12", RESCUED: None}
    assert (rows[1]["a"], rows[1]["b"]) == ("-3e5", "false")
    assert rescued(rows[2]) == {"_malformed": "not json 7"} and stats.bad_records == 1
    single = load(b"{'a': 0.10, 'b': 'v 1'}\n", "json", primitives_as_string=True)[0]
    assert (single[0]["a"], single[0]["b"]) == ("0.10", "v 1")


JSON_BAD = b'{"a": 1}\n\n{"a": 2\n{"a": 3}\nnope\n'


def test_json_modes() -> None:
    rows, stats = load(JSON_BAD, "json")
    assert len(rows) == 4 and stats.bad_records == 2
    rows, stats = load(JSON_BAD, "json", mode="dropmalformed")
    assert [r["a"] for r in rows] == [1, 3] and (stats.records, stats.bad_records) == (2, 2)
    with pytest.raises(BadFileError, match=r"^f is not valid JSON: malformed line 3 \(mode failfast\)"):
        load(JSON_BAD, "json", mode="failfast")


def test_json_failfast_counts_lines_across_blocks() -> None:
    data = b'{"a": 1}\n' * 50_000 + b"{broken\n"
    config = fmt("json", mode="failfast")
    with pytest.raises(BadFileError, match="malformed line 50001 "):
        list(
            read_file(io.BytesIO(data), "f", config, pa.schema([("a", pa.int64())]), FileReadStats(), block_bytes=4096)
        )

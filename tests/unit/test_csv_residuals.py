"""Residuals of issue #11 on the embedded engine's CSV reader: multiline CSV checks its quoting (a badly quoted record
is rescued, a quote left open quarantines the file naming where it opened, nothing is loaded garbled), proven
against Python's csv module with hypothesis; text that is not UTF-8 in a stream that cannot seek is named with its
byte offset and line."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import FormatConfig
from core.errors import BadFileError
from core.formats import RESCUED, FileReadStats, csv_lines, infer_file_schema, nulls_to_string, read_file
from core.formats.csv_lines import quoted_fields
from core.formats.csv_reader import delimiter_hint

NAMES = ["a", "b", "c"]
STRINGS = pa.schema([(name, pa.string()) for name in NAMES])
GOOD = b"a,b,c\n" + b"x,y,z\n" * 20  # enough good rows that the odd ones are a minority


def fmt(**options: Any) -> FormatConfig:
    return FormatConfig.model_validate({"type": "csv", "options": options})


def load(data: bytes, stream: Any = None, **options: Any) -> list[dict[str, Any]]:
    batches = read_file(stream or io.BytesIO(data), "f.csv", fmt(**options), STRINGS, FileReadStats())
    return [row for batch in batches for row in batch.to_pylist()]


def malformed(text: str) -> dict[str, Any]:
    return {"a": None, "b": None, "c": None, RESCUED: json.dumps({"_malformed": text}, separators=(",", ":"))}


def refused(data: bytes, **options: Any) -> str:
    with pytest.raises(BadFileError) as err:
        load(data, **options)
    return err.value.message


# ---------------------------------------------------------------------------------------------------------------------
# multiline CSV: badly quoted records are rescued, a quote left open quarantines the file


def test_multiline_closing_quote_followed_by_text_is_rescued_not_garbled() -> None:
    rows = load(GOOD + b'"a "x" c",1,2\nz,"w\nv",u\n', multiline=True)
    assert {"a": "z", "b": "w\nv", "c": "u", RESCUED: None} in rows
    assert rows[-1] == malformed('"a "x" c",1,2')
    assert not any(row["a"] == 'a x" c"' for row in rows)  # what Arrow alone reads


def test_multiline_bad_record_spanning_lines_is_rescued_whole_and_the_next_records_load() -> None:
    rows = load(GOOD + b'"open,1,2\nz,w,u\n"q",r,s\nm,n,o\n', multiline=True)
    assert rows[-2:] == [
        {"a": "m", "b": "n", "c": "o", RESCUED: None},
        malformed('"open,1,2\nz,w,u\n"q",r,s'),
    ]


def test_multiline_quote_left_open_quarantines_the_file_naming_line_and_byte() -> None:
    data = GOOD + b'm,"fine\nvalue",o\nx,"open,1\nz,w,u\nq,r,s\n'
    message = refused(data, multiline=True)
    assert message == (
        "f.csv is not valid CSV: the quoted value opened on line 24 (byte 145) is not closed before the end of the file"
    )
    assert data[145:150] == b'"open'


def test_multiline_quote_left_open_in_a_record_longer_than_a_block() -> None:
    with mock.patch.object(csv_lines, "BLOCK_BYTES", 64):
        message = refused(GOOD + b'm,n,"' + b"long line\n" * 50, multiline=True)
    assert "opened on line 22 (byte 130)" in message


def test_multiline_failfast_names_the_line_of_the_bad_record() -> None:
    message = refused(GOOD + b'm,"two\nlines",o\n"a "x" c",1,2\n', multiline=True, mode="failfast")
    assert "malformed row at line 24 (mode failfast)" in message


def test_multiline_stray_quote_inside_a_value_reads_as_python_reads_it() -> None:
    rows = load(GOOD + b'x"y,1,2\nz,"w\nv",u\n', multiline=True)
    assert {"a": 'x"y', "b": "1", "c": "2", RESCUED: None} in rows
    assert {"a": "z", "b": "w\nv", "c": "u", RESCUED: None} in rows
    assert len(rows) == 22


# ---------------------------------------------------------------------------------------------------------------------
# differential: multiline CSV written by Python's csv module loads exactly as Python reads it back; broken files are
# never loaded garbled

# A carriage return only after a line feed: csv.writer does not quote a lone one unless it ends its lines.
TEXT = st.lists(
    st.sampled_from(["a", "b", '"', "\\", ",", ";", "\n", "\r\n", " ", "é", "\t"]), min_size=1, max_size=8
).map("".join)
DIALECTS = st.fixed_dictionaries(
    {
        "delimiter": st.sampled_from([",", ";", "\t"]),
        "quoting": st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
        "escape": st.sampled_from([None, "\\"]),
        "lineterminator": st.sampled_from(["\n", "\r\n"]),
    }
)


def write(rows: list[list[str]], dialect: dict[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=dialect["delimiter"],
        quoting=dialect["quoting"],
        escapechar=dialect["escape"],
        doublequote=dialect["escape"] is None,
        lineterminator=dialect["lineterminator"],
    )
    writer.writerow(NAMES)
    writer.writerows(rows)
    return out.getvalue().encode()


def options_of(dialect: dict[str, Any]) -> dict[str, Any]:
    escape = {"escape": dialect["escape"]} if dialect["escape"] else {}
    return {"multiline": True, "delimiter": dialect["delimiter"], **escape}


def python_reads(data: bytes, options: dict[str, Any]) -> tuple[list[tuple[Any, ...]], int, bool]:
    """What Python's csv module (strict) reads: rows shaped like the table's (missing fields None, extra fields as
    `_c<index>`), the number of records it refuses (it goes on at the next line), and whether a quote is left open.

    Strict Python also calls a last record that an escaped line break carries on to the end of a file without a
    final newline "unexpected end of data" (`a,b\\<newline>c` at the end), where no quote is open; the file's end
    ends that record, as it ends any last line without a newline (hypothesis found the difference)."""
    found = _strict_reads(data, options)
    if found[2] and not data.endswith(b"\n"):
        ended = _strict_reads(data + b"\n", options)
        if not ended[2]:
            return ended
    return found


def _strict_reads(data: bytes, options: dict[str, Any]) -> tuple[list[tuple[Any, ...]], int, bool]:
    escape = options.get("escape")
    reader = csv.reader(
        io.StringIO(data.decode(), newline=""),
        delimiter=options["delimiter"],
        escapechar=escape,
        doublequote=True,
        strict=True,
    )
    rows: list[tuple[Any, ...]] = []
    refused_count = 0
    next(reader)  # the header
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return rows, refused_count, False
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return rows, refused_count, True
            refused_count += 1
            continue
        if row:
            values = [value or None for value in row]  # empty and "" alike (see `table_rows`)
            extra = {f"_c{i}": v for i, v in enumerate(values) if i >= len(NAMES) and v is not None}
            rows.append((*(values[: len(NAMES)] + [None] * (len(NAMES) - len(values))), tuple(sorted(extra.items()))))


def table_rows(rows: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], int]:
    """Loaded rows in `python_reads`' shape, and the number of rescued malformed records. An empty field is NULL and a
    quoted "" an empty string in the table, while Python reads both as '': they are compared as None."""
    good: list[tuple[Any, ...]] = []
    malformed = 0
    for row in rows:
        rescued = json.loads(row[RESCUED]) if row[RESCUED] else None
        if rescued is not None and "_malformed" in rescued:
            malformed += 1
            continue
        extra = {key: value for key, value in (rescued or {}).items() if value != ""}
        good.append((*(row[name] or None for name in NAMES), tuple(sorted(extra.items()))))
    return good, malformed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(TEXT, min_size=3, max_size=3), min_size=1, max_size=12), DIALECTS)
def test_clean_multiline_csv_loads_as_pythons_csv_reads_it(rows: list[list[str]], dialect: dict[str, Any]) -> None:
    data = write(rows, dialect)
    options = options_of(dialect)
    expected, refused_count, unclosed = python_reads(data, options)
    assert (refused_count, unclosed) == (0, False)
    with mock.patch.object(csv_lines, "BLOCK_BYTES", 48):  # records across blocks
        loaded = table_rows(load(data, **options))
    assert Counter(loaded[0]) == Counter(expected) and loaded[1] == 0


BREAKS = st.lists(st.tuples(st.floats(0, 1), st.sampled_from(['"', 'x"', '"y', '" ', "\\", '""'])), min_size=1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(TEXT, min_size=3, max_size=3), min_size=1, max_size=12), DIALECTS, BREAKS)
def test_broken_multiline_csv_is_never_loaded_garbled(
    rows: list[list[str]], dialect: dict[str, Any], breaks: list[tuple[float, str]]
) -> None:
    text_data = write(rows, dialect).decode()
    header = text_data.index("\n") + 1
    for where, text in breaks:  # inserted after the header, possibly inside quoted values
        at = header + int(where * (len(text_data) - header))
        text_data = text_data[:at] + text + text_data[at:]
    data = text_data.encode()
    options = options_of(dialect)
    expected, refused_count, unclosed = python_reads(data, options)
    with mock.patch.object(csv_lines, "BLOCK_BYTES", 48):
        try:
            loaded = table_rows(load(data, **options))
        except BadFileError as exc:  # quarantined, nothing loaded: for a quote left open, or mostly bad rows
            assert unclosed or "rows do not have the first row's 3 fields" in exc.message
            return
    assert Counter(loaded[0]) == Counter(expected)
    assert loaded[1] == refused_count + unclosed  # a record cut short by the end of the file is rescued


def test_quoted_fields_agree_with_the_rows_python_parses() -> None:
    """The rows set aside in multiline mode go through `python_rows`, like the others: a guard that quoted
    values holding line breaks are told apart from empty fields there too."""
    assert quoted_fields('"a\nb",,""', fmt(multiline=True).options) == [True, False, True]


# ---------------------------------------------------------------------------------------------------------------------
# text that is not UTF-8 in a stream that cannot seek: byte offset and line, counted as the text streams through


class ObjectStoreBody(io.RawIOBase):
    """A stream that cannot seek and reads in short pieces, like an object store's response body (S3's
    StreamingBody, Azure's and GCS's download streams, an SFTP file read ahead): simulated, no store runs here."""

    def __init__(self, data: bytes, piece: int = 1000):
        super().__init__()
        self._data = io.BytesIO(data)
        self._piece = piece

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self._piece]
        return self._data.readinto(view)


NOT_UTF8 = "the text is not UTF-8 encoded at byte "


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see test_reader_residuals
@pytest.mark.parametrize("bad_row", [b"caf\xe9,1,2\n", b"caf\xe9,1,2,3\n", b'"caf\xe9 "x" y",1,2\n'])
@pytest.mark.parametrize("multiline", [False, True])
def test_csv_not_utf8_in_a_stream_that_cannot_seek_names_byte_and_line(bad_row: bytes, multiline: bool) -> None:
    rows = b"q,r,s\n" * 40_000  # 240 KB: the bad byte is far past the first block Arrow reads
    data = GOOD + rows + bad_row + GOOD[6:]
    offset = len(GOOD) + len(rows) + bad_row.index(b"\xe9")
    with pytest.raises(BadFileError) as err:
        load(b"", stream=ObjectStoreBody(data), multiline=multiline)
    line = data.count(b"\n", 0, offset) + 1
    assert f"{NOT_UTF8}{offset:,} (line {line:,});" in err.value.message


def test_csv_not_utf8_on_a_comment_line_is_not_read() -> None:
    data = GOOD + b"# caf\xe9\n" + b"q,r,s\n"
    assert load(b"", stream=ObjectStoreBody(data), comment="#")[-1] == {"a": "q", "b": "r", "c": "s", RESCUED: None}
    with pytest.raises(BadFileError, match=NOT_UTF8 + "142 \\(line 24\\);"):
        load(b"", stream=ObjectStoreBody(data + b"caf\xe9,1,2\n"), comment="#")


def test_csv_not_utf8_in_a_compressed_stream_names_the_byte_of_the_decompressed_text() -> None:
    import gzip

    data = GOOD + b"caf\xe9,1,2\n"
    with pytest.raises(BadFileError, match=NOT_UTF8 + "129 of the decompressed text \\(line 22\\);"):
        load(b"", stream=ObjectStoreBody(gzip.compress(data)))


@pytest.mark.parametrize(
    ("names", "delimiter", "hint"),
    [
        (["species;island;year"], ",", "holding ';' 2 times: the file looks ';'-separated"),
        (["a\tb"], ",", "holding '\\t' 1 time: the file looks '\\t'-separated; set format.options.delimiter to '\\t'"),
        (["a|b|c|d"], ";", "holding '|' 3 times"),
        (["plain"], ",", ""),
        (["a;b", "c"], ",", ""),  # more than one column: the delimiter splits the row
    ],
)
def test_a_one_column_first_row_names_the_delimiter_it_holds(names: list[str], delimiter: str, hint: str) -> None:
    found = delimiter_hint(names, delimiter)
    assert (hint in found) if hint else found == "", found


def test_a_semicolon_file_read_with_commas_is_set_aside_naming_the_delimiter() -> None:
    data = b"species;island;bill;year\n" + "".join(f"Adelie;Torgersen;39,{i};2007\n" for i in range(40)).encode()
    fmt = FormatConfig(type="csv")
    schema = nulls_to_string(infer_file_schema(io.BytesIO(data), fmt, path="p.csv"))
    with pytest.raises(BadFileError) as refused:
        list(read_file(io.BytesIO(data), "p.csv", fmt, schema, FileReadStats()))
    assert "set format.options.delimiter to ';'" in refused.value.message, refused.value.message

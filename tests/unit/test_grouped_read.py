"""Small JSON-lines files read as one (core/formats/grouped.py): each file's rows from a group read are exactly the
rows reading that file alone gives (differential, hypothesis for edge values), and a group with anything a file
read would report (malformed records, compression, a byte order mark, a blank file) is refused as a group."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import FormatConfig
from core.formats.grouped import can_group, read_group
from core.formats.readers import read_file
from core.formats.streams import FileReadStats

FMT = FormatConfig.model_validate({"type": "json"})
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("amount", pa.float64()),
        ("when", pa.timestamp("us", tz="UTC")),
        ("tags", pa.list_(pa.string())),
        ("inner", pa.struct([("a", pa.int64()), ("b", pa.string())])),
    ]
)


def alone(path: str, data: bytes) -> pa.Table:
    stats = FileReadStats()
    batches = list(read_file(io.BytesIO(data), path, FMT, SCHEMA, stats))
    assert not stats.bad_records
    return pa.Table.from_batches(batches) if batches else pa.Table.from_batches([], schema=batches_schema())


def batches_schema() -> pa.Schema:
    from core.formats.conform import output_schema

    return output_schema(SCHEMA)


values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=3),
    st.fixed_dictionaries({"a": st.integers(-5, 5), "b": st.text(max_size=3)}),
    st.sampled_from(["2026-12-01T02:33:12Z", "2026-12-01", "2026-12-01T02:33:12.5+02:00", "not a time"]),
)
keys = st.sampled_from(["id", "name", "amount", "when", "tags", "inner", "extra"])
records = st.dictionaries(keys, values, max_size=7)


def file_bytes(rows: list[dict[str, object]], newline: str, last_newline: bool, blank_lines: bool) -> bytes:
    lines = [json.dumps(row) for row in rows]
    if blank_lines:
        lines.insert(len(lines) // 2, "   ")
    text = newline.join(lines) + (newline if last_newline else "")
    return text.encode()


files = st.lists(
    st.builds(
        file_bytes,
        st.lists(records, min_size=1, max_size=6),
        st.sampled_from(["\n", "\r\n"]),
        st.booleans(),
        st.booleans(),
    ),
    min_size=2,
    max_size=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files)
def test_each_files_rows_are_what_reading_it_alone_gives(contents: list[bytes]) -> None:
    named = [(f"/in/f{i}.json", data) for i, data in enumerate(contents)]
    pieces = read_group(named, FMT, SCHEMA)
    if pieces is None:
        return  # some file has a record a group cannot take (it is then read alone): nothing to compare
    for (path, data), piece in zip(named, pieces, strict=True):
        assert piece.equals(alone(path, data)), path


def test_clean_files_are_read_as_a_group_with_nested_columns_copied() -> None:
    named = [
        ("/in/a.json", b'{"id": 1, "inner": {"a": 1, "b": "x"}, "tags": ["t"]}\n{"id": 2}\n'),
        ("/in/b.json", b'{"id": 3, "name": "c"}'),
    ]
    pieces = read_group(named, FMT, SCHEMA)
    assert pieces is not None and [p.num_rows for p in pieces] == [2, 1]
    assert pieces[1].column("id").to_pylist() == [3] and pieces[1].column("name").to_pylist() == ["c"]
    assert all(column.chunk(0).offset == 0 for column in pieces[1].columns)  # a copy, not a slice


def test_anything_a_file_read_would_report_refuses_the_group() -> None:
    good = ("/in/good.json", b'{"id": 1}\n')
    for bad in (
        b'{"id": 2}\n{"id": \n',  # a malformed record
        gzip.compress(b'{"id": 2}\n'),  # compressed
        b'\xef\xbb\xbf{"id": 2}\n',  # a byte order mark
        b"  \n\n",  # blank
        b'{"id": 2}\x00\n',  # a NUL byte
        b'{"id": 2, "extra": 0}\n',  # a value rescued: its text must not depend on the other files (0 vs 0.0)
    ):
        assert read_group([good, ("/in/bad.json", bad)], FMT, SCHEMA) is None, bad


def test_only_plain_json_lines_are_grouped() -> None:
    assert can_group(FMT)
    for options in ({"multiline": True}, {"compression": "gzip"}, {"encoding": "latin-1"}):
        assert not can_group(FormatConfig.model_validate({"type": "json", "options": options})), options
    assert not can_group(FormatConfig.model_validate({"type": "csv"}))

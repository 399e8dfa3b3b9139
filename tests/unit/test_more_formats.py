"""ORC, Avro, text and XML on the embedded engine's readers, and LZ4/Snappy frames (core/formats): real files, no
mocks. References are independent of the reader where possible: the ORC files (and their JSON dumps) that pyarrow's
wheel ships from the Apache ORC project, Avro bytes encoded here by hand from the specification, XML read back with
`xml.etree`, text split by `re`, Snappy frames built here from the framing format's chunks."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import re
import struct
import uuid
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import fastavro
import pyarrow as pa
import pyarrow.orc as orc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.config import STORED, FormatConfig
from core.errors import BadFileError
from core.formats import RESCUED, FileReadStats, detect_compression, infer_file_schema, open_decompressed, read_file
from core.formats.compression import SNAPPY_FRAMED_MAGIC
from core.formats.nesting import MAX_JSON_DEPTH

UTC = dt.UTC
UTC_TS = pa.timestamp("us", tz="UTC")
ORC_DATA = Path(pa.__file__).parent / "tests" / "data" / "orc"


def fmt_of(kind: str, **options: Any) -> FormatConfig:
    return FormatConfig(type=kind, options=options)  # type: ignore[arg-type]


def load(
    data: bytes, fmt: FormatConfig, name: str = "file", **kwargs: Any
) -> tuple[pa.Schema, list[dict], FileReadStats]:
    """The file's inferred schema, its rows read with that schema, and the read's counts."""
    schema = infer_file_schema(io.BytesIO(data), fmt, path=name)
    stats = FileReadStats()
    batches = list(read_file(io.BytesIO(data), name, fmt, schema, stats, **kwargs))
    return schema, [row for b in batches for row in b.to_pylist()], stats


def refused(data: bytes, fmt: FormatConfig, name: str = "bad.file") -> str:
    """The message of the BadFileError that reading (or inferring) the file raises."""
    with pytest.raises(BadFileError) as caught:
        schema = infer_file_schema(io.BytesIO(data), fmt, path=name)
        list(read_file(io.BytesIO(data), name, fmt, schema, FileReadStats()))
    assert name in caught.value.message and caught.value.action
    return caught.value.message


# ---------------------------------------------------------------------------------------------------------------------
# ORC: the Apache ORC project's test files, compared with the JSON dumps shipped beside them


def _orc_reference(name: str) -> list[dict[str, Any]]:
    lines = gzip.decompress((ORC_DATA / f"{name}.jsn.gz").read_bytes()).decode().splitlines()
    return [json.loads(line, parse_float=Decimal) for line in lines if line.strip()]


def _same(mine: Any, reference: Any) -> bool:
    """Our value equals the JSON dump's: numbers by value, bytes as lists of ints, timestamps as text (UTC), maps as
    lists of {key, value}."""
    if isinstance(mine, dt.datetime):
        return mine == dt.datetime.fromisoformat(reference).replace(tzinfo=UTC)
    if isinstance(mine, dt.date):
        return mine.isoformat() == reference
    if isinstance(mine, bytes):
        return list(mine) == reference
    if isinstance(mine, float | Decimal) and isinstance(reference, int | Decimal):
        return Decimal(str(mine)) == Decimal(reference)
    if isinstance(mine, dict):
        return all(_same(mine[k], reference.get(k)) for k in mine)
    if isinstance(mine, list):
        if reference and isinstance(reference, list) and isinstance(mine[0], tuple):
            return [{"key": k, "value": v} for k, v in mine] == reference
        return len(mine) == len(reference) and all(_same(a, b) for a, b in zip(mine, reference, strict=True))
    return bool(mine == reference)


@pytest.mark.parametrize("name", ["TestOrcFile.test1", "TestOrcFile.testDate1900", "decimal"])
def test_orc_files_of_the_orc_project_read_as_their_json_dumps(name: str) -> None:
    path = ORC_DATA / f"{name}.orc"
    if not path.exists():
        pytest.skip("this pyarrow wheel ships no ORC test files")
    data = path.read_bytes()
    schema, rows, stats = load(data, fmt_of("orc"))
    reference = _orc_reference(name)
    assert stats.records == len(rows) == len(reference) == orc.ORCFile(pa.BufferReader(data)).nrows
    for mine, theirs in zip(rows, reference, strict=True):
        assert mine.pop(RESCUED) is None
        assert set(mine) == set(theirs)
        bad = {k: (mine[k], theirs[k]) for k in mine if not _same(mine[k], theirs[k])}
        assert not bad, bad
    if name == "TestOrcFile.testDate1900":
        assert schema.field("time").type == UTC_TS  # ORC's timestamp (nanoseconds, no zone) as UTC microseconds


def test_orc_is_read_a_stripe_at_a_time() -> None:
    path = ORC_DATA / "TestOrcFile.testDate1900.orc"
    if not path.exists():
        pytest.skip("this pyarrow wheel ships no ORC test files")
    fmt = fmt_of("orc")
    data = path.read_bytes()
    schema = infer_file_schema(io.BytesIO(data), fmt, path="f")
    sizes = [b.num_rows for b in read_file(io.BytesIO(data), "f", fmt, schema, FileReadStats())]
    assert len(sizes) == orc.ORCFile(pa.BufferReader(data)).nstripes == 8 and sum(sizes) == 70_000


def _orc_bytes(table: pa.Table, **options: Any) -> bytes:
    sink = io.BytesIO()
    orc.write_table(table, sink, **options)
    return sink.getvalue()


def test_orc_rows_conform_to_the_table_schema() -> None:
    data = _orc_bytes(pa.table({"id": pa.array([1, 2], pa.int32()), "extra": ["a", None], "n": ["1", "x"]}))
    target = pa.schema([("id", pa.int64()), ("n", pa.int64())])
    stats = FileReadStats()
    rows = [r for b in read_file(io.BytesIO(data), "f.orc", fmt_of("orc"), target, stats) for r in b.to_pylist()]
    assert [(r["id"], r["n"]) for r in rows] == [(1, 1), (2, None)]
    assert [json.loads(r[RESCUED]) if r[RESCUED] else None for r in rows] == [{"extra": "a"}, {"n": "x"}]


def test_an_empty_orc_file_has_its_columns_and_no_rows() -> None:
    path = ORC_DATA / "TestOrcFile.emptyFile.orc"
    if not path.exists():
        pytest.skip("this pyarrow wheel ships no ORC test files")
    schema, rows, _ = load(path.read_bytes(), fmt_of("orc"))
    assert "string1" in schema.names and rows == []


def test_bad_orc_files_are_refused_with_a_reason() -> None:
    good = _orc_bytes(pa.table({"id": list(range(2000)), "s": [f"v{i}" for i in range(2000)]}), compression="zstd")
    fmt = fmt_of("orc")
    assert "is empty" in refused(b"", fmt)
    assert "cut short or damaged" in refused(good[: len(good) // 2], fmt)
    assert "gzip-compressed" in refused(gzip.compress(good), fmt)
    assert "not an ORC file" in refused(b'{"id": 1}\n', fmt)


# ---------------------------------------------------------------------------------------------------------------------
# Avro: a file encoded here by hand from the specification (not by fastavro's writer)


def _long(n: int) -> bytes:
    """Avro's zig-zag varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes(b: bytes) -> bytes:
    return _long(len(b)) + b


def _str(s: str) -> bytes:
    return _bytes(s.encode())


def _container(schema: dict[str, Any], records: list[bytes], codec: str = "null", per_block: int = 2) -> bytes:
    sync = bytes(range(16))
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": codec.encode()}
    out = b"Obj\x01" + _long(len(meta)) + b"".join(_str(k) + _bytes(v) for k, v in meta.items()) + _long(0) + sync
    for start in range(0, len(records), per_block):
        block = b"".join(records[start : start + per_block])
        if codec == "deflate":
            packer = zlib.compressobj(wbits=-15)
            block = packer.compress(block) + packer.flush()
        out += _long(len(records[start : start + per_block])) + _long(len(block)) + block + sync
    return out


_AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "qty", "type": "int"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "at_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "local", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "key", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "clock", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "note", "type": ["null", "string"]},
        {"name": "either", "type": ["int", "string"]},
        {"name": "wide", "type": ["int", "long", "double"]},
        {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "raw", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "ok", "type": "boolean"},
        {"name": "ratio", "type": "float"},
        {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "double"}]}},
        {"name": "again", "type": ["null", "Inner"]},
    ],
}


def _order(i: int) -> tuple[bytes, dict[str, Any]]:
    """Record i encoded by hand, and the row the table must hold for it."""
    cents = -12345 if i % 2 else 99_999_999
    at = dt.datetime(2024, 2, 29, 23, 59, 59, 123000, tzinfo=UTC) + dt.timedelta(days=i)
    micros = int((at - dt.datetime(1970, 1, 1, tzinfo=UTC)) / dt.timedelta(microseconds=1)) + 456
    key = uuid.UUID(int=i * 7919)
    body = b"".join(
        [
            _long(2**62 + i),
            _long(-(2**31)),
            _bytes(cents.to_bytes(8, "big", signed=True).lstrip(b"\x00") or b"\x00"),
            _long(micros // 1000),
            _long(micros),
            _long(micros),
            _long(-719_162 + i),  # 0001-01-01 + i days
            _str(str(key)),
            _long(3_723_004),  # 01:02:03.004
            _long(0) if i % 2 else _long(1) + _str("naïve ☃"),
            _long(0) + _long(7) if i % 2 else _long(1) + _str("seven"),
            _long(2) + struct.pack("<d", 0.5) if i % 2 else _long(1) + _long(2**40),
            _long(1),
            _long(2) + _str("a") + _str("") + _long(0),
            _long(1) + _str("k") + _long(-1) + _long(0),
            b"\x00\xff\x10\x80",
            b"\x01",
            struct.pack("<f", 1.5),
            struct.pack("<d", -0.0),
            _long(1) + struct.pack("<d", 2.25) if i % 2 else _long(0),
        ]
    )
    row = {
        "id": 2**62 + i,
        "qty": -(2**31),
        "price": Decimal(cents).scaleb(-2),
        "at_ms": at,
        "at_us": at + dt.timedelta(microseconds=456),
        "local": at + dt.timedelta(microseconds=456),
        "day": dt.date(1, 1, 1) + dt.timedelta(days=i),
        "key": str(key),
        "clock": "01:02:03.004000",
        "note": None if i % 2 else "naïve ☃",
        "either": "7" if i % 2 else "seven",
        "wide": 0.5 if i % 2 else float(2**40),
        "color": "GREEN",
        "tags": ["a", ""],
        "attrs": [("k", -1)],
        "raw": b"\x00\xff\x10\x80",
        "ok": True,
        "ratio": 1.5,
        "inner": {"x": -0.0},
        "again": {"x": 2.25} if i % 2 else None,
        RESCUED: None,
    }
    return body, row


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_avro_logical_types_and_unions_map_exactly(codec: str) -> None:
    encoded = [_order(i) for i in range(5)]
    data = _container(_AVRO_SCHEMA, [body for body, _ in encoded], codec)
    schema, rows, stats = load(data, fmt_of("avro"))
    expected_types = {
        "id": pa.int64(),
        "qty": pa.int32(),
        "price": pa.decimal128(9, 2),
        "at_ms": UTC_TS,
        "at_us": UTC_TS,
        "local": UTC_TS,
        "day": pa.date32(),
        "key": pa.string(),
        "clock": pa.string(),
        "note": pa.string(),
        "either": pa.string(),
        "wide": pa.float64(),
        "color": pa.string(),
        "tags": pa.list_(pa.string()),
        "attrs": pa.map_(pa.string(), pa.int64()),
        "raw": pa.binary(),
        "ok": pa.bool_(),
        "ratio": pa.float32(),
        "inner": pa.struct([("x", pa.float64())]),
        "again": pa.struct([("x", pa.float64())]),
    }
    assert {f.name: f.type for f in schema} == expected_types
    assert stats.records == 5
    assert rows == [row for _, row in encoded]


def test_avro_recursive_records_and_wide_decimals_become_text() -> None:
    schema = {
        "type": "record",
        "name": "Node",
        "fields": [
            {"name": "v", "type": "int"},
            {"name": "next", "type": ["null", "Node"]},
            {"name": "big", "type": {"type": "bytes", "logicalType": "decimal", "precision": 40, "scale": 1}},
        ],
    }
    body = _long(1) + _long(1) + _long(2) + _long(0) + _bytes(b"\x00") + _bytes((10**39 + 5).to_bytes(17, "big"))
    data = _container(schema, [body + _bytes((10**39 + 5).to_bytes(17, "big"))])
    columns, rows, _ = load(data, fmt_of("avro"))
    assert columns.field("next").type == pa.string()  # Node inside Node: its JSON text
    assert json.loads(rows[0]["next"]) == {"v": 2, "next": None, "big": "0.0"}
    assert rows[0]["big"] == "1" + "0" * 37 + "0.5"


_FASTAVRO_SCHEMA = {
    "type": "record",
    "name": "r",
    "fields": [
        {"name": "n", "type": "long"},
        {"name": "d", "type": "double"},
        {"name": "s", "type": ["null", "string"]},
        {"name": "m", "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 10}},
        {"name": "t", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "n": st.integers(-(2**63), 2**63 - 1),
                "d": st.floats(allow_nan=False),
                "s": st.none() | st.text(),
                "m": st.decimals(min_value=-(10**27) + 1, max_value=10**27 - 1, places=10, allow_nan=False),
                "t": st.datetimes(
                    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(UTC)
                ),
            }
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(["null", "deflate", "snappy", "zstandard"]),
)
def test_avro_edge_values_round_trip(records: list[dict[str, Any]], codec: str) -> None:
    sink = io.BytesIO()
    fastavro.writer(sink, _FASTAVRO_SCHEMA, records, codec=codec, sync_interval=64)
    _, rows, _ = load(sink.getvalue(), fmt_of("avro"))
    assert [{k: v for k, v in r.items() if k != RESCUED} for r in rows] == records
    assert all(r[RESCUED] is None for r in rows)


def test_avro_blocks_are_gathered_into_batches() -> None:
    sink = io.BytesIO()
    only_n = {**_FASTAVRO_SCHEMA, "fields": _FASTAVRO_SCHEMA["fields"][:1]}
    fastavro.writer(sink, only_n, [{"n": i} for i in range(40_000)], sync_interval=1000)
    fmt = fmt_of("avro")
    data = sink.getvalue()
    schema = infer_file_schema(io.BytesIO(data), fmt, path="f")
    batches = list(read_file(io.BytesIO(data), "f", fmt, schema, FileReadStats()))
    assert 1 < len(batches) < 10 and [r["n"] for b in batches for r in b.to_pylist()] == list(range(40_000))


def test_bad_avro_files_are_refused_with_a_reason() -> None:
    rows = [
        {"n": i, "d": 0.5, "s": f"x{i}" * 5, "m": Decimal(1), "t": dt.datetime(2024, 1, 1, tzinfo=UTC)}
        for i in range(500)
    ]
    sink = io.BytesIO()
    fastavro.writer(sink, _FASTAVRO_SCHEMA, rows, codec="deflate", sync_interval=2000)
    good = sink.getvalue()
    fmt = fmt_of("avro")
    assert "is empty" in refused(b"", fmt)
    assert "cut short" in refused(good[: len(good) - 100], fmt)
    assert "cut short" in refused(good[:30], fmt)
    assert "gzip-compressed" in refused(gzip.compress(good), fmt)
    assert "not an Avro data file" in refused(b"id,name\n1,a\n", fmt)
    assert "corrupt" in refused(good[:600] + bytes(100) + good[700:], fmt)  # deflate data scrambled
    sync = good[-16:]  # the sync marker follows the header and every block
    first_block_end = good.index(sync, good.index(sync) + 16)
    broken_sync = good[:first_block_end] + bytes(16) + good[first_block_end + 16 :]
    assert "sync marker" in refused(broken_sync, fmt)


# ---------------------------------------------------------------------------------------------------------------------
# Text


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"])), min_size=1),
    st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1),
    st.booleans(),
    st.integers(1, 9),
)
def test_text_lines_split_on_every_line_end_across_blocks(
    lines: list[str], ends: list[str], last_end: bool, block: int
) -> None:
    text = "".join(line + ends[i % len(ends)] for i, line in enumerate(lines))
    if not last_end:
        text = text[: -len(ends[(len(lines) - 1) % len(ends)])]
    data = text.encode()
    if not data:
        return
    reference = re.split("\r\n|\r|\n", text)
    if text.endswith(("\n", "\r")):
        reference = reference[:-1]
    _, rows, stats = load(data, fmt_of("text"), block_bytes=block)
    assert [r["value"] for r in rows] == reference and stats.records == len(reference)


def test_text_wholetext_is_one_row_and_compression_is_detected() -> None:
    import cramjam

    text = "first line\r\nsecond\n\nlast without end"
    for packed in (text.encode(), gzip.compress(text.encode()), bytes(cramjam.snappy.compress(text.encode()))):
        schema, rows, _ = load(packed, fmt_of("text", wholetext=True))
        assert schema == pa.schema([("value", pa.string())]) and rows == [{"value": text, RESCUED: None}]
    _, rows, _ = load(text.encode("latin-1"), fmt_of("text", encoding="latin-1"))
    assert [r["value"] for r in rows] == ["first line", "second", "", "last without end"]


def test_bad_text_files_are_refused_with_a_reason() -> None:
    fmt = fmt_of("text")
    assert "is empty" in refused(b"", fmt)
    assert "UTF-8" in refused("Müller\n".encode("latin-1"), fmt)
    assert "Parquet" in refused(b"PAR1" + bytes(100), fmt)
    assert "NUL" in refused(b"a\x00b\n", fmt)
    lines = gzip.compress(b"".join(b"line %d\n" % i for i in range(10_000)))
    assert "gzip-compressed text" in refused(lines[: len(lines) // 2], fmt)


# ---------------------------------------------------------------------------------------------------------------------
# XML


_ORDERS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- an export -->
<orders xmlns:x="urn:x">
  <order id="1" status="new">
    <zip>01234</zip><amount>12.50</amount><when>2024-01-31T10:00:00Z</when>
    <item sku="a">2</item><item sku="b">1</item>
    <customer><name>Ada &amp; Co</name><vip>true</vip></customer>
    <x:note><![CDATA[<raw> & text]]></x:note>
  </order>
  <order id="2">
    <zip>99999</zip><amount></amount><when>2024-02-01T00:00:00Z</when>
    <item sku="c">5</item>
    <customer><name>Bob</name></customer>
  </order>
</orders>
"""


def _by_hand(data: bytes, tag: str) -> list[dict[str, Any]]:
    """The records as xml.etree reads them, by the same naming rules (the reference for the streamed reader)."""

    def value(e: ElementTree.Element) -> Any:
        children: dict[str, Any] = {}
        for child in e:
            v = value(child)
            children[child.tag] = (
                [*children[child.tag], v]
                if isinstance(children.get(child.tag), list)
                else ([children[child.tag], v] if child.tag in children else v)
            )
        text = (e.text or "").strip()
        if not e.attrib and not children:
            return text or None
        out = {"_" + k: v for k, v in e.attrib.items()} | children
        return out | ({"_VALUE": text} if text else {})

    root = ElementTree.fromstring(data)
    return [value(e) for e in root.iter(tag)]


def _text_of(v: Any) -> Any:
    """A typed value back to the text it came from (for comparing with the reference)."""
    if isinstance(v, dict):
        return {k: _text_of(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_text_of(x) for x in v]
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, dt.datetime):
        return v.isoformat().replace("+00:00", "Z")
    return None if v is None else str(v)


def test_xml_records_by_row_tag() -> None:
    schema, rows, stats = load(_ORDERS.replace(b"x:note", b"note"), fmt_of("xml", row_tag="order"))
    assert {f.name: f.type for f in schema} == {
        "_id": pa.int64(),
        "_status": pa.string(),
        "zip": pa.string(),  # 01234: leading zeros stay text
        "amount": pa.float64(),
        "when": UTC_TS,
        "item": pa.list_(pa.struct([("_sku", pa.string()), ("_VALUE", pa.int64())])),
        "customer": pa.struct([("name", pa.string()), ("vip", pa.bool_())]),
        "note": pa.string(),
    }
    assert stats.records == 2 and all(r[RESCUED] is None for r in rows)
    assert rows[0]["customer"] == {"name": "Ada & Co", "vip": True} and rows[0]["note"] == "<raw> & text"
    assert rows[1]["item"] == [{"_sku": "c", "_VALUE": 5}] and rows[1]["amount"] is None
    reference = _by_hand(_ORDERS.replace(b"x:note", b"note"), "order")
    mine = [{k: _text_of(v) for k, v in r.items() if k != RESCUED and v is not None} for r in rows]
    reference[1]["item"] = [reference[1]["item"]]  # one <item> is a list of one: the column is a list
    assert rows[0]["amount"] == float(reference[0].pop("amount")) and mine[0].pop("amount")
    assert mine == [{k: v for k, v in r.items() if v is not None} for r in reference]


def test_xml_values_that_do_not_fit_are_rescued_and_prefixes_kept() -> None:
    fmt = fmt_of("xml", row_tag="order")
    target = pa.schema([("_id", pa.int64()), ("zip", pa.int64()), ("customer", pa.struct([("name", pa.string())]))])
    stats = FileReadStats()
    rows = [r for b in read_file(io.BytesIO(_ORDERS), "o.xml", fmt, target, stats) for r in b.to_pylist()]
    assert rows[0]["zip"] is None and rows[1]["zip"] == 99999
    first = json.loads(rows[0][RESCUED])
    assert first["zip"] == "01234" and first["customer"] == {"name": "Ada & Co", "vip": "true"}
    assert first["x:note"] == "<raw> & text" and rows[0]["customer"] is None


def test_xml_in_utf16_and_declared_latin1() -> None:
    doc = '<?xml version="1.0" encoding="UTF-16"?><r><row><n>Müller ☃</n></row></r>'
    _, rows, _ = load(doc.encode("utf-16"), fmt_of("xml", row_tag="row"))
    assert rows[0]["n"] == "Müller ☃"
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><r><row><n>Müller</n></row></r>'.encode("latin-1")
    assert load(latin, fmt_of("xml", row_tag="row"))[1][0]["n"] == "Müller"


def test_xml_is_streamed_and_inferred_from_a_sample() -> None:
    rows_xml = b"".join(b"<row><id>%d</id><pad>%s</pad></row>" % (i, b"x" * 100) for i in range(30_000))
    data = b"<rows>" + rows_xml + b"<row><id>30000</id><late>new</late></row></rows>"
    fmt = fmt_of("xml", row_tag="row")
    schema = infer_file_schema(io.BytesIO(data), fmt, sample_bytes=64 * 1024, path="f")
    assert schema.names == ["id", "pad"]  # the late column is beyond the sample
    stats = FileReadStats()
    batches = list(read_file(io.BytesIO(data), "f", fmt, schema, stats))
    assert len(batches) > 1 and stats.records == 30_001
    assert json.loads(batches[-1].to_pylist()[-1][RESCUED]) == {"late": "new"}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<rows><row><v>&lol3;</v></row></rows>"""
EXTERNAL = (
    b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><rows><row><v>&x;</v></row></rows>"""
)


def test_hostile_xml_is_refused() -> None:
    fmt = fmt_of("xml", row_tag="row")
    assert "DTD" in refused(BILLION_LAUGHS, fmt)
    assert "DTD" in refused(EXTERNAL, fmt)
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        deep = b"<rows><row>" + b"<a>" * depth + b"1" + b"</a>" * depth + b"</row></rows>"
        assert "levels deep" in refused(deep, fmt)
    shallow = b"<rows><row>" + b"<a>" * (MAX_JSON_DEPTH - 1) + b"1" + b"</a>" * (MAX_JSON_DEPTH - 1) + b"</row></rows>"
    assert len(load(shallow, fmt)[1]) == 1


def test_bad_xml_files_are_refused_with_a_reason() -> None:
    fmt = fmt_of("xml", row_tag="order")
    assert "is empty" in refused(b"", fmt)
    assert "line" in refused(_ORDERS[:-40], fmt)  # cut short: where expat stopped
    assert "no <order> element" in refused(b"<orders><item/></orders>", fmt)
    assert "line 1" in refused(b"PAR1\x00\x01", fmt)


def test_xml_needs_a_row_tag() -> None:
    with pytest.raises(ValidationError, match=r"format\.options\.row_tag"):
        FormatConfig.model_validate({"type": "xml"})
    stored = FormatConfig.model_validate({"type": "xml"}, context=STORED)  # a stored spec still loads
    with pytest.raises(Exception, match=r"row_tag"):
        load(_ORDERS, stored)


# ---------------------------------------------------------------------------------------------------------------------
# LZ4 and Snappy frames


def _masked_crc(data: bytes) -> bytes:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8 & 0xFFFFFFFF).to_bytes(4, "little")


def _snappy_uncompressed_frames(data: bytes) -> bytes:
    """A Snappy framing-format stream of uncompressed chunks (type 0x01), built from the format's description."""
    out = SNAPPY_FRAMED_MAGIC + b"\xfe\x03\x00\x00pad"  # a padding chunk, to be skipped
    for start in range(0, len(data), 65_536):
        piece = data[start : start + 65_536]
        body = _masked_crc(piece) + piece
        out += b"\x01" + len(body).to_bytes(3, "little") + body
    return out


def test_lz4_and_snappy_frames_are_detected_and_read() -> None:
    import cramjam

    data = b"".join(b"%d,row %d\n" % (i, i) for i in range(300_000))  # several 1 MiB runs of chunks
    framed = {
        "lz4": bytes(pa.compress(data, codec="lz4", asbytes=True)),
        "snappy": bytes(cramjam.snappy.compress(data)),
        "snappy-by-hand": _snappy_uncompressed_frames(data),
    }
    for name, packed in framed.items():
        assert detect_compression(packed[:16]) == name.split("-")[0]
        assert open_decompressed(io.BytesIO(packed)).read() == data, name
    _, rows, _ = load(framed["snappy"], fmt_of("csv", header=False))
    assert len(rows) == 300_000 and rows[-1]["_c1"] == "row 299999"


def test_broken_lz4_and_snappy_frames_are_refused() -> None:
    import cramjam

    data = b"".join(b'{"id": %d}\n' % i for i in range(50_000))
    fmt = fmt_of("json")
    lz4 = bytes(pa.compress(data, codec="lz4", asbytes=True))
    snappy = bytes(cramjam.snappy.compress(data))
    assert "lz4-compressed" in refused(lz4[:1000], fmt)
    assert "cut short" in refused(snappy[:1000], fmt)
    by_hand = bytearray(_snappy_uncompressed_frames(data))
    by_hand[40] ^= 0xFF  # a byte of the first chunk's data: its checksum no longer matches
    assert "snappy-compressed JSON" in refused(bytes(by_hand), fmt)


def _orc_that_crashed_pyarrow() -> bytes:
    """A zstd ORC file with 20 random bytes changed (seed 31 of a fuzzing run) that killed pyarrow 26's ORC reader
    with a segmentation fault in read_stripe."""
    import random

    table = pa.table(
        {"id": list(range(5000)), "name": [f"n{i}" for i in range(5000)], "x": [i * 0.5 for i in range(5000)]}
    )
    damaged = bytearray(_orc_bytes(table, compression="zstd"))
    rnd = random.Random(31)
    for _ in range(20):
        at = rnd.randrange(len(damaged))
        damaged[at] = rnd.randrange(256)
    return bytes(damaged)


_READ_STRIPES = (
    "import sys, pyarrow.orc as o; f = o.ORCFile(sys.argv[1]); [f.read_stripe(i) for i in range(f.nstripes)]"
)


def test_an_orc_file_that_crashes_the_orc_library_is_quarantined(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "crash.orc"
    path.write_bytes(_orc_that_crashed_pyarrow())
    plain = subprocess.run([sys.executable, "-c", _READ_STRIPES, str(path)], capture_output=True, timeout=60)
    if plain.returncode >= 0:
        pytest.skip(f"this pyarrow reads the file without crashing (exit {plain.returncode}): nothing to isolate")
    message = refused(path.read_bytes(), fmt_of("orc"), name="crash.orc")
    assert "crashed" in message and "SIGSEGV" in message
    _, rows, _ = load(_orc_bytes(pa.table({"id": [1, 2]})), fmt_of("orc"))  # the next file reads as usual
    assert [r["id"] for r in rows] == [1, 2]

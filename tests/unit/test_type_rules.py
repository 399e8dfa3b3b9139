"""Values arrive exactly as they were in the files: the text rules, the JSON number rules and the hints, at the
reader level (the same functions the engines call). Each case is one of the silent changes issue #11 measured."""

from __future__ import annotations

import io
import json
import math
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from core.config import FormatConfig
from core.formats import FileReadStats, apply_hints, infer_file_schema, nulls_to_string, read_file
from core.formats.text_types import TIMESTAMP, TextRules, cast_text, float32_holds, infer_text_type

TEXT = pa.string()


def _texts(*values: str | None) -> pa.Array:
    return pa.array(list(values), TEXT)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("01234", "5"), pa.string()),  # zip codes, ids: leading zeros are part of the value
        (("1", "2", None, ""), pa.int64()),
        (("12345678901234567890", "1"), pa.decimal128(38, 0)),
        (("1" * 40,), pa.string()),
        (("1.5", "2"), pa.float64()),
        (("1e400", "2"), pa.string()),  # no double holds it
        (("1e-400",), pa.string()),  # underflow to 0 is a change too
        (("3.14159265358979323846",), pa.decimal128(21, 20)),
        (("-72.886806000000007", "1.5"), pa.float64()),  # the %.17g form of a double
        (("NaN", "1.5"), pa.float64()),
        (("NA", "1"), pa.int64()),  # a missing-value marker in a number column
        (("NA", "x"), pa.string()),
        (("NA", "N/A", None), pa.null()),  # markers only: any column holds them (a new table's is string)
        (("true", "False"), pa.bool_()),
        (("2024-01-01", "2024-02-29"), pa.date32()),
        (("2024-01-01T10:00:00", "2024-01-01T10:00:00.123Z", "2024-01-01 10:00+02:00"), TIMESTAMP),
        (("2024-01-01", "2024-01-01T10:00:00"), TIMESTAMP),  # dates meet timestamps at timestamp
        (("2024-01-01T00:00:00.123456789",), pa.string()),  # nanoseconds do not fit Delta's microseconds
        (("00.5",), pa.string()),
        (("9007199254740993", "1.5"), pa.decimal128(17, 1)),  # 2**53 + 1: 16 digits, and no double
        (("1234567890123456", "1.5"), pa.float64()),  # 16 digits a double holds
    ],
)
def test_inferred_type_holds_every_value(values: tuple[str | None, ...], expected: pa.DataType) -> None:
    assert infer_text_type(_texts(*values)) == expected


@pytest.mark.parametrize(
    ("values", "target", "failed"),
    [
        (("01234", "5", "x"), pa.int64(), [0, 2]),
        (("9223372036854775808",), pa.int64(), [0]),
        (("1e400", "1.5", "3.14159265358979323846"), pa.float64(), [0, 2]),
        (("1.25", "1.2"), pa.decimal128(10, 1), [0]),
        (("2024-01-01T00:00:00.1234567", "2024-01-01"), TIMESTAMP, [0]),
        (("1", "yes", "TRUE"), pa.bool_(), [0, 1]),
        (("1.5", "9007199254740993", "9999999999999999", "1234567890123456"), pa.float64(), [1, 2]),
    ],
)
def test_reading_rescues_what_the_column_cannot_hold(
    values: tuple[str, ...], target: pa.DataType, failed: list[int]
) -> None:
    result, bad = cast_text(_texts(*values), target)
    assert bad == failed
    assert all(result[i].as_py() is None for i in failed)


def test_date_and_timestamp_patterns_in_spark_syntax() -> None:
    rules = TextRules(date_format="dd/MM/yyyy", timestamp_format="dd/MM/yyyy HH:mm:ss.SSS")
    dates, bad = cast_text(_texts("31/12/2024", "2024-12-31"), pa.date32(), rules)
    assert dates.to_pylist()[0].isoformat() == "2024-12-31" and bad == [1]
    stamps, bad = cast_text(_texts("31/12/2024 10:11:12.500"), TIMESTAMP, rules)
    assert stamps[0].as_py().isoformat() == "2024-12-31T10:11:12.500000+00:00" and bad == []
    assert infer_text_type(_texts("31/12/2024", "01/01/2024"), rules) == pa.date32()


def test_a_pattern_never_rolls_an_impossible_date_over() -> None:
    """Found by an outsider: with date_format dd/MM/yyyy, Arrow's strptime loaded 31/02/2020 as 2020-03-02 and
    01/02/20 as the year 20, with nothing rescued. They are misfits now (NULL, text rescued), as on Spark."""
    rules = TextRules(date_format="dd/MM/yyyy", timestamp_format="dd.MM.yyyy HH:mm")
    texts = _texts("31/02/2020", "29/02/2021", "31/04/2020", "01/02/20", " 05/06/2020", "29/02/2020", "03/04/2020")
    dates, bad = cast_text(texts, pa.date32(), rules)
    assert bad == [0, 1, 2, 3, 4]
    assert [d.isoformat() for d in dates.to_pylist()[5:]] == ["2020-02-29", "2020-04-03"]
    stamps, bad = cast_text(_texts("31.02.2012 10:00", "31.01.2012 10:00"), TIMESTAMP, rules)
    assert bad == [0] and stamps[1].as_py().isoformat() == "2012-01-31T10:00:00+00:00"


def _load(data: bytes, fmt: FormatConfig, schema: pa.Schema | None = None) -> tuple[pa.Schema, list[dict[str, Any]]]:
    inferred = nulls_to_string(infer_file_schema(io.BytesIO(data), fmt))
    rows: list[dict[str, Any]] = []
    for batch in read_file(io.BytesIO(data), "f", fmt, schema or inferred, FileReadStats()):
        rows.extend(batch.to_pylist())
    return inferred, rows


def test_csv_values_arrive_as_written() -> None:
    data = b"zip,big,amount,ts\n01234,12345678901234567890,1.5,2024-01-01T10:00:00\n00501,1,NA,2024-01-01T10:00:00.5Z\n"
    schema, rows = _load(data, FormatConfig(type="csv"))
    assert [str(f.type) for f in schema] == ["string", "decimal128(38, 0)", "double", "timestamp[us, tz=UTC]"]
    assert [r["zip"] for r in rows] == ["01234", "00501"]
    assert rows[0]["big"] == Decimal("12345678901234567890")
    assert rows[1]["amount"] is None and rows[1]["_rescued_data"] is None


def test_csv_values_a_table_column_cannot_hold_are_rescued_not_changed() -> None:
    table = pa.schema([("zip", pa.int64()), ("amount", pa.float64())])
    _, rows = _load(b"zip,amount\n01234,1e400\n", FormatConfig(type="csv"), table)
    assert rows[0]["zip"] is None and rows[0]["amount"] is None
    assert json.loads(rows[0]["_rescued_data"]) == {"zip": "01234", "amount": "1e400"}


@pytest.mark.parametrize("null_value", ["", "NA"])
def test_text_a_null_typed_column_cannot_hold_is_rescued(null_value: str) -> None:
    """A schema inferred where a column held no value types it null: text found later is rescued (it raised
    Arrow's "Unsupported cast from string to null"), the null token and empty fields stay NULL."""
    fmt = FormatConfig.model_validate({"type": "csv", "options": {"null_value": null_value}})
    table = pa.schema([("a", pa.int64()), ("b", pa.null())])
    _, rows = _load(f"a,b\n1,{null_value}\n2,\n3,x\n".encode(), fmt, table)
    assert [(r["a"], r["b"]) for r in rows] == [(1, None), (2, None), (3, None)]
    assert [r["_rescued_data"] for r in rows[:2]] == [None, None]
    assert json.loads(rows[2]["_rescued_data"]) == {"b": "x"}
    assert cast_text(pa.array(["x", None]), pa.null())[1] == [0]


def test_json_numbers_no_double_holds_stay_exact() -> None:
    data = b'{"big": 12345678901234567890, "x": 1e400}\n{"big": 1, "x": 2.5}\n'
    schema, rows = _load(data, FormatConfig(type="json"))
    assert schema.field("big").type == pa.decimal128(38, 0) and schema.field("x").type == pa.string()
    assert rows[0]["big"] == Decimal("12345678901234567890") and rows[0]["x"] == "1e400"
    table = pa.schema([("big", pa.float64()), ("x", pa.float64())])
    _, rows = _load(data, FormatConfig(type="json"), table)
    assert rows[0]["big"] is None and rows[0]["x"] is None
    assert rows[0]["_rescued_data"] == '{"big":12345678901234567890,"x":1e400}'  # the numbers as written


def test_a_json_integer_of_16_digits_no_double_holds_is_rescued_from_a_double_column() -> None:
    data = b'{"v": 9007199254740993}\n{"v": 1.5}\n'
    _, rows = _load(data, FormatConfig(type="json"), pa.schema([("v", pa.float64())]))
    assert rows[0]["v"] is None and rows[0]["_rescued_data"] == '{"v":9007199254740993}'
    assert rows[1]["v"] == 1.5


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_float32_column_rescues_what_it_would_round(fmt: str) -> None:
    """A float holds 0.1 (its shortest form reads back as the double 0.1) and 0.100000001 (its `%.9g` form), not
    2**24 + 1, nine digits, or a number past its range; before, Arrow rounded them all without a word."""
    texts = ["16777217", "0.1", "1e39", "123456789", "1.5", "0.100000001", "16777216"]
    if fmt == "csv":
        data = ("v\n" + "\n".join(texts) + "\n").encode()
        config = FormatConfig.model_validate({"type": "csv", "options": {"header": True}})
    else:
        data = "".join(f'{{"v": {t}}}\n' for t in texts).encode()
        config = FormatConfig(type="json")
    _, rows = _load(data, config, pa.schema([("v", pa.float32())]))
    assert [r["v"] is None for r in rows] == [True, False, True, True, False, False, False]
    assert [r["_rescued_data"] is not None for r in rows] == [True, False, True, True, False, False, False]
    assert rows[4]["v"] == 1.5 and rows[6]["v"] == 16777216.0


def test_json_timestamps_with_and_without_fractions_are_one_type_and_dates_are_dates() -> None:
    data = (
        b'{"t": "2024-01-01T10:00:00", "d": "2024-01-01"}\n'
        b'{"t": "2024-01-01T10:00:00.123456+02:00", "d": "2024-01-02"}\n'
    )
    schema, rows = _load(data, FormatConfig(type="json"))
    assert schema.field("t").type == TIMESTAMP and schema.field("d").type == pa.date32()
    assert rows[1]["t"].isoformat() == "2024-01-01T08:00:00.123456+00:00"


def test_case_variant_keys_are_one_column_and_the_other_spelling_is_rescued() -> None:
    data = b'{"Id": 1, "id": 2}\n{"ID": 3}\n'
    schema, rows = _load(data, FormatConfig(type="json"))
    assert schema.names == ["Id"]
    assert [r["Id"] for r in rows] == [1, None]
    assert [json.loads(r["_rescued_data"]) for r in rows] == [{"id": 2}, {"ID": 3}]


def test_a_dotted_hint_types_the_nested_field() -> None:
    schema = pa.schema([("user", pa.struct([("id", pa.int64()), ("geo", pa.struct([("lat", pa.string())]))]))])
    hinted = apply_hints(schema, {"user.id": "string", "user.geo.lat": "double"})
    assert hinted.field("user").type == pa.struct([("id", pa.string()), ("geo", pa.struct([("lat", pa.float64())]))])
    _, rows = _load(b'{"user": {"id": 7, "geo": {"lat": 1}}}\n', FormatConfig(type="json"), hinted)
    assert rows[0]["user"] == {"id": "7", "geo": {"lat": 1.0}} and rows[0]["_rescued_data"] is None


def test_grouped_inference_sees_every_file_and_names_a_bad_one() -> None:
    from core.formats import unify_schemas
    from core.formats.readers import infer_json_lines_schemas, json_lines_sample

    fmt = FormatConfig(type="json")
    files = {f"f{i:02}.json": b'{"id": %d}\n' % i for i in range(20)}
    files["f11.json"] = b'{"id": 11, "late_column": "2024-01-31"}\n'  # a column first seen in the 12th file
    files["f15.json"] = b"this is not json\nnor this\n"
    samples = [(path, json_lines_sample(io.BytesIO(data), fmt, 4096, path)) for path, data in files.items()]
    schemas, bad = infer_json_lines_schemas(samples, fmt)
    merged = unify_schemas(schemas)
    assert merged.field("late_column").type == pa.date32() and merged.field("id").type == pa.int64()
    assert list(bad) == ["f15.json"] and "f15.json" in bad["f15.json"]


def test_a_first_line_longer_than_the_sample_is_read_whole() -> None:
    line = json.dumps({"id": 1, "text": "x" * 10_000}).encode() + b"\n" + b'{"id": 2}\n'
    sample = __import__("core.formats.readers", fromlist=["json_lines_sample"]).json_lines_sample(
        io.BytesIO(line), FormatConfig(type="json"), 4096
    )
    assert json.loads(sample.splitlines()[0])["id"] == 1


def test_names_spark_and_delta_refuse_are_stored_with_the_original_recorded() -> None:
    from core.formats.names import source_name
    from core.formats.types import schema_to_json

    data = b"order id,unit price (EUR),a=b,ok\n1,2.5,x,y\n"
    schema, rows = _load(data, FormatConfig(type="csv"))
    assert schema.names == ["order_id", "unit_price__EUR_", "a_b", "ok"]
    assert [source_name(f) for f in schema] == ["order id", "unit price (EUR)", "a=b", None]
    assert schema_to_json(schema)[0] == {
        "name": "order_id",
        "type": "bigint",
        "nullable": True,
        "source_name": "order id",
    }
    assert rows == [{"order_id": 1, "unit_price__EUR_": 2.5, "a_b": "x", "ok": "y", "_rescued_data": None}]


@pytest.mark.parametrize("malformed", [b"", b"not json\n"], ids=["arrow", "python"])
def test_json_keys_are_matched_by_their_stored_names(malformed: bytes) -> None:
    data = b'{"a b": 1, "x.y": "s", "n": {"in ner": 2}}\n' + malformed
    schema, rows = _load(data, FormatConfig(type="json"))
    assert schema.names == ["a_b", "x_y", "n"]
    assert (rows[0]["a_b"], rows[0]["x_y"], rows[0]["n"]) == (1, "s", {"in ner": 2})  # nested names kept
    assert rows[0]["_rescued_data"] is None


def test_a_hint_may_use_the_files_name_of_a_renamed_column() -> None:
    schema, _ = _load(b"unit price\n1\n", FormatConfig(type="csv"))
    assert apply_hints(schema, {"unit price": "double"}).field("unit_price").type == pa.float64()


def test_grouped_csv_inference_types_files_with_one_header_together_and_names_a_bad_one() -> None:
    from core.formats import unify_schemas
    from core.formats.readers import csv_sample, infer_csv_schemas

    fmt = FormatConfig(type="csv")
    files = {f"f{i:02}.csv": b"id,code\n%d,%05d\n" % (i, i) for i in range(12)}
    files["f07.csv"] = b"id,code\n7,x\n"  # one file's code is text: the column is text
    files["f09.csv"] = b"id,code,late\n9,00009,2024-01-31\n"  # another header: typed alone
    files["f10.csv"] = b"\x00\x01binary"
    samples, bad = [], {}
    for path, data in files.items():
        try:
            samples.append((path, csv_sample(io.BytesIO(data), fmt, 4096, path)))
        except Exception as exc:
            bad[path] = str(exc)
    schemas, unreadable = infer_csv_schemas(samples, fmt)
    merged = unify_schemas(schemas)
    assert [(f.name, str(f.type)) for f in merged] == [("id", "int64"), ("code", "string"), ("late", "date32[day]")]
    assert list({**bad, **unreadable}) == ["f10.csv"]


def test_json_floats_inside_lists_and_structs_and_on_the_python_path_are_checked() -> None:
    """Nested float32 fields and rows Python parses (a stray value elsewhere in the batch) took Arrow's rounding."""
    schema = pa.schema([("l", pa.list_(pa.float32())), ("s", pa.struct([("f", pa.float32())]))])
    _, rows = _load(
        b'{"l": [16777217, 1.5], "s": {"f": 123456789}}\n{"l": [0.1], "s": {"f": 0.5}}\n',
        FormatConfig(type="json"),
        schema,
    )
    assert rows[0]["l"] is None and rows[0]["s"] is None and rows[0]["_rescued_data"] is not None
    assert rows[1]["l"] == [pytest.approx(0.1)] and rows[1]["s"] == {"f": 0.5}
    _, rows = _load(
        b'{"v": 16777217}\n{"v": "x"}\n{"v": 1.5}\n', FormatConfig(type="json"), pa.schema([("v", pa.float32())])
    )
    assert [r["v"] for r in rows] == [None, None, 1.5]
    assert rows[0]["_rescued_data"] is not None


def test_a_float_holds_nan_and_the_infinities_on_every_path() -> None:
    assert all(float32_holds(v) for v in (math.nan, math.inf, -math.inf, 0.1, -0.0))
    assert all(float32_holds(v) for v in (2.0**30, 2.0**40, -(2.0**100), 3 * 2.0**60))  # exact, found by hypothesis
    assert not any(float32_holds(v) for v in (16777217.0, 1e39, 1e-50))

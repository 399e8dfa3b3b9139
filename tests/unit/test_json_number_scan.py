"""The JSON reader's scan for numbers Arrow would round into a double (`json_reader._scan_numbers`), and the block
path and inference built on it.

A block it flags is parsed in Python, exactly; a block it passes goes to Arrow. So it must flag every number token
no double holds (else Arrow rounds it silently), and it should not flag digits inside strings, which are not numbers
(every line of a file with ids like "s-3389158115350687" was parsed in Python, twice the read's time)."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from core.formats.json_reader import _inexact_number_in
from core.formats.readers import FileReadStats
from core.formats.text_types import double_exact

_DIGITS = st.text("0123456789", min_size=1, max_size=22).map(lambda d: d.lstrip("0") or "0")
_NUMBER_TEXT = st.one_of(
    _DIGITS,
    st.builds(lambda i, f: f"{i}.{f}", _DIGITS, st.text("0123456789", min_size=1, max_size=20)),
    st.builds(lambda i, e: f"{i}e{e}", _DIGITS, st.integers(-400, 400)),
    st.just("9007199254740993"),
    st.just("9007199254740992"),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),  # a double's shortest form
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.17g}"),
)
_SIGNED = st.builds(lambda sign, text: sign + text, st.sampled_from(["", "-"]), _NUMBER_TEXT)
_STRING = st.builds(
    lambda prefix, digits: prefix + digits,
    st.sampled_from(["s-", "user_", "id=", "x", "-", "#", "(", "abc-"]),
    st.text("0123456789", min_size=0, max_size=22),
)


def _record(numbers: list[str], strings: list[str], spaced: bool) -> str:
    """A JSON line holding the number texts as they are (top level, in a list, in an object) and the strings."""
    parts = [f'"n{i}":{text}' for i, text in enumerate(numbers[:2])]
    if numbers[2:]:
        parts.append('"list":[' + ",".join(numbers[2:]) + "]")
    parts.append('"nested":{"v":' + (numbers[0] if numbers else "1") + "}")
    parts += [f'"s{i}":{json.dumps(s)}' for i, s in enumerate(strings)]
    separator = ", " if spaced else ","
    line = "{" + separator.join(parts) + "}"
    return line.replace(":", ": ") if spaced else line


@settings(max_examples=400, deadline=None)
@given(st.lists(_SIGNED, min_size=1, max_size=5), st.lists(_STRING, max_size=3), st.booleans())
def test_every_number_no_double_holds_is_flagged_and_digits_in_strings_are_not(
    numbers: list[str], strings: list[str], spaced: bool
) -> None:
    line = _record(numbers, strings, spaced)
    json.loads(line)  # the generator writes valid JSON
    inexact = any(not double_exact(text) for text in numbers)
    block = ("{}\n" + line + "\n").encode()
    assert _inexact_number_in(block) == inexact, line


def test_a_number_at_the_start_of_the_block_or_after_a_minus_is_seen() -> None:
    assert _inexact_number_in(b"9007199254740993\n")
    assert _inexact_number_in(b'{"a":-9007199254740993}\n')
    assert _inexact_number_in(b'{"a":[1,\t9007199254740993]}\n')
    assert _inexact_number_in(b'{"a":\r\n9007199254740993}\n')
    assert not _inexact_number_in(b'{"a":"s-9007199254740993","b":"9007199254740993","c":"x9007199254740993"}\n')
    assert not _inexact_number_in(b'{"a":9007199254740992,"b":1234567890.123456}\n')
    assert Decimal("9007199254740993") != Decimal(float("9007199254740993"))  # the case is real


def test_a_number_that_overflows_a_double_is_rescued_not_infinity() -> None:
    """20000000000e298 is 2e308: Arrow read it as inf on the fast path (a 3-digit exponent was only looked for when
    negative)."""
    import io

    import pyarrow as pa

    from core.config import FormatConfig
    from core.formats.json_reader import read_json
    from core.formats.readers import FileReadStats

    data = b'{"x":20000000000e298}\n{"x":1.5}\n{"x":1e300}\n'
    schema = pa.schema([("x", pa.float64()), ("_rescued_data", pa.string())])
    batches = read_json(io.BytesIO(data), "/x.json", FormatConfig(type="json"), schema, FileReadStats(), 1 << 20)
    rows = [row for batch in batches for row in batch.to_pylist()]
    assert rows == [
        {"x": None, "_rescued_data": '{"x":20000000000e298}'},
        {"x": 1.5, "_rescued_data": None},
        {"x": 1e300, "_rescued_data": None},
    ]


_COLUMNS = pa.schema(
    [
        ("i", pa.int64()),
        ("d", pa.float64()),
        ("f", pa.float32()),
        ("s", pa.string()),
        ("t", pa.timestamp("us", tz="UTC")),
        ("nested", pa.struct([("d", pa.float64()), ("i", pa.int64())])),
        ("items", pa.list_(pa.float64())),
        ("_rescued_data", pa.string()),
    ]
)
_LANDINGS = ["i", "d", "f", "s", "t", "nested", "items", "extra"]
_INTEGER_TEXT = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["9007199254740993", "9007199254740992", "1714521600000000", "1714521600000000123"]),
    st.sampled_from(["9223372036854775807", "9223372036854775808", "-9223372036854775808", "1e400", "2e308"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["i", "d", "f", "s", "t", "nested", "items", "extra"]), _INTEGER_TEXT),
        min_size=1,
        max_size=6,
    )
)
def test_big_integers_read_as_the_exact_python_parse_reads_them(values: list[tuple[str, str]]) -> None:
    """Integer text is not a scan candidate on the block path (`integers=False`): Arrow reads it, and a floating
    column holding 2**53 or more sends the block to Python. Whatever column the integers land in, the rows must be
    those of the exact Python parse."""
    from core.formats.json_reader import _json_block_batch, _json_plan, _python_json
    from core.formats.readers import FileReadStats

    lines = []
    for column, text in values:
        if column == "nested":
            lines.append(f'{{"nested":{{"d":{text},"i":{text}}}}}')
        elif column == "items":
            lines.append(f'{{"items":[1.5,{text}]}}')
        else:
            lines.append(f'{{"{column}":{text},"i":1}}')
    block = ("\n".join(lines) + "\n").encode()
    fast = _json_block_batch(block, _json_plan(_COLUMNS), FileReadStats(), "/x.json")
    exact = _python_json(block.decode(), _json_plan(_COLUMNS), FileReadStats(), "/x.json")
    assert fast is not None
    assert _values(fast) == _values(exact), lines


def _values(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """The rows, `_rescued_data` as the values it holds: a float32 column's misfit is rescued as `16777217.0` from
    Arrow's parse and as `16777217` from Python's, the same number (Python compares an int and a float exactly)."""
    rows = batch.to_pylist()
    for row in rows:
        if row["_rescued_data"] is not None:
            row["_rescued_data"] = json.loads(row["_rescued_data"])
    return rows


_SAMPLE_NUMBER = st.one_of(
    _INTEGER_TEXT,
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1.5", "0.1", "1e300", "12345678901234567890.5"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_SAMPLE_NUMBER, _INTEGER_TEXT), min_size=1, max_size=6))
def test_inference_types_big_integers_as_the_exact_python_typing_does(values: list[tuple[str, str]]) -> None:
    """The inference leaves integer text to Arrow first; where the whole check finds a number no double holds, the
    sample must be typed as Python types it (exactly), whichever path took it."""
    from core.formats.json_reader import _inexact_number_in, _parse_lines, _python_schema, _typed_sample

    text = "".join(f'{{"v":{v},"n":{n}}}\n' for v, n in values)
    schema, _, _ = _typed_sample(text.encode(), text, "/x.json")
    if _inexact_number_in(text.encode()):
        assert schema == _python_schema(_parse_lines(text, True)[0]), text


def test_a_large_double_without_long_integer_text_stays_on_arrows_path(monkeypatch: Any) -> None:
    """`_rounded_integers` is asked only where the scan left long integer text to Arrow: 1.5e20 alone is how its
    double prints, and a block of such doubles parsed in Python would read many times slower."""
    from core.formats import json_reader

    def python_parse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the block went to the Python parser")

    monkeypatch.setattr(json_reader, "_python_json", python_parse)
    plan = json_reader._json_plan(pa.schema([("d", pa.float64()), ("_rescued_data", pa.string())]))
    batch = json_reader._json_block_batch(b'{"d":1.5e20}\n{"d":6.02214076e23}\n', plan, FileReadStats(), "/x.json")
    assert batch is not None and batch.column("d").to_pylist() == [1.5e20, 6.02214076e23]


def test_a_timestamp_like_string_in_a_column_arrow_types_itself_is_rescued_as_written() -> None:
    """Map and null columns are typed by Arrow: it read these strings as timestamps, and the loose path rescued
    them rewritten (`2024-01-01T10:00:00+02:00` as `2024-01-01T08:00:00`). Blocks with epoch nanoseconds go that way
    since Arrow reads their integers, so both ids are tried."""
    from core.formats.json_reader import _json_block_batch, _json_plan

    rescued = pa.field("_rescued_data", pa.string())
    cases = [
        (pa.field("m", pa.map_(pa.string(), pa.float64())), '"m":"2024-01-01T10:00:00+02:00"'),
        (pa.field("n", pa.null()), '"n":"2024-01-01T10:00:00Z"'),
    ]
    for column, member in cases:
        schema = pa.schema([("id", pa.int64()), ("s", pa.string()), column, rescued])
        for ident in ("1", "1714521600000000123"):
            block = f'{{"id":{ident},{member}}}\n'.encode()
            batch = _json_block_batch(block, _json_plan(schema), FileReadStats(), "/x.json")
            assert batch is not None
            assert json.loads(batch.column("_rescued_data")[0].as_py()) == json.loads("{" + member + "}"), block


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(_SIGNED, min_size=1, max_size=4), st.lists(_STRING, max_size=2)), max_size=12))
def test_candidates_checked_together_answer_as_one_by_one(records: list[tuple[list[str], list[str]]]) -> None:
    """`_checked_together` (Arrow calls, for blocks of many candidates) and the one-by-one check give the same
    answer for a block without integers checked (the block path's scan)."""
    import core.formats.json_reader as reader

    block = "".join(_record(numbers, strings, False) + "\n" for numbers, strings in records).encode()
    threshold = reader._CHECKED_TOGETHER_MIN
    try:
        reader._CHECKED_TOGETHER_MIN = 1_000_000
        one_by_one = reader._scan_numbers(block, integers=False)
        reader._CHECKED_TOGETHER_MIN = 1
        together = reader._scan_numbers(block, integers=False)
    finally:
        reader._CHECKED_TOGETHER_MIN = threshold
    assert together == one_by_one, block
    starts = reader._candidate_starts(b"b" + block.translate(reader._NUMBER_MARKS))
    if starts and not any(text.endswith(("e", "E")) for numbers, _ in records for text in numbers):
        assert reader._checked_together(block, starts) is not None, block  # Arrow answered, not the fallback


_CSV_NUMBER = st.one_of(
    _SIGNED,
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.17g}"),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.20e}"),
    st.sampled_from(["0.000000000000000000", "1e400", "-1e-400", "1.5e+20", "+1.25", ".5", "00012.5"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CSV_NUMBER, min_size=1, max_size=30))
def test_text_doubles_checked_by_cast_answer_as_one_by_one(texts: list[str]) -> None:
    """The text rules' double check (`text_types._inexact_doubles`, CSV and JSON strings) confirms text Arrow
    writes back from its double before checking the rest in Python: it flags exactly the text the one-by-one
    check flags (long or extreme number text that `double_exact` refuses)."""
    import pyarrow.compute as pc

    from core.formats import text_types

    values = pa.array(texts, pa.string())
    parsed = pc.cast(values, pa.float64())
    one_by_one = [
        i
        for i, text in enumerate(texts)
        if (
            len(text) > text_types._LONGEST_EXACT_DOUBLE_TEXT
            or text.lstrip("-").isdigit()
            or not math.isfinite(float(text))
            or float(text) == 0.0
        )
        and text_types._digits(text) > 0
        and not double_exact(text)
    ]
    assert text_types._inexact_doubles(values, parsed) == one_by_one

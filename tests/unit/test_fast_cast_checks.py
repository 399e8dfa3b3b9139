"""The fast cast path's byte-level checks (core/formats/text_types.py `_leading_bytes`) say what the regexes they
replaced say, on any text: with nulls, empty values, multi-byte characters and sliced arrays (a CSV block's columns
are slices of Arrow's buffers). They decide only whether a column takes the slow path, so a difference would let a
leading zero or a 0/1 boolean through the fast cast."""

from __future__ import annotations

import math
import re

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.formats.text_types import (
    DEFAULT_RULES,
    _all_finite,
    _any_bool_digit,
    _fast_cast,
    _integer_leading_zero,
    _number_leading_zero,
    _to_number,
    cast_text,
)

NUMBERISH = st.text(alphabet="0123456789+-.xXeE é", max_size=6)
VALUES = st.lists(st.one_of(st.none(), NUMBERISH), max_size=12)


def _array(values: list[str | None], skip: int) -> pa.Array:
    """The values as a string array, `skip` of them (padding) sliced off the front."""
    return pa.array(["0007"] * skip + values, pa.string()).slice(skip)


def _any(values: list[str | None], pattern: str) -> bool:
    return any(v is not None and re.search(pattern, v) is not None for v in values)


@settings(max_examples=400, deadline=None)
@given(VALUES, st.integers(0, 3))
@example(["0.5", "-0.25", "+0e5"], 0)
@example(["05.5"], 1)
@example(["-00.1", None, ""], 2)
@example(["0x1F"], 0)
@example(["-0", "5"], 0)  # the bytes after a short value are the next value's: masked by the length
@example(["0", "7"], 0)
@example(["+", "05"], 0)
def test_number_leading_zero_is_the_regex(values: list[str | None], skip: int) -> None:
    assert _number_leading_zero(_array(values, skip)) == _any(values, r"^[+-]?0[0-9xX]")


@settings(max_examples=400, deadline=None)
@given(VALUES, st.integers(0, 3))
@example(["0", "10", "-1"], 0)
@example(["007"], 2)
@example(["-0"], 0)
@example(["-", "0"], 0)
@example(["0", "0"], 0)
def test_integer_leading_zero_is_the_prefix_rule(values: list[str | None], skip: int) -> None:
    expected = any(
        v is not None and ((v.startswith("0") and len(v.encode()) > 1) or v.startswith("-0")) for v in values
    )
    assert _integer_leading_zero(_array(values, skip)) == expected


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["0", "1", "10", "01", "true", "", "é"])), max_size=10),
    st.integers(0, 3),
)
@example(["true", "1"], 0)
@example(["10", "01", None], 1)
def test_bool_digit_is_the_regex(values: list[str | None], skip: int) -> None:
    assert _any_bool_digit(_array(values, skip)) == _any(values, r"^[01]$")


@given(st.lists(st.one_of(st.none(), st.floats()), max_size=10))
@example([1e308, 1e308])
@example([None, None])
def test_all_finite_never_passes_nan_or_inf(values: list[float | None]) -> None:
    finite = all(v is None or math.isfinite(v) for v in values)
    result = _all_finite(pa.array(values, pa.float64()))
    assert result is False if not finite else result in (True, False)
    if finite and sum(abs(v) for v in values if v is not None) < 1e300:  # then no sum overflows
        assert result is True


DOUBLE_TEXT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),  # a double's shortest form, exponents included
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: f"{v:.17g}"),  # C's and Java's 17 digits
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: f"{v:.20f}"),  # more digits than a double holds
    st.integers(10**15, 10**17).map(str),  # 16 digits: 9007199254740993 is no double
    st.sampled_from(["0.1000000000000000055511", "1.0000000000000000", "-0.30000000000000004", "1e-400", "0.5"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), DOUBLE_TEXT), min_size=1, max_size=12), st.integers(0, 3))
@example(["0.5488135039273248", "37.93340683483826"], 0)
@example(["0.5488135039273248", "9007199254740993"], 1)
@example(["0.30000000000000004", "0.1000000000000000055511"], 0)
def test_the_fast_double_cast_is_the_value_by_value_rule(values: list[str | None], skip: int) -> None:
    """Long number text passes the fast path only when Arrow writes it back for its double: the result is then the
    value-by-value path's, and text that path rescues sends the column there."""
    text = _array(values, skip)
    slow, failed = _to_number(text, pa.float64(), DEFAULT_RULES)
    fast = _fast_cast(text, pa.float64(), DEFAULT_RULES)
    if fast is not None:
        assert not failed and fast.equals(slow)
    assert cast_text(text, pa.float64()) == (slow, failed)


def test_a_column_of_shortest_form_doubles_takes_the_fast_path() -> None:
    """pandas, Python and JavaScript write doubles in their shortest form (16-17 digits): one cast back proves them."""
    text = pa.array(["0.5488135039273248", "37.93340683483826", "-1.2345678901234567e+20", "0.25", None])
    fast = _fast_cast(text, pa.float64(), DEFAULT_RULES)
    assert fast is not None and fast.to_pylist() == [
        0.5488135039273248,
        37.93340683483826,
        -1.2345678901234567e20,
        0.25,
        None,
    ]
    assert _fast_cast(pa.array(["0.5488135039273248", "9007199254740993"]), pa.float64(), DEFAULT_RULES) is None
    assert _fast_cast(pa.array(["0.5488135039273248"]), pa.float32(), DEFAULT_RULES) is None

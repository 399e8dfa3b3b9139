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

from core.formats.text_types import _all_finite, _any_bool_digit, _integer_leading_zero, _number_leading_zero

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

"""Types of text values, and exact parsing of text into those types (docs/TYPES.md).

One set of rules serves CSV fields, JSON strings, partition folder values and type hints, both when a
type is inferred and when values are read, so the two never disagree:

* a type is inferred only if every value converts to it exactly: `01234` stays text (leading zeros are
  part of an id, zip code or phone number), a 20-digit integer is `decimal(38,0)`, a number that a
  double cannot hold (`1e400`, `3.14159265358979323846`) keeps a type that can, else stays text;
* when reading, a value its column cannot hold exactly is a failure (the caller rescues it), never a
  rounded or truncated value;
* the null token (`null_value`, Spark's nullValue) and the empty field mean NULL in both phases;
  `nan_value` means NaN for floating-point columns;
* dates are ISO `yyyy-MM-dd` (or `date_format`); timestamps are ISO 8601 with or without seconds,
  fractions (up to microseconds, Delta's unit) and a zone (`Z`, `+02:00`, `+0200`), or `timestamp_format`.
  Text without a zone is taken as UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.formats.patterns import parse_pattern

TIMESTAMP = pa.timestamp("us", tz="UTC")
BIG_INTEGER = pa.decimal128(38, 0)
_MAX_DECIMAL_DIGITS = 38

_BOOL = r"^(?i:true|false)$"
_INT = r"^-?(?:0|[1-9][0-9]*)$"  # no "+": Arrow's integer parser refuses it, so inference must too
_NUMBER = r"^[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_INF = r"^[+-]?(?i:inf|infinity)$"
_DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME_OF_DAY = r"[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
_DATE = f"^{_DAY}$"
_TIMESTAMP = f"^{_DAY}{_TIME_OF_DAY}$"
_DATE_OR_TIMESTAMP = f"^{_DAY}(?:{_TIME_OF_DAY})?$"
_SUB_MICROS = r"[.,][0-9]{6}[0-9]*[1-9]"  # a non-zero digit after the 6th fraction digit
_HAS_ZONE = r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
# Any decimal with at most 15 significant digits survives a round trip through a double.
_SAFE_DOUBLE_DIGITS = 15
# Number text this long or shorter has at most 15 digits, which a double always holds (barring overflow and
# underflow), unless it is all digits: 16 digits with no sign, point or exponent.
_LONGEST_EXACT_DOUBLE_TEXT = _SAFE_DOUBLE_DIGITS + 1
_ALL_DIGITS_LONGEST = f"^[0-9]{{{_LONGEST_EXACT_DOUBLE_TEXT}}}$"


@dataclass(frozen=True, slots=True)
class TextRules:
    """The reader options that decide how text becomes values (FormatOptions' null/NaN/date/timestamp)."""

    null_value: str = ""
    nan_value: str = "NaN"
    date_format: str | None = None
    timestamp_format: str | None = None
    # CSV writes a missing value as an empty field; in JSON an empty string is a value (rescued when a typed
    # column cannot hold it), and a missing value is null.
    empty_is_null: bool = True

    @classmethod
    def of(cls, options: Any, json: bool = False) -> TextRules:
        """The rules of a `FormatOptions` (anything with those attributes); `json` for JSON strings."""
        return cls(
            null_value="" if json else getattr(options, "null_value", ""),
            nan_value=getattr(options, "nan_value", "NaN"),
            date_format=getattr(options, "date_format", None),
            timestamp_format=getattr(options, "timestamp_format", None),
            empty_is_null=not json,
        )

    @property
    def null_tokens(self) -> list[str]:
        """The text that is NULL in every column (and so in text columns)."""
        if not self.empty_is_null:
            return [self.null_value] if self.null_value else []
        return sorted({"", self.null_value})

    @property
    def typed_null_tokens(self) -> list[str]:
        """The text that is NULL in a number, boolean, date or timestamp column: also the usual markers of a
        missing value (`NA`, `N/A`, `null`, `NULL`, `None`), which such a column cannot hold anyway. A text
        column keeps them as text, so no text value is ever changed."""
        if not self.empty_is_null:
            return self.null_tokens  # JSON: a string is a value; only null is missing
        return sorted({*self.null_tokens, *TYPED_NULL_MARKERS})


TYPED_NULL_MARKERS = ("NA", "N/A", "null", "NULL", "None")
DEFAULT_RULES = TextRules()


# ---------------------------------------------------------------------------------------------------------------------
# Helpers over string arrays


def _text(values: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


def null_mask(values: pa.Array, rules: TextRules = DEFAULT_RULES, *, typed: bool = False) -> pa.Array:
    """True where a text value means NULL: missing, empty, the null token, and for `typed` columns (not text)
    the usual missing-value markers."""
    tokens = rules.typed_null_tokens if typed else rules.null_tokens
    if not tokens:
        return values.is_null()
    return pc.or_(values.is_null(), pc.fill_null(pc.is_in(values, value_set=pa.array(tokens, pa.string())), False))


def _all(values: pa.Array, pattern: str) -> bool:
    """Whether every value matches; the first values are tried alone first, so a wrong guess costs little."""
    if len(values) > _PROBE and not pc.all(pc.match_substring_regex(values.slice(0, _PROBE), pattern)).as_py():
        return False
    return bool(pc.all(pc.match_substring_regex(values, pattern)).as_py())


_PROBE = 256


def _nan_or_inf(values: pa.Array, rules: TextRules) -> pa.Array:
    nan = pc.equal(values, pa.scalar(rules.nan_value))
    return pc.or_(nan, pc.match_substring_regex(values, _INF))


def _digits(text: str) -> int:
    mantissa = text.lstrip("+-").split("e")[0].split("E")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if "." in text or "e" in text.lower() else len(mantissa)


def double_exact(text: str) -> bool:
    """Whether `text` is how a double prints: the nearest double's shortest form or its 17-digit form (`%.17g`,
    what C, Java and most databases write) is the same number — no rounding, overflow or underflow."""
    try:
        value = float(text)
        if repr(value) == text and math.isfinite(value):
            return True  # the double's own shortest form, as Python and JavaScript print it: no decimals needed
        number = Decimal(text)
        return Decimal(repr(value)) == number or Decimal(f"{value:.17g}") == number
    except (ValueError, OverflowError, InvalidOperation):
        return False


def _long_number_text(values: pa.Array) -> pa.Array:
    """Which number text can have more significant digits than a double always holds: longer than
    `_LONGEST_EXACT_DOUBLE_TEXT`, or that long and all digits (`9007199254740993`, 2**53 + 1, is not a double)."""
    lengths = pc.binary_length(values)
    longest = pc.greater(lengths, _LONGEST_EXACT_DOUBLE_TEXT)
    if not pc.any(pc.equal(lengths, _LONGEST_EXACT_DOUBLE_TEXT)).as_py():
        return longest
    return pc.or_(longest, pc.match_substring_regex(values, _ALL_DIGITS_LONGEST))


def written_back(texts: pa.Array, doubles: pa.Array) -> pa.Array:
    """Which number texts are the text Arrow writes for their doubles (false where either is null). Arrow writes a
    double's shortest form, so such text is exact (`double_exact`) without a check in Python; Arrow writes exponents
    and long integers its own way (1e+20, 1.2345678901234567e+14), so a false here still needs that check."""
    return pc.fill_null(pc.equal(pc.cast(doubles, texts.type), texts), False)


def _inexact_doubles(values: pa.Array, parsed: pa.Array) -> list[int]:
    """Indices of number text whose double is not the same number (checked in Python only for long or extreme text)."""
    long_text = _long_number_text(values)
    is_number = pc.match_substring_regex(values, _NUMBER)
    extreme = pc.or_(pc.is_inf(parsed), pc.equal(parsed, 0.0))
    suspect = pc.and_(pc.fill_null(is_number, False), pc.fill_null(pc.or_(long_text, extreme), False))
    indices = pc.indices_nonzero(suspect)
    if not len(indices):
        return []
    # A column of full-precision doubles (pandas' to_csv, JavaScript) is checked in one cast, the rest in Python.
    texts = values.take(indices)
    others = pc.invert(written_back(texts, parsed.take(indices)))
    rest = indices.filter(others).to_pylist()
    rest_texts = texts.filter(others).to_pylist()
    return [i for i, text in zip(rest, rest_texts, strict=True) if _digits(text) > 0 and not double_exact(text)]


# ---------------------------------------------------------------------------------------------------------------------
# Inference


def _integer_type(values: pa.Array) -> pa.DataType:
    longest = pc.max(pc.utf8_length(values)).as_py() or 0
    if longest <= 18:
        return pa.int64()
    fits64 = all(-(2**63) <= int(v) < 2**63 for v in values.to_pylist())
    if fits64:
        return pa.int64()
    digits = max(len(v.lstrip("+-")) for v in values.to_pylist())
    return BIG_INTEGER if digits <= _MAX_DECIMAL_DIGITS else pa.string()


def _number_type(values: pa.Array, rules: TextRules) -> pa.DataType | None:
    special = _nan_or_inf(values, rules)
    numbers = values.filter(pc.invert(special))
    if len(numbers) and not _all(numbers, _NUMBER):
        return None
    parsed = pc.cast(numbers, pa.float64())
    if not _inexact_doubles(numbers, parsed):
        return pa.float64()
    if len(numbers) < len(values):
        return pa.string()  # NaN/inf with numbers a double cannot hold: nothing but text holds both
    return decimal_type(numbers.to_pylist())


def decimal_type(texts: list[str]) -> pa.DataType:
    """The narrowest decimal holding every number exactly, else string."""
    integer_digits = scale = 0
    for text in texts:
        try:
            value = Decimal(text)
        except InvalidOperation:
            return pa.string()
        _, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):
            return pa.string()
        scale = max(scale, -exponent)
        integer_digits = max(integer_digits, len(digits) + exponent)
    if integer_digits + scale > _MAX_DECIMAL_DIGITS or scale > _MAX_DECIMAL_DIGITS:
        return pa.string()
    return pa.decimal128(max(integer_digits + scale, 1), scale)


def _temporal_type(values: pa.Array, rules: TextRules) -> pa.DataType | None:
    """date when every value is a date; timestamp when every value is a timestamp or a date (the lattice)."""
    if rules.date_format is None and rules.timestamp_format is None and not _all(values, _DATE_OR_TIMESTAMP):
        return None  # the ISO shapes are checked before anything is parsed: most text columns stop here
    dates, failed = cast_text(values, pa.date32(), rules)
    if not failed:
        return pa.date32()
    rest = values.filter(pc.invert(dates.is_valid())) if len(failed) < len(values) else values
    _, failed = cast_text(rest, TIMESTAMP, rules)
    return TIMESTAMP if not failed else None


def infer_text_type(values: pa.Array, rules: TextRules = DEFAULT_RULES, *, numbers: bool = True) -> pa.DataType:
    """The narrowest type that holds every text value exactly (null when all are NULL or missing-value markers,
    string when no other).

    Markers only (`NA` on every line) is the null type too: a typed column holds them as NULL and a text column as
    text, so they fit any column, as they do beside numbers within one file; a new table stores such a column as
    string (`nulls_to_string`), keeping the markers' text.

    `numbers=False` infers only dates and timestamps (JSON strings: `"123"` in JSON is text on purpose).
    """
    text = _text(values)
    if len(text.filter(pc.invert(null_mask(text, rules)))) == 0:
        return pa.null()
    present = text.filter(pc.invert(null_mask(text, rules, typed=True)))
    if len(present) == 0:
        return pa.null()
    if numbers:
        if _all(present, _BOOL):
            return pa.bool_()
        if _all(present, _INT):
            return _integer_type(present)
        number = _number_type(present, rules)
        if number is not None:
            return number
    temporal = _temporal_type(present, rules)
    return temporal if temporal is not None else pa.string()


# ---------------------------------------------------------------------------------------------------------------------
# Exact casts


def _pattern_failures(values: pa.Array, pattern: str, allowed: pa.Array | None = None) -> pa.Array:
    ok = pc.match_substring_regex(values, pattern)
    if allowed is not None:
        ok = pc.or_(ok, allowed)
    return pc.and_(pc.invert(pc.fill_null(ok, False)), values.is_valid())


def _cast_each(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    """Vectorised cast; when it fails, the failing values are found by halving (few casts for few bad values)."""
    try:
        return pc.cast(values, target), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    failed: list[int] = []
    _find_failing(values, target, 0, failed)
    mask = _mask(len(values), failed)
    return pc.cast(pc.if_else(mask, pa.scalar(None, values.type), values), target), failed


def _find_failing(values: pa.Array, target: pa.DataType, offset: int, failed: list[int]) -> None:
    try:
        pc.cast(values, target)
        return
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if len(values) <= 16:
        for i in range(len(values)):
            try:
                pc.cast(values.slice(i, 1), target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                failed.append(offset + i)
        return
    mid = len(values) // 2
    _find_failing(values.slice(0, mid), target, offset, failed)
    _find_failing(values.slice(mid), target, offset + mid, failed)


def _mask(n: int, indices: list[int]) -> pa.Array:
    keep = [False] * n
    for i in indices:
        keep[i] = True
    return pa.array(keep, pa.bool_())


def _drop(values: pa.Array, bad: pa.Array) -> pa.Array:
    return pc.if_else(bad, pa.scalar(None, values.type), values)


def _to_number(values: pa.Array, target: pa.DataType, rules: TextRules) -> tuple[pa.Array, list[int]]:
    floating = pa.types.is_floating(target)
    special = _nan_or_inf(values, rules) if floating else None
    pattern = _INT if pa.types.is_integer(target) else _NUMBER
    bad = _pattern_failures(values, pattern, special)
    candidates = _drop(values, bad)
    if floating and rules.nan_value != "NaN":
        candidates = pc.if_else(pc.equal(candidates, pa.scalar(rules.nan_value)), pa.scalar("NaN"), candidates)
    result, failed = _cast_each(candidates, target)
    if floating:
        failed += _inexact_doubles(candidates, pc.cast(result, pa.float64()))
    failed = sorted(set(failed) | set(pc.indices_nonzero(bad).to_pylist()))
    if failed:
        result = _drop(result, _mask(len(values), failed))
    return result, failed


def _python_strptime(values: pa.Array, fmt: str, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    out: list[Any] = []
    failed: list[int] = []
    for i, text in enumerate(values.to_pylist()):
        if text is None:
            out.append(None)
            continue
        try:
            value = datetime.strptime(text, fmt)
        except ValueError:
            out.append(None)
            failed.append(i)
            continue
        if pa.types.is_date(target):
            out.append(value.date())
        else:
            out.append(value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))
    return pa.array(out, target), failed


def _with_pattern(values: pa.Array, pattern: str, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    parsed = parse_pattern(pattern)
    if parsed.fraction or "%b" in parsed.strptime or "%B" in parsed.strptime or "%a" in parsed.strptime:
        return _python_strptime(values, parsed.strptime, target)
    stamps = pc.strptime(values, format=parsed.strptime, unit="us", error_is_null=True)
    if _rolled_or_reshaped(values, stamps, parsed.strptime):
        return _python_strptime(values, parsed.strptime, target)
    failed = pc.indices_nonzero(pc.and_(values.is_valid(), stamps.is_null())).to_pylist()
    if pa.types.is_date(target):
        return pc.cast(stamps, pa.date32()), failed
    if not parsed.zone:
        stamps = pc.assume_timezone(stamps, "UTC")
    return pc.cast(stamps, target), failed


def _rolled_or_reshaped(values: pa.Array, stamps: pa.Array, fmt: str) -> bool:
    """Whether a parsed value does not print back as its text: Arrow's strptime rolls a day past the month's end
    over (`31/02/2020` was 2020-03-02) and reads `20` as the year 20 under `%Y`; an unpadded or zoned text prints
    otherwise too. Python's strptime, strict about both, then reads the column (rare: usual text prints back)."""
    parsed = pc.and_(values.is_valid(), stamps.is_valid())
    printed = pc.strftime(stamps, format=fmt)
    return bool(pc.any(pc.and_(parsed, pc.not_equal(printed, values))).as_py())


def _to_timestamp(values: pa.Array, target: pa.DataType, rules: TextRules) -> tuple[pa.Array, list[int]]:
    if rules.timestamp_format is not None:
        return _with_pattern(values, rules.timestamp_format, target)
    is_date = pc.fill_null(pc.match_substring_regex(values, _DATE), False)
    values = pc.if_else(is_date, pc.binary_join_element_wise(values, "T00:00:00", ""), values)
    sub_micros = pc.fill_null(pc.match_substring_regex(values, _SUB_MICROS), False)
    bad = pc.or_(_pattern_failures(values, _TIMESTAMP), sub_micros)
    candidates = _drop(values, bad)
    has_zone = pc.fill_null(pc.match_substring_regex(candidates, _HAS_ZONE), False)
    zoned, failed = _cast_each(pc.if_else(has_zone, candidates, pa.scalar(None, pa.string())), target)
    local, more = _cast_each(pc.if_else(has_zone, pa.scalar(None, pa.string()), candidates), pa.timestamp(target.unit))
    result = pc.coalesce(zoned, pc.cast(pc.assume_timezone(local, "UTC"), target))
    failed = sorted(set(failed) | set(more) | set(pc.indices_nonzero(bad).to_pylist()))
    return result, failed


def _to_date(values: pa.Array, rules: TextRules) -> tuple[pa.Array, list[int]]:
    if rules.date_format is not None:
        return _with_pattern(values, rules.date_format, pa.date32())
    bad = _pattern_failures(values, _DATE)
    result, failed = _cast_each(_drop(values, bad), pa.date32())
    return result, sorted(set(failed) | set(pc.indices_nonzero(bad).to_pylist()))


def _to_bool(values: pa.Array) -> tuple[pa.Array, list[int]]:
    bad = _pattern_failures(values, _BOOL)
    result = pc.equal(pc.utf8_lower(_drop(values, bad)), pa.scalar("true"))
    return result, pc.indices_nonzero(bad).to_pylist()


_NONZERO_MANTISSA = r"^[^eE]*[1-9]"


def _fast_cast(text: pa.Array, target: pa.DataType, rules: TextRules) -> pa.Array | None:
    """One vectorised cast plus the cheap checks that prove it exact, or None to take the value-by-value path.

    Clean data (the common case) costs a few vectorised passes: the per-call overhead of Arrow's kernels is what
    counts on 1 MiB CSV blocks, so every check here is one pass over the column, and NaN/inf/zero-with-exponent
    or long text go to the slow path instead of being sorted out here.
    """
    if pa.types.is_integer(target):
        if _integer_leading_zero(text):
            return None  # 007, 0x1F, -05: the slow path decides
        return _try_cast(text, target)
    if pa.types.is_decimal(target):
        return None if _number_leading_zero(text) else _try_cast(text, target)
    if pa.types.is_floating(target):
        if _number_leading_zero(text):
            return None
        result = _try_cast(text, target)
        if result is None or not _all_finite(result):
            return None  # NaN and inf: only their declared spellings, checked on the slow path
        if not _long_text_written_back(text, result):
            return None
        zeros = pc.equal(result, 0.0)
        if pc.any(zeros).as_py() and _matches_any(text.filter(zeros), _NONZERO_MANTISSA):
            return None  # underflow (1e-400 is not 0)
        return result
    if pa.types.is_timestamp(target) and rules.timestamp_format is None:
        zoned = _try_cast(text, target)  # every value has a zone; Arrow refuses sub-microsecond digits
        if zoned is not None:
            return zoned
        naive = _try_cast(text, pa.timestamp(target.unit))
        return None if naive is None else pc.cast(pc.assume_timezone(naive, "UTC"), target)
    if pa.types.is_date(target) and rules.date_format is None:
        return _try_cast(text, target) if pc.all(pc.match_substring_regex(text, _DATE)).as_py() is not False else None
    if pa.types.is_boolean(target):
        result = _try_cast(text, target)  # Arrow takes true/false in any case, and 1/0, which are not booleans here
        if result is None or _any_bool_digit(text):
            return None  # Arrow takes 1 and 0 as booleans, which they are not here
        return result
    return None


# The fast path's checks look at the first bytes of each value (`_leading_bytes`), read from the string array's
# buffers with numpy: a few microseconds a column of a 1 MiB CSV block, where a regex pass took 0.4 to 0.7 ms.
_ZERO, _MINUS, _PLUS = ord("0"), ord("-"), ord("+")
_AFTER_LEADING_ZERO = np.zeros(256, np.bool_)
_AFTER_LEADING_ZERO[[*range(ord("0"), ord("9") + 1), ord("x"), ord("X")]] = True


def _leading_bytes(text: pa.Array, count: int) -> tuple[Any, list[Any]]:
    """Each value's length in bytes and the `count` bytes from its start. Past a value's end they are the next
    value's bytes (or the buffer's last): each check masks them by the length, which is one pass less per byte than
    zeroing them here. Null values may count as text (their bytes are whatever the buffer holds): the checks below
    only send a column to the slow path."""
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32, count=len(text) + 1, offset=text.offset * 4)
    starts, lengths = offsets[:-1], np.diff(offsets)
    if data_buffer is None or not data_buffer.size:
        return lengths, [np.zeros(len(text), np.uint8) for _ in range(count)]
    data = np.frombuffer(data_buffer, np.uint8)
    return lengths, [data.take(starts + k, mode="clip") for k in range(count)]


def _integer_leading_zero(text: pa.Array) -> bool:
    """Whether an integer's text starts with a zero that is not the whole number (`007`, `-05`, `-0`)."""
    lengths, (first, second) = _leading_bytes(text, 2)
    return bool(((lengths > 1) & ((first == _ZERO) | ((first == _MINUS) & (second == _ZERO)))).any())


def _number_leading_zero(text: pa.Array) -> bool:
    """Whether a number's text has a leading zero before a digit or an x (`05.5`, `-00.1`, `0x1F`; not `0.5`)."""
    lengths, (first, second, third) = _leading_bytes(text, 3)
    unsigned = (lengths > 1) & (first == _ZERO) & _AFTER_LEADING_ZERO[second]
    signed = (lengths > 2) & ((first == _MINUS) | (first == _PLUS)) & (second == _ZERO) & _AFTER_LEADING_ZERO[third]
    return bool((unsigned | signed).any())


def _any_bool_digit(text: pa.Array) -> bool:
    """Whether a value is `0` or `1` (text Arrow casts to a boolean that is not one here)."""
    lengths, (first,) = _leading_bytes(text, 1)
    return bool(((lengths == 1) & ((first == _ZERO) | (first == _ZERO + 1))).any())


def _long_text_written_back(text: pa.Array, doubles: pa.Array) -> bool:
    """Whether every number text a double may not hold (`_long_number_text`) is what Arrow writes for its double, so
    exact (`written_back`): the shortest form Python, JavaScript and pandas write (`0.5488135039273248`) is, and a
    column of it then costs one cast back instead of the slow path. Doubles only: a float's shortest form is never
    that long."""
    long_text = _long_number_text(text)
    if not pc.any(long_text).as_py():
        return True
    if doubles.type != pa.float64():
        return False
    return bool(pc.all(written_back(text.filter(long_text), doubles.filter(long_text))).as_py())


def _all_finite(values: pa.Array) -> bool:
    """Whether no value is NaN or infinite, by their sum (one pass): a sum of finite values too large for a double
    also says no, which only sends the column to the slow path."""
    total = pc.sum(values).as_py()
    return total is None or bool(np.isfinite(total))


def _matches_any(text: pa.Array, pattern: str) -> bool:
    return bool(pc.any(pc.match_substring_regex(text, pattern)).as_py())


def _try_cast(text: pa.Array, target: pa.DataType) -> pa.Array | None:
    try:
        return pc.cast(text, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def narrow_floats(wide: pa.Array, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    """Doubles as `target` (float32), and the indices of those it does not hold (NULL in the result): out of its
    range, flushed to zero, or the same number only as a double (`16777217`, `0.123456789`). A float32 holds a
    double when its shortest form, or its 9-digit form (`%.9g`, as C prints it), reads back as that double: `0.1`
    does. Values that come back unchanged through float32 hold; the rest are checked one by one in Python, which
    only a float32 column pays."""
    narrow = pc.cast(wide, target)
    same = pc.or_kleene(pc.equal(pc.cast(narrow, pa.float64()), wide), pc.is_nan(wide))
    suspects = pc.indices_nonzero(pc.invert(pc.fill_null(same, True))).to_pylist()
    if not suspects:
        return narrow, []
    doubles = wide.take(pa.array(suspects, pa.int64())).to_pylist()
    lost = [i for i, value in zip(suspects, doubles, strict=True) if not float32_holds(value)]
    return (_drop(narrow, _mask(len(wide), lost)) if lost else narrow), lost


def float32_holds(value: float) -> bool:
    """Whether a float32 holds the double `value` (see `narrow_floats`): NaN and the infinities it does."""
    if not np.isfinite(value):
        return True
    with np.errstate(over="ignore"):
        single = np.float32(value)
    if not np.isfinite(single) or (single == 0 and value != 0):
        return False
    if float(single) == value:
        return True  # the very number (2**30: 10 digits, more than float32's shortest text shows)
    return float(str(single)) == value or float(f"{float(single):.9g}") == value


def cast_text(values: pa.Array, target: pa.DataType, rules: TextRules = DEFAULT_RULES) -> tuple[pa.Array, list[int]]:
    """Text cast exactly to `target`, and the indices of values it cannot hold (NULL in the result).

    NULL, empty and the null token are NULL (not failures). String targets take every value as is. A float32
    column takes the double rules, then `narrow_floats`.
    """
    if pa.types.is_float32(target):
        wide, failed = cast_text(values, pa.float64(), rules)
        narrow, lost = narrow_floats(wide, target)
        return narrow, sorted(set(failed) | set(lost))
    text = _text(values)
    if pa.types.is_string(target) or pa.types.is_large_string(target):
        nulls = null_mask(text, rules)
        return pc.cast(_drop(text, pc.and_(nulls, text.is_valid())) if rules.null_value else text, target), []
    fast_path = rules.nan_value == "NaN"  # a custom NaN spelling is understood by the value-by-value path only
    tried = False
    if fast_path and not rules.null_value:
        # Clean columns first: no null token passes an exact cast, so the NULL handling is needed only on failure.
        fast = _fast_cast(text, target, rules)
        if fast is not None:
            return fast, []
        tried = True
    nulls = null_mask(text, rules, typed=True)
    if nulls.true_count > text.null_count:  # some text means NULL: make it NULL (a copy, so only when needed)
        text = _drop(text, nulls)
        tried = False
    if fast_path and not tried:
        fast = _fast_cast(text, target, rules)
        if fast is not None:
            return fast, []
    if pa.types.is_integer(target) or pa.types.is_floating(target) or pa.types.is_decimal(target):
        return _to_number(text, target, rules)
    if pa.types.is_timestamp(target):
        return _to_timestamp(text, target, rules)
    if pa.types.is_date(target):
        return _to_date(text, rules)
    if pa.types.is_boolean(target):
        return _to_bool(text)
    if pa.types.is_binary(target) or pa.types.is_large_binary(target):
        return pc.cast(text, target), []
    if pa.types.is_null(target):  # a column that held no value where the schema was inferred holds none here
        return pa.nulls(len(text)), pc.indices_nonzero(text.is_valid()).to_pylist()
    return _cast_each(text, target)

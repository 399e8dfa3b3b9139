"""The exact text rules of `core/formats/text_types.py` as Spark Column expressions (docs/TYPES.md).

CSV fields (and JSON values for date, timestamp, double and decimal columns) are read as text on the cluster; each
typed column is then one expression: NULL for the null tokens, the value when the text matches the same patterns the
embedded engine uses and the cast is exact, otherwise NULL with the original text rescued under the column's name.
The regexes are those of text_types (Java's regex dialect reads them the same way), so both engines accept the same
text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa

from core.formats import text_types
from core.formats.conform import FILE_PATH_KEY, MALFORMED
from core.formats.patterns import parse_pattern
from core.formats.text_types import _LONGEST_EXACT_DOUBLE_TEXT, _SAFE_DOUBLE_DIGITS, TextRules


def _java(pattern: str) -> str:
    """A text_types regex as Java's engine must read it to match what Arrow's (RE2) matches: Java's `$` also matches
    before a line break that ends the text, so `1\\n` was a number and `2024-05-01\\n` a date on Spark, while the
    embedded engine rescued them (found by an attack helper). The end anchor is `\\z`, the very end."""
    return re.sub(r"(?<!\\)\$", r"\\z", pattern)


_ALL_DIGITS_LONGEST = _java(text_types._ALL_DIGITS_LONGEST)
_DATE = _java(text_types._DATE)
_HAS_ZONE = _java(text_types._HAS_ZONE)
_INF = _java(text_types._INF)
_NUMBER = _java(text_types._NUMBER)
_SUB_MICROS = _java(text_types._SUB_MICROS)
_TIMESTAMP = _java(text_types._TIMESTAMP)

_MIN_NORMAL_DOUBLE = 2.2250738585072014e-308
_DOUBLE_PRINT_DIGITS = 17  # `%.17g`: the other form of a double the embedded engine accepts
# Arrow's ISO parser (the embedded engine) refuses these although _TIMESTAMP admits them: lowercase `t`/`z`, a
# comma before the fraction, more than 6 fraction digits (Delta's unit is the microsecond).
_ARROW_REFUSES = r"[tz,]|\.[0-9]{7}"
_JSON_NUMBER = _java(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_NONZERO_MANTISSA = r"^[^eE]*[1-9]"
_MISSING = "__missing"  # `convert` stages whether a text is NULL under this key
_NO_SECONDS = r"^(.{10}[T ][0-9]{2}:[0-9]{2})(?![0-9:])"
# The usual timestamp text, which the general rules leave as it is but for a `Z` where it has no zone: with seconds,
# at most 6 fraction digits after a point, upper-case `T` or a space, `Z` or `±hh:mm`. One regex instead of six.
_PLAIN_TIMESTAMP = _java(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?$"
)

T = TypeVar("T")
Steps = Generator[dict[str, Any], dict[str, Any], T]
"""A conversion in steps. It yields the expressions it reads more than once and is sent back a column holding each
(reading.Staging puts a step's expressions in one projection), then returns its result: Spark copies an expression
read twice into both uses and computes each copy."""


def handled(target: pa.DataType) -> bool:
    """Whether a column of this type is read as text and converted by these rules."""
    return (
        pa.types.is_integer(target)
        or pa.types.is_floating(target)
        or pa.types.is_decimal(target)
        or pa.types.is_boolean(target)
        or pa.types.is_date(target)
        or pa.types.is_timestamp(target)
    )


@dataclass(frozen=True, slots=True)
class Converted:
    """A typed column's value (one large expression), the text it comes from, and whether that text is a NULL.

    A caller stores `value` in a column of its own before `misfit` reads it (reading.Staging), so Spark computes it
    once per row: built into the misfit's expression as well, its whole tree was copied into every later use."""

    value: Any
    text: Any
    missing: Any

    def misfit(self, value: Any) -> Any:
        """The text to rescue, given the column holding the value: NULL when nothing is rescued."""
        from pyspark.sql.connect import functions as F

        return F.when(~self.missing & value.isNull(), self.text)


@dataclass(frozen=True, slots=True)
class Significant:
    """Number text taken apart: sign, significant digits without leading/trailing zeros, decimal exponent of the
    first."""

    sign: Any
    digits: Any
    point: Any

    def canonical(self) -> Any:
        """The number in one form (`-72886806e2`-like), so two texts of the same number compare equal."""
        from pyspark.sql.connect import functions as F

        return F.when(self.digits == "", F.lit("0")).otherwise(
            F.concat(self.sign, self.digits, F.lit("e"), self.point.cast("string"))
        )


def _significant(text: Any) -> Steps[Significant]:
    """`text` (number text; NULL skips the row) taken apart, each part read more than once staged."""
    from pyspark.sql.connect import functions as F

    lower = F.lower(text)
    got = yield {
        "sign": F.when(lower.startswith("-"), F.lit("-")).otherwise(F.lit("")),
        "body": F.regexp_replace(lower, r"^[+-]", ""),
    }
    body = got["body"]
    got |= yield {
        "mantissa": F.regexp_extract(body, r"^([0-9]*\.?[0-9]*)", 1),
        "exponent": F.coalesce(F.regexp_extract(body, r"e([+-]?[0-9]+)$", 1).try_cast("int"), F.lit(0)),
    }
    mantissa = got["mantissa"]
    got |= yield {
        "whole": F.regexp_extract(mantissa, r"^([0-9]*)", 1),
        "fraction": F.regexp_extract(mantissa, r"\.([0-9]*)$", 1),
    }
    digits = F.concat(got["whole"], got["fraction"])
    got |= yield {"unled": F.regexp_replace(digits, r"^0+", ""), "count": F.length(digits)}
    unled = got["unled"]
    got |= yield {"significant": F.regexp_replace(unled, r"0+$", "")}
    point = got["exponent"] + F.length(got["whole"]) - (got["count"] - F.length(unled))
    return Significant(got["sign"], got["significant"], point)


def together(steps: dict[str, Steps[Any]]) -> Steps[dict[str, Any]]:
    """Several step-wise conversions side by side: each step's expressions of all of them are staged together, so the
    plan is as deep as the longest one, not their sum (Spark Connect refuses a plan nested too deep)."""
    results: dict[str, Any] = {}
    pending: dict[str, dict[str, Any]] = {}
    for key, step in steps.items():
        try:
            pending[key] = next(step)
        except StopIteration as done:
            results[key] = done.value
    while pending:
        got = yield {f"{key}.{name}": expr for key, exprs in pending.items() for name, expr in exprs.items()}
        following = {}
        for key, exprs in pending.items():
            try:
                following[key] = steps[key].send({name: got[f"{key}.{name}"] for name in exprs})
            except StopIteration as done:
                results[key] = done.value
        pending = following
    return results


def _integer(text: Any, spark_type: str) -> Steps[Any]:
    """_INT's integers: the text is exactly the value's printed form (or `-0`), which is what _INT admits, so one
    cast and a compare stand in for the regex. Out of range, the cast is NULL: rescued."""
    from pyspark.sql.connect import functions as F

    got = yield {"parsed": text.try_cast(spark_type)}
    parsed = got["parsed"]
    return F.when((parsed.cast("string") == text) | (text == "-0"), parsed)


def _long_number(text: Any) -> Any:
    """Number text a double may not hold exactly: over 16 characters, or 16 digits (`9007199254740993`)."""
    from pyspark.sql.connect import functions as F

    length = F.length(text)
    return (length > _LONGEST_EXACT_DOUBLE_TEXT) | (
        (length == _LONGEST_EXACT_DOUBLE_TEXT) & text.rlike(_ALL_DIGITS_LONGEST)
    )


def _java_print(text: Any, parsed: Any) -> Any:
    """Whether the text is Spark's print of the double `parsed` (its cast to string: Java's `Double.toString`)."""
    return parsed.cast("string") == text


def _printed_back(text: Any, java_print: Any) -> Any:
    """Whether number text is how Java prints its double in plain notation (`java_print`: `_java_print` of that
    double; doubles from 0.001 to 10^7): then it is the double's shortest form, exact, without taking it apart.
    Python's, JavaScript's and pandas' shortest form is that text for most doubles in that range
    (`0.5488135039273248`), so a column of them keeps to the short forms. Java 17's exponent form is not always the
    shortest (`9.999999999999999E22` for 1e23, found by an attack helper), and such text is not exact by the rules:
    it is taken apart. Checked on 2,024,487 plain prints of Java 17 (random doubles and bit patterns): each the
    double's shortest form."""
    from pyspark.sql.connect import functions as F

    return ~F.contains(text, F.lit("E")) & java_print


def _double(text: Any, spark_type: str, rules: TextRules, general: bool) -> Steps[Any]:
    """text_types' double rules: number text (or NaN/inf) whose double is the same number. Text of up to 16
    characters, except 16 digits, is exact unless it overflows or underflows (a zero is exact when the text has no
    other digit than 0 before its exponent); longer text and those 16 digits (`_long_number`) must be the double's
    printed form: at most 15 significant digits, 17 (the `%.17g` form), or the same number as Java's shortest
    form. Without `general`, such text is rescued instead of taken apart (see `rare_rows`), unless it is Java's
    plain-notation print of its double (`_printed_back`)."""
    from pyspark.sql.connect import functions as F

    any_double = text.try_cast("double")  # also text the rules refuse: `1d`, ` 1`, `NaN`, `Infinity`
    # Number text: Java's print of its double (the common case, without a regex per row: 0.13 s of each double column
    # of a 256 MiB CSV), or what _NUMBER admits. Java prints NaN and the infinities as words; the rules take them
    # from `nan_value` and _INF below, as they always did. The print is staged with the value, so `_printed_back`
    # below prints no double again: where the guard holds, `parsed` is `any_double`; elsewhere neither is a print.
    java_print = _java_print(text, any_double) & ~F.isnan(any_double)
    got = yield {"parsed": F.when(java_print | text.rlike(_NUMBER), any_double), "java_print": java_print}
    parsed = got["parsed"]
    long = _long_number(text)
    finite = F.abs(parsed) != F.lit(float("inf"))  # NULL where the text is not a number: `exact` is then not true
    zero_ok = (parsed != 0.0) | ~text.rlike(_NONZERO_MANTISSA)
    printed_back = F.coalesce(_printed_back(text, got["java_print"]), F.lit(False))
    if general:
        # Only the long text Java does not print back is taken apart (regexes, per row): a column of shortest-form
        # doubles has a few such values (Java writes 0.00097 as 9.7E-4), which send the batch here.
        apart = long & ~printed_back
        parts = yield from together(
            {"text": _significant(F.when(apart, text)), "parsed": _significant(F.when(apart, parsed.cast("string")))}
        )
        digits = F.length(parts["text"].digits)
        few_digits = (digits <= _SAFE_DOUBLE_DIGITS) & (F.abs(parsed) >= _MIN_NORMAL_DOUBLE)
        printed_form = (digits == _DOUBLE_PRINT_DIGITS) | (parts["text"].canonical() == parts["parsed"].canonical())
        exact = finite & zero_ok & (~long | printed_back | few_digits | printed_form)
    else:
        exact = finite & zero_ok & (~long | printed_back)
    # NaN text is never parsed and infinity is never `finite`, so neither is `exact`: the order of the cases keeps the
    # rules.
    infinity = F.when(text.startswith("-"), F.lit(float("-inf"))).otherwise(F.lit(float("inf")))
    value = F.when(text == rules.nan_value, F.lit(float("nan"))).when(exact, parsed).when(text.rlike(_INF), infinity)
    if spark_type == "double":
        return value
    return (yield from _narrowed(value, spark_type))


def _narrowed(value: Any, spark_type: str) -> Steps[Any]:
    """text_types.narrow_floats: the double as a float where the float's shortest form (Java's `Float.toString`) or
    its `%.9g` form reads back as that double (Spark's `=` holds for NaN), else NULL."""
    from pyspark.sql.connect import functions as F

    got = yield {"double": value}
    double = got["double"]
    single = double.cast(spark_type)
    printed = single.cast("string").cast("double") == double
    # format_string writes a NULL as `null`, which a plain cast refuses (ANSI mode): NULL stays NULL.
    nine_digits = F.format_string("%.9g", single.cast("double")).try_cast("double") == double
    return F.when(double.isNotNull() & (printed | nine_digits), single)


def _decimal(text: Any, spark_type: str) -> Steps[Any]:
    from pyspark.sql.connect import functions as F

    got = yield {"parsed": F.when(text.rlike(_NUMBER), text.try_cast(spark_type))}
    parsed = got["parsed"]
    parts = yield from together({"text": _significant(text), "parsed": _significant(parsed.cast("string"))})
    return F.when(parts["text"].canonical() == parts["parsed"].canonical(), parsed)


def _boolean(text: Any) -> Any:
    """text_types._BOOL without a regex (Spark decodes the text into a Java string for each `rlike`): Java's `(?i)`
    folds ASCII letters only, and no other character lower-cases to one of `true`/`false`'s letters."""
    from pyspark.sql.connect import functions as F

    lower = F.lower(text)
    return F.when(lower.isin("true", "false"), lower == "true")


def _with_pattern(text: Any, pattern: str, session_zone: str, date: bool) -> Any:
    """Spark's parser for a date or timestamp pattern; wall-clock text without a zone is UTC."""
    from pyspark.sql.connect import functions as F

    stamp = F.try_to_timestamp(text, F.lit(pattern))
    if date:
        return F.to_date(stamp)
    if not parse_pattern(pattern).zone and session_zone not in ("UTC", "Etc/UTC", "Z", "GMT"):
        stamp = F.from_utc_timestamp(stamp, session_zone)
    return stamp


def _date(text: Any, rules: TextRules, session_zone: str) -> Any:
    from pyspark.sql.connect import functions as F

    if rules.date_format is not None:
        return _with_pattern(text, rules.date_format, session_zone, date=True)
    return F.when(text.rlike(_DATE), text.try_cast("date"))


def _timestamp(text: Any, rules: TextRules, session_zone: str, general: bool) -> Steps[Any]:
    """Plain timestamp text (`_PLAIN_TIMESTAMP`) in one cast; the other forms text_types admits by the general
    rules, or, without `general`, rescued (see `rare_rows`)."""
    from pyspark.sql.connect import functions as F

    if rules.timestamp_format is not None:
        return _with_pattern(text, rules.timestamp_format, session_zone, date=False)
    # Plain text has a zone where it ends in `Z`, or in `±hh:mm` (its only `+` or `-` six characters from the end).
    has_zone = text.endswith("Z") | F.substring(text, -6, 1).isin("+", "-")
    plain_value = F.when(has_zone, text).otherwise(F.concat(text, F.lit("Z"))).try_cast("timestamp")
    if not general:
        return F.when(text.rlike(_PLAIN_TIMESTAMP), plain_value)
    got = yield {"plain": text.rlike(_PLAIN_TIMESTAMP)}
    plain = got["plain"]
    # The rest only for the rows that are not plain (NULL text elsewhere: each step then costs next to nothing).
    other = F.when(~plain, text)
    got |= yield {"full": F.when(other.rlike(_DATE), F.concat(other, F.lit("T00:00:00"))).otherwise(other)}
    full = got["full"]
    got |= yield {
        "fits": full.rlike(_TIMESTAMP) & ~full.rlike(_SUB_MICROS) & ~full.rlike(_ARROW_REFUSES),
        "seconds": F.regexp_replace(full, _NO_SECONDS, "$1:00"),
    }
    seconds = got["seconds"]
    zoned = F.when(seconds.rlike(_HAS_ZONE), seconds).otherwise(F.concat(seconds, F.lit("Z")))
    return F.when(plain, plain_value).when(got["fits"], zoned.try_cast("timestamp"))


def _missing(text: Any, rules: TextRules) -> Any:
    """Whether the text is a NULL or one of the rules' NULL tokens. The tokens are one array literal: an `IN` list
    is generated as one compare per token in every column's code."""
    from pyspark.sql.connect import functions as F

    tokens = rules.typed_null_tokens
    return (text.isNull() | F.array_contains(F.lit(list(tokens)), text)) if tokens else text.isNull()


def rare_rows(text: Any, target: pa.DataType, rules: TextRules) -> Any | None:
    """Where a row of a `target` column needs the general form of its rule (`convert`): long number text for
    doubles and floats, timestamp text that is not plain. None for the types that have one form.

    The general forms take the text apart in several steps, each a projection of its own: in a batch with no such
    row they are left out. The short forms rescue such text rather than take it wrongly, should a file change
    between the count and the write. Long number text that is Java's plain-notation print of its double is no such
    row: the short form takes it (`_printed_back`)."""
    from pyspark.sql.connect import functions as F

    if pa.types.is_floating(target):
        java_print = _java_print(text, text.try_cast("double"))
        return _long_number(text) & ~F.coalesce(_printed_back(text, java_print), F.lit(False))
    if pa.types.is_timestamp(target) and rules.timestamp_format is None:
        return ~_missing(text, rules) & ~text.rlike(_PLAIN_TIMESTAMP)
    return None


def convert(
    text: Any,
    target: pa.DataType,
    spark_type: Any,
    rules: TextRules,
    session_zone: str,
    general: bool = True,
    void: Any | None = None,
) -> Steps[Converted]:
    """The value of one text column in a `target` column (see `handled`), by text_types' rules, in steps; without
    `general`, the short forms, for a batch where no row is one of `rare_rows`. Where `void` holds (CSV's malformed
    rows), the value is NULL and nothing is rescued, as for a NULL text. Whether the text is a NULL (or void) is
    staged with the first step: the value and its misfit both read it."""
    from pyspark.sql.connect import functions as F

    simple = spark_type.simpleString()
    steps: Steps[Any] | None = None
    if pa.types.is_integer(target):
        steps = _integer(text, simple)
    elif pa.types.is_floating(target):
        steps = _double(text, simple, rules, general)
    elif pa.types.is_decimal(target):
        steps = _decimal(text, simple)
    elif pa.types.is_timestamp(target):
        steps = _timestamp(text, rules, session_zone, general)
    first: dict[str, Any] = {}
    if steps is None:
        converted = _boolean(text) if pa.types.is_boolean(target) else _date(text, rules, session_zone)
    else:
        try:
            first = next(steps)
        except StopIteration as done:
            converted, steps = done.value, None
    missing = _missing(text, rules)
    got = yield {**first, _MISSING: missing if void is None else missing | void}
    missing = got.pop(_MISSING)
    if steps is not None:
        converted = yield from _resumed(steps, got)
    return Converted(F.when(~missing, converted).cast(spark_type), text, missing)


def _resumed(steps: Steps[T], got: dict[str, Any]) -> Steps[T]:
    """`steps` after its first step, `got` being what that step was sent back."""
    try:
        expressions = steps.send(got)
        while True:
            got = yield expressions
            expressions = steps.send(got)
    except StopIteration as done:
        return done.value


def rescued_text(entries: list[tuple[str, Any]], json_values: bool = False) -> Any:
    """A JSON object string of the non-NULL (string) entries, `{}` when all are NULL. `as_object` turns `{}` into
    NULL; stage this first (reading.Staging), as that reads it twice.

    Text entries are one `to_json` of a struct, which leaves NULL fields out (a `to_json` per entry made the
    batch's generated code too large for the JVM to compile; docs/SPARK.md). With `json_values` (JSON sources), an
    entry whose text is a JSON number, boolean, object or array is written as that value, as the embedded engine
    rescues it (`{"x":1e400}`); other text is a JSON string. Spark hands a JSON value read into a text column over
    as its exact text, so a number keeps every digit. Keys as Spark's to_json writes them (non-ASCII kept, not
    `\\u`-escaped)."""
    from pyspark.sql.connect import functions as F

    if not entries:
        return F.lit("{}")
    texts = [(name, value.cast("string")) for name, value in entries]
    if not json_values:
        built = F.to_json(F.struct(*[text.alias(name) for name, text in texts]), {"ignoreNullFields": "true"})
    else:  # concat_ws skips the NULL members.
        members = [
            F.concat(F.lit(json.dumps(name, ensure_ascii=False) + ":"), _json_value(text)) for name, text in texts
        ]
        built = F.concat(F.lit("{"), F.concat_ws(",", *members), F.lit("}"))
    # Built only for a row with something to rescue: building `{}` for every row was 0.5 s of a 256 MiB CSV's
    # one-pass write on 2 cores (noop writes, medians of 3).
    return F.when(F.coalesce(*[text for _, text in texts]).isNull(), F.lit("{}")).otherwise(built)


def as_object(text: Any) -> Any:
    """`rescued_text`'s object, NULL when it has no members."""
    from pyspark.sql.connect import functions as F

    return F.when(text != "{}", text)


def rescued_object(entries: list[tuple[str, Any]], json_values: bool = False) -> Any:
    """A JSON object string of the non-NULL (string) entries, NULL when all are NULL (`rescued_text`)."""
    return as_object(rescued_text(entries, json_values))


def _json_value(text: Any) -> Any:
    """`text` as a JSON value: itself when it is one (a number, `true`/`false`, an object or array), else quoted;
    NULL stays NULL (it is left out of the object)."""
    from pyspark.sql.connect import functions as F

    structured = F.from_json(text, "map<string,string>").isNotNull() | F.from_json(text, "array<string>").isNotNull()
    is_value = text.rlike(_JSON_NUMBER) | text.isin("true", "false") | (text.rlike(r"^\s*[\[{]") & structured)
    return F.when(text.isNull(), text).when(is_value, text).otherwise(_json_string(text))


def _json_string(text: Any) -> Any:
    """`text` as a JSON string, escaped as Spark's to_json escapes it; NULL stays NULL."""
    from pyspark.sql.connect import functions as F

    # `["…"]` without its brackets: btrim stops at the string's own quotes.
    return F.when(text.isNotNull(), F.btrim(F.to_json(F.array(text)), F.lit("[]")))


def merge_objects(first: Any, second: Any) -> Any:
    """Two JSON object strings as one (the first's keys first); either may be NULL. Both are non-empty objects."""
    from pyspark.sql.connect import functions as F

    head = F.regexp_replace(first, r"\}\s*$", "")
    tail = F.regexp_replace(second, r"^\s*\{", "")
    joined = F.concat(head, F.lit(","), tail)
    return F.when(first.isNull(), second).when(second.isNull(), first).otherwise(joined)


def with_file_path(rescued: Any, path: Any) -> Any:
    """Every non-NULL `_rescued_data` object with `"_file_path": path` added, as Auto Loader writes it."""
    from pyspark.sql.connect import functions as F

    return F.when(rescued.isNotNull(), merge_objects(rescued, F.to_json(F.create_map(F.lit(FILE_PATH_KEY), path))))


def malformed(raw: Any) -> Any:
    """A record that did not parse at all, as the embedded engine keeps it: `{"_malformed": raw text}`."""
    from pyspark.sql.connect import functions as F

    return F.to_json(F.create_map(F.lit(MALFORMED), raw))

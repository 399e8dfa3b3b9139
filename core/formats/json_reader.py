"""JSON lines and multiline JSON into Arrow batches: Arrow's parser first, Python only for blocks it rejects."""

from __future__ import annotations

import enum
import functools
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pjson

from core.config import FormatConfig, FormatOptions
from core.formats.conform import (
    MALFORMED,
    RESCUED,
    JsonNumber,
    column_from_python,
    conform_batch,
    json_text,
    json_text_as_written,
    loads,
    merge_rescued,
    output_schema,
    parse_float,
)
from core.formats.names import column_name
from core.formats.nesting import MAX_JSON_DEPTH, deepest_line
from core.formats.streams import (
    DEEP_ACTION,
    MAX_MALFORMED_SHARE,
    FileReadStats,
    InvalidUtf8,
    bad_file,
    empty_file,
    first_content_at,
    read_up_to,
    utf8_error,
)
from core.formats.text_types import (
    BIG_INTEGER,
    DEFAULT_RULES,
    TextRules,
    decimal_type,
    double_exact,
    infer_text_type,
    written_back,
)
from core.formats.unify import normalize_schema, unify_schemas, unify_types

_ARROW_JSON_BLOCK = 1024 * 1024
_INFER_LEAF = 16  # runs of at most this many clashing lines are typed in Python


def _json_lines_blocks(stream: BinaryIO, first: bytes, exhausted: bool, block_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines: about `block_bytes` each, cut after the last newline (a longer line grows a block)."""
    buffer = first
    while True:
        if exhausted:
            if buffer:
                yield buffer
            return
        cut = buffer.rfind(b"\n")
        if cut != -1:
            yield buffer[: cut + 1]
            buffer = buffer[cut + 1 :]
        chunk = read_up_to(stream, block_bytes)
        exhausted = len(chunk) < block_bytes
        buffer = buffer + chunk if buffer else chunk


# Arrow's JSON reader (pyarrow 26) dies with a segmentation fault, taking the process with it, when one of its blocks
# starts with a `null` record, and it cuts a large text into blocks at line breaks (`\n` or a lone `\r`) it chooses;
# elsewhere it makes such a line an all-NULL row. A text with a line that starts with `null` is not given to Arrow:
# the Python path keeps the line as a malformed record (a JSON-lines record is an object), in every block alike.
# Arrow reads a UTF-8 byte order mark as white space. After a line break only blanks are allowed before the `null`:
# with line breaks in that run, the search would scan each run of blank lines once per line break in it.
_NULL_FIRST = re.compile(rb"(?:[ \t\r\n]|\xef\xbb\xbf)*null")
_NULL_AFTER_LINE_BREAK = re.compile(rb"[\n\r][ \t]*(?:\xef\xbb\xbf[ \t]*)*null")
_LINE_FEED, _CARRIAGE_RETURN, _OPENING_BRACE = ord("\n"), ord("\r"), ord("{")


def _has_null_record(block: bytes) -> bool:
    """Whether a line of `block` starts with `null` (after white space). Nothing to do for text without `null`;
    where every line after the first starts with `{`, as in JSON lines, a look at the byte after each line break
    (0.25 ms per MB); else a regex (0.5 to 0.8 ms per MB), linear in the text."""
    if b"null" not in block:
        return False
    if _NULL_FIRST.match(block) is not None:
        return True
    if _every_line_an_object(block):
        return False
    return _NULL_AFTER_LINE_BREAK.search(block) is not None


def _every_line_an_object(block: bytes) -> bool:
    """Whether every line feed is followed by `{` (or ends the text), and every carriage return by a line feed."""
    text = np.frombuffer(block, np.uint8)
    before, after = text[:-1], text[1:]
    if (after[before == _LINE_FEED] != _OPENING_BRACE).any():
        return False
    return b"\r" not in block or not (after[before == _CARRIAGE_RETURN] != _LINE_FEED).any()


def _arrow_json(block: bytes, explicit: pa.Schema | None, other_fields: str = "infer") -> pa.Table:
    """The block parsed by Arrow; fields outside `explicit` are typed by Arrow, or left out with `other_fields`
    "ignore" (about half the work when only a few columns are wanted). ArrowInvalid, as for text Arrow cannot parse,
    when a line is a `null` record (see `_has_null_record`): the callers then parse the block in Python."""
    if _has_null_record(block):
        raise pa.ArrowInvalid("a line is a null record, which Arrow's JSON reader cannot be given")
    size = len(block) + 1
    options = pjson.ReadOptions(use_threads=size > _ARROW_JSON_BLOCK, block_size=min(size, _ARROW_JSON_BLOCK))
    parse = pjson.ParseOptions(explicit_schema=explicit, unexpected_field_behavior=other_fields)
    try:
        return _checked(pjson.read_json(pa.BufferReader(block), read_options=options, parse_options=parse), explicit)
    except pa.ArrowInvalid as exc:
        if size <= _ARROW_JSON_BLOCK or "straddl" not in str(exc):
            raise
    # A record longer than Arrow's block: parse the block in one piece.
    options = pjson.ReadOptions(use_threads=False, block_size=size)
    return _checked(pjson.read_json(pa.BufferReader(block), read_options=options, parse_options=parse), explicit)


def _contains(t: pa.DataType, kind: Callable[[pa.DataType], bool]) -> bool:
    if kind(t):
        return True
    if pa.types.is_struct(t):
        return any(_contains(f.type, kind) for f in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _contains(t.value_type, kind)
    if pa.types.is_map(t):
        return _contains(t.key_type, kind) or _contains(t.item_type, kind)
    return False


def _inferred(table: pa.Table, explicit: pa.Schema | None) -> list[int]:
    """Indices of the columns Arrow typed itself (not in the explicit schema)."""
    known = set(explicit.names) if explicit is not None else set()
    return [i for i, name in enumerate(table.schema.names) if name not in known]


def _checked(table: pa.Table, explicit: pa.Schema | None) -> pa.Table:
    """The table, once the lists Arrow inferred are proven valid.

    Arrow (26) builds invalid lists -- or silently wrong ones: `[null, false]` read as `[false, false]` -- when it
    infers a list whose first items are null. Validation catches both; ArrowInvalid sends the block to Python.
    """
    for i in _inferred(table, explicit):
        if _contains(table.schema.field(i).type, pa.types.is_list):
            table.column(i).validate(full=True)
    return table


def _timestamps_inferred(table: pa.Table, explicit: pa.Schema | None) -> bool:
    """Whether Arrow turned JSON text into timestamps in a column it typed itself (the text would be lost)."""
    return any(_contains(table.schema.field(i).type, pa.types.is_timestamp) for i in _inferred(table, explicit))


def _json_parse_type(t: pa.DataType) -> pa.DataType | None:
    """The type to ask Arrow's JSON parser for, for a column of type `t` (None: let Arrow infer it).

    Dates, times and timestamps are read as text and cast by `conform_batch` with the text rules (Arrow's
    parser knows fewer timestamp shapes); maps and the null type are inferred, then cast or rescued.
    """
    if pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_timestamp(t):
        return pa.string()
    if pa.types.is_float32(t):
        return pa.float64()  # Arrow would round into a float32 itself; conform_batch narrows, checking each value
    if pa.types.is_map(t) or pa.types.is_null(t):
        return None
    if pa.types.is_struct(t):
        fields = [(f.name, _json_parse_type(f.type)) for f in t]
        if any(ft is None for _, ft in fields):
            return None
        return pa.struct([pa.field(name, ft) for name, ft in fields if ft is not None])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        item = _json_parse_type(t.value_type)
        return None if item is None else pa.list_(item)
    return t


@dataclass
class _JsonPlan:
    """How the blocks of one file are handed to Arrow's JSON parser.

    `strict` types every column, so Arrow parses straight into the target types. Arrow will not read
    a JSON number or object as text, so for files whose text columns hold other JSON values `loose`
    leaves those columns to Arrow's inference and turns the values back into their JSON text.
    Which of the two works is remembered per schema (`_LOOSE_WORKS`), so the next block or file of
    the same shape is parsed once.
    """

    schema: pa.Schema  # the data columns
    strict: pa.Schema | None
    loose: pa.Schema | None  # None when there are no text columns
    rules: TextRules = DEFAULT_RULES
    first_block: bool = True


# Per target schema: the loose parse schema that worked last (files of one source tend to look alike).
_LOOSE_WORKS: dict[pa.Schema, pa.Schema] = {}
_LOOSE_WORKS_MAX = 64


def _decimal_names(t: pa.DataType, name: str, found: set[str]) -> None:
    """Add to `found` the names of the fields that are (lists of) decimals, at any depth."""
    if pa.types.is_decimal(t):
        found.add(name)
    elif pa.types.is_struct(t):
        for f in t:
            _decimal_names(f.type, f.name, found)
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        _decimal_names(t.value_type, name, found)


@functools.lru_cache(maxsize=64)
def _text_for_decimal(schema: pa.Schema) -> re.Pattern[bytes] | None:
    """A pattern that finds a JSON string (or a list holding one) as the value of a decimal field, or a key
    written with escapes; None when the schema has no decimal field.

    Arrow's JSON parser reads `"00"` into a decimal column as 0, where a JSON string is never a number
    (docs/TYPES.md): a block it matches is parsed in Python, which rescues the text. A match elsewhere (a text
    field of the same name in another object) only costs that block the slower path.
    """
    names: set[str] = set()
    for f in schema:
        _decimal_names(f.type, f.name, names)
    if not names:
        return None
    keys = b"|".join(re.escape(json.dumps(n, ensure_ascii=False).encode("utf-8")) for n in sorted(names))
    return re.compile(rb"(?:" + keys + rb")\s*:\s*(?:\[[^\]]*)?\"|\\u")


@functools.lru_cache(maxsize=64)
def _json_schemas(schema: pa.Schema) -> tuple[pa.Schema, pa.Schema | None, pa.Schema | None]:
    data = pa.schema([pa.field(f.name, f.type) for f in schema if f.name != RESCUED])
    parse = [(f.name, _json_parse_type(f.type)) for f in data]
    strict = [pa.field(name, t) for name, t in parse if t is not None]
    loose = [f for f in strict if not pa.types.is_string(data.field(f.name).type)]
    return data, pa.schema(strict) if strict else None, pa.schema(loose) if len(loose) < len(strict) else None


def _json_plan(schema: pa.Schema, rules: TextRules = DEFAULT_RULES) -> _JsonPlan:
    data, strict, loose = _json_schemas(schema)
    return _JsonPlan(schema=data, strict=strict, loose=loose, rules=rules)


def _exact_as_text(t: pa.DataType) -> bool:
    """Whether values Arrow inferred as `t` convert back to their exact JSON text.

    Integers, booleans and lists of them do (cast / JSON-encoded); doubles do not (Arrow rounds a 20-digit
    integer or a 17-digit fraction to a double silently), nor objects (Arrow adds null members for keys
    a row lacks), nor text Arrow parsed as timestamps.
    """
    if pa.types.is_list(t):
        return _exact_as_text(t.value_type)
    return pa.types.is_string(t) or pa.types.is_null(t) or pa.types.is_integer(t) or pa.types.is_boolean(t)


def _loose_ok(table: pa.Table, schema: pa.Schema) -> bool:
    """Whether every text column of `schema` that Arrow typed itself can be turned back into its JSON text."""
    for name in table.schema.names:
        index = schema.get_field_index(name)
        field_type = table.schema.field(name).type
        if index != -1 and pa.types.is_string(schema.field(index).type) and not _exact_as_text(field_type):
            return False
    return True


def _nested_text_rounded(table: pa.Table, schema: pa.Schema, explicit: pa.Schema | None) -> bool:
    """Whether a column Arrow typed itself (a map, a struct holding one) may hold a number where `schema` has
    text: Arrow read it as a double, whose text is its shortest form (`1.50` comes back `1.5`), not as written."""
    for i in _inferred(table, explicit):
        index = schema.get_field_index(table.schema.names[i])
        if (
            index != -1
            and _contains(schema.field(index).type, pa.types.is_string)
            and _contains(table.schema.field(i).type, pa.types.is_floating)
        ):
            return True
    return False


def _strict_json(block: bytes, plan: _JsonPlan, integers: bool = False) -> pa.RecordBatch | None:
    """`integers`: the block has long integer text Arrow may have put in a floating column (`_scan_numbers`)."""
    try:
        table = _arrow_json(block, plan.strict)
        if _timestamps_inferred(table, plan.strict) or _nested_text_rounded(table, plan.schema, plan.strict):
            return None
        if integers and _rounded_integers(table):
            return None
        return _conformed(table, plan)
    except (pa.ArrowException, UnicodeDecodeError):
        return None


def _loose_json(block: bytes, plan: _JsonPlan, explicit: pa.Schema, integers: bool = False) -> pa.RecordBatch | None:
    for _ in range(2):
        try:
            table = _arrow_json(block, explicit if len(explicit) else None)
        except (pa.ArrowException, UnicodeDecodeError):
            return None
        # Text columns Arrow parsed as timestamps hold JSON strings: pin them as text and parse again.
        pins = [
            pa.field(f.name, pa.string())
            for f in table.schema
            if pa.types.is_timestamp(f.type)
            and plan.schema.get_field_index(f.name) >= 0
            and pa.types.is_string(plan.schema.field(f.name).type)
        ]
        if pins:
            explicit = pa.schema([*explicit, *pins])
            continue
        # Every column Arrow typed itself, map and null columns of the schema too (their JSON text in a timestamp
        # column of Arrow's would come back rewritten: `…T10:00:00+02:00` rescued as `…T08:00:00`).
        if not _loose_ok(table, plan.schema) or _timestamps_inferred(table, explicit):
            return None
        if _nested_text_rounded(table, plan.schema, explicit):
            return None
        if integers and _rounded_integers(table):
            return None
        if len(_LOOSE_WORKS) >= _LOOSE_WORKS_MAX:
            _LOOSE_WORKS.clear()
        _LOOSE_WORKS[plan.schema] = explicit
        return _conformed(table, plan)
    return None


def _conformed(table: pa.Table, plan: _JsonPlan) -> pa.RecordBatch | None:
    """Arrow's parse conformed, or None (parse in Python, which rescues the text as written) when a value Arrow
    changed would be rescued: an object (Arrow's struct has a member for every key any line of the block has,
    `null` where a line lacks it, and types numbers over the block: `1` becomes `1.0`), or a number that misfits one
    of the schema's columns (a double's text is its shortest form: `16777217` into a float column came back
    `16777217.0`). Doubles in keys outside the schema stay on this path, rescued in their shortest form (a block
    of new keys under the `rescue` policy would otherwise cost 5x; docs/TYPES.md)."""
    rescued_from: set[int] = set()
    batch = conform_batch(table, plan.schema, plan.rules, rescued_from)
    for i in rescued_from:
        field = table.schema.field(i)
        if _contains(field.type, pa.types.is_struct):
            return None
        if _contains(field.type, pa.types.is_floating) and plan.schema.get_field_index(field.name) != -1:
            return None
    return batch


def _fast_json(block: bytes, plan: _JsonPlan, integers: bool = False) -> pa.RecordBatch | None:
    """The block parsed by Arrow and conformed, or None when Python must parse it line by line. `integers`: see
    `_strict_json`."""
    if plan.loose is None:
        return _strict_json(block, plan, integers)
    learned = _LOOSE_WORKS.get(plan.schema)
    if learned is not None:
        batch = _loose_json(block, plan, learned, integers)
        if batch is not None:
            return batch
    batch = _strict_json(block, plan, integers)
    if batch is None and (learned is None or not learned.equals(plan.loose)):
        batch = _loose_json(block, plan, plan.loose, integers)
    return batch


# Only number text of 16+ digit-or-point characters, or with a 3-digit exponent, can be a number a double does not
# hold: a double holds every number of 15 significant digits, but not every 16-digit integer (2**53 + 1 =
# 9007199254740993); 1e-400 underflows, and 20000000000e298 overflows (Arrow read it as inf). A block is scanned for
# such runs where a JSON number can start, and each candidate is checked exactly.
_LONG_RUN = 16
_NUMBER_AT = re.compile(rb"-?[0-9.]+(?:[eE][+-]?[0-9]+)?")
_LONG_EXPONENT = re.compile(rb"(?<![\w.])-?[0-9.]+[eE][+-]?[0-9]{3,}")


class _Numbers(enum.Enum):
    """What `_scan_numbers` found in a block."""

    EXACT = "exact"  # every long number text is how its double prints
    INEXACT = "inexact"  # a number no double holds: the block is parsed in Python
    LONG_INTEGERS = "long integers"  # exact so far, with integer text left to Arrow (see `_rounded_integers`)


def _scan_numbers(block: bytes, integers: bool = True) -> _Numbers:
    """Whether the block holds a number that Arrow would round into a double (INEXACT; candidates checked token by
    token). Without `integers`, long integer text (`-?[0-9]+`) is not checked, only noted (LONG_INTEGERS): Arrow
    reads it exactly into an integer column, and `_rounded_integers` finds where it went into a double instead
    (epoch microseconds and nanoseconds, 16 and 19 digits, made every line a candidate: a JSON read 6 and 16 times
    slower than with small integers, bench/bench_json_numbers.py).

    One C pass (`bytes.translate`) marks digits and points `1`, `e`/`E` `e`, `-` itself, `+` `0` like any other
    byte, and `b` the bytes after which a JSON number can start (`:`, `,`, `[`, whitespace); runs of 16 `1`s after
    a `b` (or `b-`) and a digit before an exponent are then found with C searches, so a block costs about 1.5 ms
    per MB. Digits inside a string (`"s-3389158115350687"`) follow some other byte: every line of such a file was a
    candidate, checked in Python, and the read took twice as long (bench/bench_sizing.py, embedded JSON).
    """
    marks = b"b" + block.translate(_NUMBER_MARKS)  # the block's first byte starts a line
    exponent = b"1e-" in marks or b"1e1" in marks or b"1e0" in marks
    if exponent and any(not double_exact(m.group().decode("ascii")) for m in _LONG_EXPONENT.finditer(block)):
        return _Numbers.INEXACT
    starts = _candidate_starts(marks)
    if not integers and len(starts) >= _CHECKED_TOGETHER_MIN:
        together = _checked_together(block, starts)
        if together is not None:
            return together
    found = _Numbers.EXACT
    for start in starts:
        match = _NUMBER_AT.match(block, start)
        token = b"" if match is None else match.group()
        if token and not integers and _INTEGER.fullmatch(token):
            found = _Numbers.LONG_INTEGERS
        elif token and _rounded(token.decode("ascii")):
            return _Numbers.INEXACT
    return found


def _candidate_starts(marks: bytes) -> list[int]:
    """Where in the block (`marks[i + 1]` is `block[i]`) each run of 16 digits or points after a `b`, or a `b-`,
    starts: the number text `_scan_numbers` checks."""
    starts: list[int] = []
    for prefix in (b"b", b"b-"):
        needle = prefix + _LONG_RUN_MARKS
        start = marks.find(needle)
        while start != -1:
            starts.append(start)
            start = marks.find(needle, start + len(needle))
    starts.sort()
    return starts


_CHECKED_TOGETHER_MIN = 64
_NUMBER_TOKEN = "^(?P<n>" + _NUMBER_AT.pattern.decode("ascii") + ")"  # the token `_NUMBER_AT` matches, for Arrow


def _checked_together(block: bytes, starts: list[int]) -> _Numbers | None:
    """`_scan_numbers`' check of many candidates in a few Arrow calls (a JSON file of full-precision doubles,
    `37.84442185152504` in every line, has one per line; one by one in Python that read took 5x the small-integer
    read): the block is cut at the candidates, each piece's number taken by one regex, and a non-integer number
    whose double Arrow writes back as the same text is its double's shortest form, so exact; only the others are
    checked in Python (`_rounded`; Arrow writes exponents its own way). None when Arrow cannot do it (text that is
    no number): the caller checks one by one."""
    offsets = pa.array([*starts, len(block)], pa.int64())
    pieces = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(starts), [None, offsets.buffers()[1], pa.py_buffer(block)]
    )
    try:
        tokens = pc.struct_field(pc.extract_regex(pieces, _NUMBER_TOKEN), "n").drop_null().cast(pa.large_string())
        integer = pc.match_substring_regex(tokens, _INTEGER_TEXT)
        numbers = tokens.filter(pc.invert(integer))
        doubles = pc.cast(numbers, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    others = numbers.filter(pc.invert(written_back(numbers, doubles)))
    if any(_rounded(token) for token in others.to_pylist()):
        return _Numbers.INEXACT
    return _Numbers.LONG_INTEGERS if pc.any(integer).as_py() else _Numbers.EXACT


def _inexact_number_in(block: bytes) -> bool:
    """Whether the block holds a number no double holds, integer text included (`_scan_numbers`)."""
    return _scan_numbers(block) is _Numbers.INEXACT


_NUMBER_MARKS = bytes(
    49 if (48 <= b <= 57 or b == 46) else 101 if b in (69, 101) else 45 if b == 45 else 98 if b in b":,[ \t\r\n" else 48
    for b in range(256)
)
_LONG_RUN_MARKS = b"1" * _LONG_RUN
_INTEGER = re.compile(rb"-?[0-9]+")
_INTEGER_TEXT = "^" + _INTEGER.pattern.decode("ascii") + "$"  # `_INTEGER.fullmatch`, for Arrow
_EXACT_INTEGERS = 2.0**53  # a double holds every integer below this


def _rounded_integers(table: pa.Table) -> bool:
    """Whether a floating column of Arrow's parse (at any depth) holds a value of 2**53 or more: an integer there
    may have been rounded (9007199254740993 read as 9007199254740992). Asked only of a block with long integer text
    (`_Numbers.LONG_INTEGERS`), which is then parsed in Python, exactly: a double such as 1.5e20 elsewhere would
    send every block there."""
    return any(_big_float(chunk) for column in table.columns for chunk in column.chunks)


def _big_float(values: pa.Array) -> bool:
    kind = values.type
    if pa.types.is_floating(kind):
        top = pc.max(pc.abs(values)).as_py()
        return top is not None and top >= _EXACT_INTEGERS
    if pa.types.is_struct(kind):
        return any(_big_float(child) for child in values.flatten())
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _big_float(values.flatten())
    if pa.types.is_map(kind):
        return _big_float(values.keys) or _big_float(values.items)
    return False


def _rounded(token: str) -> bool:
    """Whether number text is not how its nearest double prints (`double_exact`)."""
    try:
        float(token)
    except ValueError:
        return False  # not a number (`1.2.3` in a string): Arrow's parse decides
    return not double_exact(token)


def _parse_lines(
    text: str, single_quotes: bool = True
) -> tuple[list[dict[str, Any] | None], dict[int, str], list[str]]:
    """Parsed JSON-lines rows (None for a malformed line), malformed line texts by row, good line texts.

    With `single_quotes` (Spark's allowSingleQuotes, on by default), a line that is not JSON is tried again
    with its 'single-quoted' names and strings turned into JSON strings; its good text is then that JSON.
    """
    rows: list[dict[str, Any] | None] = []
    malformed: dict[int, str] = {}
    good: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            value = loads(stripped)
        except (ValueError, RecursionError):
            value = None
            if single_quotes and "'" in stripped:
                value, stripped = _loads_single_quoted(stripped)
        if isinstance(value, dict) and _SURROGATE_ESCAPE.search(stripped) and not _unicode(value):
            value = None  # `"\ud800"` alone decodes to no character UTF-8 can hold: the line is malformed
        if isinstance(value, dict):
            rows.append(value)
            good.append(stripped)
        else:
            malformed[len(rows)] = stripped
            rows.append(None)
    return rows, malformed, good


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _unicode(value: Any) -> bool:
    """Whether every string of a parsed value is Unicode text (no lone surrogate from a `\\udXXX` escape)."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")  # a JsonNumber is no string: its text
    except UnicodeEncodeError:
        return False
    return True


_QUOTED = re.compile(r""""(?:[^"\\]|\\.)*"|'((?:[^'\\]|\\.)*)'""")
_SINGLE_QUOTED_INNER = re.compile(r"""\\(.)|(")""")


def _as_json_string(match: re.Match[str]) -> str:
    inner = match.group(1)
    if inner is None:
        return match.group(0)  # a JSON string already
    # \' is a quote in single-quoted text; a bare " must be escaped in JSON; other escapes are JSON's own.
    inner = _SINGLE_QUOTED_INNER.sub(
        lambda m: '\\"' if m.group(2) else ("'" if m.group(1) == "'" else m.group(0)), inner
    )
    return '"' + inner + '"'


def _loads_single_quoted(line: str) -> tuple[Any, str]:
    """The value of a line written with 'single-quoted' names/strings, and its JSON text (None when not JSON)."""
    converted = _QUOTED.sub(_as_json_string, line)
    try:
        return loads(converted), converted
    except (ValueError, RecursionError):
        return None, line


# A JSON string (or, with single quotes allowed, a single-quoted one), else a number or a boolean (group 1).
_PRIMITIVE = re.compile(rb'"(?:[^"\\\n]|\\.)*"|(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false)')
_PRIMITIVE_SQ = re.compile(
    rb'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false)'
)


def _quoted_primitive(match: re.Match[bytes]) -> bytes:
    text = match.group(1)
    return match.group(0) if text is None else b'"' + text + b'"'


def quote_primitives(block: bytes, single_quotes: bool) -> bytes:
    """JSON text with every number and boolean turned into a string of its exact text (primitives_as_string)."""
    return (_PRIMITIVE_SQ if single_quotes else _PRIMITIVE).sub(_quoted_primitive, block)


@dataclass(frozen=True)
class LineOptions:
    """The reader options the JSON-lines read path applies (FormatOptions' mode, quotes and primitives)."""

    mode: str = "permissive"
    single_quotes: bool = True
    primitives_as_string: bool = False


def _check_malformed_share(text: str, rows: int, malformed: dict[int, str], path: str) -> None:
    """A first block that is mostly not JSON objects is a file in another format, not bad records."""
    if not rows or len(malformed) / rows <= MAX_MALFORMED_SHARE:
        return
    sample = next(iter(malformed.values()))
    hint = ""
    first = text.lstrip().split("\n", 1)[0].strip()
    if first.startswith("[") or (first.startswith("{") and not first.endswith("}")):  # an array, a pretty-printed one
        hint = " (it looks like one JSON document over several lines: turn on the multiline option)"
    raise bad_file(
        path, "JSON", f"{len(malformed)} of the first {rows} lines are not JSON objects{hint}, e.g. {sample[:80]!r}"
    )


def _python_json(
    text: str,
    plan: _JsonPlan,
    stats: FileReadStats,
    path: str,
    options: LineOptions = LineOptions(),
    original: str | None = None,
    first_line: int = 1,
) -> pa.RecordBatch:
    """A block parsed line by line: bad lines become `{"_malformed": line}` rows (mode permissive), are
    dropped (dropmalformed) or fail the file naming the line (failfast). `original` is the block's text
    when `text` was rewritten (primitives as string): malformed lines are kept as they were in the file.
    `first_line` is the number of the block's first line (only needed for failfast)."""
    rows, malformed, _ = _parse_lines(text, options.single_quotes)
    if plan.first_block:
        _check_malformed_share(text, len(rows), malformed, path)
    if malformed and original is not None:
        lines = [line.strip() for line in original.split("\n") if line.strip()]
        malformed = {i: lines[i] for i in malformed}
    if malformed and options.mode == "failfast":
        first = min(malformed)
        number = first_line + [i for i, line in enumerate(text.split("\n")) if line.strip()][first]
        raise bad_file(
            path,
            "JSON",
            f"malformed line {number} (mode failfast): {malformed[first][:120]!r}",
            action="Fix or remove the line, or set the mode option to permissive or dropmalformed; "
            "the file is quarantined and the rest of the run continues.",
        )
    stats.bad_records += len(malformed)
    if malformed and options.mode == "dropmalformed":
        rows, malformed = [r for r in rows if r is not None], {}
    return _rows_to_batch(rows, malformed, plan.schema, plan.rules)


def _rows_to_batch(
    rows: list[dict[str, Any] | None], malformed: dict[int, str], schema: pa.Schema, rules: TextRules
) -> pa.RecordBatch:
    target = output_schema(schema)
    failed_by_row: dict[int, set[str]] = {}
    arrays: list[pa.Array] = []
    stored_rows = [None if r is None else _stored_keys(r) for r in rows]
    for f in schema:
        values = [None if r is None else r.get(f.name) for r in stored_rows]
        arr, failed = column_from_python(values, f.type, rules)
        arrays.append(arr)
        for i in failed:
            failed_by_row.setdefault(i, set()).add(f.name)
    names = set(schema.names)
    no_failures: set[str] = set()
    rescued: list[str | None] = []
    for i, row in enumerate(rows):
        if row is None:
            rescued.append(json_text({MALFORMED: malformed[i]}))
            continue
        bad = failed_by_row.get(i, no_failures)
        new = {
            k: v
            for k, v in row.items()
            if k != RESCUED and v is not None and (column_name(k) not in names or column_name(k) in bad)
        }
        existing = row.get(RESCUED)
        if existing is not None and not isinstance(existing, str):
            existing = json_text_as_written(existing)
        rescued.append(merge_rescued(existing, new, from_loads=True) if new else existing)
    arrays.append(pa.array(rescued, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _stored_keys(row: dict[str, Any]) -> dict[str, Any]:
    """The row keyed by stored column names (the row itself when no key needs renaming)."""
    if all(column_name(k) == k for k in row):
        return row
    stored: dict[str, Any] = {}
    for k, v in row.items():
        stored.setdefault(column_name(k), v)
    return stored


def _decode(block: bytes, offset: int = 0, first_line: int | None = 1) -> str:
    """The block's text; InvalidUtf8 naming the file's byte (the block starts at byte `offset`, on line `first_line`
    when known) if it is not UTF-8 (the reader names the file)."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        raise utf8_error(block, offset, first_line) or InvalidUtf8(offset) from None


def _json_block_batch(
    block: bytes,
    plan: _JsonPlan,
    stats: FileReadStats,
    path: str,
    options: LineOptions = LineOptions(),
    first_line: int | None = 1,
    offset: int = 0,
) -> pa.RecordBatch | None:
    """The block's rows; it starts at byte `offset` of the file, on line `first_line` (None: not counted)."""
    # Arrow's JSON parser does not check that text is UTF-8; Python's decoder does, at memory speed for ASCII.
    text = _decode(block, offset, first_line)
    refuse_deep_nesting(block, path)
    original = None
    if options.primitives_as_string:
        original, block = text, quote_primitives(block, options.single_quotes)
        text = block.decode("utf-8")
    text_for_decimal = _text_for_decimal(plan.schema)
    decimal_text = text_for_decimal is not None and text_for_decimal.search(block) is not None
    numbers = _scan_numbers(block, integers=False)
    slow = numbers is _Numbers.INEXACT or decimal_text
    batch = None if slow else _fast_json(block, plan, numbers is _Numbers.LONG_INTEGERS)
    if batch is None:
        batch = _python_json(text, plan, stats, path, options, original, first_line or 1)
    plan.first_block = False
    return batch if batch.num_rows else None


def refuse_deep_nesting(block: bytes, path: str) -> None:
    """Raise BadFileError for a record nested deeper than MAX_JSON_DEPTH, before a parser recurses into it
    (core/formats/nesting.py says why: a crash of the process, not an error, is what deeper text can cause)."""
    found = deepest_line(block)
    if found is not None:
        raise bad_file(
            path, "JSON", f"a record nests objects and arrays more than {MAX_JSON_DEPTH} levels deep", DEEP_ACTION
        )


def _multiline_lines(data: bytes, path: str, options: LineOptions, offset: int = 0, line: int = 1) -> list[str]:
    """The values of a whole-file JSON document, one JSON line each: an array's elements, one object, or
    concatenated values.

    Each value's line is its own text, checked by Python's JSON scanner and then dropped: numbers stay as written and
    only one value is ever held as Python objects (building them all, then writing each back, took 23 s and 1.2 GB
    for a 119 MB array). The JSON-lines rules apply to the document as a whole: with `primitives_as_string` its
    numbers and booleans become strings of their exact text first; with `single_quotes`, a document that is not JSON
    is read again with its 'single-quoted' names and strings turned into JSON strings (when off, or when that fails
    too, the file is not valid JSON). `data` starts at byte `offset` of the file, on line `line`.
    """
    text = _decode(data, offset, line)
    if options.primitives_as_string:
        text = quote_primitives(data, options.single_quotes).decode("utf-8")
    try:
        try:
            return _document_lines(text)
        except json.JSONDecodeError:
            if not (options.single_quotes and "'" in text):
                raise
        # Lines stay as they were (a quote becomes a quote), so an error here is located in the file's lines.
        return _document_lines(_QUOTED.sub(_as_json_string, text))
    except json.JSONDecodeError as exc:
        where = f"at line {exc.lineno} column {exc.colno}"  # Python's message may end in "at" already
        raise bad_file(path, "JSON", f"{exc.msg.removesuffix(' at')} {where}") from None
    except RecursionError:
        raise bad_file(
            path, "JSON", f"a record nests objects and arrays more than {MAX_JSON_DEPTH} levels deep", DEEP_ACTION
        ) from None


_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # what Python's JSON scanner skips between tokens
_BETWEEN_VALUES = re.compile(r"\s*")  # between a document's top-level values, as the reader always took


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> None:
    """The checker's object hook: builds nothing (faster than building dicts) and stops at a key written twice."""
    if len(pairs) > 1 and len({key for key, _ in pairs}) < len(pairs):
        raise _DuplicateKey


_CHECKER = json.JSONDecoder(object_pairs_hook=_unique_keys)
_REWRITER = json.JSONDecoder(parse_float=parse_float)


def _document_lines(text: str) -> list[str]:
    """The JSON values of `text` one after the other, a top-level array's elements one by one, as their lines
    (raises JSONDecodeError or RecursionError as Python's JSON scanner does)."""
    lines: list[str] = []
    index = _BETWEEN_VALUES.match(text).end()  # type: ignore[union-attr]  # \s* always matches
    while index < len(text):
        index = _array_lines(text, index, lines) if text[index] == "[" else _value_line(text, index, lines)
        index = _BETWEEN_VALUES.match(text, index).end()  # type: ignore[union-attr]
    return lines


def _array_lines(text: str, index: int, lines: list[str]) -> int:
    """The elements of the array opening at `index`, each as a line; the index past its `]`."""
    index = _JSON_SPACE.match(text, index + 1).end()  # type: ignore[union-attr]
    if text.startswith("]", index):
        return index + 1
    while True:
        index = _JSON_SPACE.match(text, _value_line(text, index, lines)).end()  # type: ignore[union-attr]
        if text.startswith("]", index):
            return index + 1
        if not text.startswith(",", index):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, index)
        index = _JSON_SPACE.match(text, index + 1).end()  # type: ignore[union-attr]


def _value_line(text: str, index: int, lines: list[str]) -> int:
    """The value at `index` checked by Python's scanner and kept as its own text on one line (a line break in valid
    JSON is space between tokens: none can be inside a string); the index past it."""
    try:
        _, end = _CHECKER.raw_decode(text, index)
    except _DuplicateKey:  # written back with the last of the keys, as Python reads it (Arrow refuses the text)
        parsed, end = _REWRITER.raw_decode(text, index)
        lines.append(json_text_as_written(parsed))
        return end
    value = text[index:end]
    lines.append(value.replace("\r", " ").replace("\n", " ") if "\n" in value or "\r" in value else value)
    return end


def multiline_as_lines(stream: BinaryIO, path: str, options: LineOptions = LineOptions()) -> bytes:
    """A multiline JSON file re-written as JSON lines (one value per line), so it takes the JSON-lines paths.

    The whole file is held in memory: a JSON document cannot be parsed in pieces.
    """
    first = first_content_at(stream, None, path, "JSON")
    lines = _multiline_lines(first.head, path, options, first.offset, first.line)
    if not lines:
        raise empty_file(path)
    lines.append("")
    # A lone surrogate (a `\\ud800` escape in an object written back) stays that escape; the line is then malformed.
    return "\n".join(lines).encode("utf-8", "backslashreplace")


def line_options(opts: FormatOptions) -> LineOptions:
    """The JSON reader options of a format's options."""
    return LineOptions(opts.mode, opts.allow_single_quotes, opts.primitives_as_string)


def read_json(
    stream: BinaryIO, path: str, fmt: FormatConfig, schema: pa.Schema, stats: FileReadStats, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    plan = _json_plan(schema, TextRules.of(fmt.options, json=True))
    options = line_options(fmt.options)
    offset, first_line = 0, 1  # where the next block starts in the file; lines are counted only for failfast
    if fmt.options.multiline:
        lines = multiline_as_lines(stream, path, options)  # UTF-8 checked: offsets in it are not needed
        blocks = _json_lines_blocks(io.BytesIO(lines), b"", False, block_bytes)
    else:
        first = first_content_at(stream, block_bytes, path, "JSON")
        blocks = _json_lines_blocks(stream, first.head, first.exhausted, block_bytes)
        offset, first_line = first.offset, first.line
    count_lines = options.mode == "failfast"
    line: int | None = first_line
    for block in blocks:
        batch = _json_block_batch(block, plan, stats, path, options, line, offset)
        offset += len(block)
        line = line + block.count(b"\n") if count_lines and line is not None else None
        if batch is not None:
            stats.records += batch.num_rows
            yield batch


def _infer_json_lines(lines: list[str]) -> pa.Schema:
    """Arrow's inference over JSON object lines; halves that clash are inferred apart and unified.

    Small runs of clashing lines are typed in Python, which bounds the work when types clash everywhere.
    """
    if not lines:
        return pa.schema([])
    try:
        return _arrow_json(("\n".join(lines) + "\n").encode("utf-8"), None).schema
    except pa.ArrowException:
        if len(lines) <= _INFER_LEAF:
            return unify_schemas(
                pa.schema([pa.field(k, _python_type(v)) for k, v in loads(line).items()]) for line in lines
            )
    mid = len(lines) // 2
    return unify_schemas([_infer_json_lines(lines[:mid]), _infer_json_lines(lines[mid:])])


def _python_type(value: Any) -> pa.DataType:
    """The Arrow type of a parsed JSON value (for lines Arrow cannot type, or numbers Arrow would round)."""
    if value is None:
        return pa.null()
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return pa.int64()
        return BIG_INTEGER if len(str(abs(value))) <= BIG_INTEGER.precision else pa.string()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, JsonNumber):
        return decimal_type([value.text])
    if isinstance(value, str):
        return pa.string()
    if isinstance(value, dict):
        return pa.struct([pa.field(k, _python_type(v)) for k, v in value.items()])
    item: pa.DataType = pa.null()
    for v in value:
        item = unify_types(item, _python_type(v))
    return pa.list_(item)


def _typed_sample(
    data: bytes, text: str, path: str, single_quotes: bool = True
) -> tuple[pa.Schema, dict[str, pa.Array], pa.Table | None]:
    """The sample's schema, the text of its top-level string (or Arrow-timestamp) columns, and Arrow's parse of the
    whole sample with those columns as text (`parsed_rows`; None when it was typed in Python)."""
    # A number no double or int64 holds: the sample is typed in Python, exactly. Integer text is left to Arrow
    # first (epoch nanoseconds in every line typed 2,000 small files in Python: 8-9.6 s against 1.2-1.3 s); where
    # Arrow cannot parse the sample or put a big integer in a floating column, the whole check decides.
    numbers = _scan_numbers(data, integers=False)
    inexact = numbers is _Numbers.INEXACT
    if not inexact:
        first = _FirstRecord.of(data)
        try:
            table = first.in_its_order(_arrow_json(data, first.texts))
        except (pa.ArrowException, UnicodeDecodeError):
            table = None
        if table is not None and not (numbers is _Numbers.LONG_INTEGERS and _rounded_integers(table)):
            texts = _texts_of(data, table)
            return table.schema, texts, _with_texts(table, texts)
        inexact = _inexact_number_in(data)
    rows, malformed, good = _parse_lines(text, single_quotes)
    _check_malformed_share(text, len(rows), malformed, path)
    schema = _python_schema(rows) if inexact else _infer_json_lines(good)
    texts = {
        f.name: pa.array([r.get(f.name) if r is not None and isinstance(r.get(f.name), str) else None for r in rows])
        for f in schema
        if pa.types.is_string(f.type) or pa.types.is_timestamp(f.type)
    }
    return schema, texts, None


_FIRST_RECORD_BYTES = 64 * 1024
_NOT_SPACE = re.compile(rb"\S")


@dataclass(frozen=True, slots=True)
class _FirstRecord:
    """The keys of a sample's first record, in their order, and those whose value is a JSON string.

    Arrow types JSON strings that look like ISO timestamps as timestamps, and their text then takes a second parse
    (`_texts_of`): about a quarter of inference's time on JSON with a timestamp field. Asked to read the first record's
    string fields as text, Arrow does it in the one parse. A value of another kind in a later line fails that parse
    as it fails Arrow's inference ("changed from string to number"), and the sample is typed in Python either way.
    Arrow puts the asked fields first: `in_its_order` puts the columns back in the order of their first appearance,
    which is Arrow's own order without them."""

    keys: tuple[str, ...] = ()
    texts: pa.Schema | None = None

    @classmethod
    def of(cls, data: bytes) -> _FirstRecord:
        found = _NOT_SPACE.search(data)
        if found is None:
            return cls()
        start = found.start()
        end = data.find(b"\n", start, start + _FIRST_RECORD_BYTES + 1)
        if end == -1 and len(data) - start > _FIRST_RECORD_BYTES:
            return cls()  # a first record this long is not worth a second JSON parser's time
        line = data[start : len(data) if end == -1 else end]
        try:
            pairs = json.loads(line, object_pairs_hook=_Pairs)
        except (ValueError, UnicodeDecodeError):
            return cls()
        if not isinstance(pairs, _Pairs) or len({key for key, _ in pairs}) != len(pairs):
            return cls()  # not an object, or a key twice (which Arrow and json read differently)
        texts = [pa.field(key, pa.string()) for key, value in pairs if isinstance(value, str)]
        return cls(tuple(key for key, _ in pairs), pa.schema(texts) if texts else None)

    def in_its_order(self, table: pa.Table) -> pa.Table:
        if self.texts is None:
            return table
        first = set(self.keys)
        return table.select([*self.keys, *(name for name in table.column_names if name not in first)])


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in their order (json's `object_pairs_hook`), told apart from a JSON array."""


def _with_texts(table: pa.Table, texts: dict[str, pa.Array]) -> pa.Table | None:
    """Arrow's parse with the columns it typed as timestamps put back as their text (None if one could not be)."""
    for index, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            if f.name not in texts:
                return None
            table = table.set_column(index, pa.field(f.name, pa.string()), texts[f.name])
    return table


def _python_schema(rows: list[dict[str, Any] | None]) -> pa.Schema:
    return unify_schemas(pa.schema([pa.field(k, _python_type(v)) for k, v in r.items()]) for r in rows if r)


def _texts_of(data: bytes, table: pa.Table) -> dict[str, pa.Array]:
    """Top-level text columns as text: Arrow typed some ISO strings as timestamps, so those are read again as text."""
    texts = {f.name: table.column(f.name).combine_chunks() for f in table.schema if pa.types.is_string(f.type)}
    stamped = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    if stamped:
        try:
            as_text = pa.schema([pa.field(name, pa.string()) for name in stamped])
            again = _arrow_json(data, as_text, other_fields="ignore")
            texts.update({name: again.column(name).combine_chunks() for name in stamped})
        except pa.ArrowException:
            pass
    return texts


def infer_json(data: bytes, path: str, fmt: FormatConfig, offset: int = 0, first_line: int = 1) -> pa.Schema:
    """Types of the sample's values; JSON strings that are all dates or timestamps (the text rules) are typed so.
    The sample starts at byte `offset` of the file, on line `first_line` (named when it is not UTF-8)."""
    return infer_json_parsed(data, path, fmt, offset, first_line)[0]


def infer_json_parsed(
    data: bytes, path: str, fmt: FormatConfig, offset: int = 0, first_line: int = 1
) -> tuple[pa.Schema, pa.Table | None]:
    """`infer_json`'s schema, and the sample's rows as Arrow parsed them to type it, text columns as text (None when
    the sample was typed in Python). `parsed_rows` turns those into what reading the same bytes gives, so a file
    inferred whole need not be parsed again to be loaded."""
    text = _decode(data, offset, first_line)
    refuse_deep_nesting(data, path)
    schema, texts, parsed = _typed_sample(data, text, path, fmt.options.allow_single_quotes)
    fields = [f for f in schema if f.name != RESCUED]
    if not fmt.schema_.infer_types:
        fields = [pa.field(f.name, pa.string()) for f in fields]
    else:
        rules = TextRules.of(fmt.options, json=True)
        fields = [_string_field(f, texts.get(f.name), rules) for f in fields]
    return normalize_schema(pa.schema(fields)), parsed


def parsed_rows(
    tables: list[pa.Table | None], schema: pa.Schema, fmt: FormatConfig
) -> tuple[pa.RecordBatch | None, list[bool]]:
    """The rows `read_json` makes with `schema` of the files these tables were parsed from by `infer_json_parsed`,
    for the tables where that can be told without parsing the bytes again, in their order; and which tables those
    are (a None table never is).

    That parse went through the reader's own checks (UTF-8, nesting depth, no number a double rounds), and Arrow
    parsed every line. When each of its columns is one of the schema's, with exactly the type the reader's strict
    parse asks Arrow for, the strict parse of the same bytes gives the same arrays (a column the lines lack: all
    NULL), so both are conformed alike. Anything else -- a key outside the schema or needing a new name, a type the
    schema widened, decimals (whose JSON strings the reader checks apart), primitives as strings -- is left to the
    reader, file by file: the tables that fit are conformed together, in one call."""
    fits = [False] * len(tables)
    if fmt.options.primitives_as_string:
        return None, fits
    plan = _json_plan(schema, TextRules.of(fmt.options, json=True))
    strict = plan.strict
    if strict is None or _text_for_decimal(plan.schema) is not None:
        return None, fits
    fits = [table is not None and _fits(table, strict) for table in tables]
    columns = [_as_strict(table, strict) for table, fit in zip(tables, fits, strict=True) if fit and table is not None]
    if not columns:
        return None, fits
    return conform_batch(pa.concat_tables(columns).combine_chunks(), plan.schema, plan.rules), fits


def _fits(table: pa.Table, strict: pa.Schema) -> bool:
    for f in table.schema:
        index = strict.get_field_index(f.name)
        if index == -1 or strict.field(index).type != f.type:
            return False
    return True


def _as_strict(table: pa.Table, strict: pa.Schema) -> pa.Table:
    arrays = [
        table.column(f.name) if f.name in table.schema.names else pa.nulls(table.num_rows, f.type) for f in strict
    ]
    return pa.Table.from_arrays(arrays, schema=strict)


def _string_field(f: pa.Field, texts: pa.Array | None, rules: TextRules) -> pa.Field:
    if texts is None:
        return f
    inferred = infer_text_type(texts, rules, numbers=False)
    return pa.field(f.name, f.type if pa.types.is_null(inferred) else inferred)

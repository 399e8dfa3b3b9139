"""How deeply JSON text (and a typed file's columns) nest, measured before a parser or the table sees it.

Deep nesting is refused, not parsed: pyarrow's JSON parser recurses in C and kills the process with a segmentation
fault on a value nested about 10,000 deep; Python's `json` and the type walkers raise RecursionError from about 300
levels; and a Delta table whose schema nests structs beyond about 40 levels cannot be read back by delta-rs
(serde_json's recursion limit: the write fails the whole run; at 41 levels the writer once aborted the process). So a
file that nests deeper than `MAX_JSON_DEPTH` (a Parquet column deeper than `MAX_COLUMN_DEPTH`) is quarantined with a
reason, before any of these can run.

The check is cheap for ordinary data: it counts the `{`/`[` of every line in two C passes (`bytes.translate` keeps only
brackets and newlines, then a run longer than the limit is searched for; about 2.5 GB/s) and only measures exactly,
skipping brackets inside strings, the rare lines that hold more than `MAX_JSON_DEPTH` of them.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

MAX_JSON_DEPTH = 32
"""Objects and arrays nested in one another, counting the record itself: a record at this depth still loads."""

MAX_COLUMN_DEPTH = MAX_JSON_DEPTH - 1
"""Structs, lists and maps nested in one column's type (the record around it makes MAX_JSON_DEPTH)."""

_ESCAPED = re.compile(rb"\\[^\n]")
"""An escape pair (a backslash before a newline escapes nothing: the newline still ends the line)."""
_CHUNK = 1 << 20
_OPEN_BRACE, _OPEN_BRACKET, _CLOSE_BRACE, _CLOSE_BRACKET, _QUOTE, _NEWLINE = 123, 91, 125, 93, 34, 10


def deepest_line(block: bytes, limit: int = MAX_JSON_DEPTH) -> tuple[int, int] | None:
    """The (1-based line number within `block`, depth) of the first line nesting deeper than `limit`, or None.

    Lines are JSON lines: a newline ends a record (and any string or bracket a malformed line left open); a bracket
    inside a string does not count.
    """
    if b"1" * (limit + 1) not in block.translate(_OPENS_AS_ONES, _NOT_OPEN_OR_NEWLINE):
        return None  # no line holds more brackets than the limit: each line's brackets became a run of `1`s
    return _measured(block, limit)


_OPENS_AS_ONES = bytes(49 if b in (_OPEN_BRACE, _OPEN_BRACKET) else b for b in range(256))
_NOT_OPEN_OR_NEWLINE = bytes(b for b in range(256) if b not in (_OPEN_BRACE, _OPEN_BRACKET, _NEWLINE))


def _measured(block: bytes, limit: int) -> tuple[int, int] | None:
    """The exact depth, line by line, in chunks: every byte's depth within its line, strings left out."""
    if b"\\" in block:
        block = _ESCAPED.sub(b"__", block)  # an escaped quote or bracket is string content; the length is kept
    data = np.frombuffer(block, np.uint8)
    depth, in_string, lines_before = 0, 0, 0
    for start in range(0, len(data), _CHUNK):
        chunk = data[start : start + _CHUNK]
        newlines = np.flatnonzero(chunk == _NEWLINE)
        lengths = np.diff(np.concatenate(([0], newlines + 1, [len(chunk)])))
        quotes = np.cumsum(chunk == _QUOTE, dtype=np.int32)
        quote_base = np.concatenate(([-in_string], quotes[newlines]))
        outside = ((quotes - np.repeat(quote_base, lengths)) & 1) == 0
        step = (chunk == _OPEN_BRACE).astype(np.int32)
        step += chunk == _OPEN_BRACKET
        step -= chunk == _CLOSE_BRACE
        step -= chunk == _CLOSE_BRACKET
        levels = np.cumsum(step * outside, dtype=np.int32)
        line_levels = levels - np.repeat(np.concatenate(([-depth], levels[newlines])), lengths)
        deepest = int(line_levels.max())
        if deepest > limit:
            where = int(np.argmax(line_levels > limit))
            return lines_before + int(np.searchsorted(newlines, where)) + 1, _line_depth(line_levels, newlines, where)
        depth = int(line_levels[-1])
        in_string = int(not outside[-1])
        lines_before += len(newlines)
    return None


def _line_depth(line_levels: np.ndarray, newlines: np.ndarray, where: int) -> int:
    """The deepest level of the chunk's line that holds position `where`."""
    line = int(np.searchsorted(newlines, where))
    start = int(newlines[line - 1]) + 1 if line > 0 else 0
    end = int(newlines[line]) + 1 if line < len(newlines) else len(line_levels)
    return int(line_levels[start:end].max())


def type_depth(t: pa.DataType) -> int:
    """How many struct, list and map levels a column type nests (0 for a primitive), walked without recursion."""
    deepest = 0
    pending = [(t, 0)]
    while pending:
        current, level = pending.pop()
        deepest = max(deepest, level)
        if pa.types.is_struct(current):
            pending.extend((current.field(i).type, level + 1) for i in range(current.num_fields))
        elif pa.types.is_map(current):
            pending.extend([(current.key_type, level + 1), (current.item_type, level + 1)])
        elif pa.types.is_list(current) or pa.types.is_large_list(current) or pa.types.is_fixed_size_list(current):
            pending.append((current.value_type, level + 1))
    return deepest


def deepest_column(schema: pa.Schema, limit: int = MAX_COLUMN_DEPTH) -> str | None:
    """The first column whose type nests deeper than `limit`, or None."""
    return next((f.name for f in schema if type_depth(f.type) > limit), None)

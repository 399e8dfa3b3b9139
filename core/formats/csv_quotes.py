"""Multiline CSV: where whole records end, and which records Arrow's parser cannot be trusted with.

With `multiline` a quoted value may hold line breaks, so a record ends at a line break outside quotes. Arrow's
parser and Python's csv module (strict) read every record the same way except when a closing quote is followed by
something other than the delimiter, a line break or another quote (Arrow keeps appending: `"ab"c` reads `abc`,
Python refuses it), and when a quoted value is still open at the end of the file. A stray quote can also make the
rest of the file one value.

`RecordQuotes` finds both cheaply, vectorised over a block (numpy): it takes the unescaped quote characters
in order, counting from a record start (outside quotes), so the even-numbered ones (0, 2, ...) open a value
and the odd-numbered ones close it (`""` inside a value is a close and an open, next to each other). The block is
clean when every opening quote starts a field (it follows the delimiter, a line break, the block's start or the
closing quote it pairs with) and every closing quote ends one (the delimiter, a line break, a quote or the end of
the file follows). Then the counting is exactly how both parsers read the text, and the line breaks with an even
count before them are where records end. A quote that breaks these rules (a literal quote inside an unquoted
value, `x"y`, reads the same in both parsers but is flagged too, being rare) marks its record, and from that
record's start to the block's end `python_records` splits the text into records with Python's csv module, which
is the reference: `CsvLines` gives those records to Python instead of Arrow.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_LF, _CR = 10, 13


@dataclass
class QuoteScan:
    """A block's scan: `data[:cut]` holds whole records (by the quote count) and `suspect` is the start of the first
    record with a quote that breaks the rules (None when there is none); `lines` counts the line feeds in `data`."""

    cut: int
    suspect: int | None
    lines: int


class RecordQuotes:
    """The quote scan of multiline CSV blocks (see the module docstring); each block starts at a record start."""

    def __init__(self, quote: int, delimiter: int, escape: int | None):
        self._quote, self._delimiter, self._escape = quote, delimiter, escape

    def __call__(self, data: bytes | bytearray, eof: bool) -> QuoteScan:
        a = np.frombuffer(data, np.uint8)
        n = len(a)
        lines = int(np.count_nonzero(a == _LF))
        if self._quote not in data and (self._escape is None or self._escape not in data):
            return QuoteScan(n if eof else data.rfind(b"\n") + 1, None, lines)
        escaped = escaped_offsets(a, self._escape)
        quotes = _without(np.flatnonzero(a == self._quote), escaped)
        bad = self._bad_quotes(a, quotes, escaped, eof)
        if eof and self._escape is not None and _ends_escaped(data, self._escape):
            bad = n - 1 if bad is None else bad  # the last record is cut short: Python refuses it, Arrow not
        if bad is not None:
            return QuoteScan(0, _record_end(data, a, quotes, escaped, bad), lines)
        if eof and len(quotes) % 2 == 0:
            return QuoteScan(n, None, lines)
        return QuoteScan(_record_end(data, a, quotes, escaped, n), None, lines)

    def _bad_quotes(self, a: Any, quotes: Any, escaped: Any, eof: bool) -> int | None:
        """The offset of the first quote that breaks the rules, or None."""
        n = len(a)
        opening, closing = quotes[0::2], quotes[1::2]
        before = np.where(opening > 0, a[np.maximum(opening - 1, 0)], _LF)
        starts_field = (before == self._delimiter) | (before == _LF) | (before == _CR) | (before == self._quote)
        if escaped is not None:
            starts_field &= ~np.isin(opening - 1, escaped)
        after = a[np.minimum(closing + 1, n - 1)]
        ends_field = (after == self._delimiter) | (after == _LF) | (after == _CR) | (after == self._quote)
        ends_field |= closing == n - 1
        bad = np.concatenate((opening[~starts_field], closing[~ends_field]))
        if escaped is not None:  # an escaped line break: Arrow hands such a row's text on without it
            escaped = escaped[escaped < n]
            bad = np.concatenate((bad, escaped[(a[escaped] == _LF) | (a[escaped] == _CR)]))
        if eof and len(quotes) % 2 == 1:
            bad = np.append(bad, quotes[-1])  # a value still open at the end of the file
        return int(bad.min()) if len(bad) else None


def _record_end(data: bytes | bytearray, a: Any, quotes: Any, escaped: Any, before: int) -> int:
    """The offset after the last line feed before `before` that ends a record (not escaped, an even count of quotes
    before it); 0 when there is none. The last line feeds are tried one by one (a block usually ends a record);
    inside a long quoted value, all of them at once."""
    at = before
    for _ in range(_TRIED_LINE_FEEDS):
        at = data.rfind(b"\n", 0, at)
        if at == -1:
            return 0
        if escaped is not None and _contains(escaped, at):
            continue
        if int(np.searchsorted(quotes, at)) % 2 == 0:
            return at + 1
    breaks = _without(np.flatnonzero(a[:at] == _LF), escaped)
    ends = breaks[np.searchsorted(quotes, breaks) % 2 == 0]
    return int(ends[-1]) + 1 if len(ends) else 0


_TRIED_LINE_FEEDS = 16


def _contains(sorted_offsets: Any, offset: int) -> bool:
    at = int(np.searchsorted(sorted_offsets, offset))
    return at < len(sorted_offsets) and int(sorted_offsets[at]) == offset


def escaped_offsets(a: Any, escape: int | None) -> Any:
    """The offsets of the characters an escape character takes as they are (None without escapes): the one after
    a run of escape characters of odd length (`\\\\"` is an escaped backslash, then a quote)."""
    if escape is None:
        return None
    runs = np.flatnonzero(a == escape)
    if not len(runs):
        return None
    starts = np.flatnonzero(np.diff(runs, prepend=-2) != 1)
    lengths = np.diff(starts, append=len(runs))
    last = runs[starts + lengths - 1]
    return last[lengths % 2 == 1] + 1


def _ends_escaped(data: bytes | bytearray, escape: int) -> bool:
    """Whether the text ends with an escape character that takes the last character (or line break) as it is: Python
    then waits for the rest of the record, Arrow does not."""
    text = bytes(data[-64:])
    for ending in (b"\r\n", b"\n", b"\r", b""):
        if text.endswith(ending):
            body = text[: len(text) - len(ending)]
            run = len(body) - len(body.rstrip(bytes([escape])))
            if run % 2 == 1:
                return True
    return False


def _without(positions: Any, escaped: Any) -> Any:
    return positions if escaped is None else positions[~np.isin(positions, escaped)]


@dataclass
class PythonRecords:
    """Records split by Python's csv module from a start offset: `spans` are (start, end) offsets of whole records
    (the end after the record's line break), `end` where the last whole record ends; after it, the text is a record
    still open at the end of the text (carried to the next block, or, at the end of the file, `unterminated`). A line
    that is not UTF-8 stops the split: `invalid_utf8` is its start."""

    spans: list[tuple[int, int]] = field(default_factory=list)
    end: int = 0
    unterminated: int | None = None
    invalid_utf8: int | None = None


def python_records(data: bytes | bytearray, start: int, eof: bool, dialect: dict[str, Any]) -> PythonRecords:
    """`data[start:]` (whole lines) split into records by Python's csv module (see `PythonRecords`). A record that
    does not parse is a span too (its lines up to the error); Python then starts the next record on the next line."""
    out = PythonRecords(end=start)
    position, exhausted = start, False

    def lines() -> Iterator[str]:
        nonlocal position, exhausted
        for line in bytes(data[start:]).splitlines(keepends=True):  # line breaks are \n, \r and \r\n, as in csv
            text = line.decode("utf-8")
            position += len(line)
            yield text
        exhausted = True

    reader = csv.reader(lines(), **dialect)
    while True:
        record_start = position
        try:
            row = next(reader)
        except StopIteration:
            break
        except UnicodeDecodeError:
            out.invalid_utf8 = position
            return out
        except csv.Error:
            if exhausted and not eof:  # the text ends inside the record: it goes on in the next block
                return out
            if exhausted and _open_quotes(data[record_start:], dialect):
                out.unterminated = record_start  # a quoted value still open at the end of the file
                return out
            row = None
        if row != []:  # a blank line is no record
            out.spans.append((record_start, position))
        out.end = position
    return out


def _open_quotes(record: bytes | bytearray, dialect: dict[str, Any]) -> bool:
    """Whether a record cut short by the end of the file has an odd count of unescaped quotes (else an escape
    character is what is left open)."""
    quote, escape = dialect["quotechar"], dialect["escapechar"]
    if not quote:
        return False
    a = np.frombuffer(record, np.uint8)
    quotes = _without(np.flatnonzero(a == ord(quote)), escaped_offsets(a, ord(escape) if escape else None))
    return len(quotes) % 2 == 1


def opening_quote(record: bytes | bytearray, quote: int, escape: int | None) -> int:
    """Where, in a record whose quoted value is never closed, that value's opening quote probably is: the last of
    an odd number of unescaped quotes (by the count of `RecordQuotes`); 0 (the record's start) when the count is
    even."""
    a = np.frombuffer(record, np.uint8)
    quotes = _without(np.flatnonzero(a == quote), escaped_offsets(a, escape))
    return int(quotes[-1]) if len(quotes) % 2 == 1 else 0

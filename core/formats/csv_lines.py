"""CSV rows Arrow's parser cannot be trusted with: comment lines, badly quoted rows, rows of the wrong width.

`CsvLines` sits between the (decompressed, UTF-8) stream and Arrow's streaming CSV reader and works on whole
lines, about `BLOCK_BYTES` at a time:

* comment lines (`FormatOptions.comment` first on the line) are blanked, and Arrow skips empty lines. Blanking
  rather than removing keeps line numbers. With `multiline`, a line only counts as a comment when it does
  not start inside a quoted value (quote parity since the start of the file);
* badly quoted rows: Arrow reads `"a \\"b\\" c"` (a closing quote followed by text) as `a \\b\\" c"` without
  complaint, and `1,a","` (a quote inside an unquoted value) as a value that runs on into the next lines. A
  vectorised pre-check per block (`_SuspectQuotes`) finds the lines where a quote is out of place: an odd
  number of them, a quote opening a value after text, or closing one before text (escaped quotes not counted;
  an escaped character is text), and a line break an escape character takes as text (Arrow joins the lines).
  Only when it hits are the lines concerned taken out of Arrow's input (blanked) and kept in
  `suspicious`, for `python_rows` to parse strictly. With `multiline` (rows span lines) `csv_quotes.RecordQuotes`
  does that check per record instead: blocks are cut after whole records, and from the first badly quoted record
  of a block on, `csv_quotes.python_records` splits the records for `python_rows`; a quoted value still open at
  the end of the file is `unclosed_quote`, which quarantines the file naming the quote's line and byte;
* text that is not UTF-8: a block that is not ASCII is validated, so the first bad byte is named with its offset
  in the stream and its line (`invalid_utf8`) also when the file cannot be read again (an object store's body).

`python_rows` parses such rows, and the rows Arrow rejected for their width, with Python's csv module under
the same delimiter, quote and escape options (strict quoting). It sorts them into good rows (missing
trailing fields are NULL; fields past the header's go to `_rescued_data` as `_c<index>`) and malformed ones. As on
Arrow's path, an empty field or the null value is NULL but a quoted one is text (`""` an empty string).
"""

from __future__ import annotations

import array
import bisect
import csv
import io
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from core.config import FormatOptions
from core.formats.csv_quotes import RecordQuotes, escaped_offsets, opening_quote, python_records
from core.formats.streams import BOM, BlockConverter, InvalidUtf8, utf8_error

# A line set aside for Python may hold a value longer than the csv module's default field limit (128 KiB). This
# process owns its csv settings, and a line is bounded by its file anyway.
csv.field_size_limit(2**31 - 1)
BLOCK_BYTES = 2 * 1024 * 1024


@dataclass
class UnclosedQuote:
    """A quoted value still open at the end of a multiline CSV file: its opening quote's line, and its byte offset
    in the (decompressed) file when known (comment lines blanked before it move offsets)."""

    line: int
    offset: int | None


class CsvLines(BlockConverter):
    """`raw` with comment lines blanked and suspicious rows set aside (see the module docstring)."""

    def __init__(
        self,
        raw: BinaryIO,
        options: FormatOptions,
        *,
        check_quotes: bool,
        count_lines: bool,
        longest_line: int | None = None,
        block_bytes: int | None = None,
    ):
        super().__init__()
        self._raw = raw
        self._block_bytes = BLOCK_BYTES if block_bytes is None else min(block_bytes, BLOCK_BYTES)
        # Lines longer than this (Arrow's block: its reader fails on a row that does not fit one) are set aside for
        # Python, like badly quoted ones, so a 100 MB value loads instead of failing the file (not in multiline).
        self._longest_line = None if options.multiline else longest_line
        self._comment = options.comment.encode("utf-8") if options.comment else None
        self._multiline = options.multiline
        self._quote = options.quote.encode("utf-8") if options.quote else None
        self._check = check_quotes and self._quote is not None and not options.multiline
        self._quote_byte = self._quote[0] if self._quote else 0
        self._delimiter = options.delimiter.encode("utf-8")[0]
        self._escape = options.escape.encode("utf-8")[0] if options.escape else None
        self._records = (
            RecordQuotes(self._quote_byte, self._delimiter, self._escape)
            if check_quotes and self._quote is not None and options.multiline
            else None
        )
        self._dialect = _dialect(options)
        self._pending = b""  # multiline: the start of a record not yet whole (processed text)
        self._pending_to_python = False  # whether that record follows a badly quoted one (Python splits it)
        self._pending_offset = 0  # the offset in `raw` of the pending text
        self._offsets_exact = True  # False once comment lines were blanked (they move offsets)
        self._header_pending = options.header
        self._suspects = _SuspectQuotes(self._quote_byte, self._delimiter, self._escape)
        self._feeds = _FeedOffsets()
        self._count_lines = count_lines
        self._lines = 0  # line breaks before the unprocessed (multiline: the pending) text
        self._blank_lines = array.array("q")  # numbers of empty lines, ascending (only when `count_lines`)
        self._in_quotes = False  # multiline + comment: whether the processed text ends inside a quoted value
        self._carry = b""
        self._eof = False
        self._offset = 0  # the offset in `raw` of the block being processed
        self.altered = False  # whether lines were blanked, so offsets in the output are no longer `raw`'s
        # The first byte that is not UTF-8 (outside comment lines): the reader raises it once the file's start was
        # checked (a binary file is named as such, not as text that is not UTF-8).
        self.invalid_utf8: InvalidUtf8 | None = None
        # (line number or None, raw line text) of rows taken out of Arrow's input; appended from Arrow's threads.
        self.suspicious: list[tuple[int | None, str]] = []
        self.unclosed_quote: UnclosedQuote | None = None

    def next_block(self) -> memoryview | None:
        """The rest of the processed text, a block of whole lines (with `multiline`, whole records) at a time, or
        None at the end: text to parse on its own, as `csv_reader` does block by block. After `readinto` took
        part of a block, its rest."""
        self._fill()
        if not self._out:
            return None
        block, self._out = self._out, memoryview(b"")
        return block

    def _fill(self) -> None:
        """Process blocks of `raw` until there is output or `raw` ended."""
        while not self._out and not self._eof:
            block = bytearray(self._carry)  # the one copy of each block; Arrow gets a view of it
            # A line or record longer than a block makes the next read as long: memory grows with it, linearly.
            chunk = self._raw.read(max(self._block_bytes, len(self._carry), len(self._pending)))
            self._eof = not chunk
            block += chunk
            if self._eof and block and not block.endswith(b"\n") and block[-1] != self._escape:
                block += b"\n"  # ended like every other line: Arrow reads an empty last field of the file as ""
            cut = len(block) if self._eof else block.rfind(b"\n") + 1
            self._carry = bytes(block[cut:])
            del block[cut:]
            if self._offset == 0 and block.startswith(BOM):
                # Off before the comment check, so that a first line of `# …` is a comment as on every other line
                # (and as Spark reads it: Hadoop's line reader drops the mark); Arrow drops it anyway.
                del block[: len(BOM)]
                self._offset = len(BOM)
            if block or (self._eof and self._pending):
                self._out = memoryview(self._process(block))
                self._offset += len(block)

    def _process(self, block: bytearray) -> bytes | bytearray:
        data: bytes | bytearray = block
        if self.invalid_utf8 is None and not block.isascii():
            self._check_utf8(block)
        protect = 0
        if self._header_pending:
            protect = self._header_end(data)
        if self._comment is not None and self._comment in data:
            data = self._blank_comments(data)
            self._offsets_exact = self._offsets_exact and data is block
        elif self._multiline and self._comment is not None and self._quote is not None:
            self._in_quotes ^= bool(data.count(self._quote) & 1)
        longest = self._longest_line
        if longest is not None and len(data) > longest and _may_hold_long_line(data, longest):  # first: then no
            long_lines = _long_line_starts(len(data), self._feeds(data), longest)  # scan holds it
            data = self._take_lines(data, protect, block, long_lines)
        escapes = self._escape is not None and self._escape in data
        if self._check and self._quote is not None and (self._quote in data or escapes):
            data = self._set_aside(data, protect, block)
        self.altered = self.altered or data is not block
        first_line = self._lines
        if self._records is not None:
            data = self._whole_records(data, protect)
        else:
            self._lines += self._feeds.count(data)
        if self._count_lines:
            self._note_blank_lines(data, first_line)
        self._feeds.forget()
        return data

    def _check_utf8(self, block: bytearray) -> None:
        """Note the first byte of `block` (a block that is not ASCII) that is not UTF-8 in `invalid_utf8`, unless it
        is on a comment line (never read). Arrow's reader fails on such text without saying where."""
        if _is_utf8(block):
            return
        lines = self._lines + (_line_feeds(self._pending) if self._records is not None else 0)
        start = 0
        while start < len(block):
            found = utf8_error(block[start:], self._offset + start, lines + block.count(b"\n", 0, start) + 1)
            if found is None or found.offset is None:
                return
            line_start = block.rfind(b"\n", 0, found.offset - self._offset) + 1
            if self._comment is None or not block.startswith(self._comment, line_start):
                self.invalid_utf8 = found
                return
            start = block.find(b"\n", line_start) + 1 or len(block)

    def _whole_records(self, data: bytes | bytearray, protect: int) -> bytes | bytearray:
        """Multiline: the whole records of the pending text and `data` for Arrow; from the first badly quoted record
        on, they are set aside for Python (`suspicious`). The rest is pending, until the next block ends it."""
        assert self._records is not None
        if self._pending:
            data = self._pending + data
        if self._pending_to_python:
            start = 0
        else:
            scan = self._records(data, self._eof)
            if scan.suspect is None:
                self._pending = bytes(data[scan.cut :])
                self._advance(data, scan.cut, scan.lines - _line_feeds(self._pending))
                return data[: scan.cut]
            start = scan.suspect
        if protect:  # the header is Arrow's
            start = min(max(start, protect + 1), len(data))
        return self._to_python(data, start)

    def _to_python(self, data: bytes | bytearray, start: int) -> bytes | bytearray:
        found = python_records(data, start, self._eof, self._dialect)
        for begin, end in found.spans:
            number = self._lines + data.count(b"\n", 0, begin) + 1 if self._count_lines else None
            record = _without_line_break(bytes(data[begin:end]), self._escape)
            self.suspicious.append((number, record.decode("utf-8")))
        if found.unterminated is not None:
            at = found.unterminated + opening_quote(data[found.unterminated :], self._quote_byte, self._escape)
            self.unclosed_quote = UnclosedQuote(
                self._lines + data.count(b"\n", 0, at) + 1,
                self._pending_offset + at if self._offsets_exact else None,
            )
        end = found.end
        if found.invalid_utf8 is not None or found.unterminated is not None or self._eof:
            end = len(data)  # the file fails (or ends): nothing is left for later
        self._pending = bytes(data[end:])
        self._pending_to_python = bool(self._pending)
        self.altered = self.altered or end > start
        line_feeds = data.count(b"\n", 0, end)
        blanked = data.count(b"\n", start, end)
        self._advance(data, end, line_feeds)
        return bytes(data[:start]) + b"\n" * blanked  # the set-aside lines stay as empty lines, so numbers hold

    def _advance(self, data: bytes | bytearray, end: int, line_feeds: int) -> None:
        """`data[:end]` (holding `line_feeds` line feeds) leaves for Arrow; the pending text starts after it."""
        self._lines += line_feeds
        self._pending_offset += end

    def _note_blank_lines(self, data: bytes | bytearray, lines_before: int) -> None:
        """Remember the numbers of empty lines (Arrow skips them, so its row numbers do not count them); `data`
        starts after `lines_before` line feeds."""
        a = np.frombuffer(data, np.uint8)
        breaks = self._feeds(data)
        if not len(breaks):
            return
        gaps = np.diff(breaks, prepend=-1)
        empty = (gaps == 1) | ((gaps == 2) & (a[np.maximum(breaks - 1, 0)] == 13))
        self._blank_lines.extend((np.flatnonzero(empty) + lines_before + 1).tolist())

    def physical_line(self, row: int) -> int:
        """The line number of Arrow's `row`-th row (which counts the header, not empty lines); needs `count_lines`."""
        line = row
        while True:
            moved = row + bisect.bisect_right(self._blank_lines, line)
            if moved == line:
                return line
            line = moved

    def _header_end(self, data: bytes | bytearray) -> int:
        """The end of the header line if `data` holds it (the first line neither blank nor a comment)."""
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            end = len(data) if end == -1 else end
            line = data[start:end].strip()
            if line and not (self._comment is not None and line.startswith(self._comment)):
                self._header_pending = False
                return end
            start = end + 1
        return len(data)

    def _blank_comments(self, data: bytes | bytearray) -> bytes | bytearray:
        assert self._comment is not None
        pieces: list[bytes | bytearray] = []
        kept = 0  # data[kept:] is not yet in pieces
        counted = 0  # quotes counted up to here (multiline)
        at = 0 if data.startswith(self._comment) else _next_line_start(data, self._comment, 0)
        while at != -1:
            if self._multiline and self._quote is not None:
                self._in_quotes ^= bool(data.count(self._quote, counted, at) & 1)
                counted = at
            end = data.find(b"\n", at)
            end = len(data) if end == -1 else end
            if not self._in_quotes:
                pieces.append(data[kept:at])
                kept = end  # the line break stays: an empty line, so line numbers hold
            at = _next_line_start(data, self._comment, end)
        if self._multiline and self._quote is not None:
            self._in_quotes ^= bool(data.count(self._quote, counted) & 1)
        if not pieces:
            return data
        pieces.append(data[kept:])
        return b"".join(pieces)

    def _set_aside(self, data: bytes | bytearray, protect: int, block: bytearray) -> bytes | bytearray:
        """Blank the lines with a suspicious quote (not the header) and keep them in `suspicious`; a line that is not
        UTF-8 is noted in `invalid_utf8` instead (its first bad byte in `raw`, found in the unaltered `block`)."""
        return self._take_lines(data, protect, block, self._suspects(data, self._feeds).tolist())

    def _take_lines(
        self, data: bytes | bytearray, protect: int, block: bytearray, positions: list[int]
    ) -> bytes | bytearray:
        """Blank the lines holding `positions` (ascending offsets in `data`; never the header) and keep their text."""
        if not len(positions):
            return data
        pieces: list[bytes | bytearray] = []
        kept = 0
        line_end = -1
        for position in positions:
            if position <= line_end or position < protect:  # line_end: the line feed of a line already taken
                continue
            start = data.rfind(b"\n", 0, position) + 1
            line_end = data.find(b"\n", position)
            line_end = len(data) if line_end == -1 else line_end
            number = self._lines + data.count(b"\n", 0, start) + 1 if self._count_lines else None
            try:
                text = _without_line_break(bytes(data[start:line_end]) + b"\n", self._escape).decode("utf-8")
                self.suspicious.append((number, text))
            except UnicodeDecodeError:
                if self.invalid_utf8 is None:
                    self.invalid_utf8 = self._invalid_utf8(block, data.count(b"\n", 0, start), number)
            pieces.append(data[kept:start])
            kept = line_end
        if not pieces:
            return data
        pieces.append(data[kept:])
        return b"".join(pieces)

    def _invalid_utf8(self, block: bytearray, index: int, number: int | None) -> InvalidUtf8:
        """Where the block's `index`-th line (numbered `number`, when counted) stops being UTF-8. Blanking comments
        keeps every line break, so the line is found in the unaltered block by counting them."""
        start = 0
        for _ in range(index):
            start = block.index(b"\n", start) + 1
        end = block.find(b"\n", start)
        found = utf8_error(block[start : len(block) if end == -1 else end], self._offset + start, number)
        return found or InvalidUtf8(None, number)


def _long_line_starts(size: int, feeds: Any, longest: int) -> list[int]:
    """The offsets where lines longer than `longest` bytes (line break included) start, in a block of `size` bytes
    whose line feeds are at `feeds` (numpy: a block of a million bytes in about half a millisecond; a search line by
    line took 5 ms)."""
    last = size - 1
    ends = feeds if len(feeds) and feeds[-1] == last else np.append(feeds, last)
    bounds = np.concatenate(([-1], ends))  # each line runs from after one bound to the next, inclusive
    return [int(start) for start in bounds[:-1][np.diff(bounds) > longest] + 1]


def _may_hold_long_line(data: bytes | bytearray, longest: int) -> bool:
    """False when no line of `data` can be longer than `longest` bytes, found with one `find`; True: look closer.

    A line longer than `longest` ends at or after offset `longest` and starts at or before `len(data) - 1 - longest`,
    so it holds no line feed in between. In a block of at most twice `longest` (every block but one after a very
    long line) that span is not empty, and its first line feed, usually a line's length from its start, rules such
    a line out without the block's line feeds."""
    size = len(data)
    if size <= longest:
        return False
    if size > 2 * longest:
        return True
    return data.find(b"\n", size - 1 - longest, longest) == -1


class _FeedOffsets:
    """The line feeds of the block being processed, found once: as a mask (the open-quote check, the line count)
    and, only when asked, as offsets (long lines, the blank lines, locating an open quote): the offsets cost four
    times the mask. Blanking lines makes a new block, which is searched again (`data` is compared by identity, and
    the block it was found in is held until `forget`)."""

    def __init__(self) -> None:
        self._data: bytes | bytearray | None = None
        self._offsets: Any = None
        self._buffer = np.empty(0, np.bool_)
        self._mask: Any = None

    def mask(self, data: bytes | bytearray) -> Any:
        """`data`'s bytes that are line feeds (booleans, valid until the next block)."""
        if data is not self._data:
            self._data = data
            self._offsets = None
            self._buffer = _block_buffer(self._buffer, len(data))
            self._mask = np.equal(np.frombuffer(data, np.uint8), 10, out=self._buffer[: len(data)])
        return self._mask

    def __call__(self, data: bytes | bytearray) -> Any:
        """The offsets of `data`'s line feeds, ascending."""
        mask = self.mask(data)
        if self._offsets is None:
            self._offsets = np.flatnonzero(mask)
        return self._offsets

    def count(self, data: bytes | bytearray) -> int:
        mask = self.mask(data)
        return len(self._offsets) if self._offsets is not None else int(np.count_nonzero(mask))

    def forget(self) -> None:
        self._data = self._offsets = self._mask = None


def _block_buffer(buffer: Any, n: int) -> Any:
    """`buffer` (booleans) if it holds `n`, else a new one of a whole block: reused from block to block, since a new
    megabyte per block costs more in page faults than the comparison written into it."""
    return buffer if len(buffer) >= n else np.empty(max(n, BLOCK_BYTES + 4096), np.bool_)


def _line_feeds(data: bytes | bytearray) -> int:
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == 10)) if data else 0


def _is_utf8(data: bytes | bytearray) -> bool:
    """Whether `data` is UTF-8, by Arrow's validation (faster than decoding, and no copy)."""
    offsets = pa.py_buffer(np.array([0, len(data)], np.int64).tobytes())
    try:
        pa.Array.from_buffers(pa.large_utf8(), 1, [None, offsets, pa.py_buffer(data)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _without_line_break(record: bytes, escape: int | None) -> bytes:
    """A record's text without the line break that ends it (`\n`, `\r\n` or `\r`). After an escaped `\r` (data)
    the `\n` stays: without it Python's csv module would wait for the record's end."""
    text = record[:-1] if record.endswith(b"\n") else record
    if not text.endswith(b"\r"):
        return text
    body = text[:-1]
    escapes = len(body) - len(body.rstrip(bytes([escape]))) if escape is not None else 0
    return record if escapes % 2 == 1 else body


def _next_line_start(data: bytes | bytearray, comment: bytes, after: int) -> int:
    at = data.find(b"\n" + comment, after)
    return -1 if at == -1 else at + 1


class _SuspectQuotes:
    """Offsets of the quote characters where Arrow's reader and a strict CSV parser part ways (escaped quotes are not
    counted):

    * every quote of a line with an odd number of them: a quoted value left open, which Arrow reads on into the
      next lines (without `multiline` a row ends at its line break);
    * a quote that opens a value (a line's 1st, 3rd, ... quote) after something other than the delimiter, a line
      break or a quote: `1,a","` — Arrow takes it as a character of an unquoted value, so the next quote opens a
      value that swallows the next lines, although the line's count is even;
    * a quote that closes a value (2nd, 4th, ...) before something other than those: `"a"b`, `""x`, where Arrow
      appends the text to the value.

    A well-formed line has none. Vectorised: the bytes are classified a quarter megabyte at a time (the passes stay
    in the core's cache) and packed into bits, 64 bytes to a word, on which each quote's place and its neighbours
    are told in a few passes over 16,384 words per megabyte. Only a block with a suspect quote pays for its offsets.
    """

    _CHUNK = 256 * 1024  # a multiple of 64: each chunk packs into whole words

    def __init__(self, quote: int, delimiter: int, escape: int | None):
        self._quote, self._delimiter, self._escape = quote, delimiter, escape
        self._scratch = [np.empty(self._CHUNK, np.bool_) for _ in range(2)]

    def __call__(self, data: bytes | bytearray, feeds: _FeedOffsets) -> Any:
        """The suspect quotes' offsets in `data` (ascending), whose line feeds `feeds` finds."""
        n = len(data)
        if self._escape is not None and self._escape in data:
            return self._with_escapes(data, feeds)
        if n < 3:
            return np.empty(0, np.int64)
        a = np.frombuffer(data, np.uint8)
        words = -(-n // _WORD_BITS)
        quote_bits, delimiter_bits = np.zeros(words * 8, np.uint8), np.zeros(words * 8, np.uint8)
        for start in range(0, n, self._CHUNK):
            self._classify(a[start : start + self._CHUNK], quote_bits, delimiter_bits, start // 8)
        counted = quote_bits.view("<u8")  # no escape character in this block
        breaks = _packed(feeds.mask(data), words)
        other = ~(counted | delimiter_bits.view("<u8") | breaks)
        if 13 in data:
            other &= ~_packed(np.equal(a, 13), words)
        if n % _WORD_BITS:
            other[-1] &= np.uint64((1 << (n % _WORD_BITS)) - 1)  # the padding past the block is no text
        parity, total_odd = _running_parity(counted)
        if (parity & breaks).any() or (data[-1] != 10 and total_odd):
            return _suspects_on_lines(_unpacked(counted, n), _unpacked(other, n), feeds(data))  # an odd line
        # Every line's count is even, so the running parity is each line's own: odd after an opening quote.
        hit = counted & ((parity & _after(other)) | (~parity & _before(other)))
        if not hit.any():
            return np.empty(0, np.int64)
        return np.flatnonzero(_unpacked(hit, n))

    def _with_escapes(self, data: bytes | bytearray, feeds: _FeedOffsets) -> Any:
        """The rules byte by byte for a block holding the escape character (an option, so rare): a run of them
        escapes the next character when it is odd (`csv_quotes.escaped_offsets`); an escaped character is text
        beside a quote and an escaped quote is not counted. Also suspect: a line break taken as text (Arrow would
        join two lines), and an escape character that ends the text (Arrow drops it)."""
        assert self._escape is not None
        a = np.frombuffer(data, np.uint8)
        n = len(a)
        escaped = escaped_offsets(a, self._escape)
        escaped = np.empty(0, np.int64) if escaped is None else escaped
        inside = escaped[escaped < n]
        counted, other = self._quotes_and_text(a, *(np.empty(n, np.bool_) for _ in range(3)))
        counted[inside] = False
        other[inside] = True
        found = [_suspects_on_lines(counted, other, feeds(data))]
        found.append(inside[(a[inside] == 10) | (a[inside] == 13)])
        if len(escaped) and escaped[-1] == n:
            found.append(np.array([n - 1]))
        return np.unique(np.concatenate(found))

    def _classify(self, a: Any, quote_bits: Any, delimiter_bits: Any, at: int) -> None:
        """The chunk `a`'s quotes and delimiters as bits, from byte `at` of `quote_bits` and `delimiter_bits` (line
        breaks are told from the block's line feeds, as bits: a pass over the bytes less per class)."""
        m = len(a)
        _pack_into(quote_bits, at, np.equal(a, self._quote, out=self._scratch[0][:m]))
        _pack_into(delimiter_bits, at, np.equal(a, self._delimiter, out=self._scratch[1][:m]))

    def _quotes_and_text(self, a: Any, quote_out: Any, text_out: Any, scratch: Any) -> tuple[Any, Any]:
        """Which bytes of `a` are quotes, and which are text (neither delimiter, line break nor quote), written into
        the first two boolean buffers (the third is scratch)."""
        is_quote = np.equal(a, self._quote, out=quote_out)
        other = np.not_equal(a, self._delimiter, out=text_out)
        for innocent in (10, 13):
            other &= np.not_equal(a, innocent, out=scratch)
        np.greater(other, is_quote, out=other)  # and not a quote (booleans: a > b is a and not b)
        return is_quote, other


def _suspects_on_lines(counted: Any, other: Any, feeds: Any) -> Any:
    """`_SuspectQuotes`' rules byte by byte, for a block with an odd line (rare): each quote's rank on its line says
    whether it opens or closes a value."""
    quotes = np.flatnonzero(counted)
    if not len(quotes):
        return quotes
    n = len(counted)
    lines = np.searchsorted(feeds, quotes)
    firsts = np.flatnonzero(np.concatenate(([True], lines[1:] != lines[:-1])))
    rank = np.arange(len(quotes)) - np.repeat(firsts, np.diff(np.append(firsts, len(quotes))))
    opens = rank % 2 == 0
    left = np.zeros(len(quotes), np.bool_)
    left[quotes > 0] = other[quotes[quotes > 0] - 1]
    right = np.zeros(len(quotes), np.bool_)
    right[quotes < n - 1] = other[quotes[quotes < n - 1] + 1]
    odd_line = np.bincount(lines)[lines] % 2 == 1
    return quotes[odd_line | (opens & left) | (~opens & right)]


_WORD_BITS = 64


def _running_parity(counted: Any) -> tuple[Any, bool]:
    """The parity of the counted bits up to and including each bit (words of 64), and whether the total is odd.

    As in simdjson: a prefix XOR inside each word (six shifts), then each word flipped when the words before it
    hold an odd count. At a line feed it is 0 for every line when each line's count is even, and 1 at the end of
    the first line whose count is odd."""
    parity = counted.copy()
    for shift in (1, 2, 4, 8, 16, 32):
        parity ^= parity << np.uint64(shift)
    odd_before = np.bitwise_xor.accumulate(parity >> np.uint64(_WORD_BITS - 1))
    parity[1:] ^= np.uint64(0) - odd_before[:-1]  # all ones after an odd count, else nothing
    return parity, bool(odd_before[-1])


def _after(words: Any) -> Any:
    """Each bit set to the bit before it (the byte on the left); the first bit to 0."""
    shifted = words << np.uint64(1)
    shifted[1:] |= words[:-1] >> np.uint64(_WORD_BITS - 1)
    return shifted


def _before(words: Any) -> Any:
    """Each bit set to the bit after it (the byte on the right); the last bit to 0."""
    shifted = words >> np.uint64(1)
    shifted[:-1] |= words[1:] << np.uint64(_WORD_BITS - 1)
    return shifted


def _pack_into(packed: Any, at: int, flags: Any) -> None:
    """Booleans as bits from byte `at` of `packed` (flag i is bit i % 8 of byte at + i // 8)."""
    bits = np.packbits(flags, bitorder="little")
    packed[at : at + len(bits)] = bits


def _packed(flags: Any, words: int) -> Any:
    """Booleans as the bits of little-endian 64-bit words (flag i is bit i % 64 of word i // 64), zero-padded."""
    packed = np.zeros(words * 8, np.uint8)
    _pack_into(packed, 0, flags)
    return packed.view("<u8")


def _unpacked(words: Any, n: int) -> Any:
    """The first `n` bits of little-endian 64-bit words as booleans."""
    return np.unpackbits(words.view(np.uint8), bitorder="little", count=n).view(np.bool_)


@dataclass
class PythonRows:
    """Rows parsed by Python: good rows' fields (None = NULL), their extra fields, and malformed rows."""

    rows: list[list[str | None]] = field(default_factory=list)
    extras: list[dict[str, str] | None] = field(default_factory=list)
    malformed: list[tuple[int | None, str]] = field(default_factory=list)


def _dialect(options: FormatOptions) -> dict[str, Any]:
    quote = options.quote or None
    return {
        "delimiter": options.delimiter,
        "quotechar": quote,
        "quoting": csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
        "escapechar": options.escape or None,
        "doublequote": True,
        "strict": True,
        "skipinitialspace": False,
    }


def split_row(text: str, options: FormatOptions) -> list[str] | None:
    """The fields of one CSV row by Python's csv module (strict quoting), or None when it does not parse.

    The row is given a line break to end on, as in its file: without one, strict quoting refuses a row whose text
    ends with an escaped line break (a blank line after a row that has one is no row)."""
    ended = text + "\n"
    try:
        rows = [r for r in csv.reader(io.StringIO(ended, newline=""), **_dialect(options)) if r]
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def python_rows(
    items: list[tuple[int | None, str]], width: int, options: FormatOptions, nulls: frozenset[str]
) -> PythonRows:
    """Sort rows into good and malformed (see the module docstring); `nulls` are the texts meaning NULL.

    In permissive mode a row of the wrong width is good (short: NULL-padded, long: extra fields rescued);
    in dropmalformed and failfast modes it is malformed, as in Spark.
    """
    out = PythonRows()
    permissive = options.mode == "permissive"
    for number, text in items:
        fields = split_row(text, options)
        if fields is None or (len(fields) != width and not permissive):
            out.malformed.append((number, text))
            continue
        # As on Arrow's path, a quoted value is never NULL: `""` is an empty string, an empty field is NULL.
        quoted = quoted_fields(text, options) if any(v in nulls for v in fields) else []
        if len(quoted) != len(fields):
            quoted = [False] * len(fields)
        kept = [v if q or v not in nulls else None for v, q in zip(fields, quoted, strict=True)]
        values = kept[:width] + [None] * (width - len(fields))
        out.rows.append(values)
        extra = {f"_c{i}": v for i, v in enumerate(kept) if i >= width and v is not None}
        out.extras.append(extra or None)
    return out


def quoted_fields(text: str, options: FormatOptions) -> list[bool]:
    """Which fields of a row begin with the quote character, for a row Python's csv module parsed (`split_row`)
    under the same options: its fields are told apart the same way (the delimiter outside quotes; the escape
    character, or a doubled quote inside them, takes the next character as it is)."""
    quote, delimiter = options.quote, options.delimiter
    escape = options.escape if options.escape and options.escape != quote else ""
    flags: list[bool] = []
    at, end = 0, len(text)
    while True:
        opened = bool(quote) and text.startswith(quote, at)
        flags.append(opened)
        if opened:
            at = _after_quoted(text, at + 1, quote, escape)
        at = _next_delimiter(text, at, delimiter, escape)  # past the unquoted text (or what follows the quote)
        if at >= end:
            return flags
        at += 1


def _next_delimiter(text: str, at: int, delimiter: str, escape: str) -> int:
    """The position of the next delimiter from `at` that is not escaped (the text's length when there is none)."""
    if not escape:
        found = text.find(delimiter, at)
        return len(text) if found == -1 else found
    while at < len(text) and text[at] != delimiter:
        at += 2 if text[at] == escape else 1
    return at


def _after_quoted(text: str, at: int, quote: str, escape: str) -> int:
    """Where the quoted value starting at `at` (after its opening quote) ends: after its closing quote."""
    while at < len(text):
        if escape and text[at] == escape:
            at += 2
            continue
        found = text.find(quote, at)
        if found == -1:
            return len(text)
        if escape and escape in text[at:found]:
            at = text.index(escape, at)  # escaped: the next character is taken as it is
        elif text.startswith(quote, found + 1):  # a doubled quote is one quote character
            at = found + 2
        else:
            return found + 1
    return at

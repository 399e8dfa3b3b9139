"""Plain text into Arrow batches: one row per line in a `value` string column (Spark's text source), or the whole
file as one row (`wholetext`).

Lines end at `\\n`, `\\r\\n` or `\\r` (Spark's default line separators); the line end is not part of the value, an empty
line is a row holding `""`, and a last line without a line end is a row too. Lines are read in blocks of about
`block_bytes`, so memory stays at a few blocks whatever the file's size; `wholetext` holds the whole file (at most
`MAX_WHOLE_TEXT_BYTES`, the most one Arrow string holds).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from core.config import FormatConfig
from core.errors import BadFileError
from core.formats.conform import RESCUED, conform_batch
from core.formats.streams import BOM, FileReadStats, check_head, empty_file, not_utf8, read_up_to

VALUE = "value"
TEXT_SCHEMA = pa.schema([pa.field(VALUE, pa.string())])
MAX_WHOLE_TEXT_BYTES = 2**31 - 1
_HEAD_BYTES = 64 * 1024


def _first_block(stream: BinaryIO, size: int, path: str, what: str) -> tuple[bytes, bool, int]:
    """The first block (a UTF-8 byte order mark dropped), whether the stream ended and the block's offset in the
    file (after the mark); empty and binary files are refused. Blank lines are rows here, so a file of blank lines
    is not empty."""
    head = read_up_to(stream, size)
    exhausted = len(head) < size
    offset = 0
    if head.startswith(BOM):
        head, offset = head[len(BOM) :], len(BOM)
    if not head and exhausted:
        raise empty_file(path)
    check_head(head[:_HEAD_BYTES].lstrip(), path, what)
    return head, exhausted, offset


def check_text(stream: BinaryIO, path: str, what: str = "text") -> pa.Schema:
    """The text format's one column, once the file's start shows it is text (raises BadFileError otherwise)."""
    _first_block(stream, _HEAD_BYTES, path, what)
    return TEXT_SCHEMA


def _decode(block: bytes, path: str, what: str, offset: int, first_line: int) -> str:
    """The block's text; BadFileError naming the file's byte and line (the block starts at byte `offset`, on line
    `first_line`) when it is not UTF-8."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        ends = len(_LINE_END.findall(block, 0, exc.start))  # \r alone ends a line too
        raise not_utf8(path, what, offset + exc.start, first_line + ends) from None


_LINE_END = re.compile(rb"\r\n|\r|\n")


def _line_end(buffer: bytes, exhausted: bool) -> int:
    """Where the last whole line of `buffer` ends (after its line end), 0 when none does. A `\\r` as the buffer's
    last byte may be the first half of `\\r\\n`: it ends a line only once the stream has ended."""
    cut = max(buffer.rfind(b"\n"), buffer.rfind(b"\r"))
    if cut == len(buffer) - 1 and buffer.endswith(b"\r") and not exhausted:
        cut = max(buffer.rfind(b"\n", 0, cut), buffer.rfind(b"\r", 0, cut))
    return cut + 1


def _lines(text: str) -> pa.Array:
    """The lines of `text` (which ends with a line end, or is the file's last piece) as a string array."""
    data = pa.array([text], pa.string())
    crlf = "\r" in text
    parts = pc.split_pattern_regex(data, pattern="\r\n|\r|\n") if crlf else pc.split_pattern(data, pattern="\n")
    lines = parts.flatten()
    if text.endswith(("\n", "\r")):
        lines = lines.slice(0, len(lines) - 1)  # the empty piece after the last line end is not a line
    return lines


def _line_blocks(stream: BinaryIO, first: bytes, exhausted: bool, block_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines of about `block_bytes` (a longer line grows its block), then the last piece."""
    buffer = first
    while True:
        cut = _line_end(buffer, exhausted)
        if exhausted:
            if buffer:
                yield buffer
            return
        if cut:
            yield buffer[:cut]
            buffer = buffer[cut:]
        chunk = read_up_to(stream, block_bytes)
        exhausted = len(chunk) < block_bytes
        buffer = buffer + chunk if buffer else chunk


def read_text(
    stream: BinaryIO, path: str, fmt: FormatConfig, schema: pa.Schema, stats: FileReadStats, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    """The file's lines (or, with `wholetext`, its whole content) conformed to `schema` plus `_rescued_data`."""
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    what = "text"
    first, exhausted, offset = _first_block(stream, block_bytes, path, what)
    if fmt.options.wholetext:
        rest = b"" if exhausted else read_up_to(stream, MAX_WHOLE_TEXT_BYTES + 1 - len(first))
        whole = first + rest
        if len(whole) > MAX_WHOLE_TEXT_BYTES:
            raise BadFileError(
                f"{path} is larger than 2 GiB, more than one text value can hold (option wholetext)",
                "Turn wholetext off to load the file a row per line, or split the file; it is quarantined and the "
                "rest of the run continues.",
            )
        column = pa.array([_decode(whole, path, what, offset, 1)], pa.string())
        stats.records += 1
        yield conform_batch(pa.RecordBatch.from_arrays([column], names=[VALUE]), data_schema)
        return
    line = 1  # the number of the block's first line: blocks hold whole lines
    for block in _line_blocks(stream, first, exhausted, block_bytes):
        lines = _lines(_decode(block, path, what, offset, line))
        offset += len(block)
        line += len(lines)
        if not len(lines):
            continue
        stats.records += len(lines)
        yield conform_batch(pa.RecordBatch.from_arrays([lines], names=[VALUE]), data_schema)

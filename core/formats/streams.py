"""Shared pieces of the text readers: the counted source stream, first-block handling and file errors."""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple

import pyarrow as pa

from core.errors import AutoloaderError, BadFileError

QUARANTINE_ACTION = "Check the file's format, or fix/remove it; it is quarantined and the rest of the run continues."
DEEP_ACTION = (
    "Flatten the data at the producer (or send the deep part as a JSON string); the file is quarantined and the rest "
    "of the run continues."
)
EMPTY_ACTION = (
    "There is nothing to load; check the producer. The file is quarantined and the rest of the run continues."
)

# A first block with more than this share of malformed lines means the file is not in the declared format.
MAX_MALFORMED_SHARE = 0.9

ARROW_ERRORS: tuple[type[BaseException], ...] = (pa.ArrowException, OSError, EOFError, ValueError)


@dataclass
class FileReadStats:
    """What reading one file produced: rows yielded, malformed lines/rows, raw bytes consumed."""

    records: int = 0
    bad_records: int = 0
    bytes_read: int = 0


class Source(io.RawIOBase):
    """The caller's stream, counting raw bytes and remembering its own errors.

    An error raised by the source (network, disk) is not the file's fault and must not get the file
    quarantined, so it is re-raised as is instead of becoming a BadFileError.
    """

    def __init__(self, raw: BinaryIO):
        super().__init__()
        self._raw = raw
        self.bytes = 0  # the furthest offset read: raw bytes consumed, counting re-reads once
        self._position = 0
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        try:
            return bool(self._raw.seekable())
        except Exception:
            return False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        try:
            self._position = self._raw.seek(offset, whence)
        except Exception as exc:
            self.error = exc
            raise
        return self._position

    def tell(self) -> int:
        return self._raw.tell()

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = self._raw.read() if size is None or size < 0 else self._raw.read(size)
        except Exception as exc:
            self.error = exc
            raise
        self._position += len(data)
        self.bytes = max(self.bytes, self._position)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def short_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^(JSON parse error|CSV parse error|In CSV column #\d+): ", "", text)
    return text if len(text) <= 200 else text[:197] + "..."


def bad_file(path: str, what: str, exc: BaseException | str, action: str = QUARANTINE_ACTION) -> BadFileError:
    reason = exc if isinstance(exc, str) else short_reason(exc)
    detail = "" if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return BadFileError(f"{path} is not valid {what}: {reason}", action, detail=detail)


def empty_file(path: str) -> BadFileError:
    return BadFileError(f"{path} is empty", EMPTY_ACTION)


class InvalidUtf8(ValueError):
    """Text that is not UTF-8, found where the file's path is not known: `offset` is the first bad byte's offset in
    the file (in the decompressed text of a compressed file), `line` its line number; each None when not known."""

    def __init__(self, offset: int | None, line: int | None = None):
        super().__init__(f"invalid UTF-8 at byte {offset} (line {line})")
        self.offset = offset
        self.line = line


def utf8_error(data: bytes | bytearray, offset: int = 0, first_line: int | None = 1) -> InvalidUtf8 | None:
    """Where `data`, which starts at byte `offset` of the file on line `first_line` (None: not known), stops being
    UTF-8; None when it is UTF-8. Only called once a parser has said the text is not UTF-8 (it decodes `data`)."""
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = None if first_line is None else first_line + data.count(b"\n", 0, exc.start)
        return InvalidUtf8(offset + exc.start, line)
    return None


def first_invalid_utf8(stream: BinaryIO, block_bytes: int = 1024 * 1024) -> InvalidUtf8 | None:
    """Where a stream (read from its start) stops being UTF-8, or None when it is UTF-8 to its end. For a parser
    that says the text is not UTF-8 but not where (Arrow's CSV reader): the file is read again, only then."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed, line = 0, 1
    while True:
        chunk = stream.read(block_bytes)
        pending = decoder.getstate()[0]  # the start of a character cut by the previous chunk: never a line break
        try:
            decoder.decode(chunk, not chunk)
        except UnicodeDecodeError as exc:
            cut = exc.start - len(pending)
            return InvalidUtf8(consumed + cut, line + chunk.count(b"\n", 0, max(cut, 0)))
        if not chunk:
            return None
        consumed += len(chunk)
        line += chunk.count(b"\n")


def says_not_utf8(exc: BaseException) -> bool:
    """Whether a parser's error says the text is not UTF-8 (Arrow's does not say where)."""
    return isinstance(exc, UnicodeDecodeError) or "invalid UTF8" in str(exc)


def not_utf8(path: str, what: str, offset: int | None = None, line: int | None = None) -> BadFileError:
    """The error for a file that is not UTF-8 text, naming the first bad byte and its line where they are known."""
    where = ""
    if offset is not None:
        of_text = " of the decompressed text" if "compressed" in what else ""
        where = f" at byte {offset:,}{of_text}" + (f" (line {line:,})" if line is not None else "")
    elif line is not None:
        where = f" on line {line:,}"
    return bad_file(
        path,
        what,
        f"the text is not UTF-8 encoded{where}; set the format's encoding option (e.g. latin-1, windows-1252, utf-16)",
    )


def translate_error(exc: BaseException, source: Source | None, path: str, what: str) -> BaseException:
    """The error to raise for `exc` met while reading: source errors and our own errors pass unchanged
    (`source` None: the data was read already, so the stream cannot be at fault)."""
    if isinstance(exc, AutoloaderError) or (source is not None and source.error is not None):
        return exc
    if isinstance(exc, InvalidUtf8):
        return not_utf8(path, what, exc.offset, exc.line)
    if says_not_utf8(exc):
        return not_utf8(path, what)
    if "straddl" in str(exc):  # Arrow's streaming reader met a record longer than its block
        return BadFileError(
            f"{path} holds a {what} record longer than the streaming reader's block (1 MiB for CSV); "
            "the file was not loaded.",
            "Split the oversized values, or deliver such records as JSON lines, whose reader takes a record of "
            "any size.",
            detail=f"{type(exc).__name__}: {exc}",
        )
    if "Truncated compressed stream" in str(exc):
        return bad_file(path, what, "the compressed stream is cut short")
    return bad_file(path, what, exc)


def check_head(head: bytes, path: str, what: str) -> None:
    """Reject binary content early: a Parquet (or other binary) file given as JSON/CSV."""
    if head.startswith(b"PAR1"):
        raise bad_file(path, what, "it looks like a Parquet file; set the format to parquet")
    if head.startswith((b"ORC", b"Obj\x01")):
        raise bad_file(path, what, "it looks like an ORC/Avro file, which is binary")
    archive = _archive_kind(head)
    if archive is not None:
        raise bad_file(
            path,
            what,
            f"it is a {archive} archive, which is not read: unpack it at the source (gzip, bzip2, zstd and xz files "
            "are read as they are, one file each)",
        )
    if b"\x00" in head[:65536]:
        utf16 = _utf16_without_bom(head[:4096])
        if utf16 is not None:
            raise bad_file(
                path,
                what,
                f"it looks like UTF-16 text without a byte order mark; set the format's encoding option to {utf16}",
            )
        raise bad_file(path, what, "it contains binary data (NUL bytes)")


def _archive_kind(head: bytes) -> str | None:
    """A ZIP, 7z, RAR or tar archive by its magic bytes (reported as "binary data" before: an outside attack)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "ZIP"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"Rar!\x1a\x07"):
        return "RAR"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def _utf16_without_bom(head: bytes) -> str | None:
    """The codec ("utf-16-le" or "utf-16-be") when every other byte of `head` is NUL, as in ASCII text in UTF-16."""
    if len(head) < 8:
        return None
    for codec, zeros, text in (("utf-16-le", head[1::2], head[0::2]), ("utf-16-be", head[0::2], head[1::2])):
        if zeros.count(0) >= 0.9 * len(zeros) and text.count(0) <= 0.1 * len(text):
            return codec
    return None


def read_up_to(stream: BinaryIO, size: int | None) -> bytes:
    """Up to `size` bytes (everything when None), however short the stream's reads are."""
    parts: list[bytes] = []
    got = 0
    while size is None or got < size:
        chunk = stream.read(16 * 1024 * 1024 if size is None else min(size - got, 64 * 1024 * 1024))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


BOM = b"\xef\xbb\xbf"


def first_content(stream: BinaryIO, block_bytes: int | None, path: str, what: str) -> tuple[bytes, bool]:
    """The first block of a text stream (everything when `block_bytes` is None) and whether the stream ended.

    Leading blank blocks and a UTF-8 byte order mark are dropped. Raises BadFileError for an empty or
    blank file, or binary content.
    """
    first = first_content_at(stream, block_bytes, path, what)
    return first.head, first.exhausted


class FirstContent(NamedTuple):
    """`first_content`'s block and whether the stream ended, with where the block starts in the stream: its byte
    offset and line number (after the dropped blank blocks and byte order mark)."""

    head: bytes
    exhausted: bool
    offset: int
    line: int


def first_content_at(stream: BinaryIO, block_bytes: int | None, path: str, what: str) -> FirstContent:
    """`first_content`, saying where the block starts (see FirstContent)."""
    offset, line = 0, 1
    head = read_up_to(stream, block_bytes)
    exhausted = block_bytes is None or len(head) < block_bytes
    while not head.strip() and not exhausted:
        offset, line = offset + len(head), line + head.count(b"\n")
        head = read_up_to(stream, block_bytes)  # leading blank space carries no data
        exhausted = block_bytes is None or len(head) < block_bytes
    if head.startswith(BOM):
        head = head[len(BOM) :]
        offset += len(BOM)
    if not head.strip():
        raise empty_file(path)
    check_head(head[:65536].lstrip(), path, what)
    return FirstContent(head, exhausted, offset, line)


class BlockConverter(io.RawIOBase):
    """A stream whose bytes are made a block at a time from another one (decompressed, transcoded, CSV lines
    checked): a subclass's `_fill` puts the next block in `_out` when it is empty, and leaves it empty at the end."""

    def __init__(self) -> None:
        super().__init__()
        self._out = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        raise NotImplementedError

    def readinto(self, buffer: Any) -> int:
        self._fill()
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._out))
        view[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


class Chained(io.RawIOBase):
    """`first` bytes, then the rest of `rest` (hands an already-read block back to a streaming parser)."""

    def __init__(self, first: bytes, rest: BinaryIO | None):
        super().__init__()
        self._first = memoryview(first)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._first:
            n = min(len(view), len(self._first))
            view[:n] = self._first[:n]
            self._first = self._first[n:]
            return n
        if self._rest is None:
            return 0
        readinto = getattr(self._rest, "readinto", None)
        if readinto is not None:  # straight into the caller's buffer
            return int(readinto(view) or 0)
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)

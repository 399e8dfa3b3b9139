"""Compression detection and transparent decompression for row-oriented files (JSON, CSV).

Compression is detected from the file's first bytes, never from its name: producers often
write `.json` files that are gzipped, or `.gz` files that are not.
"""

from __future__ import annotations

import io
from typing import BinaryIO, cast

import pyarrow as pa

from core.errors import ConfigError

GZIP_MAGIC = b"\x1f\x8b"
BZ2_MAGIC = b"BZh"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

COMPRESSIONS: tuple[str, ...] = ("auto", "none", "gzip", "bz2", "zstd")
_HEAD_BYTES = 4


def detect_compression(head: bytes) -> str | None:
    """The compression of a stream from its first bytes: "gzip", "bz2", "zstd", or None (plain)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    # "BZh" is followed by the block size digit 1-9; checking it avoids taking text starting "BZh" for bz2.
    if head.startswith(BZ2_MAGIC) and (len(head) < 4 or head[3:4] in b"123456789"):
        return "bz2"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


class _PrefixedReader(io.RawIOBase):
    """A raw stream that first returns already-read `head` bytes, then the rest of `raw`.

    Used for streams without `peek` (e.g. an HTTP body): the sniffed bytes are chained back.
    """

    def __init__(self, head: bytes, raw: BinaryIO):
        super().__init__()
        self._head = memoryview(head)
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(view))
        if not data:
            return 0
        view[: len(data)] = data
        return len(data)


def _read_head(raw: BinaryIO) -> tuple[bytes, BinaryIO]:
    """The first bytes of `raw` without consuming them (returns the stream to read from next)."""
    peek = getattr(raw, "peek", None)
    if peek is not None:
        head = peek(_HEAD_BYTES)[:_HEAD_BYTES]
        if len(head) >= _HEAD_BYTES:
            return head, raw
        # peek may return fewer bytes than asked even before EOF; fall through to an explicit read.
    seekable = getattr(raw, "seekable", None)
    if seekable is not None and seekable():
        position = raw.tell()
        head = raw.read(_HEAD_BYTES)
        raw.seek(position)
        return head, raw
    head = b""
    while len(head) < _HEAD_BYTES:
        chunk = raw.read(_HEAD_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head, cast(BinaryIO, io.BufferedReader(_PrefixedReader(head, raw), buffer_size=1024 * 1024))


def open_decompressed(raw: BinaryIO, compression: str = "auto") -> BinaryIO:
    """A stream of the decompressed content of `raw`.

    `compression` is "auto" (detect from the magic bytes), "none", "gzip", "bz2" or "zstd".
    Decompression uses pyarrow's codecs (as fast as or faster than the stdlib modules, releases the
    GIL, handles multi-member gzip). The returned object supports `read(n)`; it may be a
    `pyarrow.NativeFile` rather than an `io` object.
    """
    return open_decompressed_detect(raw, compression)[0]


def open_decompressed_detect(raw: BinaryIO, compression: str = "auto") -> tuple[BinaryIO, str | None]:
    """`open_decompressed`, also returning the compression in use (None for plain data)."""
    if compression not in COMPRESSIONS:
        raise ConfigError(
            f"unknown compression '{compression}'",
            f"Use one of {', '.join(COMPRESSIONS)}.",
            field="format.options.compression",
        )
    if compression == "none":
        return raw, None
    if compression == "auto":
        head, raw = _read_head(raw)
        detected = detect_compression(head)
        if detected is None:
            return raw, None
        compression = detected
    return cast(BinaryIO, pa.CompressedInputStream(raw, compression)), compression

"""Compression detection and transparent decompression for row-oriented files (JSON, CSV, text, XML).

Compression is detected from the file's first bytes, never from its name: producers often
write `.json` files that are gzipped, or `.gz` files that are not.

Detected: gzip, bzip2, zstd, LZ4 frames (the LZ4 frame format, as `lz4` and `python-lz4` write) and Snappy
frames (the Snappy framing format, whose stream starts with the identifier chunk `\\xff\\x06\\x00\\x00sNaPpY`, as
`python-snappy`'s `stream_compress` and `cramjam.snappy.compress` write). Hadoop's `.snappy` and `.lz4` block formats
have no magic bytes and are not read (Spark reads them by file extension).
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO, cast

import pyarrow as pa

from core.errors import ConfigError
from core.formats.streams import BlockConverter

GZIP_MAGIC = b"\x1f\x8b"
BZ2_MAGIC = b"BZh"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"
SNAPPY_FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"

COMPRESSIONS: tuple[str, ...] = ("auto", "none", "gzip", "bz2", "zstd", "lz4", "snappy")
_HEAD_BYTES = len(SNAPPY_FRAMED_MAGIC)


def detect_compression(head: bytes) -> str | None:
    """The compression of a stream from its first bytes: "gzip", "bz2", "zstd", "lz4", "snappy", or None (plain)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    # "BZh" is followed by the block size digit 1-9; checking it avoids taking text starting "BZh" for bz2.
    if head.startswith(BZ2_MAGIC) and (len(head) < 4 or head[3:4] in b"123456789"):
        return "bz2"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(LZ4_FRAME_MAGIC):
        return "lz4"
    if head.startswith(SNAPPY_FRAMED_MAGIC):
        return "snappy"
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

    `compression` is "auto" (detect from the magic bytes), "none", "gzip", "bz2", "zstd", "lz4" (frames) or
    "snappy" (framed). Decompression uses pyarrow's codecs (as fast as or faster than the stdlib modules, releases
    the GIL, handles multi-member gzip and concatenated LZ4 frames); Snappy frames are cut out here and each run of
    them decompressed (checksums checked) by `cramjam`. The returned object supports `read(n)`; it may be a
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
    if compression == "snappy":
        return cast(BinaryIO, SnappyFrames(raw)), compression
    return cast(BinaryIO, pa.CompressedInputStream(raw, compression)), compression


_SNAPPY_CHUNK_HEADER = 4
_SNAPPY_RUN_BYTES = 1024 * 1024


def _cramjam_snappy() -> Any:
    try:
        import cramjam
    except ImportError:
        raise ConfigError(
            "reading Snappy-framed files needs the cramjam package, which is not installed",
            "Install it where Autoloader runs (pip install cramjam), or deliver the files uncompressed or gzip/zstd.",
            field="format.options.compression",
        ) from None
    return cramjam.snappy


class SnappyFrames(BlockConverter):
    """The decompressed content of a Snappy-framed stream, read a run of whole chunks (about 1 MiB) at a time.

    Each chunk is a type byte, a 3-byte little-endian length and its data (at most 64 KiB uncompressed), so a run
    of whole chunks can be handed, behind a stream identifier, to one `cramjam.snappy.decompress` call, which
    checks every chunk's CRC-32C. A stream cut inside a chunk raises EOFError; a corrupt chunk, OSError.
    """

    def __init__(self, raw: BinaryIO):
        super().__init__()
        self._raw = raw
        self._snappy = _cramjam_snappy()

    def _read_exactly(self, size: int) -> bytes:
        data = self._raw.read(size)
        while data and len(data) < size:
            more = self._raw.read(size - len(data))
            if not more:
                break
            data += more
        return data

    def _next_run(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while size < _SNAPPY_RUN_BYTES:
            header = self._read_exactly(_SNAPPY_CHUNK_HEADER)
            if not header:
                self._done = True
                break
            length = int.from_bytes(header[1:4], "little") if len(header) == _SNAPPY_CHUNK_HEADER else -1
            body = self._read_exactly(length) if length > 0 else b""
            if length < 0 or len(body) < length:
                raise EOFError("the Snappy stream is cut short (it ends inside a chunk)")
            chunks.append(header + body)
            size += len(header) + length
        return b"".join(chunks)

    def _fill(self) -> None:
        while not self._out and not self._done:
            run = self._next_run()
            if run:
                try:
                    self._out = memoryview(bytes(self._snappy.decompress(SNAPPY_FRAMED_MAGIC + run)))
                except self._snappy_errors() as exc:
                    raise OSError(f"corrupt Snappy data: {exc}") from None

    def _snappy_errors(self) -> tuple[type[BaseException], ...]:
        import cramjam

        return (cramjam.DecompressionError, OSError, ValueError)

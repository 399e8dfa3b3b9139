"""Text encodings of CSV/JSON files: the decompressed byte stream transcoded to UTF-8, block by block.

The readers (Arrow's CSV/JSON parsers and the Python fallbacks) all read UTF-8. A file in another encoding
(`FormatOptions.encoding`: latin-1, windows-1252, UTF-16 with a byte order mark...) is decoded with an
incremental decoder, so memory stays at one block of about `BLOCK_BYTES` whatever the file's size.

A UTF-16 byte order mark is honoured whatever the declared encoding (UTF-32 aside), also when it is left at
UTF-8 (the default): such a file is read as UTF-16 (in a single-byte encoding the mark would read as "ÿþ"
followed by NUL characters, never meant). A UTF-8 file needs no transcoding (`first_content` drops its
byte order mark).
Bytes that are not valid in the encoding raise `BadFileError` naming the encoding and the byte offset (of
the decompressed stream): the file is quarantined rather than loaded with replacement characters.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO

from core.formats.compression import _read_head
from core.formats.streams import BlockConverter, bad_file

BLOCK_BYTES = 1024 * 1024

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_UTF8_NAMES = frozenset({"utf-8", "utf-8-sig"})


def codec_name(encoding: str) -> str:
    """Python's canonical name of an encoding (`latin-1` -> `iso8859-1`, `UTF8` -> `utf-8`)."""
    return codecs.lookup(encoding).name


class Transcoded(BlockConverter):
    """The UTF-8 text of `raw`, decoded from `encoding` one block at a time."""

    def __init__(self, raw: BinaryIO, encoding: str, path: str, what: str, label: str | None = None):
        super().__init__()
        self._raw = raw
        self.codec = encoding
        """The codec the text is decoded from (`utf-16` for a UTF-16 byte order mark)."""
        self._encoding = label or encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._consumed = 0  # raw bytes handed to the decoder so far
        self._path = path
        self._what = what

    def _fill(self) -> None:
        while not self._out and not self._done:
            chunk = self._raw.read(BLOCK_BYTES)
            final = not chunk
            buffered = len(self._buffered())
            try:
                text = self._decoder.decode(chunk, final)
            except UnicodeDecodeError as exc:
                offset = self._consumed - buffered + exc.start
                raise bad_file(
                    self._path,
                    self._what,
                    f"the text is not valid {self._encoding} (byte offset {offset}: {exc.reason}); "
                    "set the encoding option to the file's encoding",
                ) from None
            self._consumed += len(chunk)
            self._done = final
            if text:
                self._out = memoryview(text.encode("utf-8"))

    def _buffered(self) -> bytes:
        try:
            state = self._decoder.getstate()
        except Exception:  # a decoder without state: nothing buffered
            return b""
        return state[0] if isinstance(state, tuple) and isinstance(state[0], bytes) else b""


def transcode(stream: BinaryIO, encoding: str, path: str, what: str) -> BinaryIO:
    """`stream` as UTF-8: unchanged for a UTF-8 file, else a `Transcoded` stream (see the module docstring)."""
    name = codec_name(encoding)
    if not name.startswith("utf-32"):  # a UTF-32 LE byte order mark starts like UTF-16 LE's
        head, stream = _read_head(stream)  # peeked, not consumed
        if head[:2] in _UTF16_BOMS:
            # The byte order mark says which UTF-16; the decoder reads and drops it.
            return Transcoded(stream, "utf-16", path, what, "UTF-16 (byte order mark)")  # type: ignore[return-value]
        if name in _UTF8_NAMES:
            return stream
    return Transcoded(stream, name, path, what, encoding)  # type: ignore[return-value]  # a RawIOBase is a binary stream

"""Stream helpers shared by the remote backends (S3, Azure, GCS, SFTP): a buffered reader that turns SDK failures
into `core.errors` types, and a spooled copy for random access."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO, cast

SPOOL_MAX_BYTES = 64 * 1024 * 1024
COPY_CHUNK = 1024 * 1024


class TranslatingReader(io.RawIOBase):
    """A raw stream over `read(n)` whose exceptions go through `translate` (which raises the core error).

    `on_close` releases what the stream holds (an HTTP response, an SFTP channel)."""

    def __init__(
        self,
        read: Callable[[int], bytes],
        translate: Callable[[Exception], Any],
        on_close: Callable[[], None] | None = None,
    ):
        super().__init__()
        self._read = read
        self._translate = translate
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._read(len(view))
        except Exception as exc:
            self._translate(exc)
            raise
        n = len(data)
        view[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                if self._on_close is not None:
                    self._on_close()
            finally:
                super().close()


def buffered(raw: io.RawIOBase) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(raw, buffer_size=COPY_CHUNK))


def spooled_copy(open_stream: Callable[[], BinaryIO]) -> BinaryIO:
    """The whole stream in a temporary file (in memory up to 64 MB), positioned at 0, for random access."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_BYTES)  # noqa: SIM115 - returned
    try:
        with open_stream() as stream:
            shutil.copyfileobj(stream, spool, COPY_CHUNK)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return cast(BinaryIO, spool)

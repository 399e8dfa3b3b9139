"""Any storage backend with bounded retries of its transient failures (`StorageUnavailable`: an S3 endpoint that
restarts, throttling, a network share that hiccups) inside a run, before the run fails.

- a listing that fails part-way is listed again and the files already yielded are not yielded twice;
- an open is attempted again;
- a read that fails part-way reopens the file at the position reached (backends with `open_from`: S3), so the
  reader sees one unbroken stream; when the read was of a listed version, the reopening is of that version too
  (`SourceChanged` if the file was rewritten meanwhile), never the start of one version joined to another's rest.

After the last attempt the transient error propagates unchanged: the run fails as transient, as before, and the
runner's whole-run retries take over. Terminal errors (a missing file, refused credentials) are never retried.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar, cast

from core.errors import AutoloaderError
from core.retry import Backoff, retry_call
from core.storage.base import FileInfo, Storage, StorageWrapper

log = logging.getLogger(__name__)

T = TypeVar("T")
_READ_BUFFER = 1 << 20


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, AutoloaderError) and exc.transient


class RetryingStorage(StorageWrapper):
    """A `Storage` whose list/open/read retry transient errors with `backoff`; other attributes pass through."""

    def __init__(self, inner: Storage, backoff: Backoff, sleep: Callable[[float], None] = time.sleep):
        super().__init__(inner)
        self.backoff = backoff
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # a backend's other methods (check, close) pass through

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        return retry_call(call, self.backoff, retryable=is_transient, what=what, sleep=self.sleep)

    def list_files(self, pattern: str | None = None, *, start_after: str | None = None) -> Iterator[FileInfo]:
        yielded: set[str] = set()
        failures = 0
        while True:
            try:
                for info in self.inner.list_files(pattern, start_after=start_after):
                    if info.path not in yielded:
                        yielded.add(info.path)
                        yield info
                return
            except AutoloaderError as exc:
                failures += 1
                if not exc.transient or failures >= self.backoff.attempts:
                    raise
                wait = self.backoff.delay(failures)
                log.warning("listing %s failed (%s); listing again in %.1f s", self.inner.root, exc.message, wait)
                self.sleep(wait)

    def open(self, path: str, version: str | None = None) -> BinaryIO:
        """The stream resumes after a failed read when the backend can open at an offset (S3: a ranged GET), of
        the same `version` when one is given; a local file's stream is the backend's own (seekable, and local
        reads rarely fail transiently)."""
        stream = self._retry(f"opening {path}", lambda: self.inner.open(path, version))
        if getattr(self.inner, "open_from", None) is None:
            return stream
        reader = _ResumingReader(self, path, stream, version)
        return cast(BinaryIO, io.BufferedReader(reader, buffer_size=_READ_BUFFER))

    def open_seekable(self, path: str, version: str | None = None) -> BinaryIO:
        return self._retry(f"opening {path}", lambda: self.inner.open_seekable(path, version))

    def reopen_at(self, path: str, offset: int, version: str | None) -> BinaryIO:
        """The file from `offset` on (a read failed there), of `version` when one is given."""
        return cast(BinaryIO, self.inner.open_from(path, offset, version))  # type: ignore[attr-defined]


class _ResumingReader(io.RawIOBase):
    """A raw stream that, when a read fails transiently, reopens the file where it stopped and reads on."""

    def __init__(self, storage: RetryingStorage, path: str, stream: BinaryIO, version: str | None):
        super().__init__()
        self._storage = storage
        self._path = path
        self._stream = stream
        self._version = version
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        failures = 0
        while True:
            try:
                data = self._stream.read(len(view))
                break
            except AutoloaderError as exc:
                failures += 1
                backoff = self._storage.backoff
                if not exc.transient or failures >= backoff.attempts:
                    raise
                wait = backoff.delay(failures)
                log.warning("reading %s failed at byte %d (%s); retry in %.1f s", self._path, self._position,
                            exc.message, wait)  # fmt: skip
                self._storage.sleep(wait)
                self._close_stream()
                try:
                    self._stream = self._storage.reopen_at(self._path, self._position, self._version)
                except AutoloaderError as reopen_failed:
                    if not reopen_failed.transient:
                        raise
                    self._stream = cast(BinaryIO, _FailingStream(reopen_failed))
        n = len(data)
        view[:n] = data
        self._position += n
        return n

    def _close_stream(self) -> None:
        try:
            self._stream.close()
        except Exception:  # the broken stream's close may fail too; it is dropped either way
            log.debug("closing a broken stream of %s failed", self._path, exc_info=True)

    def close(self) -> None:
        if not self.closed:
            try:
                self._close_stream()
            finally:
                super().close()


class _FailingStream(io.RawIOBase):
    """Stands in for a reopen that failed transiently: the next read raises it and counts as another attempt."""

    def __init__(self, error: AutoloaderError):
        super().__init__()
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise self._error

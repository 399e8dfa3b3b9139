"""A bound on how far Arrow's streaming CSV reader reads ahead of the batches taken from it.

Arrow's streaming reader reads its input on a background thread into a queue of up to 32 blocks, whatever the
consumer takes, so peak memory grew with the block size (2 MiB blocks: 515-568 MiB RSS on a 1 GiB file, 1 MiB
blocks 420-437 MiB), which had kept blocks at 1 MiB although larger ones parse faster (fewer per-block costs in the
parser and in the checks of each batch). `ReadAhead` lets the input run at most `blocks` blocks ahead of the
batches taken (Arrow yields a batch per block, an empty one for a block of blank lines), so the block can be
larger at a bounded cost in memory.

It never stops the reader for good: when the consumer has waited `starved` seconds for a batch while the input
waits, the count is off (Arrow needs more input than it says) and the bound doubles; any wait ends after
`patience` seconds; and once `close`d (the batches are all taken, or given up on) the input reads as ended, so
Arrow's thread stops reading a file nobody reads (left reading, it outlived a short process and crashed it at
exit).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ReadAhead:
    def __init__(self, block_bytes: int, blocks: int, patience: float = 10.0, starved: float = 0.05):
        self._block_bytes = block_bytes
        self._blocks = blocks
        self._patience = patience
        self._starved = starved
        self._changed = threading.Condition()
        self._handed = 0  # bytes given to the reader
        self._taken = 0  # batches taken from it
        self._waiting_since: float | None = None  # when the consumer started to wait for its next batch
        self._closed = False
        self._reading = 0  # reads under way
        self._ended = False  # a read returned nothing (the end of the input, or closed)

    def bounded(self, raw: io.RawIOBase) -> io.RawIOBase:
        """`raw` as the reader's input: each read waits while the reader is `blocks` blocks ahead."""
        return _Bounded(raw, self)

    @contextmanager
    def taking(self, batch: bool = True) -> Iterator[None]:
        """Around each `read_next_batch` (a batch returned counts as taken), and around `open_csv` (`batch` False),
        which waits for the first block."""
        with self._changed:
            self._waiting_since = time.monotonic()
        taken = False
        try:
            yield
            taken = batch
        finally:
            with self._changed:
                self._waiting_since = None
                self._taken += taken
                self._changed.notify_all()

    def close(self, settle: float = 1.0) -> None:
        """The input reads as ended from now on; waits (up to `settle` seconds) for the reader to have seen that, so
        its thread does not still call into Python when a short process exits (a fatal error at exit)."""
        deadline = time.monotonic() + settle
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            while (self._reading or not self._ended) and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())

    def _wait_for_room(self) -> None:
        deadline = time.monotonic() + self._patience
        with self._changed:
            while not self._has_room() and time.monotonic() < deadline:
                self._changed.wait(self._starved)

    def read(self, raw: io.RawIOBase, buffer: Any) -> int:
        with self._changed:
            self._reading += 1
        n = 0
        try:
            self._wait_for_room()
            if not self._closed:
                n = int(raw.readinto(buffer) or 0)
            return n
        finally:
            with self._changed:
                self._reading -= 1
                self._handed += n
                self._ended = self._ended or n == 0
                self._changed.notify_all()

    def _has_room(self) -> bool:
        ahead = self._handed // self._block_bytes - self._taken
        if self._closed or ahead < self._blocks:
            return True
        since = self._waiting_since
        if since is not None and time.monotonic() - since >= self._starved:
            self._blocks *= 2
            return True
        return False


class _Bounded(io.RawIOBase):
    def __init__(self, raw: io.RawIOBase, ahead: ReadAhead):
        super().__init__()
        self._raw = raw
        self._ahead = ahead

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._ahead.read(self._raw, buffer)

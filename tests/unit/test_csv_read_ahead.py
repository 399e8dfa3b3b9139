"""Arrow's streaming CSV reader held to a few blocks ahead of the batches taken (core/formats/read_ahead.py): the
bound holds on a real reader with a slow consumer, a count that drifted (the reader needs more input than the
count says) cannot stall it, and a reader given up on does not keep its thread waiting."""

from __future__ import annotations

import contextlib
import io
import threading
import time

import pyarrow as pa
import pyarrow.csv as pcsv

from core.formats.read_ahead import ReadAhead

BLOCK = 16 * 1024


def _csv(rows: int) -> bytes:
    return b"id,name\n" + b"".join(b"%d,name-%08d\n" % (i, i) for i in range(rows))


class _Counting(io.RawIOBase):
    """An in-memory CSV that records how many bytes were read from it."""

    def __init__(self, data: bytes):
        super().__init__()
        self._data = io.BytesIO(data)
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._data.readinto(buffer)
        self.read_bytes += n
        return n


def _blocks_ahead_while_taking(ahead: ReadAhead | None, batches_to_take: int = 40) -> tuple[int, int]:
    """Read a 200-block file through Arrow's streaming reader, taking a batch every 20 ms: the most blocks the input
    was ahead of the batches taken, and the rows read in all."""
    source = _Counting(_csv(200 * BLOCK // 20))
    stream = ahead.bounded(source) if ahead is not None else source
    with ahead.taking(batch=False) if ahead is not None else contextlib.nullcontext():
        reader = pcsv.open_csv(
            io.BufferedReader(stream, buffer_size=BLOCK),
            read_options=pcsv.ReadOptions(block_size=BLOCK),
            convert_options=pcsv.ConvertOptions(column_types={"id": pa.string(), "name": pa.string()}),
        )
    most_ahead, rows, taken = 0, 0, 0
    while True:
        time.sleep(0.02 if taken < batches_to_take else 0)
        try:
            if ahead is not None:
                with ahead.taking():
                    batch = reader.read_next_batch()
            else:
                batch = reader.read_next_batch()
        except StopIteration:
            break
        taken += 1
        rows += batch.num_rows
        most_ahead = max(most_ahead, source.read_bytes // BLOCK - taken)
    return most_ahead, rows


def test_the_input_stays_a_few_blocks_ahead_of_a_slow_consumer() -> None:
    most_ahead, rows = _blocks_ahead_while_taking(ReadAhead(BLOCK, 3))

    assert rows == 200 * BLOCK // 20
    assert most_ahead <= 3 + 2  # the bound, plus what the buffered reader and Arrow's current block hold


def test_without_the_bound_arrow_reads_far_ahead() -> None:
    """What the bound is for: Arrow's own read-ahead runs tens of blocks before a slow consumer."""
    most_ahead, _ = _blocks_ahead_while_taking(None)

    assert most_ahead >= 10


def test_a_count_that_drifted_does_not_stall_the_reader() -> None:
    """Counted in blocks 64 times smaller than Arrow's, the bound is reached within one real block: the consumer,
    starved, lets the input go on (and the bound grows), instead of each read waiting out its patience."""
    ahead = ReadAhead(BLOCK // 64, 2, patience=30.0)
    started = time.monotonic()
    _, rows = _blocks_ahead_while_taking(ahead, batches_to_take=0)

    assert rows == 200 * BLOCK // 20
    assert time.monotonic() - started < 5


def test_closing_releases_an_input_waiting_for_room() -> None:
    ahead = ReadAhead(BLOCK, 1, patience=30.0)
    stream = ahead.bounded(_Counting(_csv(10_000)))
    buffer = bytearray(BLOCK)
    stream.readinto(buffer)  # one block handed over and none taken: the next read waits
    finished = threading.Event()

    def read_again() -> None:
        stream.readinto(buffer)
        finished.set()

    reader = threading.Thread(target=read_again)
    reader.start()
    assert not finished.wait(0.3)
    ahead.close()

    assert finished.wait(2)
    reader.join()


def test_a_wait_ends_after_its_patience() -> None:
    patience = 0.2
    ahead = ReadAhead(BLOCK, 1, patience=patience)
    stream = ahead.bounded(_Counting(_csv(10_000)))
    buffer = bytearray(BLOCK)
    stream.readinto(buffer)
    started = time.monotonic()

    assert stream.readinto(buffer) == BLOCK
    assert patience <= time.monotonic() - started < patience + 1

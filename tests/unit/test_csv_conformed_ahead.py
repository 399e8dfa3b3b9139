"""CSV blocks are conformed on a worker thread while the next block is parsed (core/formats/csv_reader.py
`_conformed_ahead`): the batches still come out in file order, an error still reaches the reader, and a file of one
block makes no thread. Then a real multi-block file read with that overlap against pyarrow's own reader."""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from core.config import FormatConfig
from core.formats import FileReadStats, read_file
from core.formats.csv_reader import _conformed_ahead


def _numbered(count: int) -> Iterator[pa.RecordBatch]:
    for number in range(count):
        yield pa.record_batch({"n": pa.array([number], pa.int64())})


def _slow_identity(batch: pa.RecordBatch) -> pa.RecordBatch:
    time.sleep(random.random() / 500)
    return batch


@pytest.mark.parametrize("count", [0, 1, 2, 3, 40])
def test_batches_come_out_in_file_order(count: int) -> None:
    out = [b.column("n")[0].as_py() for b in _conformed_ahead(_numbered(count), _slow_identity)]

    assert out == list(range(count))


def test_a_file_of_one_block_is_conformed_on_the_reading_thread() -> None:
    threads: list[str] = []

    def conform(batch: pa.RecordBatch) -> pa.RecordBatch:
        threads.append(threading.current_thread().name)
        return batch

    list(_conformed_ahead(_numbered(1), conform))

    assert threads == [threading.current_thread().name]


def test_a_conform_error_reaches_the_reader_after_the_batches_before_it() -> None:
    def conform(batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.column("n")[0].as_py() == 5:
            raise ValueError("block 5 is bad")
        return batch

    seen: list[int] = []
    with pytest.raises(ValueError, match="block 5 is bad"):
        for batch in _conformed_ahead(_numbered(20), conform):
            seen.append(batch.column("n")[0].as_py())

    assert seen == [0, 1, 2, 3, 4]


def test_a_read_error_stops_the_batches() -> None:
    def raws() -> Iterator[pa.RecordBatch]:
        yield from _numbered(4)
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="went away"):
        list(_conformed_ahead(raws(), _slow_identity))


def test_a_multi_block_file_reads_as_pyarrow_reads_it() -> None:
    rng = random.Random(7)
    lines = ["id,amount,name,flag"] + [
        f'{i},{rng.randint(-(10**6), 10**6) / 100},"n {rng.random():.6f}",{rng.choice(["true", "false"])}'
        for i in range(20_000)
    ]
    data = ("\n".join(lines) + "\n").encode()
    fmt = FormatConfig.model_validate({"type": "csv", "options": {"header": True}})
    schema = pa.schema([("id", pa.int64()), ("amount", pa.float64()), ("name", pa.string()), ("flag", pa.bool_())])

    batches = list(read_file(io.BytesIO(data), "f.csv", fmt, schema, FileReadStats(), block_bytes=32 * 1024))
    ours = pa.Table.from_batches(batches).select(schema.names)
    theirs = pcsv.read_csv(io.BytesIO(data), convert_options=pcsv.ConvertOptions(column_types=schema))

    assert len(batches) > 10
    assert ours.equals(theirs.cast(ours.schema))

"""CSV parsed on the cluster's Python workers by the embedded engine's own reader (`core.formats.read_file`).

Spark's CSV reader hands every typed column over as text, and the text rules (`text_rules`) then convert it with
one Spark expression per rule; a 1 GiB CSV loaded in 1.45 times the hand-written `availableNow` job's time
(bench/bench_spark.py). Here Spark only splits the files into lines (`read.text`) and each task's lines are parsed,
converted and rescued by Arrow in the worker, as the embedded engine does it for a whole file: the two engines'
values agree by construction. Used for the one-pass write of a CSV batch (`Reader.one_pass_batch`) whose rows
cannot span lines (multiline off) and whose text is UTF-8, on a cluster whose Python workers can import the
product (`workers_can_parse`); a malformed row stops the write (`ONE_PASS_STOPPED`), and the batch is then read by
Spark's own reader with its counting pass, as before.

A task's lines come from one split of a file. The split at the file's start holds the file's first lines as they
are (blank lines, comments, the header); every other run of lines is given the header the service read from the
file (`header_line`) in front, so each chunk is a CSV file of its own with the file's columns.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

PATH_COLUMN = "__al path"
LINE, START, FILE = "value", "__al block start", "__al file"
CHUNK_BYTES = 8 * 1024 * 1024
"""Lines are parsed in chunks of about this size: Arrow's reader costs a little to set up per chunk, and Spark
hands lines over in batches of 10,000 rows."""
STOPPED = "autoloader: the batch needs its counting pass"
"""Raised by a worker that met a malformed row (the same text as the reader's `ONE_PASS_STOPPED`)."""


def header_line(written: list[str], delimiter: str, quote: str | None, escape: str | None) -> bytes:
    """A CSV header line that parses back to `written` (each name as the file's header writes it): every name
    quoted, a quote inside escaped as the file's options escape it."""
    if not quote:
        return delimiter.join(written).encode()
    escaper = escape or quote
    names = []
    for name in written:
        if escaper != quote:
            name = name.replace(escaper, escaper + escaper)
        names.append(quote + name.replace(quote, escaper + quote) + quote)
    return delimiter.join(names).encode()


def ledger_path(file_path: str) -> str:
    """`_metadata.file_path` in the ledger's form, as `reading.ledger_path_column` has it in Spark."""
    for prefix, keep in (("file://", ""), ("file:", ""), ("s3a://", "s3://"), ("s3n://", "s3://")):
        if file_path.startswith(prefix):
            file_path = keep + file_path[len(prefix) :]
            break
    return unquote(file_path) if "%" in file_path else file_path


def probe(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Run on a worker: it can import the reader (a remote cluster's workers do not have the product)."""
    from core.formats import read_file

    for batch in batches:
        yield pa.RecordBatch.from_arrays([pa.array([callable(read_file)] * batch.num_rows)], names=["ok"])


@dataclass(frozen=True)
class ChunkParser:
    """The function `mapInArrow` runs over one task's lines (columns LINE, START and, for several files, FILE)."""

    fmt: Any
    """The ingestion's FormatConfig, compression off (Spark has decompressed the lines)."""
    headers: dict[str, bytes]
    """Each file's header line (ledger path → `header_line`)."""
    schema: pa.Schema
    """The data columns to read, as `read_file` takes them."""
    output: pa.Schema
    """The Arrow schema Spark expects back: the data columns, `_rescued_data` and, for several files, PATH_COLUMN
    (a batch of one file is given its path on the cluster: sent back on every row, it cost its transfer)."""
    only_file: str | None
    """The batch's one file, when it has one (no FILE column is read then)."""

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        chunk = _Chunk()
        split: tuple[str, int] | None = None
        for batch in batches:
            for path, start, lines in self._runs(batch):
                # The first lines of a file's first split begin a chunk of their own, without a header in front.
                at_file_start = start == 0 and split != (path, start)
                if path != chunk.path or chunk.full or at_file_start:
                    yield from self._parsed(chunk)
                    chunk = _Chunk(path, prefix=None if at_file_start else self.headers[path])
                split = (path, start)
                chunk.lines.append(lines)
                chunk.size += lines.nbytes
        yield from self._parsed(chunk)

    def _runs(self, batch: pa.RecordBatch) -> Iterator[tuple[str, int, pa.Array]]:
        """The batch's lines in runs of one file split each: (ledger path, split start, lines)."""
        import pyarrow.compute as pc

        if not batch.num_rows:
            return
        lines = batch.column(LINE)
        starts = batch.column(START)
        if self.only_file is not None:
            cuts = pc.not_equal(starts.slice(1), starts.slice(0, len(starts) - 1))
            files = None
        else:
            files = batch.column(FILE)
            after, before = slice(1, None), slice(0, -1)
            cuts = pc.or_(pc.not_equal(starts[after], starts[before]), pc.not_equal(files[after], files[before]))
        edges = [0, *(i + 1 for i in pc.indices_nonzero(cuts).to_pylist()), len(lines)]
        for begin, end in pairwise(edges):
            if end > begin:
                path = self.only_file if files is None else ledger_path(files[begin].as_py())
                assert path is not None
                yield path, starts[begin].as_py(), lines.slice(begin, end - begin)

    def _parsed(self, chunk: _Chunk) -> Iterator[pa.RecordBatch]:
        """The chunk's rows as `read_file` reads them, with their file's path; a malformed row stops the write."""
        from core.formats import read_file
        from core.formats.streams import FileReadStats

        if chunk.path is None or not chunk.lines:
            return
        stats = FileReadStats()
        for batch in read_file(io.BytesIO(chunk.text()), chunk.path, self.fmt, self.schema, stats):
            if stats.bad_records:
                raise RuntimeError(STOPPED)
            if batch.num_rows:
                yield self._as_output(batch, chunk.path)
        if stats.bad_records:
            raise RuntimeError(STOPPED)

    def _as_output(self, batch: pa.RecordBatch, path: str) -> pa.RecordBatch:
        arrays = [batch.column(f.name).cast(f.type) for f in self.output if f.name != PATH_COLUMN]
        if PATH_COLUMN in self.output.names:
            arrays.append(pa.array([path] * batch.num_rows, pa.string()))
        return pa.RecordBatch.from_arrays(arrays, schema=self.output)


class _Chunk:
    """Lines of one file gathered to be parsed together; `prefix`: the header line put in front, if any."""

    def __init__(self, path: str | None = None, prefix: bytes | None = None):
        self.path = path
        self.prefix = prefix
        self.lines: list[pa.Array] = []
        self.size = 0

    @property
    def full(self) -> bool:
        return self.size >= CHUNK_BYTES

    def text(self) -> bytes:
        """The chunk as CSV text: the prefix line, then each line ended by a line feed."""
        import pyarrow.compute as pc

        ended = pc.binary_join_element_wise(pa.chunked_array(self.lines), "", "\n")
        body = b"".join(_value_bytes(piece) for piece in ended.chunks)
        return body if self.prefix is None else self.prefix + b"\n" + body


def _value_bytes(strings: pa.Array) -> bytes:
    """A string array's values one after the other (an array may be a slice of a larger one's buffers)."""
    offsets, data = strings.buffers()[1:3]
    if offsets is None or data is None:
        return b""
    width = pa.int64() if pa.types.is_large_string(strings.type) else pa.int32()
    view = pa.Array.from_buffers(width, len(strings) + 1, [None, offsets], offset=strings.offset)
    begin, end = view[0].as_py(), view[len(strings)].as_py()
    return data.slice(begin, end - begin).to_pybytes()

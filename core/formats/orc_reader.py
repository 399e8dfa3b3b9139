"""ORC files into Arrow batches, stripe by stripe (`pyarrow.orc`).

The file's own schema is its columns. Arrow reads ORC's types as their Arrow twins; the ones a table cannot hold
are turned into ones it can before conforming: a union column becomes the JSON text of each value (ORC's
`uniontype`, as the Avro reader does with unions of several types). ORC timestamps are read as UTC and, like
Parquet's, cut to microseconds (Delta's unit). Memory is one stripe (ORC writers make them 64-256 MiB).

Stripes are decoded in a child process (core/formats/orc_worker.py), not here: the ORC library dereferences
corrupt data unchecked, and a damaged stripe killed the process with a segmentation fault (about 1 in 200 files
with 20 random bytes changed, in pyarrow 26). A crash of the child quarantines the file; the run goes on. The file
is first copied to a private temporary file (ORC needs random access, and the child opens it by name); the child
is kept for the next file (`_WORKERS`), so its start (~0.3 s of CPU) is paid once per reading thread. The footer
(schema) is still read here: it is a protobuf message, parsed with bounds checks.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

import pyarrow as pa
import pyarrow.orc as orc

from core.errors import BadFileError
from core.formats import orc_worker
from core.formats.compression import detect_compression
from core.formats.conform import RESCUED, conform_batch, json_text
from core.formats.nesting import MAX_COLUMN_DEPTH, deepest_column
from core.formats.streams import ARROW_ERRORS, DEEP_ACTION, FileReadStats, Source, bad_file, empty_file
from core.formats.unify import normalize_schema

ORC_MAGIC = b"ORC"


def _has_union(t: pa.DataType) -> bool:
    if pa.types.is_union(t):
        return True
    return any(_has_union(t.field(i).type) for i in range(t.num_fields))


def _readable_type(t: pa.DataType) -> pa.DataType:
    """`t` with every union (and anything holding one) as string: its values' JSON text."""
    return pa.string() if _has_union(t) else t


def _readable_column(column: pa.Array) -> pa.Array:
    if not _has_union(column.type):
        return column
    return pa.array([None if v is None else json_text(v) for v in column.to_pylist()], pa.string())


def _reason(exc: BaseException, head: bytes) -> str:
    """What is wrong, in the file's terms (Arrow's ORC messages name its internals)."""
    packed = detect_compression(head)
    if packed is not None:
        return f"it is a {packed}-compressed file; ORC compresses inside the file, so decompress it first"
    if not head.startswith(ORC_MAGIC):
        return "it does not start with the ORC marker (ORC): it is not an ORC file"
    text = str(exc)
    if "postscript" in text.lower() or "Failed to parse" in text or "past EOF" in text:
        return "its metadata (the footer at the end of the file) is missing or corrupt: it is cut short or damaged"
    return "its data is corrupt"


def orc_file(source: Source, path: str) -> orc.ORCFile:
    """The opened ORC file (its footer read); BadFileError for an empty, non-ORC, corrupt or too deep file."""
    head = source.read(8)
    source.seek(0)
    if not head:
        raise empty_file(path)
    try:
        opened = orc.ORCFile(source)
        schema = opened.schema
    except ARROW_ERRORS as exc:
        if source.error is not None:
            raise
        raise bad_file(path, "ORC", _reason(exc, head)) from None
    deep = deepest_column(schema)
    if deep is not None:
        raise bad_file(
            path,
            "ORC",
            f"column '{deep}' nests structs, lists and maps more than {MAX_COLUMN_DEPTH} levels deep, more than a "
            "table column can hold",
            DEEP_ACTION,
        )
    return opened


def orc_schema(source: Source, path: str) -> pa.Schema:
    """The ORC file's columns, normalised (`unify.normalize_schema`)."""
    schema = orc_file(source, path).schema
    fields = [pa.field(f.name, _readable_type(f.type)) for f in schema if f.name != RESCUED]
    return normalize_schema(pa.schema(fields))


class _Worker:
    """One child process decoding ORC files (core/formats/orc_worker.py)."""

    def __init__(self) -> None:
        # -P: the script's folder (core/formats, which has a types.py) must not shadow the standard library.
        self.process = subprocess.Popen(
            [sys.executable, "-P", orc_worker.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[bytes] = self.process.stdin
        self.stdout: IO[bytes] = self.process.stdout

    def error_text(self) -> str:
        size = int.from_bytes(self._exactly(4), "big")
        return self._exactly(size).decode("utf-8", "replace")

    def _exactly(self, size: int) -> bytes:
        data = self.stdout.read(size)
        if len(data) < size:
            raise EOFError("the ORC worker stopped")
        return data

    def crashed(self) -> bool:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return code != 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.stdin.close()
        self.stdout.close()


class _Workers:
    """Idle workers, taken by one file's read at a time (reads run on several threads)."""

    MAX_IDLE = 4

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
        return _Worker()

    def give(self, worker: _Worker) -> None:
        with self._lock:
            if len(self._idle) < self.MAX_IDLE:
                self._idle.append(worker)
                return
        worker.stop()

    def stop_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


_WORKERS = _Workers()
atexit.register(_WORKERS.stop_all)


def _spooled(source: Source) -> str:
    """The file copied to a private temporary file (mode 0600); its path."""
    handle, name = tempfile.mkstemp(prefix="autoloader-orc-", suffix=".orc")
    try:
        source.seek(0)
        with os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(source, out, 4 * 1024 * 1024)
    except BaseException:
        os.unlink(name)
        raise
    return name


def _corrupt(path: str, reason: str, detail: str) -> BadFileError:
    error = bad_file(path, "ORC", reason)
    error.detail = detail
    return error


def _stripes(source: Source, path: str) -> Iterator[pa.RecordBatch]:
    """The file's batches, decoded by a worker; BadFileError when the worker reports an error or crashes."""
    local = _spooled(source)
    worker = _WORKERS.take()
    reusable = False
    try:
        try:
            worker.stdin.write(local.encode("utf-8") + b"\n")
            worker.stdin.flush()
            status = worker.stdout.read(1)
            if status == orc_worker.ERROR:
                reusable = True
                raise _corrupt(path, "its data is corrupt", worker.error_text())
            if status != orc_worker.STREAM:
                raise EOFError("the ORC worker stopped")
            yield from pa.ipc.open_stream(worker.stdout)
            status = worker.stdout.read(1)
            if status == orc_worker.ERROR:
                reusable = True
                detail = worker.error_text()
                stripe = detail.split(":", 1)[0] if detail.startswith("stripe ") else "a stripe"
                raise _corrupt(path, f"{stripe} is corrupt", detail)
            if status != orc_worker.OK:
                raise EOFError("the ORC worker stopped")
            reusable = True
        except (EOFError, OSError, pa.ArrowException) as exc:
            if not worker.crashed():
                raise
            code = worker.process.returncode
            raise _corrupt(
                path,
                f"its data is corrupt (the ORC reader crashed on it, {_signal_name(code)})",
                f"ORC worker exit status {code}: {exc}",
            ) from None
    finally:
        if reusable:
            _WORKERS.give(worker)
        else:
            worker.stop()
        os.unlink(local)


def _signal_name(code: int | None) -> str:
    import signal

    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            pass
    return f"exit status {code}"


def read_orc(source: Source, path: str, schema: pa.Schema, stats: FileReadStats) -> Iterator[pa.RecordBatch]:
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    opened = orc_file(source, path)
    if not opened.nstripes:
        return
    for stripe in _stripes(source, path):
        if not stripe.num_rows:
            continue
        columns = [_readable_column(column) for column in stripe.columns]
        batch = conform_batch(pa.RecordBatch.from_arrays(columns, names=stripe.schema.names), data_schema)
        stats.records += batch.num_rows
        yield batch

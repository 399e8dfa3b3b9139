"""JSON-lines files parsed whole by a run's schema inference, kept for that run's load (one parse instead of two).

Inference reads every new file (each is checked against an existing table; a new table is typed over all of them),
and for small JSON-lines files that read is the whole file: Arrow parsed it once to type it, and loading it parsed it
again. The embedded engine keeps those parses per run -- per storage object, which a run holds for its
length, so they go with it -- and the load takes them instead of reading the files, when json_reader.parsed_rows
shows they give the rows a read would. Anything else is read as before.
"""

from __future__ import annotations

import threading
import weakref

import pyarrow as pa

from core.formats.grouped import GROUP_FILE_MAX_BYTES
from core.storage.base import FileInfo, Storage

PARSED_MAX_BYTES = 128 * 1024 * 1024
"""What one run keeps at most, counted in the files' own sizes (Arrow's size of a sliced table costs ~65 µs to
compute, and the rows of JSON take about as much room in Arrow as in text); files beyond it are read again."""


class ParsedFiles:
    """One run's parsed files: path -> (the listing's FileInfo, the rows)."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[FileInfo, pa.Table]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def keep(self, info: FileInfo, rows: pa.Table) -> None:
        if info.size > GROUP_FILE_MAX_BYTES:
            return  # loaded alone (streamed or read ahead), never from a group
        with self._lock:
            if info.path in self._rows or self._bytes + info.size > PARSED_MAX_BYTES:
                return
            self._rows[info.path] = (info, rows)
            self._bytes += info.size

    def take(self, files: list[FileInfo]) -> list[pa.Table | None]:
        """Each file's rows, where it was kept with the same size and modification time (then no longer kept);
        None for the others."""
        with self._lock:
            taken: list[pa.Table | None] = []
            for info in files:
                entry = self._rows.get(info.path)
                if entry is None or (entry[0].size, entry[0].modified) != (info.size, info.modified):
                    taken.append(None)
                    continue
                del self._rows[info.path]
                self._bytes -= entry[0].size
                taken.append(entry[1])
            return taken


class ParsedByRun:
    """The ParsedFiles of each live run, by its storage object (weakly: a finished run's go with its storage)."""

    def __init__(self) -> None:
        self._runs: weakref.WeakKeyDictionary[Storage, ParsedFiles] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def of(self, storage: Storage) -> ParsedFiles | None:
        """The storage's ParsedFiles, made on first use; None for a storage that cannot be weakly referenced."""
        with self._lock:
            try:
                found = self._runs.get(storage)
                if found is None:
                    found = self._runs[storage] = ParsedFiles()
            except TypeError:
                return None
            return found

    def existing(self, storage: Storage) -> ParsedFiles | None:
        with self._lock:
            try:
                return self._runs.get(storage)
            except TypeError:
                return None

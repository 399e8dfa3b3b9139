"""Small JSON-lines files read as one: a group's bytes joined and parsed in one reader call, then cut back into
each file's rows.

Reading a file costs a fixed ~0.3 ms of parser set-up and Python per call whatever its size, which for thousands of
files of a few records was most of a load (bench/bench_scaling.py). A group is only taken when reading it whole
gives exactly what reading its files one by one gives: plain UTF-8 JSON lines (no compression, byte order mark or
NUL byte), every record parsed cleanly, nothing rescued, and one row per non-blank line. Anything else (a malformed
record, a rescued value, a bad file, a reader error) makes `read_group` answer None, and the caller reads those
files one by one, so every error, count and quarantine is still the file's own.
"""

from __future__ import annotations

import io

import pyarrow as pa

from core.config import FormatConfig
from core.formats.conform import RESCUED, output_schema
from core.formats.readers import plain_records, read_file
from core.formats.streams import FileReadStats

GROUP_FILE_MAX_BYTES = 64 * 1024
"""Files up to this size are read in groups (larger ones cost more in parsing than in set-up)."""
GROUP_MAX_BYTES = 4 * 1024 * 1024
GROUP_MAX_FILES = 1024
_UTF8 = frozenset({"utf-8", "utf8", "utf_8"})


def can_group(fmt: FormatConfig) -> bool:
    """Whether files of this format may be read in groups: JSON lines in UTF-8, not compressed by setting."""
    options = fmt.options
    return (
        fmt.type == "json"
        and not options.multiline
        and options.encoding.lower() in _UTF8
        and options.compression in ("auto", "none")
    )


def read_group(contents: list[tuple[str, bytes]], fmt: FormatConfig, schema: pa.Schema) -> list[pa.Table] | None:
    """Each file's rows, in order, as `output_schema(schema)` tables, from one parse of the files' joined bytes;
    None when the group cannot be read as one."""
    counts = []
    for _, data in contents:
        records = plain_records(data)
        if records is None:
            return None
        counts.append(records)
    joined = b"".join(data if data.endswith(b"\n") else data + b"\n" for _, data in contents)
    stats = FileReadStats()
    try:
        batches = list(read_file(io.BytesIO(joined), contents[0][0], fmt, schema, stats, size=len(joined)))
    except Exception:  # a bad file or a reader fault: read one by one, each file's own error names it
        return None
    if stats.bad_records or stats.records != sum(counts):
        return None
    target = output_schema(schema)
    table = pa.Table.from_batches(batches, schema=target) if batches else target.empty_table()
    if table.column(RESCUED).null_count != table.num_rows:
        # Keys outside the schema are typed over the whole parse, so a neighbour's 0.0 would turn this file's
        # rescued 0 into 0.0: a file with rescued values is read alone, its text kept as it would be.
        return None
    return split_rows(table, counts)


def split_rows(table: pa.Table, counts: list[int]) -> list[pa.Table]:
    """The table cut into consecutive pieces of `counts` rows (each file's rows of a group read)."""
    copy = any(pa.types.is_nested(field.type) for field in table.schema)
    pieces, offset = [], 0
    for count in counts:
        if copy:  # a sliced struct array crashes delta-rs's Arrow import (arrow-rs: "end <= self.len()"): copy
            pieces.append(table.take(pa.array(range(offset, offset + count), pa.int64())))
        else:
            pieces.append(table.slice(offset, count))
        offset += count
    return pieces

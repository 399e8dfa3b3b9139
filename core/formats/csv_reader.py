"""CSV into Arrow batches through Arrow's streaming reader; rows of the wrong width are kept as malformed rows."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pcsv

from core.config import FormatConfig
from core.formats.conform import RESCUED, conform_batch, malformed_batch
from core.formats.streams import MAX_MALFORMED_SHARE, Chained, FileReadStats, bad_file, first_content
from core.formats.unify import normalize_schema

# Arrow's streaming CSV reader queues up to 32 blocks ahead of the consumer: 1 MiB blocks keep
# that read-ahead near 32 MiB (16 MiB blocks measured 930 MiB RSS on a 1 GiB file).
CSV_BLOCK_BYTES = 1024 * 1024
_PROBE_BYTES = 1024 * 1024


def _csv_parse_options(fmt: FormatConfig, handler: Callable[[Any], str] | None) -> pcsv.ParseOptions:
    options = fmt.options
    return pcsv.ParseOptions(
        delimiter=options.delimiter,
        quote_char=options.quote or False,
        escape_char=options.escape or False,
        double_quote=True,
        newlines_in_values=options.multiline,
        ignore_empty_lines=True,
        invalid_row_handler=handler,
    )


def _clean_names(names: list[str], header: bool) -> list[str]:
    """Column names like Spark: `_c0, _c1...` without a header (or for a blank header cell); duplicates numbered."""
    cleaned = [name.strip() if header and name.strip() else f"_c{i}" for i, name in enumerate(names)]
    counts: dict[str, int] = {}
    for name in cleaned:
        counts[name] = counts.get(name, 0) + 1
    if all(c == 1 for c in counts.values()):
        return cleaned
    return [f"{name}{i}" if counts[name] > 1 else name for i, name in enumerate(cleaned)]


def _skip_row(_row: Any) -> str:
    return "skip"


def _csv_probe(head: bytes, exhausted: bool, fmt: FormatConfig) -> list[str]:
    """The raw column names (or, without a header, placeholders) from the start of the file."""
    probe = head
    if not exhausted:
        cut = head.rfind(b"\n")
        probe = head[: cut + 1] if cut > 0 else head
    header = fmt.options.header
    parse = _csv_parse_options(fmt, _skip_row)
    for block_size in (min(len(probe) + 1, 64 * 1024), len(probe) + 1):
        read = pcsv.ReadOptions(use_threads=False, block_size=block_size, autogenerate_column_names=not header)
        try:
            reader = pcsv.open_csv(pa.BufferReader(probe), read_options=read, parse_options=parse)
        except pa.ArrowInvalid:
            if block_size > len(probe):
                raise
            continue
        return list(reader.schema.names)
    raise AssertionError("unreachable")


def read_csv(
    stream: BinaryIO, path: str, fmt: FormatConfig, schema: pa.Schema, stats: FileReadStats, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    first, exhausted = first_content(stream, min(block_bytes, _PROBE_BYTES), path, "CSV")
    raw_names = _csv_probe(first, exhausted, fmt)
    names = _clean_names(raw_names, fmt.options.header)
    bad_rows: list[str] = []

    def on_invalid(row: Any) -> str:
        bad_rows.append(row.text)
        return "skip"

    reader = pcsv.open_csv(
        io.BufferedReader(Chained(first, None if exhausted else stream), buffer_size=1024 * 1024),
        read_options=pcsv.ReadOptions(
            use_threads=True,
            block_size=min(block_bytes, CSV_BLOCK_BYTES),
            autogenerate_column_names=not fmt.options.header,
        ),
        parse_options=_csv_parse_options(fmt, on_invalid),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in raw_names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    first_batch = True
    while True:
        try:
            raw = reader.read_next_batch()
        except StopIteration:
            break
        batch = conform_batch(pa.RecordBatch.from_arrays(raw.columns, names=names), data_schema)
        if first_batch:
            _check_bad_rows_share(path, batch.num_rows, len(bad_rows), len(names))
            first_batch = False
        yield from _with_bad_rows(batch, bad_rows, data_schema, stats)
    if bad_rows:
        if first_batch:
            _check_bad_rows_share(path, 0, len(bad_rows), len(names))
        yield from _with_bad_rows(None, bad_rows, data_schema, stats)


def _check_bad_rows_share(path: str, good: int, bad: int, fields: int) -> None:
    """A first block that is mostly rows of the wrong width means the CSV options (or the format) are wrong."""
    if bad and bad / (good + bad) > MAX_MALFORMED_SHARE:
        raise bad_file(
            path,
            "CSV",
            f"{bad} of the first {good + bad} rows do not have {fields} fields; check the delimiter and quote options",
        )


def _with_bad_rows(
    batch: pa.RecordBatch | None, bad_rows: list[str], schema: pa.Schema, stats: FileReadStats
) -> Iterator[pa.RecordBatch]:
    if batch is not None and batch.num_rows:
        stats.records += batch.num_rows
        yield batch
    if bad_rows:
        # Arrow's threads may append while this runs: take a prefix, atomically under the GIL.
        count = len(bad_rows)
        texts = bad_rows[:count]
        del bad_rows[:count]
        stats.bad_records += len(texts)
        stats.records += len(texts)
        yield malformed_batch(texts, schema)


def infer_csv(data: bytes, exhausted: bool, fmt: FormatConfig) -> pa.Schema:
    if not exhausted:
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut > 0 else data
    header = fmt.options.header
    table = pcsv.read_csv(
        pa.BufferReader(data),
        read_options=pcsv.ReadOptions(autogenerate_column_names=not header),
        parse_options=_csv_parse_options(fmt, _skip_row),
        convert_options=pcsv.ConvertOptions(strings_can_be_null=True),
    )
    names = _clean_names(table.schema.names, header)
    if fmt.schema_.infer_types:
        fields = [pa.field(name, f.type) for name, f in zip(names, table.schema, strict=True)]
    else:
        fields = [pa.field(name, pa.string()) for name in names]
    return normalize_schema(pa.schema([f for f in fields if f.name != RESCUED]))

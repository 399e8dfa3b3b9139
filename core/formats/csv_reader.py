"""CSV into Arrow batches through Arrow's streaming reader; rows of the wrong width are kept as malformed rows."""

from __future__ import annotations

import io
import itertools
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar, cast

import pyarrow as pa
import pyarrow.csv as pcsv

from core.config import FormatConfig, FormatOptions
from core.formats.conform import RESCUED, conform_batch, malformed_batch, merge_rescued
from core.formats.csv_lines import CsvLines, python_rows
from core.formats.names import column_name, source_name
from core.formats.streams import (
    ARROW_ERRORS,
    MAX_MALFORMED_SHARE,
    Chained,
    FileReadStats,
    InvalidUtf8,
    bad_file,
    first_content,
)
from core.formats.text_types import TextRules, infer_text_type
from core.formats.unify import normalize_schema
from core.wording import counted

# The longest line Arrow is given (longer ones are parsed by Python), and the block of Arrow's streaming reader
# (failfast's serial path), which queues up to 32 blocks ahead of the consumer: 1 MiB blocks keep that read-ahead
# near 32 MiB (16 MiB blocks measured 930 MiB RSS on a 1 GiB file). Other reads parse `CsvLines`' blocks.
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


def _binary(stream: io.RawIOBase) -> BinaryIO:
    return cast(BinaryIO, stream)


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


def csv_column_names(stream: BinaryIO, path: str, fmt: FormatConfig) -> list[tuple[str, str, str]]:
    """The columns of a CSV file in its order, each as (the column `read_csv` loads it into: stored the way the
    table keeps names, core/formats/names.py; the name as the header writes it; the name `read_csv` gives it, the
    header cleaned like Spark's, `_clean_names`, under which a value no column takes is rescued). `stream` is the
    file's decoded text; only its start is read."""
    lines = CsvLines(stream, fmt.options, check_quotes=False, count_lines=False)
    first, exhausted = first_content(_binary(lines), _PROBE_BYTES, path, "CSV")
    raw = _csv_probe(first, exhausted, fmt)
    cleaned = _clean_names(raw, fmt.options.header)
    return [(column_name(name), written, name) for name, written in zip(cleaned, raw, strict=True)]


def read_csv(
    stream: BinaryIO, path: str, fmt: FormatConfig, schema: pa.Schema, stats: FileReadStats, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    failfast = fmt.options.mode == "failfast"
    lines = CsvLines(
        stream,
        fmt.options,
        check_quotes=True,
        count_lines=failfast,
        # Arrow's streaming reader (failfast's) fails on a line longer than its block: such lines go to Python.
        # A block parsed on its own is as long as its longest line.
        longest_line=min(block_bytes, CSV_BLOCK_BYTES) if failfast else None,
        block_bytes=block_bytes,
    )
    try:
        yield from _read_lines(lines, path, fmt, schema, stats, block_bytes)
    except ARROW_ERRORS as exc:
        # Arrow's reader says text is not UTF-8 without saying where; `lines` knows.
        if lines.invalid_utf8 is not None and not isinstance(exc, InvalidUtf8):
            raise lines.invalid_utf8 from None
        raise
    finally:
        # The error raised holds (in its traceback, or its context's) frames that hold Arrow's streaming reader,
        # which holds `lines`: were `lines` to hold the error too, that cycle runs through the reader, which the
        # garbage collector does not see into, and failfast kept each such file's buffers (2 MiB of Arrow memory,
        # 13 MiB RSS) for good.
        lines.invalid_utf8 = None
    _check_quotes_closed(lines, path)


def _check_quotes_closed(lines: CsvLines, path: str) -> None:
    unclosed = lines.unclosed_quote
    if unclosed is None:
        return
    where = f"line {unclosed.line:,}" + (f" (byte {unclosed.offset:,})" if unclosed.offset is not None else "")
    raise bad_file(
        path,
        "CSV",
        f"the quoted value opened on {where} is not closed before the end of the file",
        action="Close the quote (a quote inside a quoted value is written twice, or escaped with the escape "
        "option), or check the quote option; the file is quarantined and the rest of the run continues.",
    )


def _read_lines(
    lines: CsvLines, path: str, fmt: FormatConfig, schema: pa.Schema, stats: FileReadStats, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    stream = _binary(lines)
    first, exhausted = first_content(stream, min(block_bytes, _PROBE_BYTES), path, "CSV")
    raw_names = _csv_probe(first, exhausted, fmt)
    names = _clean_names(raw_names, fmt.options.header)
    rules = TextRules.of(fmt.options)
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    context = _RowContext(path, fmt.options, names, data_schema, rules)
    arrow = _ArrowOptions(fmt, rules, raw_names)

    def conform(raw: pa.RecordBatch) -> pa.RecordBatch:
        return conform_batch(pa.RecordBatch.from_arrays(raw.columns, names=names), data_schema, rules)

    # Line numbers (for failfast's message) need Arrow's serial reader, which numbers the rows it reads.
    if fmt.options.mode == "failfast":
        parsed = _streamed(lines, first, exhausted, arrow, min(block_bytes, CSV_BLOCK_BYTES), conform)
        set_aside_in_first = None  # known once the first block is read
    else:
        first_block = _first_block(lines, first)
        set_aside_in_first = len(lines.suspicious)
        blocks = itertools.chain([first_block], iter(lines.next_block, None))
        parsed = _parsed_ahead(blocks, lambda block, at_start: arrow.parse(block, at_start, conform))
    bad_rows: list[tuple[int | None, str]] = []  # rows of the wrong width: (line number when known, text)
    try:
        for index, rows in enumerate(parsed):
            if lines.invalid_utf8 is not None:
                raise lines.invalid_utf8
            bad_rows += rows.bad_rows
            if index == 0:
                # Rows set aside for Python (badly quoted) count as rows of the block.
                set_aside = len(lines.suspicious) if set_aside_in_first is None else set_aside_in_first
                good = set_aside + (rows.batch.num_rows if rows.batch is not None else 0)
                _check_bad_rows_share(path, good, len(rows.bad_rows), raw_names, fmt.options.delimiter)
            yield from _with_bad_rows(rows.batch, bad_rows, lines.suspicious, context, stats)
    finally:
        # Now, not when the generator is collected: an error raised here keeps this frame (and the parsing
        # threads of `parsed`, paused at a yield) alive for as long as the error is.
        parsed.close()
    if lines.invalid_utf8 is not None:
        raise lines.invalid_utf8
    if lines.suspicious:
        yield from _with_bad_rows(None, bad_rows, lines.suspicious, context, stats)


@dataclass(frozen=True)
class _Parsed:
    """A block's rows: those Arrow read, conformed (None when there were none), and those of the wrong width."""

    batch: pa.RecordBatch | None
    bad_rows: list[tuple[int | None, str]]


class _ArrowOptions:
    """How Arrow parses a CSV's text: every column as text, named as the probe found them (`raw_names`)."""

    def __init__(self, fmt: FormatConfig, rules: TextRules, raw_names: list[str]):
        self._fmt = fmt
        self.raw_names = raw_names
        self.header = fmt.options.header
        self.convert_options = pcsv.ConvertOptions(
            column_types={name: pa.string() for name in raw_names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=rules.null_tokens,
        )

    def parse_options(self, on_invalid: Callable[[Any], str]) -> pcsv.ParseOptions:
        return _csv_parse_options(self._fmt, on_invalid)

    def read_options(self, block_size: int, *, header_here: bool) -> pcsv.ReadOptions:
        if header_here:
            return pcsv.ReadOptions(use_threads=False, block_size=block_size)
        # Without a header, and past the file's first block, the columns are the probe's (Arrow would otherwise
        # count them on the block's first row, which may be one of the wrong width).
        return pcsv.ReadOptions(use_threads=False, block_size=block_size, column_names=self.raw_names)

    def parse(self, block: Any, at_start: bool, conform: Callable[[pa.RecordBatch], pa.RecordBatch]) -> _Parsed:
        """One block of whole lines (records), on its own: its rows conformed and its rows of the wrong width."""
        bad_rows: list[tuple[int | None, str]] = []

        def on_invalid(row: Any) -> str:
            bad_rows.append((None, row.text))
            return "skip"

        source = pa.py_buffer(block)
        options = {
            "read_options": self.read_options(len(block) + 1, header_here=at_start and self.header),
            "parse_options": self.parse_options(on_invalid),
            "convert_options": self.convert_options,
        }
        if len(block) < _SMALL_BLOCK:
            read_batches = list(pcsv.open_csv(pa.BufferReader(source), **options))
        else:
            read_batches = pcsv.read_csv(source, **options).to_batches()
        raws = [raw for raw in read_batches if raw.num_rows]
        if not raws:
            return _Parsed(None, bad_rows)
        raw = raws[0] if len(raws) == 1 else pa.Table.from_batches(raws).combine_chunks().to_batches()[0]
        return _Parsed(conform(raw), bad_rows)


# Below this size a block (a small file's whole text) is read by a streaming reader, which costs less per call
# than `pcsv.read_csv` (0.14 against 0.19 ms for 200 rows); above it `read_csv` holds less memory (a 1 GiB load
# peaked 30 MiB lower with 2 MiB blocks) for about the same time.
_SMALL_BLOCK = 256 * 1024


def _streamed(
    lines: CsvLines,
    first: bytes,
    exhausted: bool,
    arrow: _ArrowOptions,
    block_size: int,
    conform: Callable[[pa.RecordBatch], pa.RecordBatch],
) -> Generator[_Parsed, None, None]:
    """Arrow's streaming reader over the whole text, serial: its row numbers are the file's (failfast names the
    line of a malformed row). Each batch comes with the rows of the wrong width Arrow met parsing its block."""
    bad_rows: list[tuple[int | None, str]] = []

    def on_invalid(row: Any) -> str:
        bad_rows.append((lines.physical_line(row.number) if row.number is not None else None, row.text))
        return "skip"

    reader = pcsv.open_csv(
        io.BufferedReader(Chained(first, None if exhausted else _binary(lines)), buffer_size=1024 * 1024),
        read_options=arrow.read_options(block_size, header_here=arrow.header),
        parse_options=arrow.parse_options(on_invalid),
        convert_options=arrow.convert_options,
    )

    def raws() -> Iterator[_Parsed]:
        while True:
            try:
                raw = reader.read_next_batch()
            except StopIteration:
                return
            yield _Parsed(raw, _take(bad_rows))  # the block's own: Arrow parses it in `read_next_batch`

    def conformed(raw: _Parsed) -> _Parsed:
        assert raw.batch is not None
        return _Parsed(conform(raw.batch), raw.bad_rows)

    yield from _conformed_ahead(raws(), conformed)
    if bad_rows:
        yield _Parsed(None, _take(bad_rows))


def _first_block(lines: CsvLines, first: bytes) -> bytes:
    """The probed start of the text completed to its line's (record's) end: the rest of the block it ends in."""
    rest = lines.next_block()
    return first + bytes(rest) if rest is not None else first


# Blocks parsed at once on threads (Arrow's parser and compute kernels release the GIL), and how many may wait
# parsed for the consumer: memory is about (_PARSED_AHEAD + 1) blocks of text and their columns.
_PARSE_WORKERS = 2
_PARSED_AHEAD = 3
_CONFORMED_AHEAD = 2
_A = TypeVar("_A")
_T = TypeVar("_T")


def _parsed_ahead(blocks: Iterator[Any], parse: Callable[[Any, bool], _T]) -> Generator[_T, None, None]:
    """`parse` of each block (told whether it is the file's first), in order, the next blocks parsed on worker
    threads while the consumer takes this one.

    Each block is read by its own Arrow reader, not by one streaming reader over the file, whose IO thread queues
    up to 32 blocks ahead (2 MiB blocks cost it 60 MiB more than 1 MiB ones) and parses one block at a time before
    this module's thread conformed it: on a 1 GiB CSV, parsing and conforming 2 MiB blocks on two threads read it
    in 2.9-3.0 s and 5.3 CPU s against 3.4 s and 5.5 CPU s, at the same peak RSS, and wrote it into a Delta table
    in about 0.7 s less (a bench harness without the service; through it, README "Performance")."""
    firsts = itertools.chain([True], itertools.repeat(False))  # endless: the blocks end the pairs
    return _worked_ahead(
        zip(blocks, firsts, strict=False), lambda item: parse(*item), _PARSE_WORKERS, _PARSED_AHEAD, "csv-parse"
    )


def _conformed_ahead(raws: Iterator[_T], conform: Callable[[_T], _T]) -> Generator[_T, None, None]:
    """`conform` of each batch, in order, the next batches conformed on a worker thread while failfast's serial
    reader reads the block after them."""
    return _worked_ahead(raws, conform, 1, _CONFORMED_AHEAD, "csv-conform")


def _worked_ahead(
    items: Iterator[_A], work: Callable[[_A], _T], workers: int, ahead: int, name: str
) -> Generator[_T, None, None]:
    """`work` of each item, in order, done on `workers` threads up to `ahead` items before the consumer takes them.
    A file of one item (block) is worked here, without a thread; a consumer that stops stops the work."""
    first = next(items, None)
    if first is None:
        return
    second = next(items, None)
    if second is None:
        yield work(first)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        pending: deque[Future[_T]] = deque([pool.submit(work, first), pool.submit(work, second)])
        for item in items:
            pending.append(pool.submit(work, item))
            while len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_bad_rows_share(path: str, good: int, bad: int, names: list[str], delimiter: str) -> None:
    """A first block that is mostly rows of the wrong width means the CSV options (or the format) are wrong."""
    if bad and bad / (good + bad) > MAX_MALFORMED_SHARE:
        hint = delimiter_hint(names, delimiter)
        raise bad_file(
            path,
            "CSV",
            f"{bad} of the first {good + bad} rows do not have the first row's {counted(len(names), 'field')}; "
            + (hint or "check the delimiter and quote options"),
        )


_USUAL_DELIMITERS = (",", ";", "\t", "|")


def one_column_hint(schema: pa.Schema, fmt: FormatConfig) -> str:
    """`delimiter_hint` for a CSV schema of a single data column (under the name the file's header gave it)."""
    data = [f for f in schema if not f.name.startswith("_")]
    if fmt.type != "csv" or not fmt.options.header or len(data) != 1:
        return ""
    return delimiter_hint([source_name(data[0]) or data[0].name], fmt.options.delimiter)


def delimiter_hint(names: list[str], delimiter: str) -> str:
    """When the first row read as a single column holds another usual delimiter: the delimiter to set (a `;` file
    read with `,` is one column named after the whole header). Empty when nothing points to one."""
    if len(names) != 1:
        return ""
    counts = {d: names[0].count(d) for d in _USUAL_DELIMITERS if d != delimiter}
    best = max(counts, key=lambda d: counts[d])
    if not counts[best]:
        return ""
    shown = "\\t" if best == "\t" else best
    return (
        f"the first row is one column holding '{shown}' {counted(counts[best], 'time')}: the file looks "
        f"'{shown}'-separated; set format.options.delimiter to '{shown}'"
    )


@dataclass
class _RowContext:
    """What turning Python-parsed rows into batches needs."""

    path: str
    options: FormatOptions
    names: list[str]
    schema: pa.Schema  # the data columns
    rules: TextRules


def _take(items: list[tuple[int | None, str]]) -> list[tuple[int | None, str]]:
    # Arrow's threads may append while this runs: take a prefix, atomically under the GIL.
    count = len(items)
    taken = items[:count]
    del items[:count]
    return taken


def _with_bad_rows(
    batch: pa.RecordBatch | None,
    bad_rows: list[tuple[int | None, str]],
    suspicious: list[tuple[int | None, str]],
    context: _RowContext,
    stats: FileReadStats,
) -> Iterator[pa.RecordBatch]:
    """The batch, then the rows Arrow rejected or was not given, parsed by Python (`csv_lines.python_rows`).

    Malformed rows are kept as `{"_malformed": text}` rows (permissive), dropped (dropmalformed) or make
    the file fail (failfast); they count in `stats.bad_records` in every mode.
    """
    if batch is not None and batch.num_rows:
        stats.records += batch.num_rows
        yield batch
    if not bad_rows and not suspicious:
        return
    items = _take(bad_rows) + _take(suspicious)
    parsed = python_rows(items, len(context.names), context.options, frozenset(context.rules.null_tokens))
    mode = context.options.mode
    if parsed.malformed and mode == "failfast":
        number, text = min(parsed.malformed, key=lambda item: item[0] if item[0] is not None else 1 << 62)
        where = f" at line {number}" if number is not None else ""
        raise bad_file(
            context.path,
            "CSV",
            f"malformed row{where} (mode failfast): {text[:120]!r}",
            action="Fix or remove the row, or set the mode option to permissive or dropmalformed; "
            "the file is quarantined and the rest of the run continues.",
        )
    if parsed.rows:
        good = _rows_batch(parsed.rows, parsed.extras, context)
        stats.records += good.num_rows
        yield good
    if parsed.malformed:
        stats.bad_records += len(parsed.malformed)
        if mode == "permissive":
            stats.records += len(parsed.malformed)
            yield malformed_batch([text for _, text in parsed.malformed], context.schema)


def _rows_batch(
    rows: list[list[str | None]], extras: list[dict[str, str] | None], context: _RowContext
) -> pa.RecordBatch:
    columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(len(context.names))]
    batch = conform_batch(pa.RecordBatch.from_arrays(columns, names=context.names), context.schema, context.rules)
    if not any(extras):
        return batch
    index = batch.schema.get_field_index(RESCUED)
    rescued = batch.column(index).to_pylist()
    merged = [v if extra is None else merge_rescued(v, extra) for v, extra in zip(rescued, extras, strict=True)]
    return batch.set_column(index, batch.schema.field(index), pa.array(merged, pa.string()))


def infer_csv(data: bytes, exhausted: bool, fmt: FormatConfig) -> pa.Schema:
    """Column types from the sample's text, by `text_types.infer_text_type` (the rules reading applies too)."""
    if not exhausted:
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut > 0 else data
    header = fmt.options.header
    raw_names = _csv_probe(data, True, fmt)
    table = pcsv.read_csv(
        pa.BufferReader(data),
        read_options=pcsv.ReadOptions(autogenerate_column_names=not header),
        parse_options=_csv_parse_options(fmt, _skip_row),
        convert_options=pcsv.ConvertOptions(column_types={name: pa.string() for name in raw_names}),
    )
    names = _clean_names(table.schema.names, header)
    rules = TextRules.of(fmt.options)
    if fmt.schema_.infer_types:
        fields = [
            pa.field(name, infer_text_type(column.combine_chunks(), rules))
            for name, column in zip(names, table.columns, strict=True)
        ]
    else:
        fields = [pa.field(name, pa.string()) for name in names]
    return normalize_schema(pa.schema([f for f in fields if f.name != RESCUED]))

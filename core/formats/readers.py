"""The embedded engine's file readers: JSON (lines and multiline), CSV, Parquet, ORC, Avro, text and XML into
Arrow batches.

Every reader yields record batches conformed to the caller's schema plus a trailing
`_rescued_data` string column, so nothing in a file is silently dropped:

* `_rescued_data` is NULL when a row lost nothing. Otherwise it is a JSON object string whose keys
  are column names and whose values are the original values that did not fit:
  - columns in the file but not in the schema: `{"extra_col": <value>}` (only non-null values);
  - values that could not be cast to the column's type (the column is NULL in that row):
    `{"id": "abc"}`, `{"id": 4.7}` -- no silent truncation or rounding;
  - a line/row that could not be parsed at all (all data columns NULL):
    `{"_malformed": "<the raw line or row text>"}`.
  Values keep their JSON type where they have one (JSON input); CSV values are the field text.
  Values from typed sources (Parquet, re-conformed tables) are written as JSON: timestamps and dates
  as ISO 8601 strings, decimals as strings (exact digits), bytes as base64 strings.
* A file that cannot be read at all (empty, truncated, wrong format, not UTF-8 text) raises
  `BadFileError`; the pipeline quarantines it and carries on with the other files.

Speed: the pyarrow (C++) paths run first. Python takes over only for a block that pyarrow rejects
(a malformed line, a type clash), and only for that block.

Memory: JSON lines and text lines are read in blocks of about `block_bytes`, CSV through pyarrow's streaming
reader, Parquet by row groups in batches, ORC by stripes, Avro by blocks, XML by 1 MiB of document at a time, so
peak memory is a few blocks, not the file size. Exceptions: multiline JSON (one document per file) is parsed whole
and so held in memory, and so is a text file read with `wholetext` (it is one value).

Compression by magic bytes (gzip, bzip2, zstd, LZ4 frames, Snappy frames; core/formats/compression.py) applies to
the text formats (JSON, CSV, text, XML); Parquet, ORC and Avro compress inside the file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa

from core.config import FormatConfig
from core.errors import BadFileError, ConfigError
from core.formats.avro_reader import avro_schema, read_avro
from core.formats.compression import detect_compression, open_decompressed_detect
from core.formats.conform import MALFORMED, RESCUED, cast_array, conform_batch, json_text, output_schema
from core.formats.csv_lines import CsvLines
from core.formats.csv_reader import csv_column_names, infer_csv, read_csv
from core.formats.encoding import transcode
from core.formats.json_reader import infer_json, infer_json_parsed, line_options, multiline_as_lines, read_json
from core.formats.orc_reader import orc_schema, read_orc
from core.formats.parquet_reader import parquet_file, read_parquet
from core.formats.streams import (
    ARROW_ERRORS,
    BOM,
    FileReadStats,
    InvalidUtf8,
    Source,
    bad_file,
    first_content_at,
    first_invalid_utf8,
    not_utf8,
    says_not_utf8,
    translate_error,
    utf8_error,
)
from core.formats.text_reader import check_text, read_text
from core.formats.unify import normalize_schema
from core.formats.xml_reader import XmlSource, infer_xml, read_xml

_WHAT = {"json": "JSON", "csv": "CSV", "parquet": "Parquet", "orc": "ORC", "avro": "Avro", "xml": "XML", "text": "text"}
_TEXT_FORMATS = ("json", "csv", "text", "xml")
"""Read through decompression and transcoding (`_Opened`); the other formats are binary files read as they are."""


def _binary(source: io.RawIOBase) -> BinaryIO:
    return source  # type: ignore[return-value]  # an io.RawIOBase is a binary stream


class _Opened:
    """The decompressed text stream of a JSON/CSV/text/XML file and how to name its format in messages.

    `transcoded` tells that the stream is UTF-8 made from another encoding (the encoding option, or a UTF-16 byte
    order mark), so an XML declaration's encoding no longer applies."""

    def __init__(self, source: Source, fmt: FormatConfig, path: str):
        self.what = _WHAT.get(fmt.type, fmt.type)
        self.path = path
        decompressed, kind = open_decompressed_detect(_binary(source), fmt.options.compression)
        if kind is not None:
            self.what = f"{kind}-compressed {self.what}"
        try:  # transcode peeks at the decompressed start: a stream that breaks there is named as compressed
            self.stream = transcode(decompressed, fmt.options.encoding, path, self.what)
        except ARROW_ERRORS as exc:
            raise translate_error(exc, source, path, self.what) from None
        self.transcoded = self.stream is not decompressed

    def xml(self, fmt: FormatConfig) -> XmlSource:
        if not fmt.options.row_tag:
            raise ConfigError(
                "XML needs a row tag, the element that holds one record, and format.options.row_tag is not set",
                "Set format.options.row_tag (e.g. item for <items><item>...</item></items>).",
                field="format.options.row_tag",
            )
        encoding = "UTF-8" if self.transcoded else None
        return XmlSource(self.stream, self.path, fmt.options.row_tag, encoding, self.what)


def _primitive_as_text(t: pa.DataType) -> pa.DataType:
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _primitive_as_text(f.type)) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_primitive_as_text(t.value_type))
    return t


def _primitives_as_text(schema: pa.Schema) -> pa.Schema:
    """JSON's primitives_as_string: numbers and booleans (also nested) are text columns."""
    return pa.schema([pa.field(f.name, _primitive_as_text(f.type)) for f in schema])


def infer_file_schema(
    stream: BinaryIO, fmt: FormatConfig, sample_bytes: int = 8 * 1024 * 1024, path: str = "file"
) -> pa.Schema:
    """The data columns of one file, inferred by Arrow from at most `sample_bytes` of its content.

    JSON lines and CSV are cut at the last newline of the sample; multiline JSON is parsed whole; XML is typed
    from the records in the sample (at least one). With `fmt.schema_.infer_types` off every top-level column is a
    string (nested JSON values are then read as their JSON text; XML keeps its structs and lists of text).
    Parquet and ORC return the file's own schema (pass a seekable stream), Avro its header's writer schema, text
    its one `value` column.
    Types are normalised (`unify.normalize_type`); columns that only held nulls keep the null type.
    Raises BadFileError for a file that cannot be read; `path` names the file in messages.
    """
    what = _WHAT.get(fmt.type, fmt.type)
    if fmt.type in ("json", "csv") and not (fmt.type == "json" and fmt.options.multiline):
        sample = _text_sample(stream, fmt, sample_bytes, path)
        try:
            if fmt.type == "csv":
                return infer_csv(sample.data, True, fmt)
            return _infer_json_sample(sample.data, path, fmt, sample.offset, sample.line)
        except ARROW_ERRORS as exc:
            raise translate_error(sample.located(exc), None, path, sample.what) from None
    source = Source(stream)
    try:
        if fmt.type == "parquet":
            schema = parquet_file(source, path).schema_arrow
            return normalize_schema(pa.schema([f for f in schema if f.name != RESCUED]))
        if fmt.type == "orc":
            return orc_schema(source, path)
        if fmt.type == "avro":
            return avro_schema(source, path)
        if fmt.type not in _TEXT_FORMATS:
            raise bad_file(path, what, f"the {fmt.type} format is not supported by the embedded engine")
        opened = _Opened(source, fmt, path)
        what = opened.what
        if fmt.type == "text":
            return check_text(opened.stream, path, what)
        if fmt.type == "xml":
            return infer_xml(opened.xml(fmt), fmt, sample_bytes)
        return _infer_json_sample(multiline_as_lines(opened.stream, path, line_options(fmt.options)), path, fmt)
    except ARROW_ERRORS as exc:
        raise translate_error(exc, source, path, what) from None


def _infer_json_sample(data: bytes, path: str, fmt: FormatConfig, offset: int = 0, line: int = 1) -> pa.Schema:
    schema = infer_json(data, path, fmt, offset, line)
    return _primitives_as_text(schema) if fmt.options.primitives_as_string else schema


@dataclass
class _Sample:
    """The start of a JSON-lines or CSV file (see `_text_sample`), how to name its format, and where it starts in the
    file's (decompressed) text: byte offset and line. `exact` is False when CSV lines were blanked in it, so its
    offsets are no longer the file's (its lines still are)."""

    data: bytes
    what: str
    offset: int
    line: int
    exact: bool
    whole: bool = False
    """The sample is the file's own bytes, all of them (not decompressed, transcoded, cut or skipped into)."""

    def located(self, exc: BaseException) -> BaseException:
        """`exc`, or where the sample stops being UTF-8 when `exc` (a parser's error) says it is not UTF-8."""
        if not _may_be_not_utf8(exc):
            return exc
        found = utf8_error(self.data, self.offset, self.line)
        if found is None:
            return exc
        return found if self.exact else InvalidUtf8(None, found.line)


def _text_sample(
    stream: BinaryIO, fmt: FormatConfig, sample_bytes: int, path: str, whole_first_line: bool = False
) -> _Sample:
    """The decompressed first `sample_bytes` of a JSON-lines or CSV file, cut after its last whole line, and how to
    name the file's format in messages. CSV comment lines and badly quoted rows are left out, as when reading.
    With `whole_first_line`, a first line longer than the sample is read to its end (up to 64 MiB)."""
    source = Source(stream)
    what = _WHAT[fmt.type]
    try:
        opened = _Opened(source, fmt, path)
        what = opened.what
        text = opened.stream
        lines = None
        if fmt.type == "csv":
            lines = CsvLines(text, fmt.options, check_quotes=True, count_lines=False)
            text = _binary(lines)
        first = first_content_at(text, sample_bytes, path, what)
        data, exhausted = first.head, first.exhausted
        while whole_first_line and not exhausted and b"\n" not in data and len(data) < _LONGEST_SAMPLED_LINE:
            more = text.read(sample_bytes)
            exhausted = not more
            data += more
        if not exhausted:
            data = data[: data.rfind(b"\n") + 1] or data
        if lines is not None and lines.invalid_utf8 is not None:
            raise lines.invalid_utf8
        exact = lines is None or not lines.altered
        whole = exhausted and exact and first.offset == 0 and opened.what == _WHAT[fmt.type] and not opened.transcoded
        return _Sample(data, what, first.offset, first.line, exact, whole)
    except ARROW_ERRORS as exc:
        raise translate_error(exc, source, path, what) from None


def json_lines_sample(stream: BinaryIO, fmt: FormatConfig, sample_bytes: int, path: str = "file") -> bytes:
    """The first whole lines of a JSON-lines file within `sample_bytes`; a first line longer than that is read to its
    end, so every file contributes a record."""
    return json_lines_sample_whole(stream, fmt, sample_bytes, path)[0]


def json_lines_sample_whole(
    stream: BinaryIO, fmt: FormatConfig, sample_bytes: int, path: str = "file"
) -> tuple[bytes, bool]:
    """`json_lines_sample`, and whether it is the whole file as stored (so what is parsed of it is the file's)."""
    sample = _text_sample(stream, fmt, sample_bytes, path, whole_first_line=True)
    return sample.data, sample.whole


def plain_records(data: bytes) -> int | None:
    """The records of a JSON-lines file read whole (its non-blank lines), or None when it cannot be read together
    with other files: compressed, with a byte order mark or a NUL byte, or blank (read alone, its error names it)."""
    if not data or data.isspace() or data.startswith(BOM) or b"\x00" in data or detect_compression(data[:16]):
        return None
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    first_end = data.find(b"\n", 0, end)
    first_line = data[: first_end if first_end != -1 else end]
    if first_line.strip() and _BLANK_LATER_LINE.search(data, 0, end) is None:
        return data.count(b"\n", 0, end) + 1  # the usual case (no blank line), counted in C without a copy
    return sum(1 for line in data.split(b"\n") if line.strip())


_BLANK_LATER_LINE = re.compile(rb"\n[ \t\r\f\v]*(?:\n|\Z)")
"""A line after the first that is empty or only whitespace (what `bytes.strip` removes); searched from newline to
newline."""


def csv_sample(stream: BinaryIO, fmt: FormatConfig, sample_bytes: int, path: str = "file") -> bytes:
    """The first whole lines of a CSV file within `sample_bytes` (comment lines and badly quoted rows left out)."""
    return _text_sample(stream, fmt, sample_bytes, path).data


def infer_csv_schemas(samples: list[tuple[str, bytes]], fmt: FormatConfig) -> tuple[list[pa.Schema], dict[str, str]]:
    """The schemas of many CSV samples and the files that cannot be read (path -> reason).

    Samples with the same header line are typed together, their rows concatenated under one header (one parse
    and one pass of the text rules per group instead of per file); a group that fails is typed file by file.
    Without a header, or with values spanning lines, every file is typed alone.
    """
    schemas: list[pa.Schema] = []
    bad: dict[str, str] = {}

    def alone(path: str, sample: bytes) -> None:
        try:
            schemas.append(infer_csv(sample, True, fmt))
        except BadFileError as exc:
            bad[path] = exc.message
        except ARROW_ERRORS as exc:
            bad[path] = str(translate_error(_line_not_utf8(exc, sample), None, path, "CSV"))

    if not fmt.options.header or fmt.options.multiline:
        for path, sample in samples:
            alone(path, sample)
        return schemas, bad
    groups: dict[bytes, list[tuple[str, bytes]]] = {}
    for path, sample in samples:
        header, _, _ = sample.partition(b"\n")
        groups.setdefault(header.rstrip(b"\r"), []).append((path, sample))
    for header, members in groups.items():
        for start in range(0, len(members), _GROUP_FILES):
            chunk = members[start : start + _GROUP_FILES]
            body = b"".join(_rows_of(sample) for _, sample in chunk)
            try:
                schemas.append(infer_csv(header + b"\n" + body, True, fmt))
            except (BadFileError, pa.ArrowException, OSError, EOFError, ValueError):
                for path, sample in chunk:
                    alone(path, sample)
    return schemas, bad


def _line_not_utf8(exc: BaseException, sample: bytes) -> BaseException:
    """`exc`, or the line of a sample that is not UTF-8 when `exc` says so. A sample given without its origin names
    the line only: a byte order mark or CSV comment dropped from it moved its offsets, never its lines."""
    if not _may_be_not_utf8(exc):
        return exc
    found = utf8_error(sample)
    return exc if found is None else InvalidUtf8(None, found.line)


def _rows_of(sample: bytes) -> bytes:
    rows = sample.partition(b"\n")[2]
    return rows if not rows or rows.endswith(b"\n") else rows + b"\n"


_LONGEST_SAMPLED_LINE = 64 * 1024 * 1024
_GROUP_BYTES = 4 * 1024 * 1024
_GROUP_FILES = 2048


ParsedFile = Callable[[str, pa.Table], None]
"""Called with a file's path and its rows as Arrow parsed them for inference (see `infer_json_lines_schemas`)."""


def infer_json_lines_schemas(
    samples: list[tuple[str, bytes]],
    fmt: FormatConfig,
    keep: ParsedFile | None = None,
    whole: frozenset[str] = frozenset(),
) -> tuple[list[pa.Schema], dict[str, str]]:
    """The schemas of many JSON-lines samples and the files that are not JSON lines (path -> reason).

    Samples are inferred in groups, one Arrow call per group: a call costs about 0.5-1 ms whatever its size, which
    for thousands of small files was most of the inference. A group that fails is inferred file by file, so a bad
    file is named and the others still count.

    With `keep`, each file of `whole` (its sample is all of it) whose group Arrow parsed line by line is handed its
    rows of that parse (json_reader.parsed_rows), so the engine need not parse it again to load it.
    """
    schemas: list[pa.Schema] = []
    bad: dict[str, str] = {}
    group: list[tuple[str, bytes]] = []
    size = 0

    def infer(members: list[tuple[str, bytes]]) -> pa.Schema:
        """The schema of the members' samples parsed as one (one member: its own sample)."""
        path = members[0][0]
        data = members[0][1] if len(members) == 1 else b"".join(_ended(sample) for _, sample in members)
        try:
            schema, parsed = infer_json_parsed(data, path, fmt)
        except InvalidUtf8 as exc:
            raise not_utf8(path, "JSON", None, exc.line) from None
        if fmt.options.primitives_as_string:
            return _primitives_as_text(schema)
        if keep is not None and parsed is not None:
            _hand_out(members, parsed, whole, keep)
        return schema

    def flush() -> None:
        if not group:
            return
        try:
            schemas.append(infer(list(group)))
        except BadFileError:
            for member in group:
                try:
                    schemas.append(infer([member]))
                except BadFileError as exc:
                    bad[member[0]] = exc.message
        group.clear()

    for path, sample in samples:
        if not sample.lstrip().startswith(b"{"):  # not JSON lines: inferred alone, so its error names it
            try:
                schemas.append(infer([(path, sample)]))
            except BadFileError as exc:
                bad[path] = exc.message
            continue
        group.append((path, sample))
        size += len(sample)
        if size >= _GROUP_BYTES or len(group) >= _GROUP_FILES:
            flush()
            size = 0
    flush()
    return schemas, bad


def _ended(sample: bytes) -> bytes:
    return sample if sample.endswith(b"\n") else sample + b"\n"


def _hand_out(members: list[tuple[str, bytes]], parsed: pa.Table, whole: frozenset[str], keep: ParsedFile) -> None:
    """Each whole member's rows of the members' joint parse, when every member's lines are plain records and they
    add up to the parse's rows (so the rows can be told apart by file)."""
    if whole.isdisjoint(path for path, _ in members):
        return  # none of them was read whole: their lines need not be counted
    counts = [plain_records(sample) for _, sample in members]
    if any(count is None for count in counts) or sum(c or 0 for c in counts) != parsed.num_rows:
        return
    offset = 0
    for (path, _), count in zip(members, counts, strict=True):
        if path in whole:
            keep(path, parsed.slice(offset, count))
        offset += count or 0


@dataclass(frozen=True, slots=True)
class CsvHeader:
    """A CSV file's columns in its order (`csv_reader.csv_column_names`), and the codec its text is in (`utf-8`,
    the encoding option's, or `utf-16` for a UTF-16 byte order mark)."""

    columns: tuple[tuple[str, str, str], ...]
    codec: str


def csv_columns(stream: BinaryIO, path: str, fmt: FormatConfig) -> CsvHeader:
    """The header of a CSV file (`stream`: its bytes as stored, compressed or not). Raises BadFileError for a file
    whose start cannot be read as CSV."""
    source = Source(stream)
    opened = _Opened(source, fmt, path)
    codec = getattr(opened.stream, "codec", "utf-8")
    try:
        return CsvHeader(tuple(csv_column_names(opened.stream, path, fmt)), codec)
    except ARROW_ERRORS as exc:
        raise translate_error(exc, source, path, opened.what) from None


def read_file(
    stream: BinaryIO,
    path: str,
    fmt: FormatConfig,
    schema: pa.Schema,
    stats: FileReadStats,
    block_bytes: int = 16 * 1024 * 1024,
    size: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the file's rows as record batches of exactly `output_schema(schema)`.

    `schema` holds the data columns (a `_rescued_data` field in it is ignored); the batches have those
    columns, all nullable, then `_rescued_data`. Peak memory is a few `block_bytes` blocks for JSON, and
    Arrow's read-ahead queue of CSV_BLOCK_BYTES blocks (up to 32 of them) for CSV (except for
    multiline JSON, which is held whole). `stats` is updated as batches are yielded; `bytes_read` is
    `size` when given, else the raw bytes consumed. JSON/CSV/text/XML/Avro need only a sequential stream; Parquet
    and ORC need a seekable one.

    Raises BadFileError for a file that cannot be read. It can come after some batches were yielded
    (e.g. a corrupt block in the middle of a file), so callers must discard the file's partial output.
    Errors raised by the stream itself (network, disk) pass through unchanged.
    """
    what = _WHAT.get(fmt.type, fmt.type)
    source = Source(stream)
    try:
        if fmt.type == "parquet":
            yield from read_parquet(source, path, schema, stats)
            return
        if fmt.type == "orc":
            yield from read_orc(source, path, schema, stats)
            return
        if fmt.type == "avro":
            yield from read_avro(source, path, schema, stats)
            return
        if fmt.type not in _TEXT_FORMATS:
            raise bad_file(path, what, f"the {fmt.type} format is not supported by the embedded engine")
        opened = _Opened(source, fmt, path)
        what = opened.what
        if fmt.type == "json":
            yield from read_json(opened.stream, path, fmt, schema, stats, block_bytes)
        elif fmt.type == "csv":
            yield from read_csv(opened.stream, path, fmt, schema, stats, block_bytes)
        elif fmt.type == "text":
            yield from read_text(opened.stream, path, fmt, schema, stats, block_bytes)
        else:
            yield from read_xml(opened.xml(fmt), fmt, schema, stats)
    except ARROW_ERRORS as exc:
        error = translate_error(exc, source, path, what)
        if error is not exc and _may_be_not_utf8(exc):
            error = _located_utf8(source, fmt, path, what) or error
        raise error from None
    finally:
        stats.bytes_read += size if size is not None else source.bytes


def _may_be_not_utf8(exc: BaseException) -> bool:
    """Whether `exc` may mean text that is not UTF-8 without saying where: Arrow's CSV reader says "invalid UTF8",
    or, when the row with the bad byte has the wrong width, shows the row with U+FFFD in its place (the text is
    then checked: a U+FFFD written in the file is UTF-8)."""
    if isinstance(exc, InvalidUtf8):
        return False
    return says_not_utf8(exc) or "\ufffd" in str(exc)


_RESCAN_ERRORS: tuple[type[BaseException], ...] = (*ARROW_ERRORS, BadFileError)


def _located_utf8(source: Source, fmt: FormatConfig, path: str, what: str) -> BadFileError | None:
    """The not-UTF-8 error naming the first bad byte of a seekable file, read again from its start (only on this
    failure: the readers do not check UTF-8 themselves); None when the file cannot be read again or is UTF-8 text."""
    consumed = source.bytes
    try:
        if not source.seekable():
            return None
        source.seek(0)
        # Text decoded from another encoding comes out as UTF-8 (its decoder names bad bytes itself): none is found.
        found = first_invalid_utf8(_Opened(source, fmt, path).stream)
    except _RESCAN_ERRORS:
        return None
    finally:
        source.bytes = consumed  # the bytes read again are not the read's
    return None if found is None else not_utf8(path, what, found.offset, found.line)


__all__ = [
    "MALFORMED",
    "RESCUED",
    "FileReadStats",
    "cast_array",
    "conform_batch",
    "csv_sample",
    "infer_csv_schemas",
    "infer_file_schema",
    "infer_json_lines_schemas",
    "json_lines_sample",
    "json_text",
    "output_schema",
    "read_file",
]

"""XML into Arrow batches: every element named by the row tag is one record (Spark's XML source, spark-xml's rules).

Streamed: the decompressed file is fed to the expat parser (the C parser under `xml.etree`) 1 MiB at a time and only
the record being read is held, so memory is a block and a batch of records whatever the file's size. Inside a
record, an element's attributes become fields named with the `_` prefix (spark-xml's `attributePrefix`), child
elements become fields by tag name (a repeated child an array, a child with children or attributes a struct), and
an element's own text beside children or attributes is the field `_VALUE` (spark-xml's `valueTag`). Text is
trimmed of surrounding white space, and an empty element is NULL. Values are typed by the CSV text rules
(`text_types`): `01234` stays text, a 20-digit integer is a decimal, ISO dates and timestamps are typed.

Hostile input is refused, not parsed: a document with a DTD (`<!DOCTYPE`), where entity definitions live (the
"billion laughs" expansion, external entities reading local files), is quarantined before any entity is defined;
a record nesting elements deeper than `MAX_JSON_DEPTH` is quarantined too (core/formats/nesting.py).
A document that is not well-formed is quarantined naming the line and column: expat cannot resume after an error,
so the records before it are not kept (Spark's PERMISSIVE mode keeps them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from xml.parsers import expat

import pyarrow as pa

from core.config import FormatConfig
from core.errors import BadFileError
from core.formats.conform import RESCUED, json_text, output_schema
from core.formats.names import column_name
from core.formats.nesting import MAX_COLUMN_DEPTH, MAX_JSON_DEPTH, deepest_column
from core.formats.streams import DEEP_ACTION, FileReadStats, bad_file, empty_file, read_up_to
from core.formats.text_types import TextRules, cast_text, infer_text_type
from core.formats.unify import normalize_schema

ATTRIBUTE_PREFIX = "_"
VALUE_TAG = "_VALUE"
_FEED_BYTES = 1024 * 1024
_BATCH_ROWS = 8192
_LONGEST_SAMPLE = 64 * 1024 * 1024


class _Refused(Exception):
    """Raised from an expat handler to stop at content the reader refuses (a DTD, too deep a record)."""

    def __init__(self, reason: str, action: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.action = action


@dataclass
class _Element:
    """An element of the record being read: attributes, children (repeated ones as lists) and text pieces."""

    attributes: dict[str, str]
    children: dict[str, Any] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)

    def add(self, name: str, value: Any) -> None:
        if name not in self.children:
            self.children[name] = value
        elif isinstance(self.children[name], _Repeated):
            self.children[name].append(value)
        else:
            self.children[name] = _Repeated([self.children[name], value])

    def value(self) -> Any:
        """Text for a plain element (None when empty), else a dict of its attributes, children and `_VALUE`."""
        text = "".join(self.text).strip()
        if not self.attributes and not self.children:
            return text or None
        value: dict[str, Any] = {ATTRIBUTE_PREFIX + k: v for k, v in self.attributes.items()}
        value.update(self.children)
        if text:
            value[VALUE_TAG] = text
        return value


class _Repeated(list[Any]):
    """The values of a child element that occurs more than once (a list made by repetition, not by data)."""


class _Records:
    """expat handlers collecting the records: each element named `row_tag` (outside another record) is one."""

    def __init__(self, row_tag: str):
        self.row_tag = row_tag
        self.rows: list[dict[str, Any]] = []
        self.open: list[_Element] = []
        self.names: list[str] = []  # the tag of each open element
        self.root: str | None = None

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if self.root is None:
            self.root = name
        if not self.open and name != self.row_tag:
            return
        if len(self.open) >= MAX_JSON_DEPTH:
            raise _Refused(f"a record nests elements more than {MAX_JSON_DEPTH} levels deep", DEEP_ACTION)
        self.open.append(_Element(attributes))
        self.names.append(name)

    def end(self, _name: str) -> None:
        if not self.open:
            return
        element = self.open.pop()
        name = self.names.pop()
        value = element.value()
        if self.open:
            self.open[-1].add(name, value)
        elif isinstance(value, dict):
            self.rows.append(value)
        else:
            self.rows.append({} if value is None else {VALUE_TAG: value})

    def text(self, data: str) -> None:
        if self.open:
            self.open[-1].text.append(data)


def _refuse_dtd(*_args: Any) -> int:
    raise _Refused(
        "it declares a DTD (<!DOCTYPE ...>), which can define entities that expand without bound or read other "
        "files; DTDs are refused",
        "Remove the DOCTYPE declaration at the producer (the records need no DTD); the file is quarantined and the "
        "rest of the run continues.",
    )


def _parser(records: _Records, encoding: str | None) -> Any:
    parser = expat.ParserCreate(encoding)
    parser.buffer_text = True
    parser.buffer_size = 64 * 1024
    parser.StartElementHandler = records.start
    parser.EndElementHandler = records.end
    parser.CharacterDataHandler = records.text
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    return parser


@dataclass
class XmlSource:
    """The decompressed XML of one file and how to parse it: `encoding` overrides the document's declaration when
    the stream was transcoded to UTF-8 (format option `encoding`, or a UTF-16 byte order mark)."""

    stream: BinaryIO
    path: str
    row_tag: str
    encoding: str | None = None
    what: str = "XML"


def _records(source: XmlSource, enough: Any) -> Iterator[list[dict[str, Any]]]:
    """Lists of records in document order; `enough(rows_so_far, bytes_fed)` ends the parse early when true."""
    records = _Records(source.row_tag)
    parser = _parser(records, source.encoding)
    fed = 0
    found = 0
    while True:
        chunk = read_up_to(source.stream, _FEED_BYTES)
        if fed == 0 and not chunk:
            raise empty_file(source.path)
        fed += len(chunk)
        try:
            parser.Parse(chunk, not chunk)
        except expat.ExpatError as exc:
            where = f" at line {exc.lineno} column {exc.offset + 1}"
            raise bad_file(source.path, source.what, f"{expat.ErrorString(exc.code)}{where}") from None
        except _Refused as exc:
            raise bad_file(source.path, source.what, exc.reason, *([exc.action] if exc.action else [])) from None
        stop = not chunk or enough(found + len(records.rows), fed)
        if records.rows and (len(records.rows) >= _BATCH_ROWS or stop):
            found += len(records.rows)
            yield records.rows
            records.rows = []
        if stop:
            break
    if not found:
        root = f" (its root element is <{records.root}>)" if records.root else ""
        raise BadFileError(
            f"{source.path} holds no <{source.row_tag}> element{root}, so no records",
            "Set format.options.row_tag to the element that holds one record; a file with no records can be "
            "removed. It is quarantined and the rest of the run continues.",
        )


# ---------------------------------------------------------------------------------------------------------------------
# Types


def _value_type(values: list[Any], rules: TextRules, typed: bool) -> pa.DataType:
    """The type holding every value: a list when any is repeated, a struct when any has fields, else by the text
    rules (null when every value is empty)."""
    present = [v for v in values if v is not None]
    if not present:
        return pa.null()
    if any(isinstance(v, list) for v in present):
        items = [item for v in present for item in (v if isinstance(v, list) else [v])]
        return pa.list_(_value_type(items, rules, typed))
    if any(isinstance(v, dict) for v in present):
        dicts = [v if isinstance(v, dict) else {VALUE_TAG: v} for v in present]
        names = dict.fromkeys(name for d in dicts for name in d)
        return pa.struct([pa.field(n, _value_type([d.get(n) for d in dicts], rules, typed)) for n in names])
    if not typed:
        return pa.string()
    return infer_text_type(pa.array(present, pa.string()), rules)


def _schema_of(rows: list[dict[str, Any]], fmt: FormatConfig) -> pa.Schema:
    rules = TextRules.of(fmt.options)
    names = dict.fromkeys(name for row in rows for name in row)
    typed = fmt.schema_.infer_types
    return pa.schema([pa.field(n, _value_type([row.get(n) for row in rows], rules, typed)) for n in names])


def infer_xml(source: XmlSource, fmt: FormatConfig, sample_bytes: int) -> pa.Schema:
    """The columns of the records within the first `sample_bytes` (at least one record, read up to 64 MiB)."""

    def enough(found: int, fed: int) -> bool:
        return fed >= _LONGEST_SAMPLE or (found > 0 and fed >= sample_bytes)

    rows = [row for block in _records(source, enough) for row in block]
    schema = normalize_schema(pa.schema([f for f in _schema_of(rows, fmt) if f.name != RESCUED]))
    deep = deepest_column(schema)
    if deep is not None:  # repeated children add list levels to the element depth checked while parsing
        raise bad_file(
            source.path,
            source.what,
            f"column '{deep}' nests more than {MAX_COLUMN_DEPTH} levels deep, more than a table column can hold",
            DEEP_ACTION,
        )
    return schema


# ---------------------------------------------------------------------------------------------------------------------
# Values into the target types


def _as_list(values: list[Any], t: pa.ListType, rules: TextRules) -> tuple[pa.Array, set[int]]:
    offsets = [0]
    items: list[Any] = []
    owners: list[int] = []
    missing: list[bool] = []
    for i, value in enumerate(values):
        if value is not None:
            sequence = value if isinstance(value, list) else [value]
            items.extend(sequence)
            owners.extend([i] * len(sequence))
        offsets.append(len(items))
        missing.append(value is None)
    child, bad = _as_type(items, t.value_type, rules)
    array = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), child, type=t, mask=pa.array(missing))
    return array, {owners[j] for j in bad}


def _as_struct(values: list[Any], t: pa.StructType, rules: TextRules) -> tuple[pa.Array, set[int]]:
    names = {f.name for f in t}
    failed: set[int] = set()
    dicts: list[dict[str, Any] | None] = []
    for i, value in enumerate(values):
        if value is None or isinstance(value, list):
            dicts.append(None)
            if value is not None:
                failed.add(i)  # repeated where one was expected
            continue
        record = value if isinstance(value, dict) else {VALUE_TAG: value}
        if any(name not in names and v is not None for name, v in record.items()):
            failed.add(i)  # a field the struct has no place for would be lost
        dicts.append(record)
    if not t.num_fields:
        return pa.array([None if d is None else {} for d in dicts], t), failed
    children = []
    for f in t:
        child, bad = _as_type([None if d is None else d.get(f.name) for d in dicts], f.type, rules)
        children.append(child)
        failed |= bad
    mask = pa.array([d is None for d in dicts])
    return pa.StructArray.from_arrays(children, fields=list(t), mask=mask), failed


def _as_type(values: list[Any], t: pa.DataType, rules: TextRules) -> tuple[pa.Array, set[int]]:
    """`values` (text, dicts and lists from `_Element.value`) as an array of `t`, and the indices that do not fit."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _as_list(values, t, rules)
    if pa.types.is_struct(t):
        return _as_struct(values, t, rules)
    failed: set[int] = set()
    texts: list[str | None] = []
    for i, value in enumerate(values):
        if value is None or isinstance(value, str):
            texts.append(value)
        elif pa.types.is_string(t):
            texts.append(json_text(value))  # an element with fields in a text column: its JSON text
        else:
            texts.append(None)
            failed.add(i)
    if pa.types.is_null(t):
        return pa.nulls(len(values)), failed | {i for i, v in enumerate(texts) if v is not None}
    array, bad = cast_text(pa.array(texts, pa.string()), t, rules)
    return array, failed | set(bad)


def _column(values: list[Any], t: pa.DataType, rules: TextRules) -> tuple[pa.Array, set[int]]:
    """A top-level column: a row whose value does not fit anywhere inside is NULL (its value is rescued whole)."""
    array, failed = _as_type(values, t, rules)
    if failed:
        array, _ = _as_type([None if i in failed else v for i, v in enumerate(values)], t, rules)
    return array, failed


def _plain(value: Any) -> Any:
    """A record's value as JSON-ready data (repeated children as lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _batch(rows: list[dict[str, Any]], data_schema: pa.Schema, rules: TextRules) -> pa.RecordBatch:
    wanted = {f.name: f.type for f in data_schema}
    by_column: dict[str, list[Any]] = {name: [None] * len(rows) for name in wanted}
    rescued: dict[int, dict[str, Any]] = {}
    for i, row in enumerate(rows):
        for key, value in row.items():
            stored = column_name(key)
            if stored in by_column and by_column[stored][i] is None:
                by_column[stored][i] = value
            elif value is not None:
                rescued.setdefault(i, {})[key] = _plain(value)
    arrays = []
    for name, t in wanted.items():
        array, failed = _column(by_column[name], t, rules)
        arrays.append(array)
        for i in failed:
            rescued.setdefault(i, {})[name] = _plain(by_column[name][i])
    arrays.append(pa.array([json_text(rescued[i]) if i in rescued else None for i in range(len(rows))], pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=output_schema(data_schema))


def read_xml(source: XmlSource, fmt: FormatConfig, schema: pa.Schema, stats: FileReadStats) -> Iterator[pa.RecordBatch]:
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    rules = TextRules.of(fmt.options)
    for rows in _records(source, lambda _found, _fed: False):
        batch = _batch(rows, data_schema, rules)
        stats.records += batch.num_rows
        yield batch

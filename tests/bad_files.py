"""A corpus of bad (and awkward but valid) files, mixed with good ones, one landing folder per format.

`write_corpus(root)` writes the folders `json/` (JSON lines), `jsonml/` (multiline JSON), `csv/`, `parquet/`, `orc/`,
`avro/` and `xml/` (row tag `item`) and returns what each file is and what the product must do with it:

* `loaded`: the file's rows (its `id`s) are in the table exactly once; `good` files are also compared value by
  value with pyarrow reading them;
* `rescued`: the file loads, and the rows or values that did not parse are kept in `_rescued_data` (the ledger
  names the file with its bad-record count);
* `quarantined`: the file is in the ledger as quarantined, with a reason a user can act on;
* `skipped`: the listing leaves the entry out and the run says why.

Every row of every file has a unique integer `id`, so loaded rows can be counted per file. Used by
tests/integration/test_bad_file_corpus.py and bench/bad_file_corpus.py.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.orc as orc
import pyarrow.parquet as pq

FORMATS: dict[str, dict[str, object]] = {
    "json": {"type": "json"},
    "jsonml": {"type": "json", "options": {"multiline": True}},
    "csv": {"type": "csv"},
    "parquet": {"type": "parquet"},
    "orc": {"type": "orc"},
    "avro": {"type": "avro"},
    "xml": {"type": "xml", "options": {"row_tag": "item"}},
}

ROWS_PER_GOOD_FILE = 40
DEEP = "levels deep"


@dataclass
class CorpusFile:
    """One entry of a landing folder and the outcome the product owes it."""

    fmt: str
    name: str
    expect: str  # loaded | rescued | quarantined | skipped
    what: str
    ids: list[int] = field(default_factory=list)
    good: bool = False
    """A plain good file: its rows are compared value by value with pyarrow reading it."""
    reason_hint: str | None = None
    """A word the quarantine reason must contain (case-insensitive), when the problem has a name."""
    xfail: str | None = None
    """Why the product cannot do this yet (the rule that is missing): the case is expected to fail."""


class _Ids:
    def __init__(self, start: int) -> None:
        self.next = start

    def take(self, n: int) -> list[int]:
        ids = list(range(self.next, self.next + n))
        self.next += n
        return ids


def records(ids: list[int]) -> list[dict[str, object]]:
    return [{"id": i, "name": f"user-{i}", "amount": i * 0.5, "country": ["DE", "US", "FR"][i % 3]} for i in ids]


def json_lines(rows: list[dict[str, object]]) -> bytes:
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode("utf-8")


def csv_text(rows: list[dict[str, object]]) -> bytes:
    sink = io.BytesIO()
    pcsv.write_csv(pa.Table.from_pylist(rows), sink)
    return sink.getvalue().replace(b'"', b"")


def parquet_bytes(table: pa.Table, **options: Any) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **options)
    return bytes(sink.getvalue().to_pybytes())


def orc_bytes(rows: list[dict[str, object]], compression: str = "zlib") -> bytes:
    sink = io.BytesIO()
    orc.write_table(pa.Table.from_pylist(rows), sink, compression=compression)
    return sink.getvalue()


AVRO_SCHEMA = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "country", "type": ["null", "string"]},
    ],
}


def avro_bytes(rows: list[dict[str, object]], codec: str = "deflate") -> bytes:
    sink = io.BytesIO()
    fastavro.writer(sink, AVRO_SCHEMA, rows, codec=codec, sync_interval=1000)
    return sink.getvalue()


def xml_bytes(rows: list[dict[str, object]], declaration: str = "") -> bytes:
    items = "".join("<item>" + "".join(f"<{k}>{v}</{k}>" for k, v in r.items()) + "</item>\n" for r in rows)
    return f"{declaration}<items>\n{items}</items>\n".encode()


ENCODERS: dict[str, Callable[[list[dict[str, object]]], bytes]] = {
    "json": lambda rows: json_lines(rows),
    "csv": lambda rows: csv_text(rows),
    "jsonml": lambda rows: json.dumps(rows).encode(),
    "parquet": lambda rows: parquet_bytes(pa.Table.from_pylist(rows)),
    "orc": lambda rows: orc_bytes(rows),
    "avro": lambda rows: avro_bytes(rows),
    "xml": lambda rows: xml_bytes(rows),
}
EXTENSIONS = {"jsonml": "json"}


def zstd(data: bytes) -> bytes:
    return bytes(pa.compress(data, codec="zstd", asbytes=True))


def nested(depth: int) -> bytes:
    """A JSON value nested `depth` objects deep."""
    return b'{"n":' * depth + b"1" + b"}" * depth


def deep_line(row_id: int, depth: int) -> bytes:
    return b'{"id": %d, "deep": ' % row_id + nested(depth) + b"}\n"


def _random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def corrupt_footer(data: bytes) -> bytes:
    """The Thrift file metadata scrambled; the length field and magic bytes intact."""
    footer_len = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - footer_len
    return data[:start] + _random_bytes(footer_len, 7) + data[-8:]


def corrupt_page(data: bytes) -> bytes:
    """The middle of the first column chunk's (zstd-compressed) data scrambled; header and footer intact."""
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0).column(0)
    start = meta.data_page_offset + 40
    return data[:start] + _random_bytes(200, 11) + data[start + 200 :]


Writer = Callable[[Path], None]


class _Folder:
    def __init__(self, root: Path | None, fmt: str, ids: _Ids) -> None:
        self.dir = None if root is None else root / fmt
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt
        self.ids = ids
        self.files: list[CorpusFile] = []

    def add(self, name: str, content: bytes | Writer, expect: str, what: str, **extra: object) -> CorpusFile:
        if self.dir is None:
            pass
        elif callable(content):
            content(self.dir / name)
        else:
            (self.dir / name).write_bytes(content)
        entry = CorpusFile(self.fmt, name, expect, what, **extra)  # type: ignore[arg-type]
        self.files.append(entry)
        return entry

    def good(self, name: str, encode: Callable[[list[dict[str, object]]], bytes], what: str) -> None:
        ids = self.ids.take(ROWS_PER_GOOD_FILE)
        self.add(name, encode(records(ids)), "loaded", what, ids=ids, good=True)


def _special_entries(folder: _Folder, ext: str) -> None:
    """Entries that are not regular readable files: a FIFO, a dangling symlink, a link out of the roots, a folder."""
    folder.add(f"fifo{ext}", lambda p: os.mkfifo(p), "skipped", "a FIFO named like a data file")
    folder.add(
        f"dangling{ext}", lambda p: p.symlink_to(p.parent / "no-such-target"), "skipped", "a symbolic link to nothing"
    )
    folder.add(
        f"outside-link{ext}", lambda p: p.symlink_to("/etc/hostname"), "skipped", "a symbolic link out of the roots"
    )
    inner_ids = folder.ids.take(ROWS_PER_GOOD_FILE)
    inner = "inner." + EXTENSIONS.get(folder.fmt, folder.fmt)

    def folder_named_like_a_file(p: Path) -> None:
        p.mkdir()
        (p / inner).write_bytes(ENCODERS[folder.fmt](records(inner_ids)))

    entry = folder.add(
        f"folder{ext}", folder_named_like_a_file, "loaded", "a folder named like a data file (its file loads)"
    )
    entry.name = f"folder{ext}/{inner}"
    entry.ids = inner_ids


def _json_lines_corpus(root: Path | None, ids: _Ids) -> list[CorpusFile]:
    f = _Folder(root, "json", ids)
    f.good("good-1.json", json_lines, "good JSON lines")
    f.good("good-2.json.gz", lambda r: gzip.compress(json_lines(r)), "good gzip JSON lines")
    f.good("good-3.json.bz2", lambda r: bz2.compress(json_lines(r)), "good bzip2 JSON lines")
    f.good("good-4.json.zst", lambda r: zstd(json_lines(r)), "good zstd JSON lines")
    rows = ids.take(10)
    whole = json_lines(records(rows))
    f.add("truncated.json", whole[:-20], "rescued", "cut in the middle of its last record", ids=rows[:-1])
    body = json_lines(records(ids.take(2000)))
    f.add("truncated.json.gz", gzip.compress(body)[:3000], "quarantined", "gzip stream cut short")
    f.add("truncated.json.bz2", bz2.compress(body)[:3000], "quarantined", "bzip2 stream cut short")
    f.add("truncated.json.zst", zstd(body)[:3000], "quarantined", "zstd stream cut short")
    f.add("wrong-magic.json.gz", b"\x1f\x8b" + _random_bytes(500, 1), "quarantined", "gzip magic, then garbage")
    f.add("wrong-magic.json.zst", b"\x28\xb5\x2f\xfd" + _random_bytes(500, 2), "quarantined", "zstd magic, garbage")
    f.add("wrong-magic.json.bz2", b"BZh9" + _random_bytes(500, 3), "quarantined", "bzip2 magic, then garbage")
    parquet = parquet_bytes(pa.Table.from_pylist(records(ids.take(5))))
    f.add("parquet-as.json", parquet, "quarantined", "a Parquet file named .json", reason_hint="parquet")
    f.add("parquet-gz-as.json.gz", gzip.compress(parquet), "quarantined", "gzip of a Parquet file named .json.gz")
    f.add("csv-as.json", csv_text(records(ids.take(20))), "quarantined", "a CSV file named .json (wrong extension)")
    latin = json_lines([{"id": i, "name": "Müller-Lüdenscheid"} for i in ids.take(5)]).decode().encode("latin-1")
    f.add("latin1.json", latin, "quarantined", "Latin-1 text, no encoding option", reason_hint="encoding")
    utf16_ids = ids.take(5)
    utf16 = json_lines(records(utf16_ids)).decode().encode("utf-16")
    f.add("utf16.json", utf16, "loaded", "UTF-16 with BOM, no encoding option (the BOM says it)", ids=utf16_ids)
    utf16_raw = json_lines(records(ids.take(5))).decode().encode("utf-16-le")
    f.add("utf16-no-bom.json", utf16_raw, "quarantined", "UTF-16 without BOM, no encoding option", reason_hint="utf-16")
    bom_ids = ids.take(5)
    f.add("utf8-bom.json", codecs.BOM_UTF8 + json_lines(records(bom_ids)), "loaded", "UTF-8 with BOM", ids=bom_ids)
    nul_ids = ids.take(4)
    with_nul = json_lines(records(nul_ids[:2])) + b'{"id": 1, "x": "\x00"}\n' + json_lines(records(nul_ids[2:]))
    f.add("nul-bytes.json", with_nul, "quarantined", "a NUL byte in a record", reason_hint="NUL")
    f.add("nul-only.json", b"\x00" * 4096, "quarantined", "only NUL bytes", reason_hint="binary")
    f.add("random.json", _random_bytes(20000, 4), "quarantined", "random bytes")
    garbage = b"hello world, this is not JSON\n" * 50
    f.add("garbage.json", garbage, "quarantined", "text lines that are not JSON")
    f.add("empty.json", b"", "quarantined", "zero bytes", reason_hint="empty")
    f.add("blank.json", b"\n \n\t\n", "quarantined", "only blank lines", reason_hint="empty")
    f.add("empty.json.gz", gzip.compress(b""), "quarantined", "a gzip of nothing", reason_hint="empty")
    long_id = ids.take(1)
    long_line = json_lines([{"id": long_id[0], "name": "x" * (1024 * 1024)}])
    f.add("long-line.json", long_line, "loaded", "one 1 MiB line", ids=long_id)
    shallow_ids = ids.take(1)
    f.add(
        "deep-31.json",
        deep_line(shallow_ids[0], 31),
        "loaded",
        "nested 32 deep: the deepest that loads",
        ids=shallow_ids,
    )
    for depth in (32, 500, 1000, 100_000):
        deep_ids = ids.take(3)
        data = json_lines(records(deep_ids[:2])) + deep_line(deep_ids[2], depth)
        f.add(f"deep-{depth}.json", data, "quarantined", f"a record nested {depth + 1} deep", reason_hint=DEEP)
    wide_id = ids.take(1)
    wide: dict[str, object] = {"id": wide_id[0], **{f"c{i}": i for i in range(10_000)}}
    f.add("columns-10000.json", json_lines([wide]), "loaded", "10,000 keys", ids=wide_id)
    case_ids = ids.take(3)
    case = json_lines([{"id": i, "a": 1, "A": 2} for i in case_ids])
    f.add("case-keys.json", case, "loaded", 'case-variant keys {"a":1,"A":2}', ids=case_ids)
    mixed_ids = ids.take(4)
    mixed = json_lines(
        [
            {"id": mixed_ids[0], "amount": 1.5},
            {"id": mixed_ids[1], "amount": "one"},
            {"id": mixed_ids[2], "amount": [1, 2]},
            {"id": mixed_ids[3], "amount": {"v": 1}},
        ]
    )
    f.add("mixed-types.json", mixed, "loaded", "one key with number, text, list and object values", ids=mixed_ids)
    plain_ids = ids.take(5)
    f.add("not-compressed.json.gz", json_lines(records(plain_ids)), "loaded", "plain text named .gz", ids=plain_ids)
    _special_entries(f, ".json")
    return f.files


def _multiline_corpus(root: Path | None, ids: _Ids) -> list[CorpusFile]:
    f = _Folder(root, "jsonml", ids)

    def doc(rows: list[dict[str, object]]) -> bytes:
        return json.dumps(rows, indent=2).encode("utf-8")

    f.good("good-1.json", doc, "good multiline JSON array")
    f.good("good-2.json.gz", lambda r: gzip.compress(doc(r)), "good gzip multiline JSON")
    f.good("good-3.json.zst", lambda r: zstd(doc(r)), "good zstd multiline JSON")
    f.add("truncated.json", doc(records(ids.take(10)))[:-30], "quarantined", "document cut short")
    f.add("truncated.json.gz", gzip.compress(doc(records(ids.take(2000))))[:2000], "quarantined", "gzip cut short")
    f.add("trailing-garbage.json", doc(records(ids.take(3))) + b"\nxyz", "quarantined", "garbage after the document")
    f.add("empty.json", b"", "quarantined", "zero bytes", reason_hint="empty")
    f.add("empty-array.json", b"[]", "quarantined", "an empty array", reason_hint="empty")
    latin = json.dumps([{"id": i, "name": "Müller"} for i in ids.take(2)], ensure_ascii=False).encode("latin-1")
    f.add("latin1.json", latin, "quarantined", "Latin-1 text", reason_hint="encoding")
    utf16_ids = ids.take(2)
    utf16 = doc(records(utf16_ids)).decode().encode("utf-16")
    f.add("utf16.json", utf16, "loaded", "UTF-16 with BOM (the BOM says it)", ids=utf16_ids)
    bom_ids = ids.take(3)
    f.add("utf8-bom.json", codecs.BOM_UTF8 + doc(records(bom_ids)), "loaded", "UTF-8 with BOM", ids=bom_ids)
    f.add("nul.json", b'[{"id": 1, "x": "a\x00b"}]', "quarantined", "a NUL byte", reason_hint="NUL")
    f.add("parquet-as.json", parquet_bytes(pa.table({"id": [1]})), "quarantined", "Parquet named .json")
    for depth in (500, 1000, 100_000):
        data = b'[{"id": %d, "deep": ' % ids.take(1)[0] + nested(depth) + b"}]"
        f.add(f"deep-{depth}.json", data, "quarantined", f"a record nested {depth + 1} deep", reason_hint=DEEP)
    case_ids = ids.take(2)
    f.add("case-keys.json", doc([{"id": i, "a": 1, "A": 2} for i in case_ids]), "loaded", "case keys", ids=case_ids)
    f.add("scalar.json", b"42", "quarantined", "a document that is a number, not an object")
    _special_entries(f, ".json")
    return f.files


def _csv_corpus(root: Path | None, ids: _Ids) -> list[CorpusFile]:
    f = _Folder(root, "csv", ids)
    f.good("good-1.csv", csv_text, "good CSV")
    f.good("good-2.csv.gz", lambda r: gzip.compress(csv_text(r)), "good gzip CSV")
    f.good("good-3.csv.bz2", lambda r: bz2.compress(csv_text(r)), "good bzip2 CSV")
    f.good("good-4.csv.zst", lambda r: zstd(csv_text(r)), "good zstd CSV")
    f.add("empty.csv", b"", "quarantined", "zero bytes", reason_hint="empty")
    f.add("header-only.csv", b"id,name,amount,country\n", "loaded", "a header and no rows (0 rows to load)")
    cut_ids = ids.take(10)
    f.add("truncated.csv", csv_text(records(cut_ids))[:-12], "loaded", "cut inside its last row", ids=cut_ids)
    body = csv_text(records(ids.take(2000)))
    f.add("truncated.csv.gz", gzip.compress(body)[:3000], "quarantined", "gzip stream cut short")
    f.add("truncated.csv.zst", zstd(body)[:3000], "quarantined", "zstd stream cut short")
    f.add("wrong-magic.csv.bz2", b"BZh9" + _random_bytes(500, 5), "quarantined", "bzip2 magic, then garbage")
    latin = "id,name\n1,Müller\n".encode("latin-1")
    f.add("latin1.csv", latin, "quarantined", "Latin-1 text", reason_hint="encoding")
    utf16_ids = ids.take(2)
    f.add(
        "utf16.csv", csv_text(records(utf16_ids)).decode().encode("utf-16"), "loaded", "UTF-16 with BOM", ids=utf16_ids
    )
    f.add(
        "utf16-no-bom.csv", "id,name\n1,x\n".encode("utf-16-le"), "quarantined", "UTF-16, no BOM", reason_hint="utf-16"
    )
    bom_ids = ids.take(5)
    f.add("utf8-bom.csv", codecs.BOM_UTF8 + csv_text(records(bom_ids)), "loaded", "UTF-8 with BOM", ids=bom_ids)
    f.add("nul.csv", b"id,name\n1,a\x00b\n", "quarantined", "a NUL byte", reason_hint="NUL")
    f.add("parquet-as.csv", parquet_bytes(pa.table({"id": [1]})), "quarantined", "Parquet named .csv")
    f.add("random.csv", _random_bytes(20000, 6), "quarantined", "random bytes")
    ragged_ids = ids.take(3)
    ragged = b"id,name\n%d,a\n%d,b,extra,fields\n%d\n" % tuple(ragged_ids)
    f.add("ragged.csv", ragged, "loaded", "rows with too many (rescued) and too few fields", ids=ragged_ids)
    long_id = ids.take(1)
    f.add("long-line.csv", b"id,name\n%d,%s\n" % (long_id[0], b"x" * (1024 * 1024)), "loaded", "1 MiB row", ids=long_id)
    wide_id = ids.take(1)
    header = "id," + ",".join(f"c{i}" for i in range(10_000))
    values = f"{wide_id[0]}," + ",".join(str(i) for i in range(10_000))
    f.add("columns-10000.csv", f"{header}\n{values}\n".encode(), "loaded", "10,000 columns", ids=wide_id)
    case_ids = ids.take(2)
    case = b"id,a,A\n" + b"".join(b"%d,1,2\n" % i for i in case_ids)
    f.add("case-header.csv", case, "loaded", "case-variant column names a, A", ids=case_ids)
    mixed_ids = ids.take(3)
    mixed = b"id,amount\n%d,1.5\n%d,one\n%d,\n" % tuple(mixed_ids)
    f.add("mixed-types.csv", mixed, "loaded", "a column of numbers and text", ids=mixed_ids)
    plain_ids = ids.take(5)
    f.add("not-compressed.csv.gz", csv_text(records(plain_ids)), "loaded", "plain text named .gz", ids=plain_ids)
    quote_ids = ids.take(2)
    unclosed = b'id,name\n%d,"never closed\n%d,b\n' % tuple(quote_ids)
    f.add("unclosed-quote.csv", unclosed, "rescued", "a quote never closed: that row rescued", ids=quote_ids[1:])
    _special_entries(f, ".csv")
    return f.files


def _parquet_corpus(root: Path | None, ids: _Ids) -> list[CorpusFile]:
    f = _Folder(root, "parquet", ids)

    def table(rows: list[dict[str, object]]) -> pa.Table:
        return pa.Table.from_pylist(rows)

    f.good("good-1.parquet", lambda r: parquet_bytes(table(r)), "good Parquet (snappy)")
    f.good("good-2.parquet", lambda r: parquet_bytes(table(r), compression="zstd"), "good Parquet (zstd pages)")
    f.good("good-3.parquet", lambda r: parquet_bytes(table(r), compression="gzip"), "good Parquet (gzip pages)")
    sample = parquet_bytes(table(records(ids.take(2000))), compression="zstd")
    f.add("truncated.parquet", sample[: len(sample) // 2], "quarantined", "cut in half")
    f.add("truncated-tail.parquet", sample[:-3], "quarantined", "last bytes of the magic missing")
    f.add("corrupt-footer.parquet", corrupt_footer(sample), "quarantined", "metadata scrambled", reason_hint="corrupt")
    f.add("corrupt-page.parquet", corrupt_page(sample), "quarantined", "a data page scrambled")
    f.add("wrong-magic.parquet", b"PAR2" + sample[4:-4] + b"PAR2", "quarantined", "magic bytes wrong")
    huge = sample[:-8] + (2**31 - 1).to_bytes(4, "little") + b"PAR1"
    f.add("footer-length.parquet", huge, "quarantined", "footer length beyond the file")
    f.add("only-magic.parquet", b"PAR1PAR1", "quarantined", "only the magic bytes")
    f.add("empty.parquet", b"", "quarantined", "zero bytes")
    f.add("json-as.parquet", json_lines(records(ids.take(3))), "quarantined", "JSON lines named .parquet")
    f.add("gzip.parquet.gz", gzip.compress(sample), "quarantined", "a gzip of a Parquet file")
    f.add("zero-rows.parquet", parquet_bytes(pa.table({"id": pa.array([], pa.int64())})), "loaded", "valid, 0 rows")
    wide_id = ids.take(1)
    wide = pa.table({"id": [wide_id[0]], **{f"c{i}": [i] for i in range(10_000)}})
    f.add("columns-10000.parquet", parquet_bytes(wide), "loaded", "10,000 columns", ids=wide_id)
    case_ids = ids.take(2)
    f.add(
        "case-columns.parquet",
        parquet_bytes(pa.table({"id": case_ids, "a": [1, 1], "A": [2, 2]})),
        "loaded",
        "case-variant column names a, A",
        ids=case_ids,
    )
    mixed_ids = ids.take(2)
    mixed = pa.table({"id": mixed_ids, "amount": ["one", "two"]})
    f.add(
        "mixed-types.parquet", parquet_bytes(mixed), "loaded", "amount as text where others have double", ids=mixed_ids
    )
    for depth, expect in ((31, "loaded"), (45, "quarantined")):
        deep_id = ids.take(1)
        value: Any = 1
        for _ in range(depth):
            value = {"n": value}
        deep_table = pa.Table.from_pylist([{"id": deep_id[0], "deep": value}])
        f.add(
            f"deep-{depth}.parquet",
            parquet_bytes(deep_table),
            expect,
            f"a struct column nested {depth} levels",
            ids=deep_id if expect == "loaded" else [],
            reason_hint=DEEP if expect == "quarantined" else None,
        )
    _special_entries(f, ".parquet")
    return f.files


def _orc_corpus(root: Path | None, ids: _Ids) -> list[CorpusFile]:
    f = _Folder(root, "orc", ids)
    f.good("good-1.orc", orc_bytes, "good ORC (zlib)")
    f.good("good-2.orc", lambda r: orc_bytes(r, "zstd"), "good ORC (zstd)")
    sample = orc_bytes(records(ids.take(2000)), "zstd")
    f.add("truncated.orc", sample[: len(sample) // 2], "quarantined", "cut in half", reason_hint="cut short")
    f.add("truncated-tail.orc", sample[:-3], "quarantined", "its last bytes missing")
    f.add("empty.orc", b"", "quarantined", "zero bytes", reason_hint="empty")
    f.add("gzip.orc.gz", gzip.compress(sample), "quarantined", "a gzip of an ORC file", reason_hint="gzip")
    f.add("json-as.orc", json_lines(records(ids.take(3))), "quarantined", "JSON lines named .orc")
    f.add("zero-rows.orc", _empty_orc(), "loaded", "valid, 0 rows")
    _special_entries(f, ".orc")
    return f.files


def _empty_orc() -> bytes:
    sink = io.BytesIO()
    orc.write_table(pa.table({"id": pa.array([], pa.int64())}), sink)
    return sink.getvalue()


def _avro_corpus(root: Path | None, ids: _Ids) -> list[CorpusFile]:
    f = _Folder(root, "avro", ids)
    f.good("good-1.avro", avro_bytes, "good Avro (deflate)")
    f.good("good-2.avro", lambda r: avro_bytes(r, "snappy"), "good Avro (snappy)")
    f.good("good-3.avro", lambda r: avro_bytes(r, "null"), "good Avro (no codec)")
    sample = avro_bytes(records(ids.take(2000)))
    f.add("truncated.avro", sample[: len(sample) // 2], "quarantined", "cut in half", reason_hint="cut short")
    sync = sample[-16:]
    first_block_end = sample.index(sync, sample.index(sync) + 16)
    broken = sample[:first_block_end] + bytes(16) + sample[first_block_end + 16 :]
    f.add("bad-sync.avro", broken, "quarantined", "a block's sync marker overwritten", reason_hint="sync marker")
    f.add("empty.avro", b"", "quarantined", "zero bytes", reason_hint="empty")
    f.add("gzip.avro.gz", gzip.compress(sample), "quarantined", "a gzip of an Avro file", reason_hint="gzip")
    f.add("csv-as.avro", csv_text(records(ids.take(3))), "quarantined", "CSV named .avro", reason_hint="not an Avro")
    f.add("zero-rows.avro", avro_bytes([]), "loaded", "valid, only the header")
    _special_entries(f, ".avro")
    return f.files


_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE items [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>\n'
    b"<items><item><id>1</id><name>&d;</name></item></items>\n"
)
_EXTERNAL = (
    b'<?xml version="1.0"?>\n<!DOCTYPE items [<!ENTITY secret SYSTEM "file:///etc/hostname">]>\n'
    b"<items><item><id>1</id><name>&secret;</name></item></items>\n"
)


def _xml_corpus(root: Path | None, ids: _Ids) -> list[CorpusFile]:
    f = _Folder(root, "xml", ids)
    f.good("good-1.xml", xml_bytes, "good XML")
    f.good("good-2.xml.gz", lambda r: gzip.compress(xml_bytes(r)), "good gzip XML")
    f.good("good-3.xml.zst", lambda r: zstd(xml_bytes(r)), "good zstd XML")
    f.good("good-4.xml.lz4", lambda r: bytes(pa.compress(xml_bytes(r), codec="lz4", asbytes=True)), "good LZ4 XML")
    sample = xml_bytes(records(ids.take(50)))
    f.add("truncated.xml", sample[: len(sample) // 2], "quarantined", "cut in the middle", reason_hint="line")
    f.add("truncated.xml.gz", gzip.compress(xml_bytes(records(ids.take(2000))))[:3000], "quarantined", "gzip cut")
    f.add("billion-laughs.xml", _LAUGHS, "quarantined", "entities expanding 10^4 times", reason_hint="DTD")
    f.add("external-entity.xml", _EXTERNAL, "quarantined", "an entity reading a local file", reason_hint="DTD")
    deep = b"<items><item><id>1</id>" + b"<a>" * 1000 + b"x" + b"</a>" * 1000 + b"</item></items>"
    f.add("deep-1000.xml", deep, "quarantined", "a record nested 1000 elements deep", reason_hint=DEEP)
    other = b"<rows><row><id>1</id></row></rows>"
    f.add("other-row-tag.xml", other, "quarantined", "records under another tag", reason_hint="no <item>")
    f.add("empty.xml", b"", "quarantined", "zero bytes", reason_hint="empty")
    f.add("parquet-as.xml", parquet_bytes(pa.table({"id": [1]})), "quarantined", "Parquet named .xml")
    latin_ids = ids.take(3)
    latin = xml_bytes([{"id": i, "name": "Müller"} for i in latin_ids], '<?xml version="1.0" encoding="ISO-8859-1"?>\n')
    f.add("latin1.xml", latin.decode().encode("latin-1"), "loaded", "Latin-1, declared in the document", ids=latin_ids)
    utf16_ids = ids.take(3)
    utf16 = xml_bytes(records(utf16_ids), '<?xml version="1.0" encoding="UTF-16"?>\n').decode().encode("utf-16")
    f.add("utf16.xml", utf16, "loaded", "UTF-16 with BOM, declared", ids=utf16_ids)
    mixed_ids = ids.take(2)
    mixed = xml_bytes([{"id": mixed_ids[0], "amount": "1.5"}, {"id": mixed_ids[1], "amount": "one"}])
    f.add("mixed-types.xml", mixed, "loaded", "an amount that is not a number (rescued)", ids=mixed_ids)
    _special_entries(f, ".xml")
    return f.files


def write_corpus(root: Path | None) -> dict[str, list[CorpusFile]]:
    """Write the landing folders under `root`; the entries per format (see the module docstring).

    With `root` None nothing is written: the entries alone (to name test cases)."""
    ids = _Ids(1_000_000)
    return {
        "json": _json_lines_corpus(root, ids),
        "jsonml": _multiline_corpus(root, ids),
        "csv": _csv_corpus(root, ids),
        "parquet": _parquet_corpus(root, ids),
        "orc": _orc_corpus(root, ids),
        "avro": _avro_corpus(root, ids),
        "xml": _xml_corpus(root, ids),
    }


def write_more_good_files(root: Path, fmt: str, start_id: int, count: int = 2) -> list[int]:
    """New good files for a next run (ids from `start_id`); their ids."""
    ids = _Ids(start_id)
    folder = root / fmt
    taken: list[int] = []
    for n in range(count):
        rows = records(ids.take(ROWS_PER_GOOD_FILE))
        taken.extend(int(r["id"]) for r in rows)  # type: ignore[call-overload]
        (folder / f"next-{n}.{EXTENSIONS.get(fmt, fmt)}").write_bytes(ENCODERS[fmt](rows))
    return taken


# --- running a landing folder through the pipeline and judging what became of each entry -------------------------

_EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Invalid)\b|Traceback|File \"")


@dataclass
class Observed:
    """What the product did with one corpus entry."""

    entry: CorpusFile
    status: str  # the ledger status, "skipped" (named in the run's notes), "absent"
    reason: str = ""
    action: str = ""
    loaded_ids: list[int] = field(default_factory=list)
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class FormatRun:
    """The first run over a format's landing folder, and what every entry became."""

    fmt: str
    outcome: Any
    table: pa.Table | None
    observed: list[Observed]
    ingestion: Any


def ingestion_spec(landing: Path, fmt: str, cluster_id: int | None = None) -> Any:
    from tests.helpers import spec

    extra = {} if cluster_id is None else {"cluster_id": cluster_id}
    suffix = "" if cluster_id is None else "_spark"
    return spec(
        str(landing),
        table=f"corpus_{fmt}{suffix}",
        name=f"corpus-{fmt}{suffix}",
        format=FORMATS[fmt],
        quality={"max_bad_record_ratio": 1.0},
        **extra,
    )


def run_format(
    services: Any, root: Path, fmt: str, entries: list[CorpusFile], cluster_id: int | None = None
) -> FormatRun:
    """Create the format's ingestion (on the Spark cluster `cluster_id` when given), run it once and judge every
    entry."""
    from core.access import SYSTEM

    landing = root / fmt
    ing = services.ingestions.create(ingestion_spec(landing, fmt, cluster_id), activate=True)
    outcome = services.runs.run_now(ing.name)
    ledger = {row.path: row for row in services.views.files(SYSTEM, ing.id, limit=10_000).items}
    actions = {e.file: e.action for e in outcome.errors if e.file}
    table = (
        _table(services, ing)
        if cluster_id is None
        else services.engines.for_ingestion(ing).read_table(ing.spec.destination)
    )
    counts = _id_counts(table)
    observed = [_judge(e, landing, ledger, actions, outcome.message, counts) for e in entries]
    return FormatRun(fmt, outcome, table, observed, ing)


def _table(services: Any, ing: Any) -> pa.Table | None:
    from tests.helpers import read_table

    if services.embedded.table_schema(ing.spec.destination) is None:
        return None
    return read_table(services.embedded.table_uri(ing.spec.destination))


def _id_counts(table: pa.Table | None) -> dict[int, int]:
    if table is None or "id" not in table.column_names:
        return {}
    counts: dict[int, int] = {}
    for value in table.column("id").to_pylist():
        if value is not None:
            counts[int(value)] = counts.get(int(value), 0) + 1
    return counts


def _judge(
    entry: CorpusFile,
    landing: Path,
    ledger: dict[str, Any],
    actions: dict[str, str],
    run_message: str,
    counts: dict[int, int],
) -> Observed:
    path = str(landing / entry.name)
    row = ledger.get(path)
    seen = Observed(entry, row.status if row else "absent", (row.error or "") if row else "", actions.get(path, ""))
    seen.loaded_ids = [i for i in entry.ids if counts.get(i)]
    seen.duplicated = sum(counts.get(i, 0) - 1 for i in entry.ids if counts.get(i, 0) > 1)
    if row is None and path in run_message:
        seen.status = "skipped"
        seen.reason = run_message.split(path, 1)[1][:200]
    problems = seen.problems
    if entry.expect == "skipped":
        if seen.status != "skipped":
            problems.append(f"expected to be named as skipped, is {seen.status}")
    elif entry.expect == "quarantined":
        if seen.status != "quarantined":
            problems.append(f"expected quarantined, is {seen.status} ({seen.reason or 'no reason'})")
        problems.extend(reason_problems(seen.reason, seen.action, entry))
    else:
        if seen.status != "loaded":
            problems.append(f"expected loaded, is {seen.status}: {seen.reason}")
        if entry.expect == "rescued" and row is not None and not row.bad_records:
            problems.append("expected its malformed records to be counted in the ledger")
    missing = sorted(set(entry.ids) - set(seen.loaded_ids))
    if missing and entry.expect in ("loaded", "rescued"):
        problems.append(f"{len(missing)} of {len(entry.ids)} rows not loaded")
    if seen.duplicated:
        problems.append(f"{seen.duplicated} rows loaded twice")
    return seen


def reason_problems(reason: str, action: str, entry: CorpusFile) -> list[str]:
    """A quarantine reason must name the file and say what is wrong, and come with an action; no Python internals."""
    problems = []
    if entry.name.rsplit("/", 1)[-1] not in reason:
        problems.append(f"reason does not name the file: {reason!r}")
    if not action:
        problems.append("no action given")
    if _EXCEPTION_NAME.search(reason):
        problems.append(f"reason shows a Python/Arrow exception name: {reason!r}")
    if entry.reason_hint and entry.reason_hint.lower() not in reason.lower():
        problems.append(f"reason does not say {entry.reason_hint!r}: {reason!r}")
    return problems


def summary_rows(runs: list[FormatRun]) -> list[tuple[str, str, str, str, str]]:
    """(file, what it is, expected, actual, reason) for every entry of every run."""
    rows = []
    for run in runs:
        for seen in run.observed:
            actual = seen.status + ("" if seen.ok else " ✗ known gap" if seen.entry.xfail else " ✗")
            reason = (seen.reason or (f"{len(seen.loaded_ids)} rows loaded" if seen.entry.ids else "")).replace(
                "\n", " "
            )
            rows.append((f"{run.fmt}/{seen.entry.name}", seen.entry.what, seen.entry.expect, actual, reason))
    return rows

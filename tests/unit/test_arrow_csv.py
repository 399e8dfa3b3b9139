"""The Spark engine's CSV parsing on its Python workers (core/engines/spark/arrow_csv.py), without a cluster: the
lines of a file are handed over as Spark's text reader hands them (split by split, in batches), and the rows must
be the ones the embedded engine reads from the whole file."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import FormatConfig
from core.engines.spark import arrow_csv
from core.formats import csv_columns, read_file
from core.formats.streams import FileReadStats

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("ts", pa.timestamp("us", tz="UTC"))])
OUTPUT = pa.schema([*SCHEMA, ("_rescued_data", pa.string()), (arrow_csv.PATH_COLUMN, pa.string())])


def csv_format(**options: object) -> FormatConfig:
    fmt = FormatConfig.model_validate({"type": "csv", "options": options})
    return fmt.model_copy(update={"options": fmt.options.model_copy(update={"compression": "none"})})


def whole_file(text: bytes, fmt: FormatConfig) -> list[dict[str, object]]:
    stats = FileReadStats()
    rows = []
    for batch in read_file(io.BytesIO(text), "/in/a.csv", fmt, SCHEMA, stats):
        rows += batch.to_pylist()
    return rows


def as_spark_hands_them(
    files: dict[str, bytes], splits: int, batch_rows: int, uri: bool = False
) -> Iterator[pa.RecordBatch]:
    """Each file's lines cut into `splits` runs (the first at byte 0), in batches of `batch_rows` lines, the later
    splits first (a task may read them in any order), with FILE as Spark's `_metadata.file_path` when `uri`."""
    for path, text in files.items():
        lines = text.decode().splitlines()
        size = -(-len(lines) // splits)
        runs = [(i * size, lines[i * size : (i + 1) * size]) for i in range(splits)]
        for first, run in reversed(runs):
            start = 0 if first == 0 else len("\n".join(lines[:first]).encode()) + 1
            for at in range(0, len(run), batch_rows):
                part = run[at : at + batch_rows]
                arrays = [pa.array(part, pa.string()), pa.array([start] * len(part), pa.int64())]
                names = [arrow_csv.LINE, arrow_csv.START]
                if uri:
                    arrays.append(pa.array(["file://" + path.replace(" ", "%20")] * len(part)))
                    names.append(arrow_csv.FILE)
                yield pa.RecordBatch.from_arrays(arrays, names=names)


def parser(fmt: FormatConfig, headers: dict[str, list[str]], only: str | None) -> arrow_csv.ChunkParser:
    opts = fmt.options
    lines = {p: arrow_csv.header_line(h, opts.delimiter, opts.quote, opts.escape) for p, h in headers.items()}
    return arrow_csv.ChunkParser(fmt, lines, SCHEMA, OUTPUT, only)


def parsed(chunks: arrow_csv.ChunkParser, batches: Iterator[pa.RecordBatch]) -> list[dict[str, object]]:
    return [row for batch in chunks(batches) for row in batch.to_pylist()]


def sample(rows: int) -> bytes:
    body = "".join(f'{i},"name {i}, with a comma",2024-05-01 00:00:{i % 60:02d}Z\n' for i in range(rows))
    blank_line_inside = body.replace("\n", "\n\n", 50).replace("\n\n", "\n", 49)
    return b"# exported by hand\n\nid,name,ts\n" + blank_line_inside.encode() + b"x,not a number,\n"


@pytest.mark.parametrize("splits, batch_rows", [(1, 10_000), (3, 7), (5, 1)])
def test_the_rows_of_every_split_and_batch_are_the_whole_files_rows(splits: int, batch_rows: int) -> None:
    fmt = csv_format(comment="#")
    text = sample(200)
    got = parsed(
        parser(fmt, {"/in/a.csv": ["id", "name", "ts"]}, "/in/a.csv"),
        as_spark_hands_them({"/in/a.csv": text}, splits, batch_rows),
    )
    expected = whole_file(text, fmt)
    assert len(expected) == 201
    assert sorted((r.pop(arrow_csv.PATH_COLUMN), r["id"] or -1) for r in got) == sorted(
        ("/in/a.csv", r["id"] or -1) for r in expected
    )
    assert sorted(got, key=repr) == sorted(expected, key=repr)


def test_several_files_keep_their_own_header_and_ledger_path() -> None:
    fmt = csv_format()
    files = {"/in/x y.csv": b"id,name\n1,a\n2,b\n3,c\n", "/in/b.csv": b"name,ts,id\nz,2024-01-01,9\ny,,8\nw,,7\n"}
    headers = {"/in/x y.csv": ["id", "name"], "/in/b.csv": ["name", "ts", "id"]}
    got = parsed(parser(fmt, headers, None), as_spark_hands_them(files, 2, 1, uri=True))
    by_file = {(r[arrow_csv.PATH_COLUMN], r["id"], r["name"]) for r in got}
    assert by_file == {
        ("/in/x y.csv", 1, "a"),
        ("/in/x y.csv", 2, "b"),
        ("/in/x y.csv", 3, "c"),
        ("/in/b.csv", 9, "z"),
        ("/in/b.csv", 8, "y"),
        ("/in/b.csv", 7, "w"),
    }


def test_an_empty_batch_of_lines_is_passed_over() -> None:
    fmt = csv_format()
    empty = pa.RecordBatch.from_arrays(
        [pa.array([], pa.string()), pa.array([], pa.int64())], names=[arrow_csv.LINE, arrow_csv.START]
    )
    lines = as_spark_hands_them({"/in/a.csv": b"id,name\n1,a\n"}, 1, 10)
    got = parsed(parser(fmt, {"/in/a.csv": ["id", "name"]}, "/in/a.csv"), iter([empty, *lines, empty]))
    assert [(r["id"], r["name"]) for r in got] == [(1, "a")]


def test_a_malformed_row_stops_the_write_for_the_counting_pass() -> None:
    fmt = csv_format()
    text = b'id,name,ts\n1,a,\n2,"open quote,\n3,c,\n'
    with pytest.raises(RuntimeError, match=arrow_csv.STOPPED):
        parsed(
            parser(fmt, {"/in/a.csv": ["id", "name", "ts"]}, "/in/a.csv"),
            as_spark_hands_them({"/in/a.csv": text}, 2, 1),
        )


def test_ledger_paths_from_spark_file_paths() -> None:
    assert arrow_csv.ledger_path("file:///data/a%20b+c.csv") == "/data/a b+c.csv"
    assert arrow_csv.ledger_path("file:/data/a.csv") == "/data/a.csv"
    assert arrow_csv.ledger_path("s3a://bucket/k/a.csv") == "s3://bucket/k/a.csv"


names = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=6),
    min_size=1,
    max_size=4,
)  # no lone surrogates: a header read from a file is UTF-8 text, which cannot hold them


@given(names=names, escape=st.sampled_from([None, "\\"]))
def test_the_header_put_in_front_reads_back_as_the_files_names(names: list[str], escape: str | None) -> None:
    fmt = csv_format(escape=escape) if escape else csv_format()
    line = arrow_csv.header_line(names, ",", '"', escape)
    header = csv_columns(io.BytesIO(line + b"\n"), "/in/a.csv", fmt)
    assert [written for _, written, _ in header.columns] == names

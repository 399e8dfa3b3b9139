"""Hive-style partition folders (`year=2024/month=01/`) become typed columns, on by default as in Auto Loader;
`source.partition_columns` turns them off ([]) or keeps only some. Also: file patterns through the product
(refused at create with a 422 naming the field, and a Test & Preview that says when nothing matches)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from core.domain import RunStatus
from tests.helpers import read_table, spec
from tests.integration.test_api import wait_for_run


def _landing(root: Path) -> Path:
    """Two months of one year, two files each; every record knows its folder so the test can check the columns."""
    landing = root / "landing"
    for month in ("01", "02"):
        folder = landing / "year=2024" / f"month={month}"
        folder.mkdir(parents=True)
        for part in range(2):
            rows = [{"id": f"{month}-{part}-{i}", "amount": i} for i in range(3)]
            (folder / f"part-{part}.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return landing


def _load(services: Any, landing: Path, table: str, **source: Any) -> pa.Table:
    ingestion = services.ingestions.create(
        spec(str(landing), table=table, source={"file_pattern": "**/*.json", **source}), activate=True
    )
    outcome = services.runs.run_now(str(ingestion.id))
    assert outcome.status == RunStatus.SUCCESS, outcome
    assert outcome.metrics.records_ingested == 12
    return read_table(services.embedded.table_uri(ingestion.spec.destination))


def _by_id(table: pa.Table, column: str) -> dict[str, Any]:
    return dict(zip(table.column("id").to_pylist(), table.column(column).to_pylist(), strict=True))


def test_partition_folders_are_typed_columns_by_default(services: Any, tmp_path: Path) -> None:
    table = _load(services, _landing(tmp_path), "by_default")
    assert table.schema.field("year").type == pa.int64()
    assert table.schema.field("month").type == pa.string()  # `01`: leading zeros stay text
    names = table.column_names
    assert names.index("amount") < names.index("year") < names.index("month") < names.index("_rescued_data")
    years, months = _by_id(table, "year"), _by_id(table, "month")
    assert set(years.values()) == {2024}
    assert {i: m for i, m in months.items()} == {i: i.split("-")[0] for i in months}
    assert sorted(set(months.values())) == ["01", "02"]
    assert table.column("_rescued_data").null_count == table.num_rows


def test_partition_columns_off(services: Any, tmp_path: Path) -> None:
    table = _load(services, _landing(tmp_path), "off", partition_columns=[])
    assert "year" not in table.column_names and "month" not in table.column_names
    assert [n for n in table.column_names if not n.startswith("_")] == ["id", "amount"]


def test_only_the_listed_partition_columns(services: Any, tmp_path: Path) -> None:
    table = _load(services, _landing(tmp_path), "only_year", partition_columns=["year"])
    assert "year" in table.column_names and "month" not in table.column_names
    assert set(table.column("year").to_pylist()) == {2024}


def test_a_later_run_keeps_filling_the_columns(services: Any, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    ingestion = services.ingestions.create(
        spec(str(landing), table="later", source={"file_pattern": "**/*.json"}), activate=True
    )
    assert services.runs.run_now(str(ingestion.id)).status == RunStatus.SUCCESS
    folder = landing / "year=2025" / "month=10"
    folder.mkdir(parents=True)
    (folder / "part-0.json").write_text(json.dumps({"id": "10-0-0", "amount": 1}) + "\n")
    second = services.runs.run_now(str(ingestion.id))
    assert second.status == RunStatus.SUCCESS, second
    assert second.metrics.records_ingested == 1
    table = read_table(services.embedded.table_uri(ingestion.spec.destination))
    assert _by_id(table, "year")["10-0-0"] == 2025
    assert _by_id(table, "month")["10-0-0"] == "10"  # the table's column is text; "10" is kept as text


def test_the_folder_value_wins_over_a_data_column_of_the_same_name(services: Any, tmp_path: Path) -> None:
    """Spark's rule: the column keeps its place in the data, takes the folder's type and value; the file's own
    value is kept in _rescued_data instead of being dropped."""
    folder = tmp_path / "landing" / "region=eu"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps({"region": "us", "id": "1"}) + "\n")
    ingestion = services.ingestions.create(
        spec(str(tmp_path / "landing"), table="clash", source={"file_pattern": "**/*.json"}), activate=True
    )
    outcome = services.runs.run_now(str(ingestion.id))
    assert outcome.status == RunStatus.SUCCESS, outcome
    table = read_table(services.embedded.table_uri(ingestion.spec.destination))
    assert table.column_names[:2] == ["region", "id"]
    assert table.column("region").to_pylist() == ["eu"]
    assert json.loads(table.column("_rescued_data")[0].as_py())["region"] == "us"


def test_decoded_values_and_hive_null(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    for city in ("New%20York", "__HIVE_DEFAULT_PARTITION__"):
        folder = landing / f"city={city}"
        folder.mkdir(parents=True)
        (folder / "a.json").write_text(json.dumps({"id": city}) + "\n")
    ingestion = services.ingestions.create(
        spec(str(landing), table="decoded", source={"file_pattern": "*/*.json"}), activate=True
    )
    assert services.runs.run_now(str(ingestion.id)).status == RunStatus.SUCCESS
    table = read_table(services.embedded.table_uri(ingestion.spec.destination))
    assert _by_id(table, "city") == {"New%20York": "New York", "__HIVE_DEFAULT_PARTITION__": None}


def test_a_folder_value_the_column_cannot_hold_is_rescued(services: Any, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    ingestion = services.ingestions.create(
        spec(
            str(landing),
            table="unfit",
            source={"file_pattern": "**/*.json"},
            format={"type": "json", "schema": {"on_schema_change": "rescue"}},
        ),
        activate=True,
    )
    assert services.runs.run_now(str(ingestion.id)).status == RunStatus.SUCCESS
    folder = landing / "year=unknown" / "month=03"
    folder.mkdir(parents=True)
    (folder / "part-0.json").write_text(json.dumps({"id": "03-0-0", "amount": 1}) + "\n")
    outcome = services.runs.run_now(str(ingestion.id))
    assert outcome.status == RunStatus.SUCCESS, outcome
    table = read_table(services.embedded.table_uri(ingestion.spec.destination))
    assert table.schema.field("year").type == pa.int64()
    assert _by_id(table, "year")["03-0-0"] is None
    rescued = json.loads(_by_id(table, "_rescued_data")["03-0-0"])
    assert rescued["year"] == "unknown"
    assert set(rescued) <= {"year", "_file_path"}  # Auto Loader also names the file in rescued data
    assert _by_id(table, "month")["03-0-0"] == "03"


def test_partition_values_of_a_path() -> None:
    from core.formats.partitions import partition_fields, partition_values, relative_path

    assert relative_path("s3://b/landing/", "s3://b/landing/year=2024/a.json") == "year=2024/a.json"
    assert relative_path("/data/in", "/data/in/k=v/a.json") == "k=v/a.json"
    assert partition_values("year=2024/month=01/part-0.json", None) == {"year": "2024", "month": "01"}
    assert partition_values("year=2024/month=01/part-0.json", ["month"]) == {"month": "01"}
    assert partition_values("year=2024/month=01/part-0.json", []) == {}
    assert partition_values("raw/k=a%2Fb/x=/f=1.json", None) == {"k": "a/b", "x": None}  # never the file name
    assert partition_values("a.json", ["year"]) == {"year": None}
    fields = partition_fields(["d=2024-01-31/n=1.5/a.json", "d=2024-02-01/n=2/b.json", "c.json"], None)
    assert [(f.name, str(f.type)) for f in fields] == [("d", "date32[day]"), ("n", "double")]


def test_preview_shows_the_partition_columns(services: Any, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    result = services.previews.test(spec(str(landing), source={"file_pattern": "**/*.json"}))
    columns = {c["name"]: c["type"] for c in result.schema}
    assert columns["year"] == "bigint" and columns["month"] == "string"
    assert {(r["year"], r["month"]) for r in result.sample_rows} <= {(2024, "01"), (2024, "02")}
    assert all(r["year"] == 2024 for r in result.sample_rows)


# --- file patterns through the product -------------------------------------------------------------------------


def _body(path: Path, pattern: str) -> dict[str, Any]:
    return {
        "name": "orders",
        "source": {"type": "local", "path": str(path), "file_pattern": pattern},
        "format": {"type": "json"},
        "destination": {"catalog": "main", "database": "sales", "table": "orders"},
        "schedule": {"mode": "manual"},
    }


@pytest.mark.parametrize("pattern", ["*.{json,csv", "../elsewhere/*.json", "/abs/*.json", "logs]"])
def test_an_unsupported_pattern_is_refused_at_create_naming_the_field(api: Any, tmp_path: Path, pattern: str) -> None:
    response = api.post("/api/v1/ingestions", json=_body(tmp_path, pattern))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "source.file_pattern", error
    assert pattern in response.text
    assert api.get("/api/v1/ingestions").json() == []


def test_preview_says_when_no_file_matches_the_pattern(api: Any, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    response = api.post("/api/v1/ingestions/test", json=_body(landing, "*.csv"))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["files"] == 0
    assert not data["message"].startswith("Connection successful")
    assert "0 files match the pattern '*.csv'" in data["message"] and str(landing) in data["message"]
    assert "4 files under the path do not match it" in data["message"]
    assert data["recommendations"][0] == data["message"]

    matched = api.post("/api/v1/ingestions/test", json=_body(landing, "year=2024/month={01,02}/part-[0-9].json"))
    assert matched.json()["files"] == 4


def test_a_run_says_when_no_file_matches_the_pattern_and_the_pattern_can_be_fixed(api: Any, tmp_path: Path) -> None:
    """Found by an outsider: `*.csv` over date folders of CSV files: Test Connection said why nothing matched, every
    run said only "No new files.", and the pattern could not be fixed on the active ingestion (409). A run of an
    ingestion that never saw a file now names the files the pattern misses, and the source stays open until a file
    has loaded."""
    landing = _landing(tmp_path)
    ing = api.post("/api/v1/ingestions", json={**_body(landing, "*.json"), "activate": True}).json()
    run = api.post(f"/api/v1/ingestions/{ing['id']}/run").json()
    ended = wait_for_run(api, ing["id"], run["run_id"])
    assert ended["status"] == "success" and ended["metrics"]["files_processed"] == 0, ended
    assert (
        "No new files. Notes: 0 files match the pattern '*.json'; 4 files under the path do not match it"
        in (ended["message"])
    ), ended["message"]

    fixed = api.patch(f"/api/v1/ingestions/{ing['id']}", json={"source": {"file_pattern": "**/*.json"}})
    assert fixed.status_code == 200, fixed.text
    run = api.post(f"/api/v1/ingestions/{ing['id']}/run").json()
    assert wait_for_run(api, ing["id"], run["run_id"])["metrics"]["files_processed"] == 4
    locked = api.patch(f"/api/v1/ingestions/{ing['id']}", json={"source": {"file_pattern": "*.json"}})
    assert locked.status_code == 409 and locked.json()["error"]["field"] == "source", locked.text


@pytest.mark.slow
def test_spark_fills_the_partition_columns_of_its_target(services: Any, tmp_path: Path, database_url: str) -> None:
    """The Spark engine takes the folder values (same rules) for the target's columns of those names. Its own
    inference does not add them yet, so the target here is a manual schema."""
    manual = [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": "bigint"},
        {"name": "year", "type": "bigint"},
        {"name": "month", "type": "string"},
    ]
    table = _loaded_on_spark(services, database_url, _landing(tmp_path), "on_spark", manual)
    assert set(table.column("year").to_pylist()) == {2024}
    months = _by_id(table, "month")
    assert months == {i: i.split("-")[0] for i in months} and len(months) == 12


@pytest.mark.slow
def test_spark_fills_many_typed_partition_columns(services: Any, tmp_path: Path, database_url: str) -> None:
    """Ten typed folder columns (their conversions run side by side, so the plan does not deepen with each), one
    folder value the column cannot hold rescued with its text."""
    landing = tmp_path / "many"
    for n, first in enumerate(["1", "2", "x"]):
        folder = landing.joinpath(
            f"k0={first}", *[f"k{i}={n + i}" for i in range(1, 8)], "k8=1.5", f"k9=2024-01-0{n + 1}"
        )
        folder.mkdir(parents=True)
        (folder / "part.json").write_text(json.dumps({"id": f"f{n}"}) + "\n")
    manual = [{"name": "id", "type": "string"}, *[{"name": f"k{i}", "type": "bigint"} for i in range(8)]]
    manual += [{"name": "k8", "type": "double"}, {"name": "k9", "type": "date"}]
    table = _loaded_on_spark(services, database_url, landing, "many_on_spark", manual)
    rows = {r["id"]: r for r in table.to_pylist()}
    for n in range(3):
        row = rows[f"f{n}"]
        assert [row[f"k{i}"] for i in range(1, 8)] == [n + i for i in range(1, 8)]
        assert row["k8"] == 1.5 and str(row["k9"]) == f"2024-01-0{n + 1}"
    assert [rows[f"f{n}"]["k0"] for n in range(3)] == [1, 2, None]
    assert json.loads(rows["f2"]["_rescued_data"])["k0"] == "x"


def _loaded_on_spark(
    services: Any, database_url: str, landing: Path, table: str, manual: list[dict[str, str]]
) -> pa.Table:
    """The JSON files under `landing` loaded once by the Spark engine (the shared local server, parquet tables)
    with the manual schema `manual` (Spark's own inference does not add folder columns yet); the table read back."""
    if not database_url.startswith("sqlite"):
        pytest.skip("about the engine, not the metadata database")
    pytest.importorskip("pyspark")
    from app.db.models import ClusterCreate
    from tests.spark_server import spark_server

    server = spark_server()
    cluster = services.clusters.create(
        ClusterCreate(name=f"local-{table}", connect_url=server.url, token=server.token, table_format="parquet")
    )
    body = spec(
        str(landing),
        table=table,
        source={"file_pattern": "**/*.json"},
        format={"type": "json", "schema": {"inference": "manual", "schema_json": manual}},
    ).model_dump(by_alias=True)
    body["cluster_id"] = cluster.id
    ingestion = services.ingestions.create(type(spec("/x")).model_validate(body), activate=True)
    outcome = services.runs.run_now(str(ingestion.id))
    assert outcome.status == RunStatus.SUCCESS, outcome
    return services.engines.for_ingestion(ingestion).read_table(ingestion.spec.destination)


def test_a_partition_value_too_long_for_a_folder_name_sets_its_file_aside(services: Any, tmp_path: Path) -> None:
    """delta-rs panicked on a 300-character value of a partition column: every run failed, the other files of the
    batch with it, and the error named neither the file nor the column (an outside attack). The embedded engine
    checks the values as it reads them; a Spark cluster writes its partitions itself."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.json").write_text(json.dumps({"id": 1, "p": "x" * 300}) + "\n")
    (landing / "b.json").write_text(json.dumps({"id": 2, "p": "short"}) + "\n")
    (landing / "c.json").write_text(json.dumps({"id": 3, "p": "é" * 40}) + "\n")  # 40 times %C3%A9: 240 bytes, fits
    ingestion = services.ingestions.create(
        spec(str(landing), table="long_parts", destination={"partition_columns": ["p"]}), activate=True
    )
    outcome = services.runs.run_now(ingestion.name)
    assert outcome.status == RunStatus.PARTIAL and outcome.metrics.records_ingested == 2, outcome
    (aside,) = [e for e in outcome.errors if e.kind == "quarantined"]
    assert aside.file == str(landing / "a.json") and "partition column 'p' too long" in aside.message
    assert "Partition by a column with short values" in aside.action
    assert sorted(read_table(services.embedded.table_uri(ingestion.spec.destination)).column("id").to_pylist()) == [
        2,
        3,
    ]
    assert services.runs.run_now(ingestion.name).status == RunStatus.SUCCESS  # nothing left stuck

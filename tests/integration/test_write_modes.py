"""Write modes, partitioning, Z-order and lineage on real Delta tables, read back with deltalake."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from core.domain import RunStatus
from core.errors import Conflict
from tests.helpers import read_table, spec, write_json_files


def _write(path: Path, rows: list[dict]) -> None:  # type: ignore[type-arg]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_append_partitioned_with_lineage(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing, 2, 50)
    s = spec(str(landing), destination={"partition_columns": ["country"], "write_mode": "append"})
    ing = services.ingestions.create(s, activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS
    uri = services.embedded.table_uri(ing.spec.destination)
    assert uri.endswith("/main/raw/events")
    dt = DeltaTable(uri)
    assert dt.metadata().partition_columns == ["country"]
    assert {p["country"] for p in dt.partitions()} == {"DE", "US", "FR"}
    table = dt.to_pyarrow_table()
    assert table.num_rows == 100
    for column in ("_source_file", "_ingested_at", "_run_id", "_rescued_data"):
        assert column in table.column_names
    assert table.schema.field("_ingested_at").type.tz == "UTC"
    assert set(table.column("_run_id").to_pylist()) == {outcome.run_id}
    assert outcome.metrics.bytes_written > 0
    assert outcome.metrics.bytes_read == sum(p.stat().st_size for p in landing.iterdir())


def test_lineage_can_be_switched_off(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 1, 10)
    ing = services.ingestions.create(spec(str(tmp_path / "in"), destination={"lineage_columns": False}), activate=True)
    services.runs.run_now(ing.name)
    names = read_table(services.embedded.table_uri(ing.spec.destination)).column_names
    assert not {"_source_file", "_ingested_at", "_run_id"} & set(names)


def test_overwrite_replaces_content_each_run(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing, 2, 10)
    ing = services.ingestions.create(spec(str(landing), destination={"write_mode": "overwrite"}), activate=True)
    uri = services.embedded.table_uri(ing.spec.destination)
    services.runs.run_now(ing.name)
    assert read_table(uri).num_rows == 20
    write_json_files(landing, 1, 7, start_id=100, prefix="next")
    services.runs.run_now(ing.name)
    table = read_table(uri)
    assert table.num_rows == 7
    assert sorted(table.column("id").to_pylist()) == list(range(100, 107))


def test_create_mode_refuses_an_existing_table(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Activation refuses it when the table exists already; a table created after activation fails the run."""
    write_json_files(tmp_path / "a", 1, 5)
    write_json_files(tmp_path / "c", 1, 5, start_id=100)  # another source: one source twice is refused sooner
    first = services.ingestions.create(spec(str(tmp_path / "a"), name="first"), activate=True)
    creating = spec(str(tmp_path / "c"), name="second", destination={"write_mode": "create"})
    second = services.ingestions.create(creating, activate=True)
    services.runs.run_now(first.name)
    with pytest.raises(Conflict, match="already exists"):
        services.ingestions.create(creating.model_copy(update={"name": "third"}), activate=True)
    outcome = services.runs.run_now(second.name)
    assert outcome.status == RunStatus.FAILED
    assert "already exists" in outcome.message
    assert outcome.errors[0].action
    assert read_table(services.embedded.table_uri(first.spec.destination)).num_rows == 5


def test_create_mode_then_appends(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing, 1, 5)
    ing = services.ingestions.create(spec(str(landing), destination={"write_mode": "create"}), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    write_json_files(landing, 1, 5, start_id=5, prefix="b")
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    assert read_table(services.embedded.table_uri(ing.spec.destination)).num_rows == 10


def test_merge_upserts_latest_per_key(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    _write(landing / "a.json", [{"id": 1, "v": "a1", "ts": 1}, {"id": 2, "v": "b1", "ts": 1}])
    destination = {"write_mode": "merge", "merge_keys": ["id"], "merge_order_by": "ts"}
    ing = services.ingestions.create(spec(str(landing), destination=destination), activate=True)
    uri = services.embedded.table_uri(ing.spec.destination)
    services.runs.run_now(ing.name)
    # in one batch: id 1 twice (the higher ts wins although it comes first), id 3 new
    _write(
        landing / "b.json",
        [{"id": 1, "v": "a3", "ts": 3}, {"id": 1, "v": "a2", "ts": 2}, {"id": 3, "v": "c1", "ts": 1}],
    )
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS, outcome
    rows = {r["id"]: r["v"] for r in read_table(uri).to_pylist()}
    assert rows == {1: "a3", 2: "b1", 3: "c1"}


def test_zorder_optimizes_after_load(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing, 4, 25)
    ing = services.ingestions.create(
        spec(str(landing), destination={"z_order_columns": ["id"]}, limits={"max_files_per_batch": 1}), activate=True
    )
    services.runs.run_now(ing.name)
    dt = DeltaTable(services.embedded.table_uri(ing.spec.destination))
    operations = [h["operation"] for h in dt.history()]
    assert "OPTIMIZE" in operations
    assert operations.count("WRITE") == 4  # one commit per batch of one file
    assert dt.to_pyarrow_table().num_rows == 100
    assert len(dt.file_uris()) == 1


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_sources(services, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    landing = tmp_path / "in"
    landing.mkdir()
    for i in range(3):
        t = pa.table({"id": list(range(i * 10, i * 10 + 10)), "name": [f"n{j}" for j in range(10)]})
        if fmt == "csv":
            pcsv.write_csv(t, landing / f"f{i}.csv")
        else:
            pq.write_table(t, landing / f"f{i}.parquet")
    ing = services.ingestions.create(spec(str(landing), format={"type": fmt}), activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS, outcome
    table = read_table(services.embedded.table_uri(ing.spec.destination))
    assert sorted(table.column("id").to_pylist()) == list(range(30))
    assert pa.types.is_integer(table.schema.field("id").type)


def test_mostly_distinct_columns_are_written_without_a_dictionary(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The writer skips the dictionary for columns whose first batch is mostly distinct (ids), keeps it for the
    others (countries), and the table reads back the same either way."""
    rows = [{"id": i, "key": f"k-{i:06d}", "country": ("DE", "FR", "KR")[i % 3]} for i in range(20_000)]
    _write(tmp_path / "in" / "rows.json", rows)
    ing = services.ingestions.create(spec(str(tmp_path / "in")), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    uri = services.embedded.table_uri(ing.spec.destination)
    encodings: dict[str, set[str]] = {}
    for data_file in Path(uri).rglob("*.parquet"):
        metadata = pq.read_metadata(data_file)
        for group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                chunk = metadata.row_group(group).column(column)
                encodings.setdefault(chunk.path_in_schema, set()).update(chunk.encodings)
    dictionary = {"RLE_DICTIONARY", "PLAIN_DICTIONARY"}
    assert not encodings["id"] & dictionary and not encodings["key"] & dictionary, encodings
    assert encodings["country"] & dictionary and encodings["_source_file"] & dictionary, encodings
    table = read_table(uri).sort_by("id")
    assert table.select(["id", "key", "country"]).to_pylist() == rows

"""Schema inference from a sample, type inference on/off, manual schemas and hints, multi-line JSON."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from core.domain import RunStatus
from tests.helpers import read_table, spec, write_json_files


def test_type_inference_off_keeps_strings(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 1, 5)
    ing = services.ingestions.create(
        spec(str(tmp_path / "in"), format={"type": "json", "schema": {"infer_types": False}}), activate=True
    )
    services.runs.run_now(ing.name)
    schema = read_table(services.embedded.table_uri(ing.spec.destination)).schema
    assert schema.field("id").type == pa.string() and schema.field("amount").type == pa.string()


def test_manual_schema_and_hints(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 1, 5)
    manual = {
        "inference": "manual",
        "schema_json": [{"name": "id", "type": "bigint"}, {"name": "name", "type": "string"}],
    }
    ing = services.ingestions.create(
        spec(str(tmp_path / "in"), format={"type": "json", "schema": manual}), activate=True
    )
    services.runs.run_now(ing.name)
    table = read_table(services.embedded.table_uri(ing.spec.destination))
    data_columns = [c for c in table.column_names if not c.startswith("_")]
    assert data_columns == ["id", "name"]
    assert all('"amount"' in r for r in table.column("_rescued_data").to_pylist())  # undeclared fields kept

    hinted = spec(
        str(tmp_path / "in"),
        name="hinted",
        table="hinted",
        format={"type": "json", "schema": {"hints": {"amount": "string"}}},
    )
    ing2 = services.ingestions.create(hinted, activate=True)
    services.runs.run_now(ing2.name)
    assert read_table(services.embedded.table_uri(ing2.spec.destination)).schema.field("amount").type == pa.string()


def test_multiline_json_documents(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "array.json").write_text(json.dumps([{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}], indent=2))
    (landing / "object.json").write_text(json.dumps({"id": 3, "tags": ["b", "c"]}, indent=4))
    ing = services.ingestions.create(
        spec(str(landing), format={"type": "json", "options": {"multiline": True}}), activate=True
    )
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS, outcome
    rows = {r["id"]: r["tags"] for r in read_table(services.embedded.table_uri(ing.spec.destination)).to_pylist()}
    assert rows == {1: ["a"], 2: [], 3: ["b", "c"]}


def test_glob_pattern_selects_files(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing / "2024" / "01", 2, 3, prefix="a")
    write_json_files(landing / "2024" / "02", 1, 3, start_id=100, prefix="b")
    (landing / "notes.txt").write_text("not data")
    ing = services.ingestions.create(spec(str(landing), source={"file_pattern": "**/*.json"}), activate=True)
    assert services.runs.run_now(ing.name).metrics.files_processed == 3


@pytest.mark.parametrize("reload_changed", [False, True])
def test_changed_file_is_skipped_unless_asked(services, tmp_path: Path, reload_changed: bool) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    (path,) = write_json_files(landing, 1, 3)
    ing = services.ingestions.create(spec(str(landing), source={"reload_changed_files": reload_changed}), activate=True)
    services.runs.run_now(ing.name)
    path.write_text(path.read_text() + json.dumps({"id": 99}) + "\n")
    second = services.runs.run_now(ing.name)
    assert second.metrics.files_processed == (1 if reload_changed else 0)


def test_one_run_per_ingestion_at_a_time(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 200, 50)
    ing = services.ingestions.create(spec(str(tmp_path / "in"), limits={"max_files_per_batch": 20}), activate=True)
    outcomes = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        run_id = services.store.create_run(ing.id, "manual")
        outcomes.append(services.pipeline.execute(ing.id, run_id))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(o.status.value for o in outcomes)
    assert statuses == ["skipped", "success"]
    assert "still in progress" in next(o.message for o in outcomes if o.status == RunStatus.SKIPPED)
    assert read_table(services.embedded.table_uri(ing.spec.destination)).num_rows == 10_000

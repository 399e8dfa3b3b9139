"""Bad input never fails a whole run: good rows load, bad files are quarantined with a reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.access import SYSTEM
from core.config import IngestionSpec
from core.domain import RunStatus
from tests.helpers import read_table, spec, write_json_files


def test_bad_json_files_make_a_partial_run(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing, 2, 100)
    good_lines = [json.dumps({"id": 1000 + i, "name": "x", "amount": 1.0, "country": "DE"}) for i in range(98)]
    (landing / "c-malformed.json").write_text(
        "\n".join([*good_lines[:50], '{"id": 5, "name": oops', *good_lines[50:], "not json"]) + "\n"
    )
    (landing / "d-empty.json").write_text("")
    (landing / "e-binary.json").write_bytes(pq_bytes())
    (landing / "f-compressed.json").write_bytes(gzip.compress(b'{"id": 2000, "name": "gz"}\n'))

    ing = services.ingestions.create(spec(str(landing)), activate=True)
    outcome = services.runs.run_now(ing.name)

    assert outcome.status == RunStatus.PARTIAL
    table = read_table(services.embedded.table_uri(ing.spec.destination))
    # 200 good + 98 good + 2 malformed rows rescued + 1 from the gzip file
    assert table.num_rows == 301
    rescued = [r for r in table.column("_rescued_data").to_pylist() if r]
    assert len(rescued) == 2
    assert any("oops" in r for r in rescued) and any("not json" in r for r in rescued)
    quarantined = {e.file.rsplit("/", 1)[-1]: e for e in outcome.errors if e.kind == "quarantined"}
    assert set(quarantined) == {"d-empty.json", "e-binary.json"}
    assert all(e.message and e.action for e in quarantined.values())
    assert "empty" in quarantined["d-empty.json"].message
    malformed = [e for e in outcome.errors if e.kind == "malformed_records"]
    assert malformed[0].file.endswith("c-malformed.json")
    page = services.views.files(SYSTEM, ing.id, status="quarantined")
    total, files = page.total, page.items
    assert total == 2 and all(f.error for f in files)
    assert outcome.metrics.bad_records == 2
    # the quarantined files are not retried on the next run; nothing is loaded twice
    again = services.runs.run_now(ing.name)
    assert again.metrics.files_processed == 0
    assert read_table(services.embedded.table_uri(ing.spec.destination)).num_rows == 301


def pq_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"a": list(range(100))}), sink)
    return sink.getvalue().to_pybytes()


def test_an_archive_and_a_pretty_printed_document_say_what_they_are(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A ZIP was "binary data (NUL bytes)" and a pretty-printed JSON object did not point at the multiline option
    (an outside attack): each now says what the file is and what to do."""
    import zipfile

    landing = tmp_path / "in"
    write_json_files(landing, 1, 3)
    with zipfile.ZipFile(landing / "packed.json", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.json", '{"id": 99}\n' * 1000)
    import botocore

    rules = Path(botocore.__file__).parent / "data" / "s3" / "2006-03-01" / "endpoint-rule-set-1.json.gz"
    (landing / "pretty.json.gz").write_bytes(rules.read_bytes())  # one document over 12,000 lines (public data)
    ing = services.ingestions.create(spec(str(landing)), activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.PARTIAL and outcome.metrics.records_ingested == 3, outcome
    reasons = {Path(e.file or "").name: e.message for e in outcome.errors if e.kind == "quarantined"}
    assert "is a ZIP archive, which is not read: unpack it at the source" in reasons["packed.json"]
    assert "turn on the multiline option" in reasons["pretty.json.gz"]


def test_truncated_parquet_is_quarantined(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    for i in range(2):
        pq.write_table(pa.table({"id": list(range(i * 10, i * 10 + 10))}), landing / f"ok{i}.parquet")
    data = pq_bytes()
    (landing / "broken.parquet").write_bytes(data[: len(data) // 2])
    ing = services.ingestions.create(spec(str(landing), format={"type": "parquet"}), activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.PARTIAL
    assert [e.file.rsplit("/", 1)[-1] for e in outcome.errors if e.kind == "quarantined"] == ["broken.parquet"]
    assert read_table(services.embedded.table_uri(ing.spec.destination)).num_rows == 20


def test_a_run_lists_a_hundred_file_errors_of_a_kind_and_counts_them_all(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: a source folder moved away mid-run stored 1,700 `file_vanished` errors on one run (a
    460 KB runs list). The first 100 of a kind are listed; every file keeps its reason in the ledger."""
    from core.pipeline import FILE_ERRORS_LISTED

    landing = tmp_path / "in"
    landing.mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), landing / "ok.parquet")
    for i in range(FILE_ERRORS_LISTED + 30):
        (landing / f"broken{i:03d}.parquet").write_bytes(b"PAR1 not really")
    ing = services.ingestions.create(spec(str(landing), format={"type": "parquet"}), activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.PARTIAL
    assert outcome.metrics.files_quarantined == FILE_ERRORS_LISTED + 30
    assert sum(e.kind == "quarantined" for e in outcome.errors) == FILE_ERRORS_LISTED
    assert f"{FILE_ERRORS_LISTED + 30} files quarantined" in outcome.message, outcome.message
    set_aside = services.views.files(SYSTEM, ing.id, "quarantined", None, 1000, 0)
    assert set_aside.total == FILE_ERRORS_LISTED + 30 and all(f.error for f in set_aside.items)


def test_too_many_bad_records_quarantines_the_offending_file(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A batch over max_bad_record_ratio names the file that put it over, quarantines it and loads the rest."""
    landing = tmp_path / "in"
    write_json_files(landing, 1, 10)
    bad = landing / "mostly-bad.json"
    bad.write_text('{"id": 1}\n' + "garbage\n" * 3 + '{"id": 2}\n' * 6)
    ing = services.ingestions.create(spec(str(landing), quality={"max_bad_record_ratio": 0.1}), activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.PARTIAL
    quarantined = [e for e in outcome.errors if e.kind == "quarantined"]
    assert [e.file for e in quarantined] == [str(bad)]
    assert "3 of 10 records are malformed" in quarantined[0].message
    assert "max_bad_record_ratio" in quarantined[0].action
    assert read_table(services.embedded.table_uri(ing.spec.destination)).num_rows == 10
    page = services.views.files(SYSTEM, ing.id, status="quarantined")
    assert page.total == 1 and "malformed" in (page.items[0].error or "")


def test_missing_folder_is_a_clear_terminal_error(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ing = services.ingestions.create(spec(str(tmp_path / "nope")), activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.FAILED
    assert str(tmp_path / "nope") in outcome.message
    assert outcome.errors[0].action


def test_new_column_is_added(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing, 1, 10)
    auto_merge = {"type": "json", "schema": {"on_schema_change": "auto_merge"}}
    ing = services.ingestions.create(spec(str(landing), format=auto_merge), activate=True)
    services.runs.run_now(ing.name)
    (landing / "z-new.json").write_text(
        json.dumps({"id": 99, "name": "n", "amount": 1.5, "country": "DE", "vip": True}) + "\n"
    )
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS
    table = read_table(services.embedded.table_uri(ing.spec.destination))
    assert "vip" in table.column_names
    assert table.num_rows == 11
    assert table.column("vip").null_count == 10
    versions = services.views.schema_versions(SYSTEM, ing.id)
    assert [v.version for v in versions] == [1, 2]
    assert "vip" in versions[1].reason


def test_type_clash_is_rescued_not_truncated(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.json").write_text('{"id": 1, "qty": 4}\n')
    rescue = {"type": "json", "schema": {"on_schema_change": "rescue"}}
    ing = services.ingestions.create(spec(str(landing), format=rescue), activate=True)
    services.runs.run_now(ing.name)
    (landing / "b.json").write_text('{"id": 2, "qty": 4.7}\n')
    services.runs.run_now(ing.name)
    rows = {r["id"]: r for r in read_table(services.embedded.table_uri(ing.spec.destination)).to_pylist()}
    assert rows[2]["qty"] is None
    assert "4.7" in rows[2]["_rescued_data"]


def test_a_file_set_aside_before_a_commit_that_fails_is_said_on_the_run(  # type: ignore[no-untyped-def]
    services, tmp_path: Path, monkeypatch
) -> None:
    """The set-aside file's ledger row is written before the commit; when the commit then failed, the run never
    said so (found by an attack helper): it was quarantined without a word on any run."""
    from core.pipeline import RunPipeline

    landing = tmp_path / "in"
    landing.mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), landing / "a.parquet")
    (landing / "b.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    record = RunPipeline._record_set_aside

    def then_the_commit_fails(self, *args):  # type: ignore[no-untyped-def]
        record(self, *args)
        monkeypatch.setattr(RunPipeline, "_record_set_aside", record)
        raise OSError("the commit failed (simulated: no store here fails on cue)")

    monkeypatch.setattr(RunPipeline, "_record_set_aside", then_the_commit_fails)
    ing = services.ingestions.create(spec(str(landing), format={"type": "parquet"}), activate=True)
    failed = services.runs.run_now(ing.name)
    assert failed.status == RunStatus.FAILED and failed.metrics.files_quarantined == 1, failed
    assert [Path(e.file or "").name for e in failed.errors if e.kind == "quarantined"] == ["b.parquet"]
    again = services.runs.run_now(ing.name)
    assert again.status == RunStatus.SUCCESS and again.metrics.files_processed == 1, again
    assert sorted(read_table(services.embedded.table_uri(ing.spec.destination)).column("id").to_pylist()) == [1, 2]
    aside = services.views.files(SYSTEM, ing.id, status="quarantined").items
    assert [Path(f.path).name for f in aside] == ["b.parquet"]


def test_a_batch_whose_files_are_all_set_aside_creates_no_table(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: a JSON array read without `multiline` (or a `;` CSV read with `,`) was quarantined,
    but the table was created from it anyway, with no column (or one column named after the whole header) for
    good; after the fix every real column was a schema change waiting for review. Now nothing is created until a
    file loads, and the fixed file creates the table with its own columns."""
    landing = tmp_path / "in"
    landing.mkdir()
    array = landing / "cars.json"
    array.write_text('[{"name": "a", "mpg": 18.0},\n {"name": "b", "mpg": null}]\n')
    ing = services.ingestions.create(spec(str(landing), table="cars"), activate=True)
    first = services.runs.run_now(ing.name)
    assert first.status == RunStatus.PARTIAL and first.metrics.files_quarantined == 1, first
    assert "multiline" in first.errors[0].message, first.errors
    assert services.embedded.table_schema(ing.spec.destination) is None
    assert services.views.schema_versions(SYSTEM, ing.id) == []

    body = ing.spec.model_dump(by_alias=True)
    body["format"]["options"]["multiline"] = True
    fixed = IngestionSpec.model_validate(body)
    services.ingestions.update(ing.id, fixed)
    _, run_id = services.runs.reprocess(ing.id, paths=[str(array)])
    services.runner.wait(run_id, timeout=60)
    assert services.store.get_run_by_id(run_id).status == RunStatus.SUCCESS
    table = read_table(services.embedded.table_uri(ing.spec.destination))
    assert [c for c in table.column_names if not c.startswith("_")] == ["name", "mpg"] and table.num_rows == 2
    versions = services.views.schema_versions(SYSTEM, ing.id)
    assert [(v.version, v.status) for v in versions] == [(1, "applied")], versions


def test_a_set_aside_file_does_not_change_an_existing_tables_schema(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text("id,amount\n1,2.5\n")
    fmt = {"type": "csv", "options": {"header": True}, "schema": {"on_schema_change": "auto_merge"}}
    ing = services.ingestions.create(spec(str(landing), table="amounts", format=fmt), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    uri = services.embedded.table_uri(ing.spec.destination)
    before = read_table(uri).schema

    (landing / "b.csv").write_text("id;amount\n" + "".join(f"{i};{i},5\n" for i in range(2, 40)))  # `;` and `,`
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.PARTIAL and outcome.metrics.files_quarantined == 1, outcome
    assert "delimiter" in outcome.errors[0].message, outcome.errors
    assert read_table(uri).schema == before and read_table(uri).num_rows == 1
    assert [v.version for v in services.views.schema_versions(SYSTEM, ing.id)] == [1]


def test_a_semicolon_csv_that_loads_as_one_column_is_named_on_the_run(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Values without a comma make every row one field wide: the file loads (its text is all there), and the run
    says which delimiter its header points to."""
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "p.csv").write_text("species;island;year\nAdelie;Torgersen;2007\n")
    ing = services.ingestions.create(spec(str(landing), table="semi", format={"type": "csv"}), activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS, outcome
    assert "table main.raw.semi was created with one column: the first row is one column holding ';' 2 times" in (
        outcome.message
    ), outcome.message
    assert "set format.options.delimiter to ';'" in outcome.message
    renamed = "column stored under names Spark and Delta readers accept: 'species;island;year' as 'species_island_year'"
    assert renamed in outcome.message, outcome.message

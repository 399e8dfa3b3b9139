"""Reader options end to end: one ingestion run per option family, through the product's run_now."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

from core.domain import RunStatus
from tests.helpers import read_table, spec


def _run(services: Any, landing: Path, table: str, fmt: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    ingestion = services.ingestions.create(spec(str(landing), table=table, format=fmt), activate=True)
    outcome = services.runs.run_now(ingestion.name)
    rows = (
        read_table(services.embedded.table_uri(ingestion.spec.destination)).to_pylist()
        if outcome.metrics.files_processed
        else []
    )
    return outcome, sorted(rows, key=lambda r: (r.get("id") is None, r.get("id") or 0))


def _rescued(row: dict[str, Any]) -> dict[str, Any]:
    value = json.loads(row["_rescued_data"])
    value.pop("_file_path", None)  # where the row came from, not what was rescued
    return dict(value)


def _quarantined(outcome: Any) -> dict[str, str]:
    return {e.file.rsplit("/", 1)[-1]: e.message for e in outcome.errors if e.kind == "quarantined"}


def test_encodings(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_bytes("id,city\n1,Zürich €\n".encode("cp1252"))
    (landing / "b.csv").write_bytes("id,city\n2,Malmö\n".encode("cp1252"))
    (landing / "c.csv").write_bytes(codecs.BOM_UTF16_LE + "id,city\n3,Åre\n".encode("utf-16-le"))  # the BOM wins
    (landing / "d.csv").write_bytes(b"id,city\n4,\x81\n")  # not windows-1252
    outcome, rows = _run(services, landing, "enc", {"type": "csv", "options": {"encoding": "windows-1252"}})
    assert outcome.status == RunStatus.PARTIAL, outcome.errors
    assert [(r["id"], r["city"]) for r in rows] == [(1, "Zürich €"), (2, "Malmö"), (3, "Åre")], outcome.errors
    assert "windows-1252 (byte offset 10" in _quarantined(outcome)["d.csv"]


def test_csv_comment_ragged_and_badly_quoted_rows(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    good = "".join(f"{i},g,{i}\n" for i in range(10, 40))
    text = '# export\nid,name,n\n1,a,1\n# note\n2,b\n3,c,3,extra\n"4 \\"x\\" y",d,4\n' + good
    (landing / "a.csv").write_text(text)
    outcome, rows = _run(services, landing, "csvopts", {"type": "csv", "options": {"comment": "#"}})
    assert outcome.status == RunStatus.SUCCESS, outcome
    assert [(r["id"], r["name"], r["n"]) for r in rows[:3]] == [(1, "a", 1), (2, "b", None), (3, "c", 3)]
    assert _rescued(rows[2]) == {"_c3": "extra"}
    assert _rescued(rows[-1]) == {"_malformed": '"4 \\"x\\" y",d,4'}
    assert outcome.metrics.bad_records == 1 and outcome.metrics.records_ingested == 34


def test_modes(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    drop, fail = tmp_path / "drop", tmp_path / "fail"
    for folder in (drop, fail):
        folder.mkdir()
        good = "".join(f'{{"id": {i}}}\n' for i in range(10, 40))
        (folder / "a.json").write_text('{"id": 1}\n{"id": 2\n{"id": 3}\n' + good)
        (folder / "b.json").write_text('{"id": 4}\n')
    outcome, rows = _run(services, drop, "dropped", {"type": "json", "options": {"mode": "dropmalformed"}})
    assert [r["id"] for r in rows] == [1, 3, 4, *range(10, 40)] and outcome.metrics.bad_records == 1
    assert all(r["_rescued_data"] is None for r in rows)
    (dropped,) = [e for e in outcome.errors if e.kind == "malformed_records"]
    assert "dropped (mode dropmalformed)" in dropped.message and dropped.file.endswith("a.json")
    outcome, rows = _run(services, fail, "failed", {"type": "json", "options": {"mode": "failfast"}})
    assert outcome.status == RunStatus.PARTIAL and [r["id"] for r in rows] == [4]
    assert "malformed line 2" in _quarantined(outcome)["a.json"]


def test_json_single_quotes_and_primitives_as_string(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.json").write_text("{'id': 1, 'price': 1.50, 'ok': true}\n{\"id\": 2, \"price\": 10, \"ok\": false}\n")
    fmt = {"type": "json", "options": {"primitives_as_string": True}}
    outcome, rows = _run(services, landing, "prims", fmt)
    assert outcome.status == RunStatus.SUCCESS, outcome
    assert sorted((r["id"], r["price"], r["ok"]) for r in rows) == [("1", "1.50", "true"), ("2", "10", "false")]


def test_dropped_records_count_in_the_bad_record_share_of_every_record_read(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "half"
    landing.mkdir()
    (landing / "a.json").write_text('{"id": 1}\n{"id": 2\n{"id": 3}\n{"id": \n')  # 2 of 4 records malformed
    ingestion = services.ingestions.create(
        spec(
            str(landing),
            table="half",
            format={"type": "json", "options": {"mode": "dropmalformed"}},
            quality={"max_bad_record_ratio": 0.6},
        ),
        activate=True,
    )
    outcome = services.runs.run_now(ingestion.name)
    assert outcome.status == RunStatus.SUCCESS, outcome.message  # 2 of 4 read (50 %), not 2 of the 2 kept
    assert outcome.metrics.records_ingested == 2 and outcome.metrics.bad_records == 2

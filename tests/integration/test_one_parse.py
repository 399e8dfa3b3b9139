"""Small JSON-lines files read whole by the schema inference are loaded from that parse (core/engines/parsed_files.py)
instead of being read and parsed again; a file whose parse cannot be shown to give the reader's rows is read.

Differential: the same files, through the same three runs (a new table, then new files checked against it), are
loaded once as shipped and once with nothing kept from the inference. The tables must be equal, and the plain files
must really have come from the parses (a test that could not tell the two paths apart would prove nothing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from core.domain import RunStatus
from core.engines.embedded import EmbeddedEngine
from core.engines.parsed_files import ParsedFiles
from tests.helpers import read_table, spec

AUTO_MERGE = "auto_merge"
PLAIN = {
    "a-ints.json": [{"id": i, "name": f"n{i}", "amount": i * 0.25, "ok": i % 2 == 0} for i in range(5)],
    "a2-not-kept.json": [{"id": 5, "name": "n5", "amount": 1.25}],  # its parse is not kept (see the test): read
    "b-times.json": [{"id": 10 + i, "ts": f"2024-03-0{i + 1}T10:00:00Z", "day": f"2024-03-0{i + 1}"} for i in range(3)],
    "c-nested.json": [{"id": 20, "obj": {"x": 1, "y": "z"}, "tags": ["a", "b"]}, {"id": 21, "obj": None, "tags": []}],
    "d-missing.json": [{"id": 30}, {"id": 31, "name": None}],
    "e-unicode.json": [{"id": 40, "name": "Zürich ☃ \u2028 line"}, {"id": 41, "name": ""}],
}
SPECIAL = {
    "f-string-number.json": [{"id": 50, "name": 7}],  # a number in a text column: typed apart from the others
    "g-big-int.json": [{"id": 12345678901234567890123}],  # no int64 or double holds it
    "h-long-double.json": [{"id": 60, "amount": 0.1000000000000000055511151231257827}],
    "i-case.json": [{"id": 70, "ID": 71}],
    "j-space key.json": [{"id": 80, "a key": 1}],
    "k-malformed.json": None,  # written below: one good line, one broken
}
LATER = {
    "l-later.json": [{"id": 90, "name": "later", "amount": 1.5, "ok": True}],
    "m-later-new-key.json": [{"id": 91, "extra": "x"}],
    "n-later-ts.json": [{"id": 92, "ts": "2024-04-01T00:00:00Z", "day": "2024-04-01"}],
}


def _write(folder: Path, files: dict[str, list[dict[str, Any]] | None]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        if rows is None:
            (folder / name).write_text('{"id": 99, "name": "good"}\n{"id": 100, "name": \n')
        else:
            (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _load(services: Any, folder: Path, table: str) -> list[tuple[str, pa.Table]]:
    """Each run's status and the table after it: PLAIN into a new table, then LATER (new files checked against the
    table), then SPECIAL (some of it is held for review: a number where the table has text)."""
    ingestion = services.ingestions.create(
        spec(
            str(folder), table=table, name=f"one-parse-{table}", format={"schema": {"on_schema_change": "auto_merge"}}
        ),
        activate=True,
    )
    uri = services.embedded.table_uri(ingestion.spec.destination)
    tables = []
    for files in (PLAIN, LATER, SPECIAL):
        _write(folder, files)
        outcome = services.runs.run_now(ingestion.name)
        assert outcome.status in (RunStatus.SUCCESS, RunStatus.PARTIAL), outcome
        table = read_table(uri).drop_columns(["_ingested_at", "_run_id"])
        tables.append((outcome.status.value, table.sort_by([("_source_file", "ascending"), ("id", "ascending")])))
    return tables


def _placeless(table: pa.Table, folder: Path) -> list[dict[str, Any]]:
    """The rows with the landing folder's path taken out (of `_source_file` and the rescued `_file_path`)."""
    rows = table.to_pylist()
    for row in rows:
        for column in ("_source_file", "_rescued_data"):
            if row[column] is not None:
                row[column] = row[column].replace(str(folder), "")
    return rows


def _taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the load took from a parse (spied on EmbeddedEngine._parsed_pieces)."""
    taken: list[str] = []
    original = EmbeddedEngine._parsed_pieces

    def spy(self: EmbeddedEngine, request: Any, files: list[Any], data_schema: pa.Schema) -> list[pa.Table | None]:
        pieces = original(self, request, files, data_schema)
        taken.extend(Path(f.path).name for f, piece in zip(files, pieces, strict=True) if piece is not None)
        return pieces

    monkeypatch.setattr(EmbeddedEngine, "_parsed_pieces", spy)
    return taken


def test_loading_from_the_inference_parse_gives_the_table_a_read_gives(
    services: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = _taken(monkeypatch)
    keep = ParsedFiles.keep
    # One file of the first group is not kept (as a file typed in Python is not): it alone is read.
    monkeypatch.setattr(
        ParsedFiles,
        "keep",
        lambda self, info, rows: None if info.path.endswith("a2-not-kept.json") else keep(self, info, rows),
    )
    shipped = _load(services, tmp_path / "kept", "kept")
    used = set(taken)

    monkeypatch.setattr(ParsedFiles, "keep", lambda self, info, rows: None)
    taken.clear()
    read_again = _load(services, tmp_path / "read", "read")
    assert taken == []

    assert (
        [status for status, _ in shipped] == [status for status, _ in read_again] == ["success", "success", "partial"]
    )
    for (_, ours), (_, theirs) in zip(shipped, read_again, strict=True):
        assert ours.schema == theirs.schema
        assert _placeless(ours, tmp_path / "kept") == _placeless(theirs, tmp_path / "read")
    # The file not kept is read; the others of its group still come from their parses.
    assert (set(PLAIN) - {"a2-not-kept.json"}) | set(LATER) <= used, sorted(used)
    assert not used & (set(SPECIAL) | {"a2-not-kept.json"}), sorted(used)

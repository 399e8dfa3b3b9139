"""The schema-change scenario of issue 5: 3 JSON files with 5 columns loaded, then 2 files with 2 more columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASE_COLUMNS = ("id", "name", "amount", "country", "active")
NEW_COLUMNS = ("email", "score")


def _row(n: int, extended: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": n,
        "name": f"user-{n}",
        "amount": n * 0.5,
        "country": ["DE", "US", "FR"][n % 3],
        "active": n % 2 == 0,
    }
    if extended:
        row |= {"email": f"user-{n}@example.com", "score": n % 100}
    return row


def write_files(folder: Path, count: int, rows: int, start: int, extended: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        first = start + index * rows
        lines = (json.dumps(_row(n, extended)) for n in range(first, first + rows))
        (folder / f"{'v2' if extended else 'v1'}-{first:06d}.json").write_text("\n".join(lines) + "\n")


def prepare_needs_review(services: Any, source: Path, rows_per_file: int = 1000, name: str = "events") -> int:
    """Load 3 files of the current schema, then hold 2 files with new columns: returns the ingestion id."""
    from tests.helpers import spec

    write_files(source, 3, rows_per_file, 0, extended=False)
    ingestion = services.ingestions.create(spec(str(source), table=name, name=name), activate=True)
    services.runs.run_now(str(ingestion.id))
    write_files(source, 2, rows_per_file, 3 * rows_per_file, extended=True)
    services.runs.run_now(str(ingestion.id))
    status = services.store.get_ingestion(ingestion.id).status
    assert status == "needs_review", status
    return int(ingestion.id)

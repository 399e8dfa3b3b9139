"""Test data builders."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from deltalake import DeltaTable

from core.config import IngestionSpec


def write_json_files(folder: Path, count: int, records: int, start_id: int = 0, prefix: str = "part") -> list[Path]:
    """`count` JSON-lines files with `records` rows each and globally unique ids from `start_id`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    next_id = start_id
    for index in range(count):
        path = folder / f"{prefix}-{start_id + index * records:08d}.json"
        lines = []
        for _ in range(records):
            lines.append(
                json.dumps(
                    {
                        "id": next_id,
                        "name": f"user-{next_id}",
                        "amount": next_id * 0.5,
                        "country": ["DE", "US", "FR"][next_id % 3],
                    }
                )
            )
            next_id += 1
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def spec(source_path: str, table: str = "events", **overrides: Any) -> IngestionSpec:
    body: dict[str, Any] = {
        "name": overrides.pop("name", f"ingest-{table}"),
        "source": {"type": "local", "path": source_path},
        "format": {"type": "json"},
        "destination": {"catalog": "main", "database": "raw", "table": table},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return IngestionSpec.model_validate(body)


def read_table(uri: str) -> Any:
    return DeltaTable(uri).to_pyarrow_table()


REMOVED_STATE: dict[Path, str] = {}
"""State folders removed at a fixture's end, and whose: one that exists again at the session's end was written to by
something that outlived its test (a thread or process still using the metadata DB). conftest's pytest_sessionfinish
names them in REAPPEARED_STATE_LOG (xdist workers print nowhere) and removes them."""
REAPPEARED_STATE_LOG = Path(tempfile.gettempdir()) / "autoloader-tests-reappeared-state.log"


def remove_state(path: Path, owner: str) -> None:
    """Remove a test's state folder, noting whose it was."""
    shutil.rmtree(path, ignore_errors=True)
    REMOVED_STATE[path] = owner


class RewritesAfterListing:
    """A source as listed, with one file given `content` right after the first listing (a producer replacing it in
    place between a run's listing and its reads); later listings are left alone."""

    def __init__(self, inner: Any, victim: Path, content: str):
        self.inner, self.victim, self.content, self.done = inner, victim, content, False
        self.root, self.partition_columns = inner.root, inner.partition_columns

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list_files(self, pattern: str | None = None, *, start_after: str | None = None) -> Any:
        listed = list(self.inner.list_files(pattern, start_after=start_after))
        if not self.done:
            self.done = True
            time.sleep(0.01)  # a new modification time
            self.victim.write_text(self.content)
        return iter(listed)

    def open(self, path: str, version: str | None = None) -> Any:
        return self.inner.open(path, version)

    def open_seekable(self, path: str, version: str | None = None) -> Any:
        return self.inner.open_seekable(path, version)

"""Structured logs (AUTOLOADER_LOG_FORMAT=json): one JSON object per line, and the run's ids on every line logged
while it executes — in the server's run workers and in `autoloader run`. The log format does not depend on the
metadata database: SQLite only."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.logging_setup import make_handler
from tests.conftest import clean_env, run_cli
from tests.helpers import spec, write_json_files

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the project's loggers write at INFO, through the JSON handler the CLI installs (a library's line from
    another test's leftover thread would not be this run's)."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    handler.addFilter(lambda record: record.name.startswith(("app.", "core.")))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _objects(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    objects = [json.loads(line) for line in lines]  # each line on its own is one JSON object
    assert all(isinstance(o, dict) and {"time", "level", "logger", "message"} <= o.keys() for o in objects), objects
    return objects


@SQLITE_ONLY
def test_a_runs_lines_are_json_with_its_ids(services, tmp_path: Path, json_log: io.StringIO) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 2, 10)
    ingestion = services.ingestions.create(spec(str(tmp_path / "in"), name="logged"), activate=True)
    run_id = services.runs.trigger(ingestion.id)
    services.runner.wait(run_id)

    lines = _objects(json_log.getvalue())
    assert [line["message"].split(":")[0] for line in lines] == [
        f"run {run_id} of ingestion {ingestion.id} started",
        f"run {run_id} ended success",
    ]
    assert all(line["run_id"] == run_id and line["ingestion_id"] == ingestion.id for line in lines), lines


@SQLITE_ONLY
def test_autoloader_run_logs_json_lines(services, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 2, 10)
    services.ingestions.create(spec(str(tmp_path / "in"), name="nightly"), activate=True)
    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
        "AUTOLOADER_LOG_FORMAT": "JSON",
        "AUTOLOADER_LOG_LEVEL": "info",
    }
    result = run_cli("run", "nightly", "--json", env=env)
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]

    lines = _objects(result.stderr)
    messages = [line["message"] for line in lines]
    start = messages.index(f"run {run_id} of ingestion 1 started")
    end = next(i for i, m in enumerate(messages) if m.startswith(f"run {run_id} ended success"))
    assert start < end
    assert all(line.get("run_id") == run_id for line in lines[start : end + 1]), lines
    assert all("run_id" not in line for line in lines[:start]), "lines before the run carry no run id"

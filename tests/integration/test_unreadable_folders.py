"""A sub-folder the server may not list is skipped with a reason on the run; the rest of the source loads, and the
folder's files load once it is readable. The tests run as root, which ignores permissions, so the refusal is
injected: `os.scandir` raises PermissionError for that one folder (what a non-root server gets from the kernel)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from core.domain import RunStatus
from tests.helpers import read_table, spec, write_json_files


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Folders whose listing is refused while their path is in the returned set."""
    refused: set[str] = set()
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        if os.fspath(path) in refused:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return refused


def test_an_unlistable_sub_folder_is_skipped_and_loads_once_readable(services, tmp_path: Path, locked) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing / "open", 2, 10)
    write_json_files(landing / "secret", 3, 10, start_id=1000)
    locked.add(str(landing / "secret"))
    ing = services.ingestions.create(spec(str(landing), source={"file_pattern": "**/*.json"}), activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    assert outcome.metrics.files_processed == 2
    assert f"{landing / 'secret'} skipped: a sub-folder this server has no permission to list" in outcome.message
    assert "read and execute permission" in outcome.message
    locked.clear()
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    assert outcome.metrics.files_processed == 3
    assert read_table(services.embedded.table_uri(ing.spec.destination)).num_rows == 50


def test_an_unlistable_root_is_still_a_clear_terminal_error(services, tmp_path: Path, locked) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing, 1, 5)
    ing = services.ingestions.create(spec(str(landing)), activate=True)
    locked.add(str(landing))
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.FAILED
    assert "permission" in (outcome.errors[0].message + outcome.errors[0].action).lower()

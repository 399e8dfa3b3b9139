"""How `autoloader run` prints a run's errors: each file named once."""

from __future__ import annotations

from app.cli import error_lines
from core.domain import RunError


def test_a_bad_files_message_is_not_prefixed_with_the_path_it_starts_with() -> None:
    error = RunError(
        kind="quarantined",
        message="/data/in/bad.json is not valid JSON: line 1: unexpected end",
        action="Fix the file.",
        file="/data/in/bad.json",
    )
    assert error_lines(error) == "  ! /data/in/bad.json is not valid JSON: line 1: unexpected end\n    → Fix the file."


def test_a_message_that_does_not_name_its_file_gets_it_in_front() -> None:
    error = RunError(kind="file_vanished", message="the file was deleted after the listing", file="/data/in/a.csv")
    assert error_lines(error) == "  ! /data/in/a.csv: the file was deleted after the listing"


def test_an_error_of_no_file_is_its_message() -> None:
    assert error_lines(RunError(kind="run", message="the cluster is down", action="Start it.")) == (
        "  ! the cluster is down\n    → Start it."
    )

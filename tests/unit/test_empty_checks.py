"""Which fires of a continuous ingestion are folded into its count of empty checks (app/runner.empty_check)."""

from __future__ import annotations

import pytest

from app.runner import empty_check
from core.domain import RunError, RunMetrics, RunOutcome, RunStatus

QUIET = RunOutcome(1, RunStatus.SUCCESS, RunMetrics(), message="No new files.")


def test_a_quiet_scheduled_check_of_a_continuous_ingestion_is_counted() -> None:
    assert empty_check("continuous", "scheduled", QUIET) is True


def test_a_check_skipped_behind_a_running_run_is_dropped_uncounted() -> None:
    skipped = RunOutcome(1, RunStatus.SKIPPED, RunMetrics(), message="Skipped: run 7 of this ingestion is in progress.")
    assert empty_check("continuous", "scheduled", skipped) is False


@pytest.mark.parametrize(
    ("mode", "trigger", "outcome"),
    [
        ("scheduled", "scheduled", QUIET),  # a cron schedule keeps its runs
        ("continuous", "manual", QUIET),  # someone asked for it
        ("continuous", "catch_up", QUIET),  # says the server was down
        ("continuous", "retry", QUIET),
        ("continuous", "scheduled", RunOutcome(1, RunStatus.SUCCESS, RunMetrics(files_processed=2), message="Loaded")),
        ("continuous", "scheduled", RunOutcome(1, RunStatus.SUCCESS, RunMetrics(files_quarantined=1), message="x")),
        ("continuous", "scheduled", RunOutcome(1, RunStatus.FAILED, RunMetrics(), [RunError("source", "gone", "")])),
        (
            "continuous",
            "scheduled",
            RunOutcome(1, RunStatus.SUCCESS, RunMetrics(), message="No new files. 2 files changed after being loaded."),
        ),
        (
            "continuous",
            "scheduled",
            RunOutcome(1, RunStatus.SUCCESS, RunMetrics(), message="No new files.", schema_pending=True),
        ),
    ],
)
def test_everything_else_stays_a_run(mode: str, trigger: str, outcome: RunOutcome) -> None:
    assert empty_check(mode, trigger, outcome) is None


NOTED = RunOutcome(
    1, RunStatus.SUCCESS, RunMetrics(), message="No new files. Notes: /in/link.json skipped: a symbolic link to nothing"
)


def test_a_note_the_last_stored_run_already_gave_is_folded_not_repeated() -> None:
    """A file left out on every listing is reported by one stored run, not by every check a few seconds apart."""
    assert empty_check("continuous", "scheduled", NOTED, previous_message=NOTED.message) is True
    assert empty_check("continuous", "scheduled", NOTED, previous_message="No new files.") is None
    assert empty_check("continuous", "scheduled", NOTED, previous_message=None) is None
    loaded_before = "Loaded 3 records from 1 file. Notes: /in/link.json skipped: a symbolic link to nothing"
    assert empty_check("continuous", "scheduled", NOTED, previous_message=loaded_before) is None

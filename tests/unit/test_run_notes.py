"""The run history's last column: a run's errors, or for a run that did not fail what its message says beyond the
loaded summary (a run that held every file for schema review read "success, 0 files" with nothing beside it)."""

from __future__ import annotations

from components.run_table import notes_of


def test_notes_are_what_the_message_says_beyond_its_summary() -> None:
    held = "Loaded 0 records from 0 files. 2 files held for schema review."
    assert notes_of(held) == "2 files held for schema review."
    assert notes_of("Loaded 1,200 records from 1 file. 1 file rewritten while being read.") == (
        "1 file rewritten while being read."
    )
    assert notes_of("Loaded 3 records from 1 file.") == ""
    assert notes_of("No new files.") == ""
    assert notes_of("Skipped: a run of this ingestion is still in progress.") == (
        "Skipped: a run of this ingestion is still in progress."
    )

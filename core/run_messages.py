"""Notes and errors a run reports about its files, in the words its message and error list use."""

from __future__ import annotations

import itertools

from core.domain import RunError
from core.storage.base import Storage
from core.wording import counted

UNMATCHED_SHOWN = 1000
"""At most this many files are listed without the pattern to tell a pattern that matches nothing."""


def unmatched_files(storage: Storage, shown: int = 3) -> str | None:
    """When a file pattern matched nothing: the files the path holds that it does not match (a bounded second
    listing without the pattern), and how patterns are read; None when the path holds no file either."""
    others = list(itertools.islice(storage.list_files(None), UNMATCHED_SHOWN))
    if not others:
        return None
    root = storage.root.rstrip("/") + "/"
    names = ", ".join(f.path.removeprefix(root) for f in others[:shown])
    one = len(others) == 1
    count = counted(len(others), "file", more=len(others) == UNMATCHED_SHOWN)
    return (
        f"{count} under the path {'does' if one else 'do'} not match it (e.g. {names}); fix the pattern "
        "(it is relative to the path: *.json matches the top folder only, **/*.json every sub-folder)"
    )


def waiting_note(count: int, min_age: int) -> str:
    return (
        f"{counted(count, 'file')} modified less than {min_age} s ago {'waits' if count == 1 else 'wait'} for a later "
        "run (source.min_file_age_seconds), "
        "so a file still being written is not read half-way"
    )


def skipped_note(skipped: dict[str, str], shown: int = 3) -> str:
    """The run message's note on files the listing left out on purpose (they are not in the ledger)."""
    items = sorted(skipped.items())
    parts = [f"{path} skipped: {reason}" for path, reason in items[:shown]]
    if len(items) > shown:
        parts.append(f"and {len(items) - shown:,} more skipped")
    return "; ".join(parts)


def copies_note(copies: dict[str, str], shown: int = 3) -> str:
    """The run message's note on new files that carry a loaded file's very version (renamed or copied)."""
    items = sorted(copies.items())
    parts = [f"{new} has the size and version of {old}, loaded before" for new, old in items[:shown]]
    if len(items) > shown:
        parts.append(f"and {counted(len(items) - shown, 'more file')}")
    return (
        "; ".join(parts) + ": loaded as new files, so if they are renames or copies their rows are in the table "
        "twice (query _source_file to find them)"
    )


def sampled_note(paths: list[str], sample_bytes: int) -> str:
    """The run message's note on files whose schema was inferred from their beginning only."""
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3:,} more" if len(paths) > 3 else "")
    size = f"{sample_bytes // (1024 * 1024)} MiB" if sample_bytes >= 1024 * 1024 else f"{sample_bytes // 1024} KiB"
    return (
        f"schema inferred from the first {size} of {counted(len(paths), 'larger file')} ({shown}); "
        "later values that do not fit go to _rescued_data"
    )


def malformed_error(path: str, count: int, mode: str) -> RunError:
    """The run error for a file's malformed records: kept in _rescued_data, or dropped under dropmalformed."""
    if mode == "dropmalformed":
        return RunError(
            kind="malformed_records",
            file=path,
            message=f"{counted(count, 'malformed record')} dropped (mode dropmalformed).",
            action="Set the format's mode to permissive to keep them in _rescued_data, or fix the producer.",
        )
    return RunError(
        kind="malformed_records",
        file=path,
        message=f"{counted(count, 'malformed record')} kept in _rescued_data.",
        action="Query the table's _rescued_data column for this file to see the raw text.",
    )

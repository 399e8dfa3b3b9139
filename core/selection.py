"""Which listed files a run loads, and in which batches: the ledger rule per file (new, failed, quarantined,
changed, reloaded), files too young to read yet, a backfill's start date, and batches bounded by files and bytes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from core.config import IngestionSpec
from core.domain import FileStatus, KnownFile, KnownFiles
from core.lifecycle import differs, too_young
from core.storage.base import FileInfo

FileAction = Literal["load", "reload", "changed", "skip"]


def file_action(seen: KnownFile | None, info: FileInfo, reload_changed: bool) -> FileAction:
    """The ledger rule for one listed file.

    Files whose rows are not in the table: new and failed ones load, a quarantined one once the producer has
    replaced it, a held one when it changed and `reload_changed` is on. Files whose rows are in the table
    (loaded, changed, or a reload set aside): unchanged ones are left alone; a change reloads them when
    `reload_changed` is on and is otherwise reported `changed`, once per change."""
    if seen is None:
        return "load"
    if seen.status in (FileStatus.PENDING, FileStatus.SKIPPED):
        return "skip"
    in_table = seen.status in (FileStatus.LOADED, FileStatus.CHANGED) or seen.previous_size is not None
    if not in_table:
        if seen.status == FileStatus.FAILED:
            return "load"
        if not differs(seen, info):
            return "skip"
        return "load" if seen.status == FileStatus.QUARANTINED or reload_changed else "skip"
    if seen.status in (FileStatus.LOADED, FileStatus.QUARANTINED) and not differs(seen, info):
        return "skip"
    if reload_changed:
        return "reload"
    return "changed" if differs(seen, info) else "skip"


def should_load(seen: KnownFile | None, info: FileInfo, reload_changed: bool) -> bool:
    return file_action(seen, info, reload_changed) in ("load", "reload")


@dataclass(slots=True)
class Selection:
    """What a run does with the listed files."""

    load: list[FileInfo] = field(default_factory=list)
    """New files and reloads, oldest first."""
    reload: dict[str, KnownFile] = field(default_factory=dict)
    """Of `load`, the files whose earlier version is in the table (their ledger rows)."""
    changed: list[tuple[FileInfo, KnownFile]] = field(default_factory=list)
    """Loaded files that changed and are not reloaded (reload_changed_files off)."""
    waiting: int = 0
    """Files younger than source.min_file_age_seconds, left for a later run."""
    listed_through: str | None = None
    """The greatest listed path sorting before every waiting file: once the run has recorded what it loads, every
    listed file up to it is in the ledger (where the next incremental listing may start)."""
    listed: int = 0
    """How many files the listing gave (the pattern matched)."""


def select_new_files(listing: Iterable[FileInfo], known: KnownFiles, spec: IngestionSpec, now: datetime) -> Selection:
    """Sort the listing into files to load, changed files to report and files too young to read yet."""
    since = spec.schedule.backfill.since if spec.schedule.backfill.mode == "since" else None
    reload_changed = spec.source.reload_changed_files
    selection = Selection()
    listed: list[str] = []
    first_waiting: str | None = None
    for info in listing:
        listed.append(info.path)
        if known.unchanged(info.path, info.size, info.etag):
            continue  # file_action's "skip", answered without building the row's KnownFile
        seen = known.get(info.path)
        action = file_action(seen, info, reload_changed)
        if action == "skip" or (since is not None and seen is None and info.modified < since):
            continue
        if too_young(info, now, spec.source.min_file_age_seconds):
            selection.waiting += 1
            first_waiting = info.path if first_waiting is None else min(first_waiting, info.path)
            continue
        if action == "changed" and seen is not None:
            selection.changed.append((info, seen))
            continue
        selection.load.append(info)
        if action == "reload" and seen is not None:
            selection.reload[info.path] = seen
    selection.load.sort(key=lambda f: (f.modified, f.path))
    before_waiting = [p for p in listed if first_waiting is None or p < first_waiting]
    selection.listed_through = max(before_waiting, default=None)
    selection.listed = len(listed)
    return selection


def copies_of_loaded(files: list[FileInfo], known: KnownFiles) -> dict[str, str]:
    """New path -> loaded path, for new files that carry the very version (size and etag) of a file loaded under
    another path: a rename (`mv` keeps the modification time the local etag is made of; an S3 copy keeps the
    content's MD5 etag) or a copy. They are loaded as new files, as Auto Loader and Snowpipe do, and the run says
    so: their rows may be in the table twice. Only runs with new files build the index."""
    if not len(known):
        return {}  # a first load: nothing loaded to be copied
    fresh = [f for f in files if f.etag is not None and f.path not in known]
    if not fresh:
        return {}
    versions = known.loaded_versions()
    found = {f.path: versions.get((f.size, f.etag or "")) for f in fresh}
    return {path: old for path, old in found.items() if old is not None and old != path}


def bad_record_offenders(files: dict[str, tuple[int, int]], max_ratio: float) -> list[str]:
    """The files to set aside when a batch is over the bad-record ratio: each file over the ratio on its own;
    when the malformed records are spread thin, every file with any (the rest of the batch is then clean)."""
    over = [path for path, (bad, read) in files.items() if bad and (not read or bad / read > max_ratio)]
    return sorted(over or [path for path, (bad, _) in files.items() if bad])


def plan_batches(files: list[FileInfo], spec: IngestionSpec) -> list[list[FileInfo]]:
    """Cut the files into batches bounded by file count and bytes; overwrite runs are one batch."""
    if spec.destination.write_mode == "overwrite":
        return [files] if files else []
    batches: list[list[FileInfo]] = []
    current: list[FileInfo] = []
    size = 0
    for info in files:
        if current and (
            len(current) >= spec.limits.max_files_per_batch or size + info.size > spec.limits.max_bytes_per_batch
        ):
            batches.append(current)
            current, size = [], 0
        current.append(info)
        size += info.size
    if current:
        batches.append(current)
    return batches

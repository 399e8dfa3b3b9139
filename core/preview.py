"""Test a configuration against the real source without writing anything (PRODUCT.md §8, first part)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from core.config import IngestionSpec
from core.engines.base import Engine
from core.engines.embedded import open_for
from core.errors import BadFileError
from core.formats import FileReadStats, read_file
from core.formats.types import schema_to_json
from core.storage.base import FileInfo, Storage

SAMPLE_ROWS = 5


@dataclass(slots=True)
class PreviewResult:
    files: int
    total_bytes: int
    listing_seconds: float
    schema: list[dict[str, Any]]
    sample_rows: list[dict[str, Any]]
    sample_files: list[str]
    bad_files: dict[str, str] = field(default_factory=dict)
    files_truncated: bool = False
    message: str = ""


def preview(
    spec: IngestionSpec, storage: Storage, engine: Engine, *, max_listed: int = 1_000_000, rows: int = SAMPLE_ROWS
) -> PreviewResult:
    """Connect, list the path with the pattern, infer the schema from a sample, and read a few rows."""
    started = time.monotonic()
    listing = storage.list_files(spec.source.file_pattern)
    files: list[FileInfo] = list(itertools.islice(listing, max_listed))
    truncated = next(listing, None) is not None
    total = sum(f.size for f in files)
    listed_in = time.monotonic() - started
    files.sort(key=lambda f: (f.modified, f.path))
    sample = files[: spec.format.schema_.sample_files]
    inferred = engine.infer_schema(storage, sample, spec.format)
    sample_rows: list[dict[str, Any]] = []
    bad = dict(inferred.bad_files)
    for info in sample:
        if len(sample_rows) >= rows or info.path in bad:
            continue
        try:
            with open_for(storage, info.path, spec.format) as stream:
                for batch in read_file(stream, info.path, spec.format, inferred.schema, FileReadStats()):
                    for row in batch.slice(0, rows - len(sample_rows)).to_pylist():
                        sample_rows.append({"_source_file": info.path, **row})
                    if len(sample_rows) >= rows:
                        break
        except BadFileError as exc:
            bad[info.path] = exc.message
    size_gb = total / 1e9
    message = f"Connection successful — {len(files):,}{'+' if truncated else ''} files, {size_gb:.2f} GB"
    return PreviewResult(
        files=len(files),
        total_bytes=total,
        listing_seconds=round(listed_in, 3),
        schema=schema_to_json(inferred.schema),
        sample_rows=sample_rows,
        sample_files=[f.path for f in sample],
        bad_files=bad,
        files_truncated=truncated,
        message=message,
    )

"""Source files a table already holds, told by its `_source_file` lineage column: recorded as loaded instead of
loaded a second time, when the ledger does not know them (an ingestion deleted with its table kept, then created
again; a metadata backup restored behind its tables)."""

from __future__ import annotations

from core.config import IngestionSpec
from core.domain import FileStatus, LedgerEntry
from core.engines.base import Engine
from core.storage.base import FileInfo


def files_the_table_holds(
    engine: Engine, spec: IngestionSpec, listed: list[FileInfo], known: set[str]
) -> list[LedgerEntry]:
    """Loaded-file entries for the `listed` files outside `known` whose rows the table holds, with their row counts
    (none when the table is missing or has no lineage column)."""
    by_path = {f.path: f for f in listed if f.path not in known}
    counts = engine.count_rows_from(spec.destination, list(by_path))
    return [
        LedgerEntry(path, by_path[path].size, by_path[path].modified, by_path[path].etag, FileStatus.LOADED, records=n)
        for path, n in counts.items()
        if n and path in by_path
    ]


def same_table_and_source(spec: IngestionSpec, other: IngestionSpec) -> bool:
    """Whether two ingestions would load the same files into the same table: each keeps its own ledger, so every
    file would be loaded twice."""
    return (
        spec.cluster_id == other.cluster_id
        and spec.destination.full_name.lower() == other.destination.full_name.lower()
        and _source_key(spec) == _source_key(other)
    )


def _source_key(spec: IngestionSpec) -> tuple[str, str, str | None]:
    return spec.source.type, spec.source.path.rstrip("/"), spec.source.file_pattern

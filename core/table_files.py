"""Source files a table already holds, told by its `_source_file` lineage column: recorded as loaded instead of
loaded a second time, when the ledger does not know them (an ingestion deleted with its table kept, then created
again; a metadata backup restored behind its tables)."""

from __future__ import annotations

import os
import re

from core.config import IngestionSpec
from core.domain import FileStatus, LedgerEntry
from core.engines.base import Engine
from core.engines.embedded import EmbeddedEngine
from core.storage.base import FileInfo


def files_the_table_holds(
    engine: Engine, spec: IngestionSpec, listed: list[FileInfo], known: set[str]
) -> list[LedgerEntry]:
    """Loaded-file entries for the `listed` files outside `known` whose rows the table holds, with their row counts
    (none when the table is missing or has no lineage column). Paths are compared as the source resolves them (a
    local folder through a symlink, `//`). A file modified after its rows were ingested is recorded with that time
    instead of its own, so the next run sees it changed (reported, or reloaded with reload_changed_files) rather
    than taking the new version as loaded."""
    unknown = [f for f in listed if f.path not in known]
    if isinstance(engine, EmbeddedEngine):
        held = {_resolved(spec, path): got for path, got in engine.source_files_held(spec.destination).items()}
    else:
        counts = engine.count_rows_from(spec.destination, [f.path for f in unknown])
        held = {_resolved(spec, path): (n, None) for path, n in counts.items()}
    entries = []
    for f in unknown:
        rows, ingested_at = held.get(_resolved(spec, f.path), (0, None))
        if not rows:
            continue
        changed_since = ingested_at if ingested_at is not None and f.modified > ingested_at else None
        modified, etag = (f.modified, f.etag) if changed_since is None else (changed_since, None)
        entries.append(LedgerEntry(f.path, f.size, modified, etag, FileStatus.LOADED, records=rows))
    return entries


def _resolved(spec: IngestionSpec, path: str) -> str:
    return os.path.realpath(path) if spec.source.type == "local" else path


def same_table_and_source(spec: IngestionSpec, other: IngestionSpec) -> bool:
    """Whether two ingestions may load the same files into the same table: each keeps its own ledger, so every such
    file would be loaded twice. One folder holds the other's files when the paths, as the source resolves them (a
    symlink, `//`, `..`), are the same or one is inside the other; file patterns are not compared (`*`, `**/*.json`
    and none list the same files)."""
    if spec.cluster_id != other.cluster_id or spec.source.type != other.source.type:
        return False
    if spec.destination.full_name.lower() != other.destination.full_name.lower():
        return False
    mine, theirs = _folder(spec), _folder(other)
    return mine == theirs or mine.startswith(theirs + "/") or theirs.startswith(mine + "/")


def _folder(spec: IngestionSpec) -> str:
    path = spec.source.path
    if spec.source.type == "local":
        return os.path.realpath(path).rstrip("/")
    scheme, _, rest = path.partition("://")
    return f"{scheme.lower()}://{re.sub('/+', '/', rest).rstrip('/')}"

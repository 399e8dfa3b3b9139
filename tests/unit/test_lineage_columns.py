"""The embedded engine's lineage stamp (core/engines/embedded.py `LineageColumns`): slices of arrays made once per file
must still give every row its own file's path, the run's id and its time, whatever the batch sizes."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

from core.engines.embedded import LineageColumns, output_schema
from core.formats.conform import RESCUED

COLUMNS = pa.schema([pa.field("id", pa.int64())])
DATA = COLUMNS.append(pa.field(RESCUED, pa.string()))  # what the readers yield
AT = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _batch(first: int, n: int) -> pa.RecordBatch:
    rescued = [None] * n
    if n:
        rescued[0] = '{"x":"1"}'
    return pa.RecordBatch.from_arrays(
        [pa.array(range(first, first + n), pa.int64()), pa.array(rescued, pa.string())], schema=DATA
    )


def _stamp(lineage: bool) -> LineageColumns:
    request: Any = SimpleNamespace(ingested_at=AT, run_id=42)  # only the two fields the stamp reads
    return LineageColumns(output_schema(COLUMNS, lineage), request, lineage)


def test_each_row_gets_its_own_files_path_whatever_the_batch_sizes() -> None:
    stamp = _stamp(lineage=True)
    sizes = [("a.csv", 3), ("a.csv", 7), ("a.csv", 2), ("a.csv", 20), ("b.csv", 4), ("b.csv", 0), ("a.csv", 1)]
    first = 0
    for path, n in sizes:
        out = stamp.stamped(_batch(first, n), path)
        assert out.num_rows == n
        assert out.column("_source_file").to_pylist() == [path] * n
        assert out.column("_run_id").to_pylist() == [42] * n
        assert out.column("_ingested_at").to_pylist() == [AT] * n
        assert out.column("id").to_pylist() == list(range(first, first + n))
        if n:
            assert out.column(RESCUED)[0].as_py() == '{"x":"1","_file_path":"' + path + '"}'
        first += n


def test_without_lineage_only_the_rescued_data_is_tagged() -> None:
    out = _stamp(lineage=False).stamped(_batch(0, 2), "a.csv")
    assert out.schema.names == DATA.names
    assert out.column(RESCUED).to_pylist() == ['{"x":"1","_file_path":"a.csv"}', None]

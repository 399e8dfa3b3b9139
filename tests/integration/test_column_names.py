"""Column names Spark and Delta readers refuse are stored under names they accept, with the original recorded."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from deltalake import DeltaTable

from core.access import SYSTEM
from core.domain import RunStatus
from tests.helpers import spec


def test_a_csv_header_with_spaces_and_parentheses_loads_into_names_every_reader_accepts(  # type: ignore[no-untyped-def]
    services, tmp_path: Path
) -> None:
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.csv").write_text("order id,unit price (EUR),qty=n\n1,2.5,3\n2,4.0,5\n")
    ingestion = services.ingestions.create(spec(str(landing), table="named", format={"type": "csv"}), activate=True)
    outcome = services.runs.run_now(ingestion.name)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    assert "'unit price (EUR)' as 'unit_price__EUR_'" in outcome.message
    table = DeltaTable(services.embedded.table_uri(ingestion.spec.destination))
    data = table.to_pyarrow_table()
    assert data.column_names[:3] == ["order_id", "unit_price__EUR_", "qty_n"]
    assert data.column("unit_price__EUR_").to_pylist() == [2.5, 4.0]
    for add in table.file_uris():  # the Parquet files themselves carry the stored names
        assert "unit price (EUR)" not in pq.read_schema(add).names
    (version,) = services.views.schema_versions(SYSTEM, ingestion.id)
    assert {c["name"]: c.get("source_name") for c in version.columns}["order_id"] == "order id"

"""Test & Preview: connection, files, inferred schema and sample rows of a configuration. Writes nothing."""

from __future__ import annotations

from app.services.engines import Engines
from core.access import SYSTEM, Principal, require_change
from core.config import IngestionSpec
from core.engines.base import Engine
from core.errors import Conflict
from core.guards import Guards
from core.preview import PreviewResult, preview
from core.spark_sources import refuse_source_spark_cannot_read
from core.storage import open_storage


def refuse_existing_table(spec: IngestionSpec, engine: Engine) -> None:
    """'Create new table' needs a table that does not exist yet: said before the first run, while the write mode
    and the table name can still change (the first run would fail once they are locked)."""
    destination = spec.destination
    if destination.write_mode == "create" and engine.table_schema(destination) is not None:
        raise Conflict(
            f"Table {destination.full_name} already exists, and 'Create new table' needs a table that does not.",
            "Choose append or merge to load into the existing table, or enter another table name.",
            field="destination.table",
        )


class PreviewService:
    def __init__(self, engines: Engines, guards: Guards):
        self.engines = engines
        self.guards = guards

    def test(self, spec: IngestionSpec, who: Principal = SYSTEM, check_table: bool = True) -> PreviewResult:
        """Reading a source's data is for those who may create ingestions (not viewers). `check_table` False: the
        previewed ingestion has loaded into its table already (an existing table is no conflict), or only the source
        is probed (the wizard's Test Connection)."""
        require_change(who, "test a configuration")
        if spec.cluster_id is not None:
            self.engines.clusters.require(spec.cluster_id, who.tenant_id)
            refuse_source_spark_cannot_read(spec)
        self.guards.check_spec(spec)
        engine = self.engines.for_spec(spec, who.tenant_id)
        if check_table:
            refuse_existing_table(spec, engine)
        return preview(spec, open_storage(spec.source, self.guards), engine, new_ingestion=check_table)

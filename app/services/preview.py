"""Test & Preview: connection, files, inferred schema and sample rows of a configuration. Writes nothing."""

from __future__ import annotations

from app.services.engines import Engines
from core.access import SYSTEM, Principal, require_change
from core.config import IngestionSpec
from core.guards import Guards
from core.preview import PreviewResult, preview
from core.storage import open_storage


class PreviewService:
    def __init__(self, engines: Engines, guards: Guards):
        self.engines = engines
        self.guards = guards

    def test(self, spec: IngestionSpec, who: Principal = SYSTEM) -> PreviewResult:
        """Reading a source's data is for those who may create ingestions (not viewers)."""
        require_change(who, "test a configuration")
        if spec.cluster_id is not None:
            self.engines.clusters.require(spec.cluster_id, who.tenant_id)
        self.guards.check_spec(spec)
        return preview(spec, open_storage(spec.source, self.guards), self.engines.for_spec(spec, who.tenant_id))

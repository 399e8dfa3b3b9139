"""Which engine writes an ingestion's table: the embedded one (one warehouse folder per tenant, so tables of two
tenants never collide), or the tenant's Spark cluster the spec names."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from app.services.clusters import ClusterService
from core.access import FIRST_TENANT
from core.config import DestinationConfig, IngestionSpec
from core.domain import Ingestion

if TYPE_CHECKING:
    from core.engines.base import Engine
    from core.engines.embedded import EmbeddedEngine


def tenant_warehouse(warehouse: str, tenant_id: int) -> str:
    """The first tenant owns the warehouse root (as before tenants existed); others a folder of their own."""
    root = warehouse.rstrip("/")
    return root if tenant_id == FIRST_TENANT else f"{root}/_tenants/{tenant_id}"


class Engines:
    """Each engine is made on first use: the embedded one imports Arrow and delta-rs, which a run that finds no new
    file never needs (`autoloader run` from cron)."""

    def __init__(self, warehouse: str, storage_options: dict[str, str], clusters: ClusterService):
        self.warehouse = warehouse
        self.storage_options = storage_options
        self.clusters = clusters
        self._by_tenant: dict[int, EmbeddedEngine] = {}
        self._lock = threading.Lock()

    @property
    def embedded(self) -> EmbeddedEngine:
        """The first tenant's embedded engine (the warehouse root)."""
        return self.embedded_for(FIRST_TENANT)

    def embedded_for(self, tenant_id: int) -> EmbeddedEngine:
        from core.engines.embedded import EmbeddedEngine

        with self._lock:
            engine = self._by_tenant.get(tenant_id)
            if engine is None:
                engine = EmbeddedEngine(tenant_warehouse(self.warehouse, tenant_id), self.storage_options)
                self._by_tenant[tenant_id] = engine
            return engine

    def for_spec(self, spec: IngestionSpec, tenant_id: int = FIRST_TENANT) -> Engine:
        if spec.cluster_id is not None:
            return self.clusters.engine(spec.cluster_id)
        return self.embedded_for(tenant_id)

    def for_ingestion(self, ingestion: Ingestion) -> Engine:
        return self.for_spec(ingestion.spec, ingestion.tenant_id)

    def table_uri(self, destination: DestinationConfig, tenant_id: int) -> str:
        return self.embedded_for(tenant_id).table_uri(destination)

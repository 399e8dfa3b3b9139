"""Which engine writes an ingestion's table: the embedded one, or the Spark cluster the spec names."""

from __future__ import annotations

from app.services.clusters import ClusterService
from core.config import IngestionSpec
from core.domain import Ingestion
from core.engines.base import Engine
from core.engines.embedded import EmbeddedEngine


class Engines:
    def __init__(self, embedded: EmbeddedEngine, clusters: ClusterService):
        self.embedded = embedded
        self.clusters = clusters

    def for_spec(self, spec: IngestionSpec) -> Engine:
        if spec.cluster_id is not None:
            return self.clusters.engine(spec.cluster_id)
        return self.embedded

    def for_ingestion(self, ingestion: Ingestion) -> Engine:
        return self.for_spec(ingestion.spec)

"""Moving an ingestion between the embedded engine and a Spark cluster: one Delta table, continued by either.

The table stays where it is and so does everything that makes loading exactly once: the file ledger, the
ingestion's application id and the Delta `txn` actions both engines write with it (delta-rs's app transactions, Spark's
`txnAppId`/`txnVersion`). Only `cluster_id` changes, and, going to a cluster, `destination.location`: where the
cluster finds the embedded engine's table, which it registers in its catalog as an external table on its next run
(core/engines/spark/table.py `Tables._register`).

Coming back to the embedded engine is possible for a table the embedded engine wrote (its location is the
embedded warehouse's), or one the cluster has not written yet: the embedded engine writes only in its warehouse.
"""

from __future__ import annotations

from app.db.repository import SqlStore
from app.services.clusters import ClusterService
from app.services.engines import Engines
from app.services.ingestions import IngestionService
from core.access import SYSTEM, Principal, require_owner
from core.domain import Ingestion
from core.errors import Conflict
from core.spark_sources import refuse_source_spark_cannot_read


def cluster_path(table_uri: str) -> str:
    """The embedded engine's table URI as a Spark cluster names it (hadoop-aws reads S3 as `s3a://`)."""
    return "s3a://" + table_uri[len("s3://") :] if table_uri.startswith("s3://") else table_uri


class EngineMoveService:
    def __init__(self, store: SqlStore, engines: Engines, clusters: ClusterService, ingestions: IngestionService):
        self.store = store
        self.engines = engines
        self.clusters = clusters
        self.ingestions = ingestions

    def move(self, ingestion_id: int, cluster_id: int | None, who: Principal = SYSTEM) -> Ingestion:
        """Run the ingestion's next loads on `cluster_id` (None: the embedded engine), continuing its table."""
        ingestion = self.ingestions.get(who, ingestion_id, "move ingestions between engines")
        require_owner(who, ingestion.created_by, "move ingestions between engines")
        if ingestion.spec.cluster_id == cluster_id:
            where = "the embedded engine" if cluster_id is None else f"cluster {cluster_id}"
            raise Conflict(f"'{ingestion.name}' already runs on {where}.", "Pick another engine.", field="cluster_id")
        self.ingestions.refuse_while_running(ingestion, "moving it to another engine")
        destination = ingestion.spec.destination
        location = None
        if cluster_id is None:
            self._refuse_back_to_embedded(ingestion)
        else:
            location = self._to_cluster(ingestion, cluster_id, who)
        spec = ingestion.spec.model_copy(
            update={"cluster_id": cluster_id, "destination": destination.model_copy(update={"location": location})}
        )
        moved = self.store.update_ingestion(ingestion_id, spec, ingestion.revision)  # not over an edit saved meanwhile
        self.store.audit(
            "move_engine",
            "ingestion",
            ingestion_id,
            who.actor,
            who.tenant_id,
            name=ingestion.name,
            cluster_from=ingestion.spec.cluster_id,
            cluster_to=cluster_id,
            location=location,
        )
        self.ingestions.schedules.sync(moved)
        return moved

    def _to_cluster(self, ingestion: Ingestion, cluster_id: int, who: Principal) -> str | None:
        self.clusters.require(cluster_id, who.tenant_id)
        spec = ingestion.spec.model_copy(update={"cluster_id": cluster_id})
        refuse_source_spark_cannot_read(spec)
        if ingestion.spec.cluster_id is not None:  # cluster to cluster: the table is where the first one keeps it
            return ingestion.spec.destination.location
        table_format = self.clusters.target(cluster_id).table_format
        if table_format != "delta":
            raise Conflict(
                f"Cluster {cluster_id} writes {table_format} tables; the table of '{ingestion.name}' is a Delta table "
                "written by the embedded engine.",
                "Pick a cluster whose table format is delta (Clusters → Edit), or create a new ingestion on this "
                "cluster for a new table.",
                field="cluster_id",
            )
        return cluster_path(self.engines.table_uri(ingestion.spec.destination, ingestion.tenant_id))

    def _refuse_back_to_embedded(self, ingestion: Ingestion) -> None:
        """Unless the table is the embedded engine's (or the cluster has not written one yet)."""
        destination = ingestion.spec.destination
        embedded_here = cluster_path(self.engines.table_uri(destination, ingestion.tenant_id))
        if destination.location == embedded_here or not self.ingestions.has_loaded(ingestion.id):
            return
        where = destination.location or f"the cluster's catalog ({destination.full_name})"
        raise Conflict(
            f"The table of '{ingestion.name}' was created by the cluster at {where}; the embedded engine writes "
            f"tables only in its warehouse ({embedded_here}).",
            "Keep the ingestion on a cluster, or create a new ingestion on the embedded engine for a new table.",
            field="cluster_id",
        )

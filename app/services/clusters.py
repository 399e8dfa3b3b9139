"""Spark clusters: register, edit and delete them, test a connection, and hand out one engine (one pooled
session) per cluster. A `remote` cluster is any Spark Connect endpoint (`sc://host:port`); a `local` one is
started by this process (`app/local_spark.py`).

A remote cluster's URL goes through the egress rule (core/egress.py) when it is saved and each time its engine is
handed out (a run, a test); a local cluster's URL must name this machine (sc://localhost:<port>)."""

from __future__ import annotations

import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import BaseModel

from app.db.clusters import ClusterRepository
from app.db.models import ClusterCreate, ClusterPublic, ClusterUpdate
from app.db.repository import SqlStore
from app.local_spark import LocalClusterManager, free_port
from core.access import SYSTEM, Principal, require_admin, require_change
from core.config import SECRET_MASK
from core.egress import EgressAllow, check_connect, check_url
from core.errors import ConfigError

if TYPE_CHECKING:
    from core.engines.spark import ClusterTarget, SparkEngine

# The Spark engine's modules (they import Arrow) and the read side's queries are imported where they are used: a run
# on the embedded engine builds this service without needing either.

KINDS = ("remote", "local")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class ConnectionTest(BaseModel):
    """The API's answer to POST /clusters/{id}/test."""

    ok: bool
    reachable: bool
    spark_version: str | None
    table_format: str
    format_ok: bool
    message: str
    action: str
    seconds: float
    error_code: str | None = None


def validate_url(url: str) -> str:
    parsed = urlparse(url.strip())
    if parsed.scheme != "sc" or not parsed.hostname:
        raise ConfigError(
            f"'{url}' is not a Spark Connect URL.", "Use sc://host:port, e.g. sc://spark:15002.", field="connect_url"
        )
    return url.strip()


def validate_fields(values: dict[str, Any]) -> None:
    if "name" in values and not str(values["name"] or "").strip():
        raise ConfigError("A cluster needs a name.", "Enter a name, e.g. spark-prod.", field="name")
    if values.get("kind") is not None and values["kind"] not in KINDS:
        raise ConfigError(f"Unknown cluster kind '{values['kind']}'.", "Use remote or local.", field="kind")
    from core.engines.spark import TABLE_FORMATS

    if values.get("table_format") is not None and values["table_format"] not in TABLE_FORMATS:
        raise ConfigError(
            f"Unknown table format '{values['table_format']}'.", "Use delta, iceberg or parquet.", field="table_format"
        )
    if values.get("price_per_hour") is not None and values["price_per_hour"] < 0:
        raise ConfigError("The price per hour cannot be negative.", "Enter 0 or more.", field="price_per_hour")


class ClusterService:
    def __init__(
        self,
        clusters: ClusterRepository,
        store: SqlStore,
        data_dir: Path,
        egress: EgressAllow,
        csv_on_workers: bool = True,
    ):
        self.clusters = clusters
        self.csv_on_workers = csv_on_workers
        self.store = store
        self.egress = egress
        self.local = LocalClusterManager(Path(data_dir) / "spark")
        self._engines: dict[int, tuple[ClusterTarget, SparkEngine]] = {}
        self._lock = threading.Lock()

    # --- registry -------------------------------------------------------------------------------------------------
    def require(self, cluster_id: int, tenant_id: int) -> None:
        """Raise NotFound unless the tenant has this cluster."""
        self.clusters.row(cluster_id, tenant_id)

    def create(self, body: ClusterCreate, who: Principal = SYSTEM) -> ClusterPublic:
        from app.db.queries import cluster_public

        require_admin(who, "register clusters")
        values = body.model_dump(exclude={"token"})
        validate_fields(values)
        if body.kind == "local" and not body.connect_url:
            values["connect_url"] = f"sc://localhost:{free_port()}"
        values["connect_url"] = validate_url(values["connect_url"])
        self._check_reach(values.get("kind") or "remote", values["connect_url"])
        row = self.clusters.create(values, body.token, who.tenant_id)
        self.store.audit("create", "cluster", row.id, who.actor, who.tenant_id, name=row.name)
        return cluster_public(row)

    def update(self, cluster_id: int, body: ClusterUpdate, who: Principal = SYSTEM) -> ClusterPublic:
        from app.db.queries import cluster_public

        require_admin(who, "edit clusters")
        values = body.model_dump(exclude_unset=True, exclude={"token"})
        validate_fields(values)
        if values.get("connect_url") is not None:
            values["connect_url"] = validate_url(values["connect_url"])
            self._check_reach(self.clusters.row(cluster_id, who.tenant_id).kind, values["connect_url"])
        token_given = "token" in body.model_fields_set and body.token != SECRET_MASK
        row = self.clusters.update(cluster_id, who.tenant_id, values, body.token, token_given)
        self._forget(cluster_id)
        self.store.audit(
            "update", "cluster", cluster_id, who.actor, who.tenant_id, fields=sorted(body.model_fields_set)
        )
        return cluster_public(row)

    def delete(self, cluster_id: int, who: Principal = SYSTEM) -> None:
        require_admin(who, "delete clusters")
        self.clusters.delete(cluster_id, who.tenant_id)
        self._forget(cluster_id)
        self.local.stop(f"cluster-{cluster_id}")
        self.store.audit("delete", "cluster", cluster_id, who.actor, who.tenant_id)

    # --- engines ----------------------------------------------------------------------------------------------------
    def target(self, cluster_id: int) -> ClusterTarget:
        from core.engines.spark import ClusterTarget

        row = self.clusters.row(cluster_id)
        token = self.clusters.token(row)
        return ClusterTarget(
            row.name, row.connect_url, token, row.table_format, row.catalog, row.kind, self.csv_on_workers
        )

    def engine(self, cluster_id: int) -> SparkEngine:
        """The cluster's engine (its pooled session); a local cluster is started first if it is not running."""
        from core.engines.spark import SparkEngine

        target = self.target(cluster_id)
        self._check_reach(target.kind, target.connect_url, connecting=True)
        if target.kind == "local":
            port = urlparse(target.connect_url).port or 15002
            self.local.ensure_running(f"cluster-{cluster_id}", port, target.token)
        with self._lock:
            cached = self._engines.get(cluster_id)
            if cached is not None and cached[0] == target:
                return cached[1]
            engine = SparkEngine(target)
            old = self._engines.get(cluster_id)
            self._engines[cluster_id] = (target, engine)
        if old is not None:
            old[1].close()
        return engine

    def _check_reach(self, kind: str, url: str, *, connecting: bool = False) -> None:
        """A local cluster is this machine; a remote one must pass the egress rule (resolved again when connecting)."""
        if kind == "local":
            host = (urlparse(url).hostname or "").rstrip(".").lower()
            if host not in LOCAL_HOSTS:
                raise ConfigError(
                    f"A local cluster runs on this machine, but its URL names '{host}'.",
                    "Use sc://localhost:<port> for a local cluster, or register the cluster as remote.",
                    field="connect_url",
                )
        elif connecting:
            check_connect(url, self.egress, field="connect_url", schemes=("sc",))
        else:
            check_url(url, self.egress, field="connect_url", schemes=("sc",))

    def _forget(self, cluster_id: int) -> None:
        with self._lock:
            cached = self._engines.pop(cluster_id, None)
        if cached is not None:
            cached[1].close()

    def test(self, cluster_id: int, who: Principal = SYSTEM) -> ConnectionTest:
        """Reachable or not (in seconds), the Spark version, and whether the table format is usable."""
        from core.engines.spark import ClusterCheck, ClusterUnreachable

        require_change(who, "test clusters")
        self.require(cluster_id, who.tenant_id)
        try:
            check = self.engine(cluster_id).check()
        except ClusterUnreachable as exc:
            check = ClusterCheck(False, None, self.target(cluster_id).table_format, False, exc.message, exc.action)
            check.error_code = exc.code
        return ConnectionTest(ok=check.reachable and check.format_ok, **asdict(check))

    def close(self) -> None:
        with self._lock:
            engines = [engine for _, engine in self._engines.values()]
            self._engines.clear()
        for engine in engines:
            engine.close()
        self.local.stop_all()

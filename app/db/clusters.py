"""Writes to the cluster registry (reads are in `app/db/queries.py`). Tokens are stored encrypted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from app.db.models import Cluster
from app.db.models import Ingestion as IngestionRow
from app.db.repository import save_named
from app.secrets_box import SecretBox
from core.errors import Conflict, NotFound
from core.wording import counted


def _missing(cluster_id: int) -> NotFound:
    return NotFound(f"Cluster {cluster_id} does not exist.", "List clusters with GET /api/v1/clusters.")


class ClusterRepository:
    def __init__(self, engine: Engine, secrets: SecretBox):
        self.engine = engine
        self.secrets = secrets

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def row(self, cluster_id: int, tenant_id: int | None = None) -> Cluster:
        """The cluster, if it exists and (given a tenant) belongs to it: another tenant's is as missing as none."""
        with self.session() as s:
            row = s.get(Cluster, cluster_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise _missing(cluster_id)
        return row

    def token(self, row: Cluster) -> str | None:
        return self.secrets.decrypt(row.token_encrypted) if row.token_encrypted else None

    def create(self, values: dict[str, Any], token: str | None, tenant_id: int) -> Cluster:
        row = Cluster(**values, tenant_id=tenant_id, token_encrypted=self.secrets.encrypt(token) if token else None)
        with self.session() as s:
            save_named(s, row, "A cluster")
        return row

    def update(
        self, cluster_id: int, tenant_id: int, values: dict[str, Any], token: str | None, token_given: bool
    ) -> Cluster:
        """Set the given fields; the token only when the caller sent one (None or "" clears it)."""
        row = self.row(cluster_id, tenant_id)
        for key, value in values.items():
            if value is not None:
                setattr(row, key, value)
        if token_given:
            row.token_encrypted = self.secrets.encrypt(token) if token else None
        with self.session() as s:
            save_named(s, row, "A cluster")
        return row

    def delete(self, cluster_id: int, tenant_id: int) -> None:
        """Delete a cluster no ingestion uses."""
        with self.session() as s:
            row = s.get(Cluster, cluster_id)
            if row is None or row.tenant_id != tenant_id:
                raise _missing(cluster_id)
            used = s.execute(select(func.count()).where(col(IngestionRow.cluster_id) == cluster_id)).scalar()
            if used:
                raise Conflict(
                    f"{counted(used, 'ingestion')} {'uses' if used == 1 else 'use'} cluster '{row.name}'.",
                    "Delete or move those ingestions first.",
                )
            s.delete(row)
            s.commit()

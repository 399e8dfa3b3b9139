"""The write side of the metadata database. `SqlStore` implements `core.ports.MetadataStore` (what the pipeline
needs) and the writes of the services; it is assembled from one module per kind of row. Reads for screens and
endpoints are in `app/db/queries.py`."""

from __future__ import annotations

from app.db.repository.base import save_named
from app.db.repository.ingestions import IngestionRows
from app.db.repository.ledger import LedgerRows
from app.db.repository.maintenance import MaintenanceRows
from app.db.repository.notifications import NotificationStore
from app.db.repository.refresh import FullRefreshRows
from app.db.repository.runs import RunRows
from app.db.repository.schema_versions import SchemaVersionRows


class SqlStore(IngestionRows, RunRows, SchemaVersionRows, LedgerRows, MaintenanceRows, FullRefreshRows):
    """The metadata store on SQL (SQLite or PostgreSQL)."""


__all__ = ["NotificationStore", "SqlStore", "save_named"]

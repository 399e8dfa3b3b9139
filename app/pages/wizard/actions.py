"""Every call the wizard makes into the application, one small function each (run off the event loop).

This is the only wizard module that touches `app.state.services` (the container app/bootstrap.py builds).
`run.io_bound` answers None when the app is shutting down; callers treat None as "nothing to do".
"""

from __future__ import annotations

from nicegui import app, run

from app.db.models import ClusterPublic
from app.pages.context import who
from core.config import DestinationConfig, IngestionSpec
from core.domain import Ingestion
from core.preview import PreviewResult


async def test_configuration(spec: IngestionSpec, check_table: bool) -> PreviewResult | None:
    """Connect, list, infer and sample without writing anything (raises AutoloaderError); `check_table`: refuse
    'create new table' over an existing table (off for Test Connection and for an ingestion that has loaded)."""
    previews = app.state.services.previews
    result: PreviewResult | None = await run.io_bound(previews.test, spec, who(), check_table)
    return result


async def create_ingestion(spec: IngestionSpec, activate: bool) -> Ingestion | None:
    created: Ingestion | None = await run.io_bound(app.state.services.ingestions.create, spec, activate, who())
    return created


async def update_ingestion(ingestion_id: int, spec: IngestionSpec, revision: int) -> Ingestion | None:
    """Save the edited settings unless another save came after the page read them at `revision` (EditConflict)."""
    updated: Ingestion | None = await run.io_bound(
        app.state.services.ingestions.update, ingestion_id, spec, who(), revision
    )
    return updated


async def activate(ingestion_id: int) -> Ingestion | None:
    activated: Ingestion | None = await run.io_bound(app.state.services.ingestions.activate, ingestion_id, who())
    return activated


async def name_taken(name: str, editing_id: int | None) -> bool:
    """Whether another ingestion of the tenant has this name (names are unique per tenant)."""
    taken: bool | None = await run.io_bound(app.state.services.views.name_taken, who(), name, editing_id)
    return bool(taken)


async def list_clusters() -> list[ClusterPublic]:
    clusters: list[ClusterPublic] | None = await run.io_bound(app.state.services.views.clusters, who())
    return clusters or []


async def get_ingestion(ingestion_id: int) -> Ingestion | None:
    """The stored ingestion to edit, secrets decrypted (NotFound in another tenant, Forbidden without the right)."""
    ingestion: Ingestion | None = await run.io_bound(
        app.state.services.ingestions.get, who(), ingestion_id, "edit ingestions"
    )
    return ingestion


async def has_loaded(ingestion_id: int) -> bool:
    """Whether the ingestion has loaded a file (its format is locked from then on)."""
    loaded: bool | None = await run.io_bound(app.state.services.ingestions.has_loaded, ingestion_id)
    return bool(loaded)


def table_location(destination: DestinationConfig) -> str:
    """Where the embedded engine writes this table for the signed-in user's tenant (a folder or bucket URI)."""
    location: str = app.state.services.engines.table_uri(destination, who().tenant_id)
    return location

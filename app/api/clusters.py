"""REST API v1: Spark clusters (PRODUCT.md §2, §14). Errors are core.errors types, rendered by the shared handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from app.api.accounts import Who
from app.api.schemas import ClusterId
from app.db.models import ClusterCreate, ClusterPublic, ClusterUpdate
from app.services.clusters import ClusterService, ConnectionTest
from app.views import Views

router = APIRouter(prefix="/api/v1", tags=["clusters"])


def clusters(request: Request) -> ClusterService:
    service: ClusterService = request.app.state.services.clusters
    return service


def views(request: Request) -> Views:
    found: Views = request.app.state.services.views
    return found


Clusters = Annotated[ClusterService, Depends(clusters)]
Reads = Annotated[Views, Depends(views)]


@router.get("/clusters", response_model=list[ClusterPublic])
def list_clusters(reads: Reads, who: Who) -> list[ClusterPublic]:
    return reads.clusters(who)


@router.post("/clusters", response_model=ClusterPublic, status_code=status.HTTP_201_CREATED)
def create_cluster(body: ClusterCreate, svc: Clusters, who: Who) -> ClusterPublic:
    """Register a cluster; the token is stored encrypted and never returned (`has_token` says whether one is set)."""
    return svc.create(body, who)


@router.get("/clusters/{cluster_id}", response_model=ClusterPublic)
def get_cluster(cluster_id: ClusterId, reads: Reads, who: Who) -> ClusterPublic:
    return reads.cluster(who, cluster_id)


@router.put("/clusters/{cluster_id}", response_model=ClusterPublic)
def update_cluster(cluster_id: ClusterId, body: ClusterUpdate, svc: Clusters, who: Who) -> ClusterPublic:
    return svc.update(cluster_id, body, who)


@router.delete("/clusters/{cluster_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_cluster(cluster_id: ClusterId, svc: Clusters, who: Who) -> None:
    svc.delete(cluster_id, who)


@router.post("/clusters/{cluster_id}/test", response_model=ConnectionTest)
def test_cluster(cluster_id: ClusterId, svc: Clusters, who: Who) -> ConnectionTest:
    """Reachable (answered within seconds), Spark version, and whether the cluster's table format is usable."""
    return svc.test(cluster_id, who)

"""REST API v1: Spark clusters (PRODUCT.md §2, §14). Errors are core.errors types, rendered by the shared handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from app.clusters import ClusterService, ConnectionTest
from app.db.models import ClusterCreate, ClusterPublic, ClusterUpdate

router = APIRouter(prefix="/api/v1", tags=["clusters"])


def clusters(request: Request) -> ClusterService:
    service: ClusterService = request.app.state.services.clusters
    return service


Clusters = Annotated[ClusterService, Depends(clusters)]


@router.get("/clusters", response_model=list[ClusterPublic])
def list_clusters(svc: Clusters) -> list[ClusterPublic]:
    return svc.list()


@router.post("/clusters", response_model=ClusterPublic, status_code=status.HTTP_201_CREATED)
def create_cluster(body: ClusterCreate, svc: Clusters) -> ClusterPublic:
    """Register a cluster; the token is stored encrypted and never returned (`has_token` says whether one is set)."""
    return svc.create(body)


@router.get("/clusters/{cluster_id}", response_model=ClusterPublic)
def get_cluster(cluster_id: int, svc: Clusters) -> ClusterPublic:
    return svc.get(cluster_id)


@router.put("/clusters/{cluster_id}", response_model=ClusterPublic)
def update_cluster(cluster_id: int, body: ClusterUpdate, svc: Clusters) -> ClusterPublic:
    return svc.update(cluster_id, body)


@router.delete("/clusters/{cluster_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_cluster(cluster_id: int, svc: Clusters) -> None:
    svc.delete(cluster_id)


@router.post("/clusters/{cluster_id}/test", response_model=ConnectionTest)
def test_cluster(cluster_id: int, svc: Clusters) -> ConnectionTest:
    """Reachable (answered within seconds), Spark version, and whether the cluster's table format is usable."""
    return svc.test(cluster_id)

"""Clusters `/clusters`: the page over services.clusters (the same ClusterService as the REST API)."""

from __future__ import annotations

import time

from nicegui.testing import User

from app.db.models import ClusterCreate
from app.local_spark import free_port
from core.access import SYSTEM


async def _register(user: User, name: str, url: str, token: str = "") -> None:
    user.find(marker="cluster-name").type(name)
    user.find(marker="cluster-url").type(url)
    if token:
        user.find(marker="cluster-token").type(token)
    user.find(marker="register-cluster").click()


async def test_register_validates_lists_and_never_shows_the_token(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    await user.open("/clusters")
    await user.should_see("No clusters registered.")
    await user.should_not_see("coming soon")
    await _register(user, "spark-prod", "http://wrong")
    await user.should_see("'http://wrong' is not a Spark Connect URL. Use sc://host:port", retries=20)
    user.find(marker="cluster-url").clear().type("sc://127.0.0.1:15002")
    user.find(marker="cluster-token").type("s3cret-token-value")
    user.find(marker="register-cluster").click()
    await user.should_see("Cluster 'spark-prod' registered.", retries=20)
    await user.should_see("remote · sc://127.0.0.1:15002 · delta · catalog spark_catalog · $0.00/h · token stored")
    await user.should_not_see("s3cret-token-value")
    [cluster] = services_of_app.views.clusters(SYSTEM)
    assert cluster.has_token and cluster.kind == "remote"
    assert services_of_app.clusters.target(cluster.id).token == "s3cret-token-value"
    await _register(user, "spark-prod", "sc://127.0.0.1:15003")
    await user.should_see("A cluster named 'spark-prod' already exists. Choose another name.", retries=20)


async def test_test_connection_on_a_closed_port_says_not_reachable_with_the_action(user: User) -> None:
    port = free_port()
    await user.open("/clusters")
    await _register(user, "dead", f"sc://127.0.0.1:{port}")
    await user.should_see("Cluster 'dead' registered.", retries=20)
    started = time.monotonic()
    user.find(marker="test-dead").click()
    await user.should_see(marker="test-result-dead", retries=100)
    result = next(iter(user.find(marker="test-result-dead").elements))
    assert time.monotonic() - started < 8, "test connection must answer within seconds"
    assert result.text.startswith("✕ Not reachable"), result.text
    assert "Check that the Spark Connect server is running" in result.text
    assert "Traceback" not in result.text
    await user.should_see("Not reachable")


async def test_delete_and_the_conflict_when_ingestions_use_the_cluster(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import spec
    from tests.ui.conftest import ORDERS

    used = services_of_app.clusters.create(ClusterCreate(name="used", connect_url=f"sc://127.0.0.1:{free_port()}"))
    services_of_app.clusters.create(ClusterCreate(name="spare", connect_url=f"sc://127.0.0.1:{free_port()}"))
    services_of_app.ingestions.create(
        spec(str(ORDERS), table="orders", name="orders").model_copy(update={"cluster_id": used.id})
    )
    await user.open("/clusters")
    await user.should_see("spare")
    user.find(marker="delete-used").click()
    await user.should_see("1 ingestion uses cluster 'used'. Delete or move those ingestions first.", retries=20)
    user.find(marker="delete-spare").click()
    await user.should_see("Cluster 'spare' deleted.", retries=20)
    assert [c.name for c in services_of_app.views.clusters(SYSTEM)] == ["used"]

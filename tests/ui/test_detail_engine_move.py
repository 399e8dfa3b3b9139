"""Detail page: Move to another engine asks which one, says what stays, and moves (or says why it cannot)."""

from __future__ import annotations

from nicegui.testing import User

from app.db.models import ClusterCreate
from tests.helpers import spec
from tests.ui.conftest import ORDERS


async def test_move_to_a_cluster_and_the_refusal_for_a_parquet_cluster(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    ingestion = services.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    services.runs.run_now(str(ingestion.id))
    # Registry entries only: moving reads the cluster's table format, it does not connect (the first run does).
    parquet = services.clusters.create(
        ClusterCreate(name="lake", connect_url="sc://localhost:15999", table_format="parquet")
    )
    delta = services.clusters.create(
        ClusterCreate(name="big", connect_url="sc://localhost:15998", table_format="delta")
    )
    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see(marker="move-engine")  # in the Configuration section (its content is there, folded)

    user.find(marker="move-engine").click()
    await user.should_see("the next run continues the same Delta table on the engine you pick")
    user.find(marker="engine-move-select").click()
    user.find("Cluster lake (parquet)").click()
    user.find(marker="engine-move-yes").click()
    await user.should_see("writes parquet tables")  # the refusal, with its reason
    assert services.store.get_ingestion(ingestion.id).spec.cluster_id is None

    user.find(marker="move-engine").click()
    await user.should_see(marker="engine-move-dialog")
    user.find(marker="engine-move-select").click()
    user.find("Cluster big (delta)").click()
    user.find(marker="engine-move-yes").click()
    await user.should_see("Moved: the next run continues main.raw.orders on Cluster big (delta).")
    moved = services.store.get_ingestion(ingestion.id).spec
    assert moved.cluster_id == delta.id and moved.destination.location == services.embedded.table_uri(moved.destination)
    assert parquet.id != delta.id
    await user.should_see("Table location")  # the configuration names where the table is and who writes it
    await user.should_see(moved.destination.location)
    user.find("Table format")

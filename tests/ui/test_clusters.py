"""Clusters `/clusters`."""

from __future__ import annotations

from nicegui.testing import User


async def test_register_validates_and_lists_a_cluster(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    await user.open("/clusters")
    await user.should_see("No clusters registered.")
    await user.should_see("Spark engine: coming soon", retries=3)
    user.find(marker="cluster-name").type("spark-prod")
    user.find(marker="cluster-url").type("http://wrong")
    user.find(marker="register-cluster").click()
    await user.should_see("'http://wrong' is not a Spark Connect URL.", retries=20)
    user.find(marker="cluster-url").clear().type("sc://127.0.0.1:1")
    user.find(marker="register-cluster").click()
    await user.should_see("Cluster 'spark-prod' registered.", retries=20)
    await user.should_see("Test Connection")
    user.find("Test Connection").click()
    await user.should_see("Cannot reach 127.0.0.1:1", retries=30)
    await user.open("/ingestions/new")
    await user.should_see("spark-prod (sc://127.0.0.1:1) — Spark engine: coming soon")

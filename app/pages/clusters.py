"""Clusters `/clusters`: registered Spark Connect clusters (the Spark engine itself comes later)."""

from __future__ import annotations

from typing import Any

from nicegui import app, run, ui

from app.console import ClusterView, delete_cluster, list_clusters, register_cluster, test_cluster
from components.feedback import notify_error, notify_ok
from components.formatting import clock
from components.frame import frame
from components.styles import FLAT, OUTLINE, PRIMARY
from core.errors import AutoloaderError

TABLE_FORMATS = {"delta": "Delta", "iceberg": "Iceberg", "parquet": "Parquet"}


class ClustersView:
    def __init__(self) -> None:
        self.services = app.state.services
        with ui.row().classes("w-full items-center justify-between"):
            ui.label("Clusters").classes("text-3xl font-bold text-slate-800")
        with ui.row().classes("w-full p-3 rounded bg-sky-50 border border-sky-200 items-center"):
            ui.icon("info").classes("text-sky-700")
            ui.label(
                "Spark engine: coming soon. Registered clusters can be tested now; ingestions run on the embedded "
                "engine until the Spark engine lands."
            ).classes("text-sm text-sky-900")
        self.list_area = ui.column().classes("w-full gap-3")
        self._form()

    def _form(self) -> None:
        with ui.card().classes("w-full p-5 gap-3 shadow-sm rounded-xl"):
            ui.label("Register a cluster").classes("text-lg font-semibold")
            with ui.row().classes("w-full no-wrap gap-3"):
                self.name = ui.input("Name *").props("outlined").classes("flex-1").mark("cluster-name")
                self.url = (
                    ui.input("Spark Connect URL *", placeholder="sc://spark-host:15002")
                    .props("outlined")
                    .classes("flex-[2]")
                    .mark("cluster-url")
                )
            with ui.row().classes("w-full no-wrap gap-3"):
                self.token = ui.input("Token (stored encrypted)", password=True).props("outlined").classes("flex-[2]")
                self.table_format = (
                    ui.select(TABLE_FORMATS, value="delta", label="Table format").props("outlined").classes("flex-1")
                )
                self.price = (
                    ui.number("Price per hour ($)", value=0, min=0, format="%.2f").props("outlined").classes("flex-1")
                )
            self.form_error = ui.label().classes("text-sm text-red-600")
            ui.button("Register", icon="add", on_click=self.register).props(PRIMARY).mark("register-cluster")

    async def reload(self) -> None:
        clusters = await run.io_bound(list_clusters, self.services) or []
        self.list_area.clear()
        with self.list_area:
            if not clusters:
                ui.label("No clusters registered.").classes("text-slate-500")
            for cluster in clusters:
                self._row(cluster)

    def _row(self, cluster: ClusterView) -> None:
        with ui.card().classes("w-full p-4 shadow-sm rounded-xl"), ui.row().classes("w-full items-center"):
            with ui.column().classes("gap-0 flex-1"):
                ui.label(cluster.name).classes("text-lg font-semibold")
                ui.label(
                    f"{cluster.connect_url} · {cluster.table_format} · ${cluster.price_per_hour:.2f}/h · "
                    f"token {'stored' if cluster.has_token else 'none'} · added {clock(cluster.created_at)}"
                ).classes("text-sm text-slate-600")
            ui.button("Test Connection", on_click=lambda: self.test(cluster)).props(OUTLINE)
            ui.button("Delete", on_click=lambda: self.delete(cluster)).props(FLAT)

    async def register(self) -> None:
        self.form_error.set_text("")
        try:
            created = await run.io_bound(
                register_cluster,
                self.services,
                self.name.value or "",
                self.url.value or "",
                self.token.value or None,
                self.table_format.value,
                float(self.price.value or 0),
            )
        except AutoloaderError as exc:
            self.form_error.set_text(f"{exc.message} {exc.action}")
            return
        if created is not None:
            notify_ok(f"Cluster '{created.name}' registered.")
        for element in (self.name, self.url, self.token):
            element.set_value("")
        await self.reload()

    async def test(self, cluster: ClusterView) -> None:
        await self._act(test_cluster, cluster.id)

    async def delete(self, cluster: ClusterView) -> None:
        await self._act(delete_cluster, cluster.id)
        await self.reload()

    async def _act(self, action: Any, cluster_id: int) -> None:
        try:
            message = await run.io_bound(action, self.services, cluster_id)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        notify_ok(message or "Done.")


async def clusters_page() -> None:
    with frame("Clusters"):
        await ClustersView().reload()

"""Clusters `/clusters`: registered Spark Connect clusters, through the same ClusterService as the REST API.

Only admins register and delete clusters (the service checks too), so only they see the form and Delete; members
see the list and may test a connection; viewers see the list alone."""

from __future__ import annotations

from nicegui import app, run, ui

from app.db.models import ClusterCreate, ClusterPublic
from app.pages.context import can_change, page_frame, who
from app.services.clusters import ClusterService, ConnectionTest
from app.views import Views
from components.feedback import error_text, notify_error, notify_ok
from components.formatting import clock
from components.frame import page_heading
from components.styles import FLAT, OUTLINE, PRIMARY
from core.access import Role
from core.errors import AutoloaderError
from core.wording import sentence

TABLE_FORMATS = {"delta": "Delta", "iceberg": "Iceberg", "parquet": "Parquet"}
# two fields share a line where both get 14rem; on a phone each takes its own full line (the rows wrap)
_FIELD = "flex-1 min-w-[14rem]"
KINDS = {"remote": "Remote (any Spark Connect endpoint)", "local": "Local (started by this server)"}


def cluster_line(cluster: ClusterPublic) -> str:
    url = cluster.connect_url or "started on first use"
    return (
        f"{cluster.kind} · {url} · {cluster.table_format} · catalog {cluster.catalog} · "
        f"${cluster.price_per_hour:.2f}/h · token {'stored' if cluster.has_token else 'none'} · "
        f"added {clock(cluster.created_at)}"
    )


def test_text(result: ConnectionTest) -> str:
    reach = f"Reachable — Spark {result.spark_version or '?'}" if result.reachable else "Not reachable"
    fmt = f"table format {result.table_format} {'works' if result.format_ok else 'does not work'}"
    parts = [f"{'✓' if result.ok else '✕'} {reach}", fmt if result.reachable else "", f"{result.seconds:.1f} s"]
    text = " · ".join(p for p in parts if p)
    detail = f"{sentence(result.message)} {result.action}".strip()
    return f"{text}. {detail}" if detail else text


class ClustersView:
    def __init__(self) -> None:
        self.service: ClusterService = app.state.services.clusters
        self.views: Views = app.state.services.views
        self.who = who()
        with ui.row().classes("w-full items-center justify-between"):
            page_heading("Clusters").classes("text-3xl font-bold text-slate-800")
        ui.label(
            "Ingestions run on a cluster when you pick it on the wizard's Destination step; "
            "otherwise they run on the embedded engine."
        ).classes("text-sm text-slate-600")
        self.list_area = ui.column().classes("w-full gap-3")
        if self.who.role == Role.ADMIN:
            self._form()
        else:
            ui.label(
                f"Your role ({self.who.role.value}) can use the clusters listed here; an admin registers them."
            ).classes("text-sm text-slate-600").mark("clusters-read-only")

    def _form(self) -> None:
        with ui.card().classes("w-full p-5 gap-3 shadow-sm rounded-xl"):
            ui.label("Register a cluster").classes("text-lg font-semibold")
            with ui.row().classes("w-full gap-3"):
                self.name = ui.input("Name *").props("outlined").classes(_FIELD).mark("cluster-name")
                self.kind = (
                    ui.select(KINDS, value="remote", label="Kind", on_change=self._kind_changed)
                    .props("outlined")
                    .classes(_FIELD)
                    .mark("cluster-kind")
                )
            self.url = (
                ui.input("Spark Connect URL *", placeholder="sc://spark-host:15002")
                .props("outlined")
                .classes("w-full")
                .mark("cluster-url")
            )
            self.url_hint = ui.label().classes("text-xs text-slate-500 -mt-2")
            with ui.row().classes("w-full gap-3"):
                self.token = (
                    ui.input("Token (stored encrypted)", password=True)
                    .props("outlined")
                    .classes(f"{_FIELD} flex-[2]")
                    .mark("cluster-token")
                )
                self.table_format = (
                    ui.select(TABLE_FORMATS, value="delta", label="Table format")
                    .props("outlined")
                    .classes(_FIELD)
                    .mark("cluster-format")
                )
            with ui.row().classes("w-full gap-3"):
                self.catalog = (
                    ui.input("Catalog", value="spark_catalog").props("outlined").classes(_FIELD).mark("cluster-catalog")
                )
                self.price = (
                    ui.number("Price per hour ($)", value=0, min=0, format="%.2f")
                    .props("outlined")
                    .classes(_FIELD)
                    .mark("cluster-price")
                )
            self.form_error = ui.label().classes("text-sm text-red-600").mark("cluster-form-error")
            ui.button("Register", icon="add", on_click=self.register).props(PRIMARY).mark("register-cluster")
        self._kind_changed()

    def _kind_changed(self, *_: object) -> None:
        local = self.kind.value == "local"
        self.url.props(f'label="Spark Connect URL{"" if local else " *"}"')
        self.url_hint.set_text(
            "Optional: leave empty and the server starts a local Spark Connect server on a free port."
            if local
            else "sc://host:port of a running Spark Connect server."
        )

    async def reload(self) -> None:
        try:
            clusters = await run.io_bound(self.views.clusters, self.who) or []
        except AutoloaderError as exc:
            notify_error(exc)
            return
        self.list_area.clear()
        with self.list_area:
            if not clusters:
                ui.label("No clusters registered.").classes("text-slate-500")
            for cluster in clusters:
                self._card(cluster)

    def _card(self, cluster: ClusterPublic) -> None:
        result: ui.label  # the test result under the row, created after the buttons that fill it
        with ui.card().classes("w-full p-4 shadow-sm rounded-xl gap-2").mark(f"cluster-{cluster.name}"):
            with ui.row().classes("w-full items-center"):
                with ui.column().classes("gap-0 flex-1 min-w-[14rem]"):
                    ui.label(cluster.name).classes("text-lg font-semibold [overflow-wrap:anywhere]")
                    ui.label(cluster_line(cluster)).classes("text-sm text-slate-600 [overflow-wrap:anywhere]")
                spinner = ui.spinner(size="sm")
                spinner.set_visibility(False)
                if can_change(self.who):
                    ui.button("Test Connection", on_click=lambda: self.test(cluster, result, spinner)).props(
                        OUTLINE
                    ).mark(f"test-{cluster.name}")
                if self.who.role == Role.ADMIN:
                    ui.button("Delete", on_click=lambda: self.delete(cluster)).props(FLAT).mark(
                        f"delete-{cluster.name}"
                    )
            result = ui.label().classes("w-full p-2 rounded text-sm").mark(f"test-result-{cluster.name}")
            result.set_visibility(False)

    async def register(self) -> None:
        self.form_error.set_text("")
        try:
            body = ClusterCreate(
                name=(self.name.value or "").strip(),
                kind=self.kind.value,
                connect_url=(self.url.value or "").strip(),
                table_format=self.table_format.value,
                catalog=(self.catalog.value or "").strip() or "spark_catalog",
                price_per_hour=float(self.price.value or 0),
                token=self.token.value or None,
            )
            created = await run.io_bound(self.service.create, body, self.who)
        except AutoloaderError as exc:
            self.form_error.set_text(error_text(exc))
            return
        if created is not None:
            notify_ok(f"Cluster '{created.name}' registered.")
        for element in (self.name, self.url, self.token):
            element.set_value("")
        await self.reload()

    async def test(self, cluster: ClusterPublic, result: ui.label, spinner: ui.spinner) -> None:
        spinner.set_visibility(True)
        try:
            outcome = await run.io_bound(self.service.test, cluster.id, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        finally:
            spinner.set_visibility(False)
        if outcome is None:
            return
        result.set_text(test_text(outcome))
        good, bad = "bg-green-50 text-green-800", "bg-red-50 text-red-800"
        result.classes(add=good if outcome.ok else bad, remove=bad if outcome.ok else good)
        result.set_visibility(True)

    async def delete(self, cluster: ClusterPublic) -> None:
        try:
            await run.io_bound(self.service.delete, cluster.id, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        notify_ok(f"Cluster '{cluster.name}' deleted.")
        await self.reload()


async def clusters_page() -> None:
    with page_frame("Clusters"):
        await ClustersView().reload()

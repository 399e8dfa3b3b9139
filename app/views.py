"""The read side's one facade: the console's pages and the REST API's routes both read through it, so a number
shown in one is the number shown in the other. Queries are in `app/db/queries.py`, rules in `core/views.py`.

Every method takes the caller (`who`) and shows only their tenant's objects: another tenant's ingestion is
NotFound, exactly like a missing one. The tenant filter is applied here and in the queries, nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from app.db.models import ClusterPublic
from app.db.queries import Queries
from app.db.repository import NotificationStore
from core.access import Principal, own_only, require_admin, require_instance_admin
from core.config import DestinationConfig
from core.errors import AutoloaderError, Unauthorized
from core.maintenance import MaintenanceRecord, MaintenanceView, next_due
from core.views import (
    AuditRecord,
    DashboardData,
    DashboardQuery,
    DetailData,
    FilePage,
    IngestionSummary,
    InstanceMetrics,
    NotificationFeed,
    RunRecord,
    RunTotals,
    SchemaReviewData,
    SchemaVersionRecord,
    TablePlace,
    actual_cost,
    current_columns,
    monthly_cost,
    select_summaries,
    table_place,
)

RUN_HISTORY_DAYS = 30
TableUri = Callable[[DestinationConfig, int], str]


class Views:
    def __init__(self, queries: Queries, table_uri: TableUri):
        self.queries = queries
        self._table_uri = table_uri

    # --- ingestions -----------------------------------------------------------------------------------------------
    def ingestions(
        self, who: Principal, status: str | None = None, source_type: str | None = None, mode: str | None = None
    ) -> list[IngestionSummary]:
        return [
            s
            for s in self.queries.summaries(who.tenant_id, status=status, owner=own_only(who))
            if (not source_type or s.spec.source.type == source_type) and (not mode or s.spec.schedule.mode == mode)
        ]

    def name_taken(self, who: Principal, name: str, editing_id: int | None = None) -> bool:
        """Whether another ingestion of the tenant has this name, whoever created it: names are unique per tenant,
        so a member is told before saving what the save would answer (409), and nothing more."""
        return any(s.name == name and s.id != editing_id for s in self.queries.summaries(who.tenant_id))

    def ingestion(self, who: Principal, ingestion_id: int) -> IngestionSummary:
        return self.queries.summary(ingestion_id, who.tenant_id, own_only(who))

    def table_uri(self, summary: IngestionSummary) -> str:
        """Where the embedded engine keeps the table; a cluster's catalog decides for Spark ("" here)."""
        return self._table_uri(summary.spec.destination, summary.tenant_id) if summary.spec.cluster_id is None else ""

    def table_places(self, who: Principal, summaries: list[IngestionSummary]) -> dict[int, TablePlace]:
        """Each ingestion's table place (one query for the tenant's clusters, whatever the number of ingestions)."""
        clusters = {}
        if any(s.spec.cluster_id is not None for s in summaries):
            clusters = {c.id: (c.name, c.table_format) for c in self.queries.clusters(who.tenant_id)}
        return {s.id: table_place(s.spec, self.table_uri(s), clusters.get(s.spec.cluster_id or 0)) for s in summaries}

    def dashboard(self, who: Principal, query: DashboardQuery) -> DashboardData:
        summaries = self.queries.summaries(who.tenant_id, owner=own_only(who))
        chosen = select_summaries(summaries, query)
        cards = chosen[: query.limit]
        in_review = [c.id for c in cards if c.status == "needs_review"]
        return DashboardData(
            stats=self.queries.dashboard_stats(who.tenant_id, owner=own_only(who)),
            cards=cards,
            weeks=self.queries.run_totals([c.id for c in cards]),
            matching=len(chosen),
            total=len(summaries),
            pending=self.queries.pending_schemas(in_review),
        )

    def detail(self, who: Principal, ingestion_id: int) -> DetailData:
        summary = self.queries.summary(ingestion_id, who.tenant_id, own_only(who))
        week = self.queries.run_totals([ingestion_id])[ingestion_id]
        runs = self.queries.runs(ingestion_id, days=RUN_HISTORY_DAYS)
        return DetailData(
            summary,
            week,
            runs,
            monthly_cost(summary.spec, week),
            actual_cost(runs),
            versions=self.queries.schema_versions(ingestion_id),
            alerts=self.queries.open_alerts(ingestion_id),
            place=self.table_places(who, [summary])[summary.id],
        )

    def schema_review(self, who: Principal, ingestion_id: int) -> SchemaReviewData:
        summary = self.queries.summary(ingestion_id, who.tenant_id, own_only(who))
        versions = self.queries.schema_versions(ingestion_id)
        pending = next((v for v in versions if v.status == "pending"), None)
        return SchemaReviewData(summary, pending, current_columns(versions))

    def run_totals(self, who: Principal, ingestion_id: int, days: int = 7) -> RunTotals:
        self.queries.require_ingestion(ingestion_id, who.tenant_id, own_only(who))
        return self.queries.run_totals([ingestion_id], days)[ingestion_id]

    # --- runs and files -----------------------------------------------------------------------------------------------
    def runs(self, who: Principal, ingestion_id: int, days: int | None = RUN_HISTORY_DAYS) -> list[RunRecord]:
        self.queries.require_ingestion(ingestion_id, who.tenant_id, own_only(who))
        return self.queries.runs(ingestion_id, days=days)

    def run(self, who: Principal, ingestion_id: int, run_id: int) -> RunRecord:
        self.queries.require_ingestion(ingestion_id, who.tenant_id, own_only(who))
        return self.queries.run(ingestion_id, run_id)

    def run_label(self, who: Principal, ingestion_id: int, run_id: int) -> str:
        """ "Run #3": how the console names a run it just started (its id if the run cannot be read)."""
        try:
            return self.run(who, ingestion_id, run_id).label
        except AutoloaderError:
            return f"Run {run_id}"

    def run_files(self, who: Principal, ingestion_id: int, run_id: int, limit: int = 500) -> FilePage:
        self.queries.require_ingestion(ingestion_id, who.tenant_id, own_only(who))
        return self.queries.files(ingestion_id, limit=limit, run_id=run_id)

    def files(
        self,
        who: Principal,
        ingestion_id: int,
        status: str | None = None,
        search: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> FilePage:
        self.queries.require_ingestion(ingestion_id, who.tenant_id, own_only(who))
        return self.queries.files(ingestion_id, status, search, limit, offset)

    def schema_versions(self, who: Principal, ingestion_id: int) -> list[SchemaVersionRecord]:
        self.queries.require_ingestion(ingestion_id, who.tenant_id, own_only(who))
        return self.queries.schema_versions(ingestion_id)

    # --- table maintenance --------------------------------------------------------------------------------------------
    def maintenance(self, who: Principal, ingestion_id: int) -> MaintenanceView:
        self.queries.require_ingestion(ingestion_id, who.tenant_id, own_only(who))
        config, records = self.queries.maintenance(ingestion_id)
        return MaintenanceView(config, records, next_due(config, datetime.now(UTC)))

    def maintenance_run(self, who: Principal, ingestion_id: int, maintenance_id: int) -> MaintenanceRecord:
        self.queries.require_ingestion(ingestion_id, who.tenant_id, own_only(who))
        return self.queries.maintenance_run(ingestion_id, maintenance_id)

    # --- notifications, clusters, audit -------------------------------------------------------------------------------
    def notifications(self, who: Principal, unread_only: bool = False, limit: int = 100) -> NotificationFeed:
        return NotificationFeed(
            self.queries.unread_count(who.tenant_id, own_only(who)),
            self.queries.notifications(who.tenant_id, unread_only, limit, own_only(who)),
        )

    def unread_count(self, who: Principal) -> int:
        return self.queries.unread_count(who.tenant_id, own_only(who))

    def clusters(self, who: Principal) -> list[ClusterPublic]:
        return self.queries.clusters(who.tenant_id)

    def cluster(self, who: Principal, cluster_id: int) -> ClusterPublic:
        return self.queries.cluster(cluster_id, who.tenant_id)

    def audit(self, who: Principal, limit: int = 200) -> list[AuditRecord]:
        require_admin(who, "read the audit log")
        return self.queries.audit(who.tenant_id, limit)

    # --- the instance's metrics ---------------------------------------------------------------------------------------
    def instance_metrics(self, who: Principal | None, public: bool = False) -> InstanceMetrics:
        """Every tenant's numbers (instance-wide, never per tenant): an instance admin's to read, or anyone's when
        `public` (AUTOLOADER_METRICS_PUBLIC, for a scraper inside a trusted network)."""
        if not public:
            if who is None:
                raise Unauthorized("Metrics need an API token.", "Send 'Authorization: Bearer <admin token>'.")
            require_admin(who, "read the instance's metrics")
            require_instance_admin(who, "read the instance's metrics")
        return self.queries.instance_metrics()


class Inbox:
    """The notification bell's source for one user: reads through the views, marks read in the tenant only."""

    def __init__(self, views: Views, notifications: NotificationStore, who: Principal):
        self.views = views
        self.store = notifications
        self.who = who

    def unread_count(self) -> int:
        return self.views.unread_count(self.who)

    def notifications(self, unread_only: bool = False, limit: int = 100) -> NotificationFeed:
        return self.views.notifications(self.who, unread_only, limit)

    def mark_read(self, notification_id: int | None = None) -> None:
        self.store.mark_read(self.who.tenant_id, notification_id, own_only(self.who))

"""The read side's one facade: the console's pages and the REST API's routes both read through it, so a number
shown in one is the number shown in the other. Queries are in `app/db/queries.py`, rules in `core/views.py`."""

from __future__ import annotations

from collections.abc import Callable

from app.db.models import ClusterPublic
from app.db.queries import Queries
from app.db.repository import NotificationStore
from core.config import DestinationConfig
from core.views import (
    AuditRecord,
    DashboardData,
    DashboardQuery,
    DetailData,
    FilePage,
    IngestionSummary,
    NotificationFeed,
    RunRecord,
    RunTotals,
    SchemaReviewData,
    SchemaVersionRecord,
    actual_cost,
    current_columns,
    monthly_cost,
    select_summaries,
)

RUN_HISTORY_DAYS = 30


class Views:
    def __init__(self, queries: Queries, table_uri: Callable[[DestinationConfig], str]):
        self.queries = queries
        self._table_uri = table_uri

    # --- ingestions ---------------------------------------------------------------------------------------------------
    def ingestions(
        self, status: str | None = None, source_type: str | None = None, mode: str | None = None
    ) -> list[IngestionSummary]:
        return [
            s
            for s in self.queries.summaries(status=status)
            if (not source_type or s.spec.source.type == source_type) and (not mode or s.spec.schedule.mode == mode)
        ]

    def ingestion(self, ingestion_id: int) -> IngestionSummary:
        return self.queries.summary(ingestion_id)

    def table_uri(self, summary: IngestionSummary) -> str:
        """Where the embedded engine keeps the table; a cluster's catalog decides for Spark ("" here)."""
        return self._table_uri(summary.spec.destination) if summary.spec.cluster_id is None else ""

    def dashboard(self, query: DashboardQuery) -> DashboardData:
        summaries = self.queries.summaries()
        chosen = select_summaries(summaries, query)
        cards = chosen[: query.limit]
        in_review = [c.id for c in cards if c.status == "needs_review"]
        return DashboardData(
            stats=self.queries.dashboard_stats(),
            cards=cards,
            weeks=self.queries.run_totals([c.id for c in cards]),
            matching=len(chosen),
            total=len(summaries),
            pending=self.queries.pending_schemas(in_review),
        )

    def detail(self, ingestion_id: int) -> DetailData:
        summary = self.queries.summary(ingestion_id)
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
        )

    def schema_review(self, ingestion_id: int) -> SchemaReviewData:
        summary = self.queries.summary(ingestion_id)
        versions = self.queries.schema_versions(ingestion_id)
        pending = next((v for v in versions if v.status == "pending"), None)
        return SchemaReviewData(summary, pending, current_columns(versions))

    def run_totals(self, ingestion_id: int, days: int = 7) -> RunTotals:
        self.queries.require_ingestion(ingestion_id)
        return self.queries.run_totals([ingestion_id], days)[ingestion_id]

    # --- runs and files -----------------------------------------------------------------------------------------------
    def runs(self, ingestion_id: int, days: int | None = RUN_HISTORY_DAYS) -> list[RunRecord]:
        self.queries.require_ingestion(ingestion_id)
        return self.queries.runs(ingestion_id, days=days)

    def run(self, ingestion_id: int, run_id: int) -> RunRecord:
        return self.queries.run(ingestion_id, run_id)

    def run_files(self, ingestion_id: int, run_id: int, limit: int = 500) -> FilePage:
        return self.queries.files(ingestion_id, limit=limit, run_id=run_id)

    def files(
        self,
        ingestion_id: int,
        status: str | None = None,
        search: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> FilePage:
        self.queries.require_ingestion(ingestion_id)
        return self.queries.files(ingestion_id, status, search, limit, offset)

    def schema_versions(self, ingestion_id: int) -> list[SchemaVersionRecord]:
        self.queries.require_ingestion(ingestion_id)
        return self.queries.schema_versions(ingestion_id)

    def active_runs(self, ids: list[int]) -> set[int]:
        return self.queries.active_runs(ids)

    # --- notifications, clusters, audit -------------------------------------------------------------------------------
    def notifications(self, unread_only: bool = False, limit: int = 100) -> NotificationFeed:
        return NotificationFeed(self.queries.unread_count(), self.queries.notifications(unread_only, limit))

    def unread_count(self) -> int:
        return self.queries.unread_count()

    def clusters(self) -> list[ClusterPublic]:
        return self.queries.clusters()

    def cluster(self, cluster_id: int) -> ClusterPublic:
        return self.queries.cluster(cluster_id)

    def audit(self, limit: int = 200) -> list[AuditRecord]:
        return self.queries.audit(limit)


class Inbox:
    """The notification bell's source: reads through the views, marks read through the notification store."""

    def __init__(self, views: Views, notifications: NotificationStore):
        self.views = views
        self.store = notifications

    def unread_count(self) -> int:
        return self.views.unread_count()

    def notifications(self, unread_only: bool = False, limit: int = 100) -> NotificationFeed:
        return self.views.notifications(unread_only, limit)

    def mark_read(self, notification_id: int | None = None) -> None:
        self.store.mark_read(notification_id)

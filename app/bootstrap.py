"""The composition root: settings → database → repositories → engines and storage → pipeline → runner →
scheduler → services and the read side. Nothing else in the application builds these objects.

`build()` applies pending migrations. `Container.start()` is the server's start-up (close orphaned runs, start the
scheduler, arm retries); the CLI builds a container and never starts it, so it runs without a scheduler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from app.alerts import AlertService
from app.db.clusters import ClusterRepository
from app.db.database import make_engine, upgrade
from app.db.queries import Queries
from app.db.repository import NotificationStore, SqlStore
from app.runner import Runner
from app.scheduler import Scheduler
from app.secrets_box import SecretBox
from app.services.clusters import ClusterService
from app.services.engines import Engines
from app.services.ingestions import IngestionService
from app.services.preview import PreviewService
from app.services.runs import RunService
from app.services.schema_review import SchemaReviewService
from app.settings import Settings
from app.views import Inbox, Views
from core.domain import IngestionStatus
from core.engines.embedded import EmbeddedEngine
from core.pipeline import RunPipeline
from core.storage import open_storage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Container:
    """Everything one process needs, built once."""

    settings: Settings
    db: Engine
    store: SqlStore
    notifications: NotificationStore
    embedded: EmbeddedEngine
    clusters: ClusterService
    engines: Engines
    pipeline: RunPipeline
    runner: Runner
    scheduler: Scheduler
    alerts: AlertService
    ingestions: IngestionService
    runs: RunService
    schema: SchemaReviewService
    previews: PreviewService
    views: Views
    inbox: Inbox

    def start(self) -> None:
        """Server start-up: close runs a stopped server left open, start the scheduler, arm retries and checks."""
        closed = self.runner.recover_orphans()
        if closed:
            log.warning("closed %d run(s) left open by a stopped server", closed)
        self.scheduler.start()
        self.runner.clock = self.scheduler
        self.runner.rearm_retries()
        self.scheduler.every(self.settings.alert_check_seconds, "periodic-checks", self.periodic_checks)

    def periodic_checks(self) -> None:
        """SLA and no-new-files alerts; retries another replica queued."""
        self.alerts.check(self.store.list_ingestions(status=IngestionStatus.ACTIVE.value))
        self.runner.rearm_retries()

    def close(self) -> None:
        self.scheduler.shutdown()
        self.runner.close()
        self.clusters.close()
        self.db.dispose()


def build(settings: Settings) -> Container:
    url = settings.resolved_database_url
    upgrade(url)
    db = make_engine(url)
    secrets = SecretBox(settings.resolved_secret_key)
    store = SqlStore(db, secrets)
    queries = Queries(db)
    notifications = NotificationStore(db)
    embedded = EmbeddedEngine(settings.resolved_warehouse, settings.warehouse_storage_options)
    clusters = ClusterService(ClusterRepository(db, secrets), store, settings.data_dir)
    engines = Engines(embedded, clusters)
    stale_after = timedelta(seconds=settings.stale_run_seconds)
    pipeline = RunPipeline(
        store,
        engines.for_ingestion,
        open_storage,
        heartbeat_seconds=settings.heartbeat_seconds,
        stale_after=stale_after,
    )
    runner = Runner(store, pipeline, settings.retry_backoff_seconds, settings.run_workers)
    alerts = AlertService(notifications, settings)
    runner.listeners.append(alerts.on_run)
    scheduler = Scheduler(store, runner.submit, settings.schedule_refresh_seconds)
    ingestions = IngestionService(store, engines, clusters, scheduler, stale_after)
    runs = RunService(store, runner, stale_after)
    views = Views(queries, embedded.table_uri)
    return Container(
        settings=settings,
        db=db,
        store=store,
        notifications=notifications,
        embedded=embedded,
        clusters=clusters,
        engines=engines,
        pipeline=pipeline,
        runner=runner,
        scheduler=scheduler,
        alerts=alerts,
        ingestions=ingestions,
        runs=runs,
        schema=SchemaReviewService(store, notifications, engines, ingestions, runs),
        previews=PreviewService(engines),
        views=views,
        inbox=Inbox(views, notifications),
    )

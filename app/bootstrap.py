"""The composition root: settings → database → repositories → engines and storage → pipeline → runner →
scheduler → services and the read side. Nothing else in the application builds these objects.

`build()` applies pending migrations. `Container.start()` is the server's start-up (close orphaned runs, start the
scheduler, arm retries); the CLI builds a container and never starts it, so it runs without a scheduler.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, make_url

from app.alerts import AlertService
from app.db.accounts import AccountRepository
from app.db.clusters import ClusterRepository
from app.db.database import make_engine, upgrade
from app.db.queries import Queries
from app.db.repository import NotificationStore, SqlStore
from app.db.retrying import RetryingStore
from app.runner import Runner
from app.scheduler import Scheduler
from app.secrets_box import SecretBox
from app.services.accounts import AccountService
from app.services.clusters import ClusterService
from app.services.engines import Engines
from app.services.ingestions import IngestionService
from app.services.preview import PreviewService
from app.services.runs import RunService
from app.services.schema_review import SchemaReviewService
from app.settings import Settings
from app.views import Inbox, Views
from core.access import Principal
from core.domain import IngestionStatus
from core.egress import EgressAllow, check_url
from core.engines.embedded import EmbeddedEngine
from core.guards import ROOTS_SETTING, Guards, LocalRoots
from core.pipeline import RunPipeline
from core.retry import Backoff
from core.storage import open_storage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Container:
    """Everything one process needs, built once."""

    settings: Settings
    guards: Guards
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
    accounts: AccountService
    views: Views

    def start(self) -> None:
        """Server start-up: close runs a stopped server left open, start the scheduler, arm retries and checks."""
        s = self.settings
        self.accounts.bootstrap(s.admin_email, s.admin_password, s.admin_token)
        closed = self.runner.recover_orphans()
        if closed:
            log.warning("closed %d run(s) left open by a stopped server", closed)
        self.scheduler.start()
        self.runner.clock = self.scheduler
        self.runner.rearm_retries()
        self.scheduler.every(self.settings.alert_check_seconds, "periodic-checks", self.periodic_checks)
        sweep_every = max(1.0, min(s.stale_run_seconds / 2, s.schedule_refresh_seconds))
        self.scheduler.every(sweep_every, "stale-run-sweep", self.runner.settle_stale_runs)

    def inbox(self, who: Principal) -> Inbox:
        """The notification bell's source for one signed-in user."""
        return Inbox(self.views, self.notifications, who)

    def periodic_checks(self) -> None:
        """SLA and no-new-files alerts; retries another replica queued."""
        self.alerts.check(self.store.list_ingestions(status=IngestionStatus.ACTIVE.value))
        self.runner.rearm_retries()

    def close(self) -> None:
        self.scheduler.shutdown()
        self.runner.close()
        self.clusters.close()
        self.db.dispose()


def build_guards(settings: Settings) -> Guards:
    """The confinement and egress rules from the settings. Refuses (ConfigError) a local root that is a system folder
    or holds the server's own files, a malformed allow entry, and a warehouse endpoint the egress rule refuses."""
    roots = settings.resolved_local_roots
    if not settings.local_roots:
        roots[0].mkdir(parents=True, exist_ok=True)
    for root in roots:
        if not root.is_dir():
            log.warning(
                "%s lists %s, which is not a folder (yet): local sources under it cannot load", ROOTS_SETTING, root
            )
    local = LocalRoots(str(root) for root in roots)
    protected = {"the data directory (metadata database, secret key)": str(settings.data_dir)}
    database = make_url(settings.resolved_database_url)
    if database.get_backend_name() == "sqlite" and database.database not in (None, "", ":memory:"):
        protected["the metadata database"] = str(database.database)
    local.refuse_unsafe(protected)
    egress = EgressAllow.parse(settings.egress_allow)
    for key, value in settings.warehouse_storage_options.items():
        if "endpoint" in key.lower() and value:
            check_url(value, egress, field=f"AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS.{key}")
    return Guards(local, egress)


def storage_backoff(settings: Settings) -> Backoff:
    """How a run retries a storage call that fails transiently, before the run fails as transient."""
    return Backoff(
        attempts=settings.storage_retry_attempts,
        base_seconds=settings.storage_retry_base_seconds,
        cap_seconds=settings.storage_retry_cap_seconds,
    )


def build(settings: Settings) -> Container:
    guards = build_guards(settings)
    url = settings.resolved_database_url
    upgrade(url)
    db = make_engine(url)
    secrets = SecretBox(settings.resolved_secret_key)
    store = SqlStore(db, secrets)
    queries = Queries(db)
    notifications = NotificationStore(db)
    embedded = EmbeddedEngine(settings.resolved_warehouse, settings.warehouse_storage_options)
    clusters = ClusterService(ClusterRepository(db, secrets), store, settings.data_dir, guards.egress)
    engines = Engines(embedded, clusters)
    stale_after = timedelta(seconds=settings.stale_run_seconds)
    pipeline = RunPipeline(
        RetryingStore(store, settings.resolved_db_retry_seconds),
        engines.for_ingestion,
        functools.partial(open_storage, guards=guards, retry=storage_backoff(settings)),
        heartbeat_seconds=settings.heartbeat_seconds,
        stale_after=stale_after,
    )
    runner = Runner(store, pipeline, settings.retry_backoff_seconds, settings.run_workers)
    alerts = AlertService(notifications, settings, guards.egress)
    runner.listeners.append(alerts.on_run)
    scheduler = Scheduler(store, runner.submit, settings.schedule_refresh_seconds)
    ingestions = IngestionService(store, engines, clusters, scheduler, stale_after, guards)
    runs = RunService(store, runner, stale_after)
    views = Views(queries, engines.table_uri)
    return Container(
        settings=settings,
        guards=guards,
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
        previews=PreviewService(engines, guards),
        views=views,
        accounts=AccountService(AccountRepository(db), store),
    )

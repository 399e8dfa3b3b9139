"""The composition root: settings → database → repositories → engines and storage → pipeline → runner →
scheduler → services and the read side. Nothing else in the application builds these objects.

Two layers, one build: `build_runtime()` makes what running an ingestion needs (`Runtime`: database, store,
engines, pipeline, runner, alerts, runs); `build()` makes that and adds the server's parts (`Container`: scheduler,
ingestion and schema services, previews, accounts, read side). `autoloader run` builds only the runtime, so a cron
job imports neither the web stack, nor the scheduler, nor the read side (tests/integration/test_cli_imports.py).

Building applies pending migrations. `Container.start()` is the server's start-up (close orphaned runs, start the
scheduler, arm retries); the CLI never starts anything, so it runs without a scheduler.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, make_url

from app.alerts import AlertService
from app.db.clusters import ClusterRepository
from app.db.database import make_engine, upgrade
from app.db.repository import NotificationStore, SqlStore
from app.db.retrying import RetryingStore
from app.live import RunNews
from app.runner import Runner
from app.secrets_box import SecretBox
from app.services.clusters import ClusterService
from app.services.engines import Engines
from app.services.runs import RunService
from app.settings import Settings
from core.access import Principal
from core.domain import IngestionStatus
from core.egress import EgressAllow, check_url
from core.guards import ROOTS_SETTING, Guards, LocalRoots, TablesLocation
from core.pipeline import RunPipeline
from core.retry import Backoff
from core.storage import open_storage

if TYPE_CHECKING:
    from app.scheduler import Scheduler
    from app.services.accounts import AccountService
    from app.services.engine_move import EngineMoveService
    from app.services.ingestions import IngestionService
    from app.services.maintenance import MaintenanceService
    from app.services.preview import PreviewService
    from app.services.refresh import FullRefreshService
    from app.services.schema_review import SchemaReviewService
    from app.views import Inbox, Views
    from core.engines.embedded import EmbeddedEngine

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    """What running ingestions needs, built once: enough for `autoloader run`."""

    settings: Settings
    guards: Guards
    db: Engine
    store: SqlStore
    notifications: NotificationStore
    clusters: ClusterService
    engines: Engines
    pipeline: RunPipeline
    runner: Runner
    alerts: AlertService
    runs: RunService
    news: RunNews

    @property
    def embedded(self) -> EmbeddedEngine:
        """The first tenant's embedded engine (made on first use: it imports Arrow and delta-rs)."""
        return self.engines.embedded

    def close(self) -> None:
        self.runner.close()
        self.alerts.close()
        self.clusters.close()
        self.db.dispose()


@dataclass(slots=True)
class Container(Runtime):
    """Everything the server process needs, built once: the runtime and the parts of the console, API and scheduler."""

    scheduler: Scheduler
    ingestions: IngestionService
    schema: SchemaReviewService
    previews: PreviewService
    accounts: AccountService
    views: Views
    maintenance: MaintenanceService
    refresh: FullRefreshService
    engine_move: EngineMoveService

    def start(self) -> None:
        """Server start-up: close runs a stopped server left open, start the scheduler, arm retries and checks."""
        s = self.settings
        self.accounts.bootstrap(s.admin_email, s.admin_password, s.admin_token)
        if sealed := self.store.seal_plain_webhooks():
            log.info("sealed %d webhook URL(s) stored in the clear by an earlier version", sealed)
        interrupted = self.runner.recover_orphans()
        if interrupted:
            log.warning("closed %d run(s) left running by a stopped server; retrying them", len(interrupted))
        self.scheduler.start()
        self.runner.clock = self.scheduler
        self.runner.rearm_retries()
        self.runner.retry_interrupted(interrupted)
        self.scheduler.every(self.settings.alert_check_seconds, "periodic-checks", self.periodic_checks)
        sweep_every = max(1.0, min(s.stale_run_seconds / 2, s.schedule_refresh_seconds))
        self.scheduler.every(sweep_every, "stale-run-sweep", self.runner.settle_stale_runs)
        self.scheduler.maintain(self.maintenance.check_due)

    def inbox(self, who: Principal) -> Inbox:
        """The notification bell's source for one signed-in user."""
        from app.views import Inbox

        return Inbox(self.views, self.notifications, who)

    def periodic_checks(self) -> None:
        """SLA and no-new-files alerts; retries another replica queued."""
        self.alerts.check(self.store.list_ingestions(status=IngestionStatus.ACTIVE.value))
        self.runner.rearm_retries()

    def close(self) -> None:
        self.scheduler.shutdown()
        self.maintenance.close()
        Runtime.close(self)  # zero-argument super() does not work in a slots dataclass


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
    tables = TablesLocation(settings.resolved_warehouse, warehouse_endpoint(settings.warehouse_storage_options))
    local = LocalRoots((str(root) for root in roots), excluded=[folder] if (folder := tables.local_folder()) else [])
    protected = {"the data directory (metadata database, secret key)": str(settings.data_dir)}
    database = make_url(settings.resolved_database_url)
    if database.get_backend_name() == "sqlite" and database.database not in (None, "", ":memory:"):
        protected["the metadata database"] = str(database.database)
    local.refuse_unsafe(protected)
    egress = EgressAllow.parse(settings.egress_allow)
    for key, value in settings.warehouse_storage_options.items():
        if is_address_option(key) and value:
            check_url(value, egress, field=f"AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS.{key}")
    return Guards(local, egress, tables)


ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT",
    "AZURE_STORAGE_ENDPOINT",
    "AZURE_ENDPOINT",
)
"""The environment variables delta-rs (object_store) takes a warehouse's endpoint from when its storage options
name none."""


def warehouse_endpoint(options: dict[str, str], environ: Mapping[str, str] = os.environ) -> str | None:
    """Where the warehouse's requests go: its storage options' endpoint, else the one delta-rs finds in the
    environment. Missing the latter, the overlap guard took a warehouse on a local S3 server for AWS and let a
    source on that server list the tables' own files (10 rows became 30 in three runs)."""
    given = next((v for k, v in options.items() if is_address_option(k) and v), None)
    return given or next((environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)), None)


def is_address_option(key: str) -> bool:
    """A delta-rs storage option naming where requests go: AWS_ENDPOINT_URL, azure_storage_endpoint,
    google_base_url (GCS names its endpoint a base URL)."""
    lowered = key.lower()
    return "endpoint" in lowered or lowered.endswith("base_url")


def storage_backoff(settings: Settings) -> Backoff:
    """How a run retries a storage call that fails transiently, before the run fails as transient."""
    return Backoff(
        attempts=settings.storage_retry_attempts,
        base_seconds=settings.storage_retry_base_seconds,
        cap_seconds=settings.storage_retry_cap_seconds,
    )


def build_runtime(settings: Settings) -> Runtime:
    """Database (migrated), store, engines, pipeline, runner with its alert listener, and the run service."""
    guards = build_guards(settings)
    url = settings.resolved_database_url
    db = make_engine(url)
    upgrade(url, db)
    secrets = SecretBox(settings.resolved_secret_key)
    store = SqlStore(db, secrets)
    notifications = NotificationStore(db)
    clusters = ClusterService(
        ClusterRepository(db, secrets), store, settings.data_dir, guards.egress, settings.spark_csv_on_workers
    )
    engines = Engines(settings.resolved_warehouse, settings.warehouse_storage_options, clusters)
    stale_after = timedelta(seconds=settings.stale_run_seconds)
    news = RunNews()
    pipeline = RunPipeline(
        RetryingStore(store, settings.resolved_db_retry_seconds),
        engines.for_ingestion,
        functools.partial(open_storage, guards=guards, retry=storage_backoff(settings)),
        heartbeat_seconds=settings.heartbeat_seconds,
        stale_after=stale_after,
        on_progress=news.announce,
    )
    runner = Runner(store, pipeline, settings.retry_backoff_seconds, settings.run_workers)
    alerts = AlertService(notifications, settings, guards.egress)
    runner.listeners.append(alerts.on_run)
    runner.listeners.append(lambda ingestion, _outcome, _retry: news.announce(ingestion.id))
    return Runtime(
        settings=settings,
        guards=guards,
        db=db,
        store=store,
        notifications=notifications,
        clusters=clusters,
        engines=engines,
        pipeline=pipeline,
        runner=runner,
        alerts=alerts,
        runs=RunService(store, runner, stale_after),
        news=news,
    )


def build(settings: Settings) -> Container:
    """The runtime and the server's parts on top of it."""
    from app.db.accounts import AccountRepository
    from app.db.queries import Queries
    from app.scheduler import Scheduler
    from app.services.accounts import AccountService
    from app.services.engine_move import EngineMoveService
    from app.services.ingestions import IngestionService
    from app.services.maintenance import MaintenanceService
    from app.services.preview import PreviewService
    from app.services.refresh import FullRefreshService, embedded_table_rows
    from app.services.schema_review import SchemaReviewService
    from app.views import Views

    runtime = build_runtime(settings)
    db, store, engines, guards = runtime.db, runtime.store, runtime.engines, runtime.guards
    stale_after = timedelta(seconds=settings.stale_run_seconds)
    scheduler = Scheduler(store, runtime.runner.submit, settings.schedule_refresh_seconds)
    ingestions = IngestionService(store, engines, runtime.clusters, scheduler, stale_after, guards)
    return Container(
        **{f.name: getattr(runtime, f.name) for f in fields(Runtime)},
        scheduler=scheduler,
        ingestions=ingestions,
        schema=SchemaReviewService(store, runtime.notifications, engines, ingestions, runtime.runs),
        previews=PreviewService(engines, guards),
        accounts=AccountService(AccountRepository(db), store),
        views=Views(Queries(db), engines.table_uri),
        maintenance=MaintenanceService(
            store, engines, stale_after, settings.heartbeat_seconds, settings.allow_short_vacuum_retention
        ),
        refresh=FullRefreshService(store, runtime.runs, embedded_table_rows(engines)),
        engine_move=EngineMoveService(store, engines, runtime.clusters, ingestions),
    )

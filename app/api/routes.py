"""REST API v1 routes: parse, call a service or the read side (`app/views.py`), render."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app import __version__
from app.api.accounts import Who
from app.api.schemas import (
    AuditPublic,
    EngineMoveRequest,
    FilePage,
    Filter,
    FullRefreshAccepted,
    FullRefreshRequest,
    Health,
    HealthCheck,
    IngestionCreate,
    IngestionId,
    IngestionPublic,
    MaintenanceAccepted,
    MaintenanceId,
    MaintenancePublic,
    Metrics,
    NotificationId,
    NotificationPage,
    ReprocessAccepted,
    ReprocessRequest,
    ResolutionPlanPublic,
    ResolveRequest,
    ResolveResult,
    RunAccepted,
    RunId,
    RunPublic,
    SchedulePreview,
    SchemaVersionPublic,
    TestResult,
    Version,
)
from app.bootstrap import Container
from app.db.models import LedgerFilePublic, MaintenanceRunPublic, NotificationPublic
from app.health import check_all
from core.access import Principal, own_only
from core.config import MAX_ID, IngestionSpec, ScheduleConfig, ScheduleMode, SourceType
from core.domain import FileStatus, IngestionStatus
from core.errors import ConfigError
from core.maintenance import MaintenanceConfig
from core.schedule import describe, next_fire_times

router = APIRouter(prefix="/api/v1")


def container(request: Request) -> Container:
    found: Container = request.app.state.services
    return found


Svc = Annotated[Container, Depends(container)]


def _public(svc: Container, who: Principal, ingestion_id: int) -> IngestionPublic:
    summary = svc.views.ingestion(who, ingestion_id)
    return IngestionPublic.build(
        summary, svc.views.table_uri(summary), svc.views.table_places(who, [summary])[summary.id]
    )


@router.get(
    "/health", response_model=Health, tags=["system"], responses={503: {"model": Health, "description": "degraded"}}
)
def health(svc: Svc, response: Response) -> Health:
    """200 when the metadata database, the scheduler and the warehouse are fine; 503 naming the failed check."""
    checks = check_all(svc.db, svc.scheduler, svc.embedded.warehouse, svc.settings.warehouse_storage_options)
    degraded = not all(check.ok for check in checks.values())
    if degraded:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="degraded" if degraded else "ok",
        checks={
            name: HealthCheck(status="ok" if check.ok else "failed", detail=check.detail)
            for name, check in checks.items()
        },
        database=svc.db.dialect.name,
        warehouse=svc.embedded.warehouse,
        version=__version__,
    )


@router.post("/ingestions", response_model=IngestionPublic, status_code=status.HTTP_201_CREATED, tags=["ingestions"])
def create_ingestion(body: IngestionCreate, svc: Svc, who: Who) -> IngestionPublic:
    spec = IngestionSpec.model_validate(body.model_dump(exclude={"activate"}, by_alias=True))
    return _public(svc, who, svc.ingestions.create(spec, activate=body.activate, who=who).id)


@router.get("/ingestions", response_model=list[IngestionPublic], tags=["ingestions"])
def list_ingestions(
    svc: Svc,
    who: Who,
    status: IngestionStatus | None = None,
    source_type: SourceType | None = None,
    mode: ScheduleMode | None = None,
) -> list[IngestionPublic]:
    """Filters take the values the fields have (an unknown one is refused, not an empty list)."""
    summaries = svc.views.ingestions(who, status, source_type, mode)
    places = svc.views.table_places(who, summaries)
    return [IngestionPublic.build(s, svc.views.table_uri(s), places[s.id]) for s in summaries]


@router.post("/ingestions/test", response_model=TestResult, tags=["ingestions"])
def test_ingestion(body: IngestionSpec, svc: Svc, who: Who) -> TestResult:
    """Check the connection, list files, infer the schema and read 5 sample rows. Writes nothing."""
    result = svc.previews.test(body, who)
    return TestResult.model_validate({"ok": True, **asdict(result)})


@router.get("/ingestions/{ingestion_id}", response_model=IngestionPublic, tags=["ingestions"])
def get_ingestion(ingestion_id: IngestionId, svc: Svc, who: Who, response: Response) -> IngestionPublic:
    """The ingestion's settings and state; its `ETag` header is its revision, for `If-Match` on PUT or PATCH."""
    public = _public(svc, who, ingestion_id)
    response.headers["ETag"] = f'"{public.revision}"'
    return public


IfMatch = Annotated[
    str | None,
    Header(
        description="The `revision` the change was made from (as GET returned it): refused with 409 edit_conflict "
        "when another save came since. Without it the change is saved whatever came before."
    ),
]


def _revision(if_match: str | None) -> int | None:
    """The revision of an If-Match header: a number, quoted or not (an ETag's form); None without one, or for `*`
    (any current version, RFC 9110)."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # "²" is a digit to isdigit, not to int
        raise ConfigError(
            f"If-Match '{if_match[:40]}' is not a revision",
            "Send the ingestion's `revision` as GET returned it (a whole number), or leave the header out.",
            field="If-Match",
        )
    return int(text)


@router.put("/ingestions/{ingestion_id}", response_model=IngestionPublic, tags=["ingestions"])
def update_ingestion(
    ingestion_id: IngestionId, body: IngestionSpec, svc: Svc, who: Who, if_match: IfMatch = None
) -> IngestionPublic:
    return _public(svc, who, svc.ingestions.update(ingestion_id, body, who, _revision(if_match)).id)


@router.patch("/ingestions/{ingestion_id}", response_model=IngestionPublic, tags=["ingestions"])
def patch_ingestion(
    ingestion_id: IngestionId,
    changes: Annotated[dict[str, Any], Body()],
    svc: Svc,
    who: Who,
    if_match: IfMatch = None,
) -> IngestionPublic:
    """Change some settings without sending the others: a JSON merge patch (RFC 7396) over the current ones. The
    fields sent replace theirs, objects merge, `null` gives a field back its default; e.g.
    `{"schedule": {"frequency": "daily", "time": "02:00"}}`. The same checks and locks as PUT."""
    try:
        ingestion = svc.ingestions.patch(ingestion_id, changes, who, _revision(if_match))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    return _public(svc, who, ingestion.id)


@router.delete("/ingestions/{ingestion_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["ingestions"])
def delete_ingestion(ingestion_id: IngestionId, svc: Svc, who: Who, drop_table: bool = False) -> None:
    svc.ingestions.delete(ingestion_id, drop_table=drop_table, who=who)


@router.post("/ingestions/{ingestion_id}/activate", response_model=IngestionPublic, tags=["ingestions"])
def activate(ingestion_id: IngestionId, svc: Svc, who: Who) -> IngestionPublic:
    return _public(svc, who, svc.ingestions.activate(ingestion_id, who).id)


@router.post("/ingestions/{ingestion_id}/pause", response_model=IngestionPublic, tags=["ingestions"])
def pause(ingestion_id: IngestionId, svc: Svc, who: Who) -> IngestionPublic:
    return _public(svc, who, svc.ingestions.pause(ingestion_id, who).id)


@router.post("/ingestions/{ingestion_id}/engine", response_model=IngestionPublic, tags=["ingestions"])
def move_engine(ingestion_id: IngestionId, body: EngineMoveRequest, svc: Svc, who: Who) -> IngestionPublic:
    """Run the ingestion's next loads on another engine (a cluster, or null for the embedded engine), continuing
    the same Delta table with the same file ledger: nothing is loaded twice or skipped. 409 while a run is in
    progress, for a cluster whose table format is not delta, and back to the embedded engine for a table a
    cluster created."""
    return _public(svc, who, svc.engine_move.move(ingestion_id, body.cluster_id, who).id)


@router.post("/ingestions/{ingestion_id}/resume", response_model=IngestionPublic, tags=["ingestions"])
def resume(ingestion_id: IngestionId, svc: Svc, who: Who) -> IngestionPublic:
    return _public(svc, who, svc.ingestions.resume(ingestion_id, who).id)


@router.post(
    "/ingestions/{ingestion_id}/run", response_model=RunAccepted, status_code=status.HTTP_202_ACCEPTED, tags=["runs"]
)
def run(ingestion_id: IngestionId, svc: Svc, who: Who) -> RunAccepted:
    run_id = svc.runs.trigger(ingestion_id, "manual", who)
    return RunAccepted(run_id=run_id, url=f"/api/v1/ingestions/{ingestion_id}/runs/{run_id}")


@router.get("/ingestions/{ingestion_id}/runs", response_model=list[RunPublic], tags=["runs"])
def list_runs(ingestion_id: IngestionId, svc: Svc, who: Who, days: int = Query(30, ge=1, le=3650)) -> list[Any]:
    return svc.views.runs(who, ingestion_id, days=days)


@router.get("/ingestions/{ingestion_id}/runs/{run_id}", response_model=RunPublic, tags=["runs"])
def get_run(ingestion_id: IngestionId, run_id: RunId, svc: Svc, who: Who) -> Any:
    return svc.views.run(who, ingestion_id, run_id)


@router.post(
    "/ingestions/{ingestion_id}/runs/{run_id}/retry",
    response_model=RunAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["runs"],
)
def retry(ingestion_id: IngestionId, run_id: RunId, svc: Svc, who: Who) -> RunAccepted:
    new_id = svc.runs.retry(ingestion_id, run_id, who)
    return RunAccepted(run_id=new_id, url=f"/api/v1/ingestions/{ingestion_id}/runs/{new_id}")


@router.post(
    "/ingestions/{ingestion_id}/reprocess",
    response_model=ReprocessAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["files"],
)
def reprocess(ingestion_id: IngestionId, body: ReprocessRequest, svc: Svc, who: Who) -> ReprocessAccepted:
    """Load selected files again. With write mode append their rows are appended again; merge upserts them."""
    files, run_id = svc.runs.reprocess(ingestion_id, body.paths, body.modified_since, body.modified_until, who)
    return ReprocessAccepted(files=files, run_id=run_id, url=f"/api/v1/ingestions/{ingestion_id}/runs/{run_id}")


@router.post(
    "/ingestions/{ingestion_id}/full-refresh",
    response_model=FullRefreshAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["files"],
)
def full_refresh(
    ingestion_id: IngestionId, svc: Svc, who: Who, body: FullRefreshRequest | None = None
) -> FullRefreshAccepted:
    """Rebuild the table from every file at the source, each loaded exactly once: the table's rows are replaced
    (unlike reprocess, which appends them again). 409 while a run of the ingestion is in progress."""
    preview = svc.refresh.preview(ingestion_id, who)
    run_id = svc.refresh.request(ingestion_id, (body or FullRefreshRequest()).run_now, who)
    return FullRefreshAccepted(
        files_dropped=preview.files,
        rows_dropped=preview.rows if preview.rows is not None else preview.records,
        message=preview.message,
        run_id=run_id,
        url=f"/api/v1/ingestions/{ingestion_id}/runs/{run_id}" if run_id is not None else None,
    )


@router.get("/ingestions/{ingestion_id}/files", response_model=FilePage, tags=["files"])
def list_files(
    ingestion_id: IngestionId,
    svc: Svc,
    who: Who,
    status: FileStatus | None = None,
    search: Filter = None,
    limit: int = Query(1000, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=MAX_ID),
) -> FilePage:
    page = svc.views.files(who, ingestion_id, status, search, limit, offset)
    return FilePage(
        total=page.total, items=[LedgerFilePublic.model_validate(r, from_attributes=True) for r in page.items]
    )


@router.get("/ingestions/{ingestion_id}/metrics", response_model=Metrics, tags=["runs"])
def metrics(ingestion_id: IngestionId, svc: Svc, who: Who, days: int = Query(7, ge=1, le=90)) -> Metrics:
    """Daily totals of the last `days` UTC days: the numbers the console's detail page shows."""
    return Metrics.build(svc.views.run_totals(who, ingestion_id, days))


@router.get("/ingestions/{ingestion_id}/maintenance", response_model=MaintenancePublic, tags=["maintenance"])
def get_maintenance(ingestion_id: IngestionId, svc: Svc, who: Who) -> MaintenancePublic:
    """The table maintenance setting, when it is next due, and the latest maintenances (files before and after)."""
    return MaintenancePublic.build(svc.views.maintenance(who, ingestion_id))


@router.put("/ingestions/{ingestion_id}/maintenance", response_model=MaintenancePublic, tags=["maintenance"])
def set_maintenance(ingestion_id: IngestionId, body: MaintenanceConfig, svc: Svc, who: Who) -> MaintenancePublic:
    """Compact and vacuum the table every `every_hours` (or at each `cron` fire, UTC). A vacuum retention under
    168 h is refused unless the server sets AUTOLOADER_ALLOW_SHORT_VACUUM_RETENTION=true."""
    svc.maintenance.configure(ingestion_id, body, who)
    return MaintenancePublic.build(svc.views.maintenance(who, ingestion_id))


@router.post(
    "/ingestions/{ingestion_id}/maintenance",
    response_model=MaintenanceAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["maintenance"],
)
def start_maintenance(ingestion_id: IngestionId, svc: Svc, who: Who) -> MaintenanceAccepted:
    """Compact, then vacuum the table now, in the background. 409 while a run of the ingestion is in progress."""
    maintenance_id = svc.maintenance.start(ingestion_id, who)
    url = f"/api/v1/ingestions/{ingestion_id}/maintenance/{maintenance_id}"
    return MaintenanceAccepted(maintenance_id=maintenance_id, url=url)


@router.get(
    "/ingestions/{ingestion_id}/maintenance/{maintenance_id}", response_model=MaintenanceRunPublic, tags=["maintenance"]
)
def get_maintenance_run(ingestion_id: IngestionId, maintenance_id: MaintenanceId, svc: Svc, who: Who) -> Any:
    return svc.views.maintenance_run(who, ingestion_id, maintenance_id)


@router.get("/ingestions/{ingestion_id}/schema-versions", response_model=list[SchemaVersionPublic], tags=["schema"])
def schema_versions(ingestion_id: IngestionId, svc: Svc, who: Who) -> list[Any]:
    return svc.views.schema_versions(who, ingestion_id)


@router.post("/schedules/preview", response_model=SchedulePreview, tags=["schedule"])
def schedule_preview(body: ScheduleConfig) -> SchedulePreview:
    """A schedule's readable description and its next 5 fire times (in its time zone)."""
    return SchedulePreview(description=describe(body), next_fire_times=next_fire_times(body, 5))


@router.get("/notifications", response_model=NotificationPage, tags=["alerts"])
def notifications(svc: Svc, who: Who, unread: bool = False, limit: int = Query(100, ge=1, le=1000)) -> NotificationPage:
    feed = svc.views.notifications(who, unread, limit)
    items = [NotificationPublic.model_validate(n, from_attributes=True) for n in feed.items]
    return NotificationPage(unread=feed.unread, items=items)


@router.post("/notifications/{notification_id}/read", status_code=status.HTTP_204_NO_CONTENT, tags=["alerts"])
def read_notification(notification_id: NotificationId, svc: Svc, who: Who) -> None:
    svc.notifications.mark_read(who.tenant_id, notification_id, own_only(who))


@router.post("/notifications/read-all", status_code=status.HTTP_204_NO_CONTENT, tags=["alerts"])
def read_all_notifications(svc: Svc, who: Who) -> None:
    svc.notifications.mark_read(who.tenant_id, owner=own_only(who))


@router.get(
    "/ingestions/{ingestion_id}/schema-versions/{version}/plan", response_model=ResolutionPlanPublic, tags=["schema"]
)
def plan_resolution(
    ingestion_id: IngestionId,
    version: Version,
    svc: Svc,
    who: Who,
    resolution: Annotated[str, Query(max_length=40)] = "auto_merge",
    table: Filter = None,
) -> ResolutionPlanPublic:
    """The exact statements a resolution will run, before applying it (backfill needs the POST body's defaults)."""
    plan = svc.schema.plan(ingestion_id, version, resolution, None, table, who)
    return ResolutionPlanPublic.model_validate(asdict(plan))


@router.post(
    "/ingestions/{ingestion_id}/schema-versions/{version}/resolve", response_model=ResolveResult, tags=["schema"]
)
def resolve_schema(
    ingestion_id: IngestionId, version: Version, body: ResolveRequest, svc: Svc, who: Who
) -> ResolveResult:
    plan, run_id = svc.schema.resolve(ingestion_id, version, body.resolution, body.default_values, body.table, who)
    return ResolveResult(plan=ResolutionPlanPublic.model_validate(asdict(plan)), run_id=run_id)


@router.get("/audit", response_model=list[AuditPublic], tags=["system"])
def audit(svc: Svc, who: Who, limit: int = Query(200, ge=1, le=5000)) -> list[Any]:
    return svc.views.audit(who, limit)

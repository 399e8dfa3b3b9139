"""`GET /metrics`: the instance's numbers for a Prometheus scraper (app/metrics.py renders them).

At the root, where scrapers look, and outside `/api/v1`: the guard asks for a bearer token here too, or lets the
request through when AUTOLOADER_METRICS_PUBLIC is set; the read side checks the caller is an instance admin.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.guard import METRICS_PATH
from app.bootstrap import Container
from app.metrics import CONTENT_TYPE, render
from core.access import Principal

router = APIRouter()


@router.get(
    METRICS_PATH,
    tags=["system"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text exposition format"}},
)
def metrics(request: Request) -> Response:
    """Runs by status, files, records and bytes loaded, run durations, scheduler lag, pending schema reviews and
    ingestions by status — every tenant's (instance-wide). Needs an instance admin's API token unless
    AUTOLOADER_METRICS_PUBLIC=true."""
    svc: Container = request.app.state.services
    who = getattr(request.state, "principal", None)
    snapshot = svc.views.instance_metrics(
        who if isinstance(who, Principal) else None, public=svc.settings.metrics_public
    )
    return Response(render(snapshot), media_type=CONTENT_TYPE)

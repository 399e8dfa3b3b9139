"""One API call never poisons the system: each out-of-bounds value is a 4xx naming its field, nothing is stored, the
ingestion list still answers, and a restarted server (a fresh container on the same database) still starts its
scheduler and schedules the good ingestions."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import write_json_files

DAILY = {"mode": "scheduled", "frequency": "daily", "time": "02:00", "timezone": "UTC"}

# (label, the field the answer must name, changes to a good body as {dotted path: value})
POISON: list[tuple[str, str, dict[str, Any]]] = [
    ("files per batch beyond 64 bits", "limits.max_files_per_batch", {"limits.max_files_per_batch": 2**64}),
    ("files per batch too many", "limits.max_files_per_batch", {"limits.max_files_per_batch": 10**9}),
    ("bytes per batch beyond 64 bits", "limits.max_bytes_per_batch", {"limits.max_bytes_per_batch": 2**70}),
    (
        "interval overflows the calendar",
        "schedule.interval_seconds",
        {"schedule": {"mode": "continuous", "interval_seconds": 10**12}},
    ),
    (
        "interval beyond 64 bits",
        "schedule.interval_seconds",
        {"schedule": {"mode": "continuous", "interval_seconds": 2**70}},
    ),
    (
        "interval over 7 days",
        "schedule.interval_seconds",
        {"schedule": {"mode": "continuous", "interval_seconds": 8 * 86400}},
    ),
    (
        "cron that never fires",
        "schedule.cron_expression",
        {"schedule": {"mode": "scheduled", "frequency": "custom", "cron_expression": "0 0 31 2 *"}},
    ),
    (
        "cron beyond 5 years",
        "schedule.cron_expression",
        {"schedule": {"mode": "scheduled", "frequency": "custom", "cron_expression": "0 0 30 2 *"}},
    ),
    ("cluster id beyond 64 bits", "cluster_id", {"cluster_id": 2**64}),
    ("row count beyond 64 bits", "quality.row_count_min", {"quality.row_count_min": 2**64}),
    ("SLA minutes beyond 64 bits", "quality.duration_sla_minutes", {"quality.duration_sla_minutes": 2**63}),
    ("name too long", "name", {"name": "n" * 201}),
    ("name with NUL", "name", {"name": "orders\x00"}),
    ("path too long", "source.path", {"source.path": "/" + "p" * 5000}),
    ("webhook to a file", "quality.webhook_url", {"quality.webhook_url": "file:///etc/passwd"}),
    ("webhook without scheme", "quality.webhook_url", {"quality.webhook_url": "hooks.example.com/x"}),
    ("recipient not an address", "quality.alert_recipients", {"quality.alert_recipients": ["ops"]}),
    (
        "recipient with a header",
        "quality.alert_recipients",
        {"quality.alert_recipients": ["ops@example.com\r\nBcc: all@example.com"]},
    ),
    (
        "unknown manual schema type",
        "format.schema.schema_json",
        {"format.schema": {"inference": "manual", "schema_json": [{"name": "id", "type": "bigintt"}]}},
    ),
    ("unknown type hint", "format.schema.hints", {"format.schema": {"hints": {"id": "number"}}}),
    (
        "manual schema with NaN",
        "format.schema.schema_json.0",
        {
            "format.schema": {
                "inference": "manual",
                "schema_json": [{"name": "id", "type": "bigint", "x": float("nan")}],
            }
        },
    ),
    (
        "secret in the stored form",
        "source.credentials.password",
        {"source.credentials": {"type": "password", "username": "u", "password": "enc:v1:AAAA"}},
    ),
    (
        "access key in the stored form",
        "source.credentials.secret_access_key",
        {"source.credentials": {"type": "access_key", "access_key_id": "a", "secret_access_key": "enc:v1:x"}},
    ),
    ("escape of several characters", "format.options.escape", {"format.options.escape": "\\\\"}),
]


def _body(landing: Path, name: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "source": {"type": "local", "path": str(landing)},
        "format": {"type": "json"},
        "destination": {"catalog": "main", "database": "raw", "table": name.replace("-", "_")},
        "schedule": dict(DAILY),
        "activate": True,
    }
    for dotted, value in (changes or {}).items():
        *parents, last = dotted.split(".")
        node = body
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = copy.deepcopy(value)
    return body


def _send(api: Any, method: str, url: str, body: dict[str, Any]) -> Any:
    """JSON as Python writes it (NaN included), so the server's own parser decides."""
    return api.request(method, url, content=json.dumps(body), headers={"content-type": "application/json"})


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing" / "orders"
    write_json_files(folder, 1, 3)
    return folder


def test_each_poisoned_value_is_refused_and_the_system_keeps_working(
    api: Any, services: Any, settings: Any, landing: Path
) -> None:
    from app.bootstrap import build

    good = api.post("/api/v1/ingestions", json=_body(landing, "good"))
    assert good.status_code == 201, good.text
    good_id = good.json()["id"]
    stored_good = api.get(f"/api/v1/ingestions/{good_id}").json()
    audit_before = len(api.get("/api/v1/audit").json())

    refused: dict[str, str] = {}
    for label, field, changes in POISON:
        for method, url, body in (
            ("POST", "/api/v1/ingestions", _body(landing, "poisoned", changes)),
            ("PUT", f"/api/v1/ingestions/{good_id}", {**_body(landing, "good", changes), "activate": None}),
        ):
            body = {k: v for k, v in body.items() if v is not None}
            answer = _send(api, method, url, body)
            problem = f"{label} ({method})"
            if not 400 <= answer.status_code < 500:
                refused[problem] = f"answered {answer.status_code}: {answer.text[:300]}"
                continue
            error = answer.json()["error"]
            if error.get("field") != field or not error.get("message") or not error.get("action"):
                refused[problem] = f"the error does not name {field} with a message and an action: {error}"
            listing = api.get("/api/v1/ingestions")
            if listing.status_code != 200:
                refused[problem] = f"then GET /api/v1/ingestions answered {listing.status_code}"
    assert not refused, json.dumps(refused, indent=1)

    listing = api.get("/api/v1/ingestions")
    assert listing.status_code == 200
    assert [i["name"] for i in listing.json()] == ["good"], "a refused request stored an ingestion"
    assert api.get(f"/api/v1/ingestions/{good_id}").json() == stored_good, "a refused update changed the ingestion"
    assert len(api.get("/api/v1/audit").json()) == audit_before, "a refused request left an audit entry"

    for url in (f"/api/v1/ingestions/{2**64}", f"/api/v1/ingestions/{good_id}/runs/{2**63}", "/api/v1/clusters/0"):
        assert api.get(url).status_code == 422, url

    other = api.post("/api/v1/ingestions", json=_body(landing, "other-good"))
    assert other.status_code == 201, other.text

    restarted = build(settings)
    try:
        restarted.start()
        assert restarted.scheduler.running
        for ingestion_id in (good_id, other.json()["id"]):
            assert restarted.scheduler.scheduler.get_job(f"ingestion-{ingestion_id}") is not None
    finally:
        restarted.close()

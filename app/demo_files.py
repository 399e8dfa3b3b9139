"""The demo's landing files: an AWS CloudTrail-like events feed (gzip'd JSON lines, the fields the console's design
shows for `aws_logs_raw`) and a shop's daily orders exports (CSV). Generated from a fixed seed, so every demo
folder holds the same bytes; a file that is already there is never rewritten (a rewrite would be a changed file).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20251101
ACCOUNT = "123456789012"
DAY_ONE = datetime(2025, 11, 1, tzinfo=UTC)
EVENT_FILES = 6
EVENTS_PER_FILE = 300
LATE_EVENTS = 120
ORDER_DAYS = 4
NEW_EVENT_COLUMN = "aws_region"
"""The column only the late events file has: it is what the schema review shows."""

_USERS = [f"arn:aws:iam::{ACCOUNT}:user/{name}" for name in ("alice", "bob", "carol", "dmitri", "eve")] + [
    f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deploy/github-actions",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/etl-runner/i-0a1b2c3d4e5f60718",
]
_AGENTS = [
    "aws-cli/2.13.5 Python/3.11.4 Linux/5.15.0 exe/x86_64.ubuntu.22",
    "console.amazonaws.com",
    "Boto3/1.34.11 md/Botocore#1.34.11 ua/2.0 os/linux#6.1.0 lang/python#3.11.6",
    "terraform/1.6.2 (+https://www.terraform.io) terraform-provider-aws/5.31.0",
    "aws-sdk-java/2.21.10 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.9",
]
_NETWORKS = ["52.94", "203.0", "198.51", "34.201"]
_REGIONS = ["us-east-1", "us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"]
_BUCKETS = ["acme-raw-landing", "acme-analytics-exports", "acme-web-assets"]


@dataclass(frozen=True, slots=True)
class _EventKind:
    name: str
    resource_type: str
    weight: int
    error_codes: tuple[str, ...] = ()


_EVENT_KINDS = (
    _EventKind("GetObject", "S3Bucket", 30, ("NoSuchKey", "AccessDenied")),
    _EventKind("PutObject", "S3Bucket", 20, ("AccessDenied",)),
    _EventKind("ListObjectsV2", "S3Bucket", 12),
    _EventKind("DescribeInstances", "EC2Instance", 14, ("RequestLimitExceeded",)),
    _EventKind("RunInstances", "EC2Instance", 3, ("InsufficientInstanceCapacity", "UnauthorizedOperation")),
    _EventKind("AssumeRole", "IAMRole", 12),
    _EventKind("ConsoleLogin", "IAMUser", 5, ("Failed authentication",)),
    _EventKind("CreateAccessKey", "IAMUser", 2, ("AccessDenied",)),
    _EventKind("DeleteObject", "S3Bucket", 2),
)


def _request_parameters(kind: _EventKind, rng: random.Random) -> dict[str, Any] | None:
    """What CloudTrail's requestParameters hold for each event (a nested object; none for a console login)."""
    if kind.resource_type == "S3Bucket":
        params: dict[str, Any] = {"bucketName": rng.choice(_BUCKETS)}
        if kind.name != "ListObjectsV2":
            params["key"] = f"events/2025/11/{rng.randint(1, 2):02d}/part-{rng.randint(0, 9999):05d}.parquet"
        return params
    if kind.resource_type == "EC2Instance":
        return {"instanceId": f"i-0{rng.getrandbits(60):015x}"}
    if kind.name == "AssumeRole":
        session = f"session-{rng.randint(1, 999)}"
        return {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/etl-runner", "roleSessionName": session}
    if kind.name == "CreateAccessKey":
        return {"userName": rng.choice(["svc-backup", "svc-reporting"])}
    return None


def _event(rng: random.Random, at: datetime, kind: _EventKind, with_region: bool) -> dict[str, Any]:
    failed = bool(kind.error_codes) and rng.random() < 0.04
    event: dict[str, Any] = {
        "event_id": f"evt_{rng.getrandbits(48):012x}",
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user_identity": rng.choice(_USERS),
        "event_name": kind.name,
        "source_ip": f"{rng.choice(_NETWORKS)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "resource_type": kind.resource_type,
        "request_parameters": _request_parameters(kind, rng),
        "error_code": rng.choice(kind.error_codes) if failed else None,
        "user_agent": rng.choice(_AGENTS),
    }
    if with_region:
        event[NEW_EVENT_COLUMN] = rng.choice(_REGIONS)
    return event


def _events(rng: random.Random, start: datetime, count: int, with_region: bool) -> list[dict[str, Any]]:
    """`count` events over the 4 hours after `start`; every kind at least once (so the first load's schema knows
    every nested field a later file can have)."""
    weights = [k.weight for k in _EVENT_KINDS]
    kinds = list(_EVENT_KINDS) + rng.choices(_EVENT_KINDS, weights=weights, k=count - len(_EVENT_KINDS))
    rng.shuffle(kinds)
    offsets = sorted(rng.uniform(0, 4 * 3600) for _ in kinds)
    return [_event(rng, start + timedelta(seconds=int(s)), k, with_region) for s, k in zip(offsets, kinds, strict=True)]


def _gzip_json_lines(records: list[dict[str, Any]]) -> bytes:
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    return gzip.compress(text.encode(), mtime=0)


def event_files() -> dict[str, bytes]:
    """The first events: 6 files of 300 events, one every 4 hours of 2025-11-01, named as the design's example."""
    rng = random.Random(SEED)
    files = {}
    for index in range(EVENT_FILES):
        start = DAY_ONE + timedelta(hours=4 * index)
        name = f"aws-logs-{start:%Y-%m-%dT%H%MZ}.json.gz"
        files[name] = _gzip_json_lines(_events(rng, start, EVENTS_PER_FILE, with_region=False))
    return files


def late_event_file() -> tuple[str, bytes]:
    """The file dropped after the first load: the same feed, now with `aws_region` on every event."""
    rng = random.Random(SEED + 1)
    start = DAY_ONE + timedelta(days=1)
    return f"aws-logs-{start:%Y-%m-%dT%H%MZ}.json.gz", _gzip_json_lines(
        _events(rng, start, LATE_EVENTS, with_region=True)
    )


# --- orders ----------------------------------------------------------------------------------------------------------
ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "ordered_at",
    "status",
    "currency",
    "quantity",
    "unit_price",
    "discount",
    "total_amount",
    "coupon_code",
    "shipping_country",
    "shipped_at",
)
_STATUSES = (("delivered", 50), ("shipped", 20), ("paid", 15), ("placed", 8), ("cancelled", 5), ("refunded", 2))
_COUNTRIES = (("DE", "EUR"), ("FR", "EUR"), ("NL", "EUR"), ("GB", "GBP"), ("US", "USD"), ("US", "USD"))
_PRICES = ("4.99", "9.90", "12.50", "19.99", "24.00", "39.95", "49.00", "89.90", "129.00", "349.99")
_COUPONS = ("WELCOME10", "BLACKFRIDAY", "FREESHIP")


def _order_row(rng: random.Random, order_id: int, at: datetime) -> list[str]:
    status = rng.choices([s for s, _ in _STATUSES], weights=[w for _, w in _STATUSES])[0]
    country, currency = rng.choice(_COUNTRIES)
    quantity = rng.choices([1, 2, 3, 4, 6], weights=[60, 22, 10, 5, 3])[0]
    unit = float(rng.choice(_PRICES))
    coupon = rng.choice(_COUPONS) if rng.random() < 0.12 else ""
    discount = round(unit * quantity * 0.1, 2) if coupon else None
    total = round(unit * quantity - (discount or 0), 2)
    shipped = at + timedelta(hours=rng.randint(6, 60)) if status in ("shipped", "delivered") else None
    return [
        str(order_id),
        f"C-{rng.randint(1, 4800):05d}",
        at.strftime("%Y-%m-%d %H:%M:%S"),
        status,
        currency,
        str(quantity),
        f"{unit:.2f}",
        f"{discount:.2f}" if discount is not None else "",
        f"{total:.2f}",
        coupon,
        country,
        shipped.strftime("%Y-%m-%d %H:%M:%S") if shipped else "",
    ]


def order_files() -> dict[str, bytes]:
    """One export per day of 2025-11-01..04, 250-450 orders each, ids rising across days; empty fields are NULL."""
    rng = random.Random(SEED + 2)
    files = {}
    order_id = 100_001
    for day in range(ORDER_DAYS):
        start = DAY_ONE + timedelta(days=day)
        count = rng.randint(250, 450)
        seconds = sorted(rng.randint(0, 86_399) for _ in range(count))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ORDER_COLUMNS)
        for offset in seconds:
            writer.writerow(_order_row(rng, order_id, start + timedelta(seconds=offset)))
            order_id += 1
        files[f"orders-{start:%Y-%m-%d}.csv"] = out.getvalue().encode()
    return files


def write_missing(folder: Path, files: dict[str, bytes]) -> int:
    """Write the files `folder` does not hold yet; returns how many were written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, content in files.items():
        path = folder / name
        if not path.exists():
            temporary = path.with_name("." + name + ".tmp")  # hidden names are never listed
            temporary.write_bytes(content)
            temporary.replace(path)
            written += 1
    return written

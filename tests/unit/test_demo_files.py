"""The demo's files (app/demo_files.py) and its landing check (app/demo.py), without a server."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from app.demo import check_landing
from app.demo_files import NEW_EVENT_COLUMN, event_files, late_event_file, order_files, write_missing
from core.errors import ConfigError
from core.guards import LocalRoots


def _events(content: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in gzip.decompress(content).decode().splitlines()]


def test_the_same_bytes_every_time() -> None:
    assert event_files() == event_files() and order_files() == order_files() and late_event_file() == late_event_file()


def test_events_look_like_the_design_and_only_the_late_file_has_the_new_column() -> None:
    files = event_files()
    assert len(files) == 6 and all(name.startswith("aws-logs-2025-11-01T") for name in files)
    nested_keys_per_file = []
    for content in files.values():
        events = _events(content)
        assert len(events) == 300 and all(NEW_EVENT_COLUMN not in e for e in events)
        assert any(e["error_code"] is None for e in events) and any(e["error_code"] for e in events)
        nested_keys_per_file.append({k for e in events for k in (e["request_parameters"] or {})})
    assert all(keys == nested_keys_per_file[0] for keys in nested_keys_per_file)  # no nested field only later
    late = _events(late_event_file()[1])
    assert all(e[NEW_EVENT_COLUMN] for e in late)
    assert {k for e in late for k in (e["request_parameters"] or {})} <= nested_keys_per_file[0]


def test_orders_have_rising_ids_decimals_and_empty_fields() -> None:
    rows = [r for content in order_files().values() for r in csv.DictReader(io.StringIO(content.decode()))]
    ids = [int(r["order_id"]) for r in rows]
    assert ids == list(range(100_001, 100_001 + len(rows))) and 1000 <= len(rows) <= 1800
    assert all(len(r["unit_price"].split(".")[1]) == 2 for r in rows)
    assert any(r["coupon_code"] == "" for r in rows) and any(r["shipped_at"] == "" for r in rows)


def test_files_already_there_are_not_rewritten(tmp_path: Path) -> None:
    assert write_missing(tmp_path, {"a.csv": b"x\n1\n"}) == 1
    (tmp_path / "a.csv").write_bytes(b"edited")
    assert write_missing(tmp_path, {"a.csv": b"x\n1\n", "b.csv": b"y\n"}) == 1
    assert (tmp_path / "a.csv").read_bytes() == b"edited"


def test_a_landing_outside_the_local_roots_is_refused_with_the_way_out(tmp_path: Path) -> None:
    roots = LocalRoots([str(tmp_path / "srv")])
    check_landing(roots, tmp_path / "srv" / "demo")
    with pytest.raises(ConfigError) as refused:
        check_landing(roots, tmp_path / "data" / "landing" / "demo")
    assert "outside the folders local sources may read" in refused.value.message
    assert f"autoloader demo --landing {tmp_path / 'srv' / 'autoloader-demo'}" in refused.value.action
    assert "AUTOLOADER_LOCAL_ROOTS" in refused.value.action

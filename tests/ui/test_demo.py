"""`autoloader demo` on a fresh data dir with the default settings: then every screen has data to show."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from nicegui.testing import User

from app.cli import main
from core.access import SYSTEM
from core.views import DashboardQuery


async def _rows(user: User, marker: str, expected: int) -> list[dict[str, Any]]:
    """The rows of a table on the page once it has `expected` of them (it may re-render while they load)."""
    rows: list[dict[str, Any]] = []
    for _ in range(40):
        rows = next(iter(user.find(marker=marker).elements)).rows  # type: ignore[attr-defined]
        if len(rows) >= expected:
            break
        await asyncio.sleep(0.1)
    return rows


@pytest.fixture
def demo_output(console_data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """The demo run by the command, before the console starts, on the default local root (<data dir>/landing): the
    tests' own AUTOLOADER_LOCAL_ROOTS is removed for it and for the console."""
    monkeypatch.delenv("AUTOLOADER_LOCAL_ROOTS")
    assert main(["demo"]) == 0
    return capsys.readouterr().out


async def test_demo_fills_every_screen_and_sets_up_once(
    demo_output: str,
    user: User,
    services_of_app,  # type: ignore[no-untyped-def]
    console_data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    landing = console_data_dir / "landing" / "demo"
    assert f"demo set up in {landing}" in demo_output
    assert "a schema change waits for review" in demo_output
    assert "/ingestions/1/schema-review" in demo_output
    views = services_of_app.views
    dashboard = views.dashboard(SYSTEM, DashboardQuery())
    cards = {card.name: card for card in dashboard.cards}
    assert set(cards) == {"aws_logs_raw", "orders"}
    events, orders = cards["aws_logs_raw"], cards["orders"]
    assert dashboard.weeks[events.id].files == 6 and dashboard.weeks[orders.id].files == 4
    assert dashboard.weeks[events.id].records == 1800 and dashboard.weeks[orders.id].records > 1000
    assert events.status == "needs_review" and orders.status == "active"

    await user.open("/")
    await user.should_see(marker="card-aws_logs_raw")
    await user.should_see(marker="card-orders")
    await user.should_see("New column 'aws_region' found in 1 recent file.")

    for card, runs, files in ((events, 2, 7), (orders, 1, 4)):
        await user.open(f"/ingestions/{card.id}")
        await user.should_see(marker="run-history")
        await user.should_see(marker="ledger", retries=20)  # the ledger table is filled after the page opens
        assert [row["status"] for row in await _rows(user, "run-history", runs)] == ["success"] * runs
        assert len(await _rows(user, "ledger", files)) == files
    await user.open(f"/ingestions/{events.id}/schema-review")
    await user.should_see("Schema Evolution Detected")
    await user.should_see("aws_region")
    await user.should_see("How Should We Handle This?")

    assert main(["demo"]) == 0
    assert f"demo already set up in {landing}" in capsys.readouterr().out
    assert len(views.ingestions(SYSTEM)) == 2
    assert len(views.runs(SYSTEM, events.id)) == 2

"""`autoloader demo` on a fresh data dir with the default settings: then every screen has data to show."""

from __future__ import annotations

from pathlib import Path

import pytest
from nicegui.testing import User

from app.cli import main
from core.access import SYSTEM
from core.views import DashboardQuery


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

    for card, files in ((events, 7), (orders, 4)):
        await user.open(f"/ingestions/{card.id}")
        await user.should_see(marker="run-history")
        history = next(iter(user.find(marker="run-history").elements))
        assert history.rows and all(row["status"] == "success" for row in history.rows)
        ledger = next(iter(user.find(marker="ledger").elements))
        assert len(ledger.rows) == files
    await user.open(f"/ingestions/{events.id}/schema-review")
    await user.should_see("Schema Evolution Detected")
    await user.should_see("aws_region")
    await user.should_see("How Should We Handle This?")

    assert main(["demo"]) == 0
    assert f"demo already set up in {landing}" in capsys.readouterr().out
    assert len(views.ingestions(SYSTEM)) == 2
    assert len(views.runs(SYSTEM, events.id)) == 2

"""Console tests: in-process NiceGUI `user` simulation on a temp data dir, and one real-browser flow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ORDERS = Path(__file__).resolve().parents[1] / "data" / "orders"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def console_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app the `user` fixture builds reads its settings from these variables."""
    data = tmp_path / "data"
    monkeypatch.setenv("AUTOLOADER_DATA_DIR", str(data))
    monkeypatch.setenv("AUTOLOADER_DATABASE_URL", f"sqlite:///{data / 'autoloader.db'}")
    monkeypatch.setenv("AUTOLOADER_SECRET_KEY", "test-secret-key")
    monkeypatch.delenv("AUTOLOADER_WAREHOUSE", raising=False)
    yield data


@pytest.fixture
def services_of_app() -> Any:
    """The container of the app under simulation (after `user` built it)."""
    from nicegui import app

    return app.state.services


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}

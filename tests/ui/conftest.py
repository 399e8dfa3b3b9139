"""Console tests: in-process NiceGUI `user` simulation on a temp data dir, and one real-browser flow."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nicegui.testing import User

from tests.server_process import ADMIN_EMAIL, ADMIN_ENV, ADMIN_PASSWORD

ORDERS = Path(__file__).resolve().parents[1] / "data" / "orders"

PATIENCE = 30
"""How many times the simulated user looks again for what should (or should no longer) be on the page: NiceGUI's
default, 3 looks 0.1 s apart, is shorter than a page's `run.io_bound` work takes on a loaded 2-core machine (the
suite runs in two processes), where a dialog then "never" opened. About 3 s for should_see, 1.5 s for
should_not_see; a test that passes only sooner than that still fails."""
for _check in (User.should_see, User.should_not_see):
    assert _check.__kwdefaults__ is not None
    _check.__kwdefaults__["retries"] = PATIENCE
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
def collect_garbage_between_tests() -> Iterator[None]:
    """Each simulated app leaves a container behind (engines, connection pools); collecting it after the test, at a
    shallow stack, keeps the finalizers of many tests' pools from running inside the next app's start-up, where a
    worker of the 2-process CI run once hit "maximum recursion depth exceeded" in SQLAlchemy's pool checkout (the
    admin was then never created and the login failed)."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def console_data_dir(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app the `user` fixture builds reads its settings from these variables (the data dir outside the local
    roots, which hold every test's tmp_path)."""
    data = state_dir / "data"
    monkeypatch.setenv("AUTOLOADER_DATA_DIR", str(data))
    monkeypatch.setenv("AUTOLOADER_DATABASE_URL", f"sqlite:///{data / 'autoloader.db'}")
    monkeypatch.setenv("AUTOLOADER_SECRET_KEY", "test-secret-key")
    monkeypatch.delenv("AUTOLOADER_WAREHOUSE", raising=False)
    for key, value in ADMIN_ENV.items():
        monkeypatch.setenv(key, value)
    yield data


@pytest.fixture
async def user(user: User) -> User:
    """NiceGUI's simulated user, signed in as the first admin through the login form's POST (as a browser does)."""
    answer = await user.http_client.post("/auth/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    return user


@pytest.fixture
def services_of_app() -> Any:
    """The container of the app under simulation (after `user` built it)."""
    from nicegui import app

    return app.state.services


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}

"""Console tests: in-process NiceGUI `user` simulation on a temp data dir, and one real-browser flow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def shared_app_lifespan_kept() -> Iterator[None]:
    """Put NiceGUI's app's lifespan back as it was: the app is one object for the whole process, and every simulated
    app's `mount_api` includes five routers into it, each of which FastAPI's `include_router` wraps around the
    lifespan (`merged_lifespan`, two frames deep when entered); NiceGUI's reset between tests removes the routes but
    not these wrappers. Without this, each app started 10 frames deeper than the one before, and a CI worker's ~95th
    app (`Container.start`, at ~1000 frames) hit "maximum recursion depth exceeded" and never created the admin."""
    from nicegui import app

    lifespan = app.router.lifespan_context
    try:
        yield
    finally:
        app.router.lifespan_context = lifespan


@pytest.fixture(autouse=True)
def shared_app_lifespan_kept_per_test() -> Iterator[None]:
    """Set up before the `user` fixture builds its app and torn down after that app stopped."""
    with shared_app_lifespan_kept():
        yield


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

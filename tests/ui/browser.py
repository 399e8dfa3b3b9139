"""Shared by the real-browser tests: start `autoloader serve` on a data dir, open Debian Chromium, take screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import clean_env
from tests.server_process import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screens"

TIMEOUT_MS = 30_000
"""How long a browser test waits for the page (`set_default_timeout`) and for `expect`."""
# `page.set_default_timeout` does not reach `expect`, whose own default is 5 s: on a loaded CI machine a run the
# test started was still finishing after 5 s. Every browser test imports this module, so one bound serves them all.
expect.set_options(timeout=TIMEOUT_MS)


def server_env(data: Path) -> dict[str, str]:
    return {
        "AUTOLOADER_DATA_DIR": str(data),
        "AUTOLOADER_DATABASE_URL": f"sqlite:///{data / 'autoloader.db'}",
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
    }


@contextmanager
def running_server(data: Path, startup_seconds: float = 60) -> Iterator[str]:
    """`autoloader serve` on a free loopback port over `data`; yields the base URL once /health answers."""
    server = ServerProcess(clean_env() | server_env(data), data.parent / f"{data.name}-server.log")
    server.start(timeout=startup_seconds)
    try:
        yield server.base
    finally:
        server.stop()


def sign_in(page: Page, base: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
    """Log in through the login form, as a user would."""
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form[action='/auth/login'] button[type=submit]")
    page.wait_for_url(base + "/")


@contextmanager
def chromium_page(launch_args: dict[str, Any], width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A Chromium page with its own Playwright loop, closed after use.

    pytest-playwright's session-scoped `page` keeps an event loop running in the main thread for the rest of
    the session, which breaks every async (NiceGUI `user`) test that runs after it.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_args)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def shot(page: Page, name: str, folder: Path = ARTIFACTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

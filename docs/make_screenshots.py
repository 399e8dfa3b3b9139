"""Retake the guide's screenshots (docs/screenshots/guide-*.png) from the running app, as getting-started.md goes.

    .venv/bin/python docs/make_screenshots.py            # about a minute
    .venv/bin/python docs/make_screenshots.py --keep     # and keep the scratch data dir, to look around

On a scratch data dir: `autoloader demo`, then `autoloader serve` with no admin yet; Debian's Chromium (driven by
Playwright, never `playwright install`) creates the first admin on /setup, looks at the dashboard, a detail page,
the schema review, the notifications and the Clusters page, and goes through the wizard's four steps and its
preview on a folder of its own (made by the guide's own commands, under the default local root). Each picture is the
1280x800 window, and the script says when one grows past 250 KB.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Locator, Page, expect  # noqa: E402

from tests.conftest import clean_env  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402
from tests.ui.browser import chromium_page, server_env  # noqa: E402
from tests.ui.conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
WIDTH, HEIGHT = 1280, 800
MAX_BYTES = 250 * 1024
ADMIN = ("admin@example.com", "a-long-password-123")
NO_ADMIN = {"AUTOLOADER_ADMIN_EMAIL": "", "AUTOLOADER_ADMIN_PASSWORD": "", "AUTOLOADER_ADMIN_TOKEN": ""}
"""The test servers' first admin is left out, so /setup is open as on a fresh install."""
GUIDE = ROOT / "docs" / "getting-started.md"
OWN_FOLDER = "my-orders"
"""The folder getting-started.md makes for the wizard (its bash block that names it is run here as written)."""


def make_own_folder(scratch: Path, env: dict[str, str]) -> Path:
    """Run the guide's block that fills data/landing/my-orders, in the scratch folder (where data/ is)."""
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    block = next(b for b in blocks if f"data/landing/{OWN_FOLDER}" in b)
    subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=scratch, env=env, check=True)
    return scratch / "data" / "landing" / OWN_FOLDER


def run_demo(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo"], env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"autoloader demo failed:\n{done.stdout}\n{done.stderr}")


def fresh_install_env(data: Path) -> dict[str, str]:
    """The defaults of a fresh install on `data`: no admin yet, local sources under <data dir>/landing."""
    env = clean_env() | server_env(data) | NO_ADMIN
    env.pop("AUTOLOADER_LOCAL_ROOTS", None)
    return env


@contextmanager
def server(data: Path) -> Iterator[str]:
    process = ServerProcess(fresh_install_env(data), data.parent / "server.log")
    process.start(timeout=120)
    try:
        yield process.base
    finally:
        process.stop()


def shot(page: Page, name: str) -> None:
    page.wait_for_timeout(600)  # charts animate in
    path = OUT / f"guide-{name}.png"
    page.screenshot(path=str(path))
    size = path.stat().st_size
    print(f"{path.relative_to(ROOT)}: {size // 1024} KB" + ("  <-- over 250 KB" if size > MAX_BYTES else ""))


def scroll_to_top(page: Page, element: Locator) -> None:
    """Scroll so that `element` is near the top of the window."""
    element.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.evaluate("window.scrollBy(0, -40)")


def field(page: Page, path: str) -> Locator:
    return page.locator(f'input[data-testid="{path}"], [data-testid="{path}"] input').first


def choose(page: Page, select: Locator, option: str) -> None:
    select.click()
    page.get_by_role("option", name=option).click()


def first_admin(page: Page, base: str) -> None:
    page.goto(base + "/setup")
    expect(page.get_by_text("Create the first administrator")).to_be_visible()
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    shot(page, "setup")
    page.click("form[action='/auth/setup'] button[type=submit]")
    page.wait_for_url(base + "/**")
    if "/login" in page.url:  # setup may hand over to the login form
        page.fill("#email", ADMIN[0])
        page.fill("#password", ADMIN[1])
        page.click("form[action='/auth/login'] button[type=submit]")
        page.wait_for_url(base + "/")


def demo_screens(page: Page, base: str) -> None:
    page.goto(base + "/")
    expect(page.get_by_text("Schema Evolution Detected").first).to_be_visible()
    shot(page, "dashboard")
    page.locator(".notification-bell").click()
    expect(page.get_by_text("Notifications", exact=True)).to_be_visible()
    shot(page, "notifications")
    page.keyboard.press("Escape")

    page.goto(base + "/ingestions/1")
    expect(page.get_by_text("Run history (30 days)")).to_be_visible()
    shot(page, "detail")
    scroll_to_top(page, page.get_by_text("Alerts", exact=True))
    shot(page, "detail-runs")
    scroll_to_top(page, page.get_by_text("File ledger"))
    shot(page, "detail-ledger")

    page.goto(base + "/ingestions/1/schema-review")
    expect(page.get_by_text("How Should We Handle This?")).to_be_visible()
    shot(page, "schema-review")
    scroll_to_top(page, page.get_by_text("How Should We Handle This?"))
    shot(page, "schema-review-options")


def wizard_screens(page: Page, base: str, folder: Path) -> None:
    page.goto(base + "/ingestions/new")
    field(page, "name").fill("my_orders")
    field(page, "source.path").fill(str(folder))
    field(page, "source.file_pattern").fill("*.json")
    page.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("Connection successful", exact=False)).to_be_visible()
    page.get_by_role("button", name="Test Connection").scroll_into_view_if_needed()
    shot(page, "wizard-source")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("columns from 2 sample files", exact=False)).to_be_visible()
    shot(page, "wizard-format")
    page.get_by_role("button", name="Next").click()
    field(page, "destination.database").fill("sales")
    field(page, "destination.table").fill("my_orders")
    scroll_to_top(page, page.get_by_text("Target Table", exact=True))
    shot(page, "wizard-destination")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Estimated Monthly Cost")).to_be_visible()
    shot(page, "wizard-schedule")
    page.get_by_role("button", name="Test & Preview").click()
    expect(page.get_by_text("Preview & Test Ingestion")).to_be_visible()
    shot(page, "preview")
    page.get_by_role("button", name="Looks Good - Create Ingestion").click()
    expect(page.get_by_text("'my_orders' is active", exact=False)).to_be_visible()


def clusters_screen(page: Page, base: str) -> None:
    page.goto(base + "/clusters")
    expect(page.get_by_text("Register a cluster")).to_be_visible()
    page.get_by_label("Name *").fill("local-spark")
    choose(page, page.get_by_label("Kind"), "Local (started by this server)")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Cluster 'local-spark' registered.")).to_be_visible()
    shot(page, "clusters")


def take(data: Path) -> None:
    folder = make_own_folder(data.parent, fresh_install_env(data))
    run_demo(fresh_install_env(data))
    browser = {"executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}
    with server(data) as base, chromium_page(browser, WIDTH, HEIGHT) as page:
        page.set_default_timeout(30_000)
        first_admin(page, base)
        demo_screens(page, base)
        wizard_screens(page, base, folder)
        clusters_screen(page, base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the scratch data dir and print where it is")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="autoloader-guide-"))
    try:
        take(scratch / "data")
    finally:
        if args.keep:
            print(f"scratch data dir: {scratch / 'data'}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

"""In a real browser (Debian Chromium): a page on another origin cannot act with the user's session (CSRF), and
names carrying HTML or script render as text (XSS)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.server_process import AUTH
from tests.services import free_port
from tests.ui.browser import chromium_page, running_server, sign_in
from tests.ui.conftest import CHROMIUM, ORDERS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]
PAYLOAD = '<img src=x onerror="window.__xss=1">'


def _attack_page(target: str, ingestion_id: int) -> str:
    """What a hostile site would serve: a cross-origin API call with the user's cookies, a websocket to the console,
    and a form that posts to the logout and password endpoints."""
    return f"""<!doctype html><html><body>
<form id="logout" method="post" action="{target}/auth/logout"></form>
<script>
window.results = {{}};
fetch("{target}/api/v1/ingestions/{ingestion_id}/pause", {{method: "POST", credentials: "include", mode: "no-cors"}})
  .then(() => window.results.fetch = "sent").catch(e => window.results.fetch = String(e));
const ws = new WebSocket("{target.replace("http", "ws")}/_nicegui_ws/socket.io/?EIO=4&transport=websocket");
ws.onopen = () => window.results.ws = "open";
ws.onerror = () => window.results.ws = "error";
ws.onclose = () => window.results.ws = window.results.ws || "closed";
</script></body></html>"""


@pytest.fixture
def hostile_site() -> Iterator[tuple[str, dict[str, str]]]:
    """A second origin on loopback serving whatever page the test puts in `pages`."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}", pages
    finally:
        httpd.shutdown()


def test_another_origin_cannot_act_and_names_render_as_text(
    tmp_path: Path,
    state_dir: Path,
    browser_type_launch_args: dict[str, Any],
    hostile_site: tuple[str, dict[str, str]],
) -> None:
    source = tmp_path / "landing"
    shutil.copytree(ORDERS, source)
    evil, pages = hostile_site
    with running_server(state_dir / "server-data") as base, chromium_page(browser_type_launch_args) as page:
        body = {
            "name": PAYLOAD,
            "source": {"type": "local", "path": str(source)},
            "format": {"type": "json"},
            "destination": {"table": "orders"},
            "activate": True,
        }
        created = httpx.post(f"{base}/api/v1/ingestions", json=body, headers=AUTH, timeout=30)
        assert created.status_code == 201, created.text
        ingestion_id = created.json()["id"]
        sign_in(page, base)

        expect(page.get_by_text(PAYLOAD).first).to_be_visible()
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src=x]").count() == 0

        pages["/attack"] = _attack_page(base, ingestion_id)
        page.goto(evil + "/attack")
        page.wait_for_function("window.results.ws !== undefined && window.results.fetch !== undefined")
        assert page.evaluate("window.results.ws") != "open"
        with page.expect_navigation():
            page.evaluate("document.getElementById('logout').submit()")
        assert "another site" in page.content()

        status = httpx.get(f"{base}/api/v1/ingestions/{ingestion_id}", headers=AUTH, timeout=10).json()["status"]
        assert status == "active"
        page.goto(base + "/")
        expect(page.get_by_text("Data Ingestions").first).to_be_visible()  # still signed in

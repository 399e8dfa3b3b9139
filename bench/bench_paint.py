"""First contentful paint of every console page with a large metadata DB (issue 15 target: each under 1 s with
1,000 ingestions and 1,000,000 runs, cold browser cache).

    .venv/bin/python bench/bench_paint.py [--ingestions 1000] [--runs 1000000] [--loads 3]

1. Fills a fresh SQLite metadata DB with bench_dashboard's generator (ingestions, runs over the last 42 days,
   a few ingestions waiting for a schema review).
2. Starts `python -m app.cli serve` on it with a first admin, and signs in once over HTTP: the session cookie is
   handed to every browser context, so no page load warms the cache of another.
3. Loads every page once to warm the server up (not counted), then --loads times each, every load in a new
   Chromium context (empty cache): navigation start → first contentful paint (Performance API `paint` entry).
   Prints page → median FCP and the median first byte beside it. No target is asserted: this prints numbers.

The wizard's steps 2-4 are the same page as step 1 (/ingestions/new, no navigation between them), so the wizard
is measured as a new ingestion and as the edit of an existing one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_dashboard as generator  # the data generator and server of the dashboard bench
import httpx
from sqlalchemy import create_engine, text

from app.settings import Settings

TARGET_MS = 1000
SETTLE_MS = 1000  # the server finishes one page's websocket work before the next load starts
ADMIN_EMAIL = "bench@example.com"
ADMIN_PASSWORD = "bench-password-123"
PAINT_JS = """() => ({
    fcp: performance.getEntriesByName('first-contentful-paint')[0].startTime,
    response: performance.getEntriesByType('navigation')[0].responseStart})"""


def pages(database_url: str) -> dict[str, str]:
    """Page name → path, with the ids of an ingestion with runs and of one waiting for a schema review."""
    engine = create_engine(database_url)
    with engine.connect() as c:
        active = c.execute(text("SELECT min(id) FROM ingestion WHERE status = 'active'")).scalar_one()
        review = c.execute(text("SELECT min(id) FROM ingestion WHERE status = 'needs_review'")).scalar_one()
        runs = c.execute(text("SELECT count(*) FROM run WHERE ingestion_id = :i"), {"i": active}).scalar_one()
    engine.dispose()
    print(f"  detail page: ingestion {active} with {runs:,} runs; schema review: ingestion {review}")
    return {
        "login": "/login",
        "dashboard": "/",
        "wizard (new)": "/ingestions/new",
        "wizard (edit)": f"/ingestions/{active}/edit",
        "detail": f"/ingestions/{active}",
        "schema review": f"/ingestions/{review}/schema-review",
        "clusters": "/clusters",
        "account": "/account",
        "audit": "/audit",
    }


def session_cookie(base: str) -> dict[str, Any]:
    """Sign in through the login form's POST, as a browser does; the cookie opens every other page."""
    answer = httpx.post(
        f"{base}/auth/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, follow_redirects=False
    )
    if answer.status_code != 303 or not answer.cookies:
        raise SystemExit(f"sign-in failed: {answer.status_code} {answer.text[:300]}")
    name, value = next(iter(answer.cookies.items()))
    return {"name": name, "value": value, "url": base}


def load(browser: Any, url: str, cookie: dict[str, Any] | None) -> dict[str, float]:
    """One load of `url` in a new context (cold cache): FCP and first byte in ms from navigation start."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        if cookie is not None:
            context.add_cookies([cookie])
        page = context.new_page()
        page.goto(url, wait_until="commit", timeout=120_000)
        page.wait_for_function(
            "performance.getEntriesByName('first-contentful-paint').length > 0", timeout=120_000, polling=50
        )
        timing = {k: float(v) for k, v in page.evaluate(PAINT_JS).items()}
        page.wait_for_timeout(SETTLE_MS)
        return timing
    finally:
        context.close()


def measure(base: str, paths: dict[str, str], loads: int) -> dict[str, list[dict[str, float]]]:
    from playwright.sync_api import sync_playwright

    cookie = session_cookie(base)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=generator.CHROMIUM, args=generator.CHROMIUM_FLAGS)
        try:
            for name, path in paths.items():  # warm-up: the server's first render of each page is not counted
                load(browser, base + path, None if name == "login" else cookie)
            for _ in range(loads):
                for name, path in paths.items():
                    results[name].append(load(browser, base + path, None if name == "login" else cookie))
        finally:
            browser.close()
    return results


def report(results: dict[str, list[dict[str, float]]]) -> None:
    print(f"\n{'page':<16} {'FCP ms (median)':>16} {'worst':>7} {'first byte ms':>14}")
    for name, timings in results.items():
        fcp = [t["fcp"] for t in timings]
        first_byte = statistics.median(t["response"] for t in timings)
        over = "  over 1 s" if statistics.median(fcp) >= TARGET_MS else ""
        print(f"{name:<16} {statistics.median(fcp):>16.0f} {max(fcp):>7.0f} {first_byte:>14.0f}{over}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ingestions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--loads", type=int, default=3)
    args = parser.parse_args()
    os.environ |= {
        "AUTOLOADER_ADMIN_EMAIL": ADMIN_EMAIL,
        "AUTOLOADER_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "AUTOLOADER_RATE_LIMIT_PER_MINUTE": "0",
    }
    with tempfile.TemporaryDirectory(prefix="bench-paint-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'autoloader.db'}"
        settings = Settings(data_dir=Path(tmp), database_url=url, secret_key="bench")
        print(f"filling {url} with {args.ingestions:,} ingestions and {args.runs:,} runs")
        started = time.perf_counter()
        generator.fill(settings, args.ingestions, args.runs)
        print(f"  generated in {time.perf_counter() - started:.0f} s")
        paths = pages(url)
        with generator.server(settings, url) as base:
            results = measure(base, paths, args.loads)
        print(f"\n{args.ingestions:,} ingestions, {args.runs:,} runs (SQLite); {args.loads} cold loads per page")
        report(results)


if __name__ == "__main__":
    main()

"""How soon a run's progress reaches an open detail page (issue 15 target: within 1 s of the engine reporting it).

    .venv/bin/python bench/bench_live_progress.py [--files 6000] [--per-batch 400] [--runs 3]

1. Writes --files small JSON-lines files into a landing folder and starts `python -m app.cli serve` on a fresh
   SQLite metadata DB, with an admin and an API token.
2. Creates an ingestion over the folder cut into batches of --per-batch files (one Delta commit and one stored
   progress each, plus the engine's own report about every second), and opens its detail page in Chromium.
3. Starts a run through the API. Meanwhile this script reads the run's row every 5 ms: each new `files_done` is the
   moment the engine's report was stored. In the page, a MutationObserver notes when the progress line first shows
   that count ("N / M files").
4. Prints, per run and in all, how many reports the page showed and the delay from the stored report to the page
   showing it (median, 90th percentile, worst). Reports the page never showed (superseded within a reload) are
   counted apart. No target is asserted: this prints numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_dashboard as generator  # its server() and Chromium flags
import bench_paint  # its admin and sign-in
import httpx

from app.settings import Settings

ADMIN_EMAIL = bench_paint.ADMIN_EMAIL
ADMIN_PASSWORD = bench_paint.ADMIN_PASSWORD
ADMIN_TOKEN = "bench-token-live-progress-0123456789"
WATCH_JS = r"""() => {
    window.__seen = [];
    const pattern = /([\d,]+) \/ ([\d,]+) files/;
    const note = () => {
        const found = document.body.innerText.match(pattern);
        if (!found) return;
        const done = parseInt(found[1].replace(/,/g, ''), 10);
        const last = window.__seen[window.__seen.length - 1];
        if (!last || last.done !== done) window.__seen.push({done: done, at: Date.now()});
    };
    new MutationObserver(note).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def write_files(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(15)
    for index in range(count):
        rows = (json.dumps({"id": index * 20 + i, "v": rng.random()}) for i in range(20))
        (folder / f"part-{index:06d}.json").write_text("\n".join(rows) + "\n")


def api(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)


def create_ingestion(client: httpx.Client, landing: Path, per_batch: int) -> int:
    body = {
        "name": "live-progress",
        "source": {"type": "local", "path": str(landing)},
        "format": {"type": "json"},
        "destination": {"catalog": "main", "database": "bench", "table": "live"},
        "limits": {"max_files_per_batch": per_batch},
        "activate": True,
    }
    answer = client.post("/api/v1/ingestions", json=body)
    if answer.status_code >= 300:
        raise SystemExit(f"create failed: {answer.status_code} {answer.text[:300]}")
    return int(answer.json()["id"])


def stored_reports(db: Path, run_id: int, until: float) -> list[tuple[int, float]]:
    """(files_done, ms since the epoch) each time the run's stored progress changes, read every 5 ms."""
    seen: list[tuple[int, float]] = []
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        while time.monotonic() < until:
            row = connection.execute("SELECT files_done, status FROM run WHERE id = ?", (run_id,)).fetchone()
            now = time.time() * 1000
            if row is not None:
                done, status = int(row[0]), row[1]
                if status == "running" and (not seen or seen[-1][0] != done):
                    seen.append((done, now))
                if status not in ("queued", "running"):
                    return seen
            time.sleep(0.005)
    finally:
        connection.close()
    raise SystemExit("the run did not end in time")


def one_run(page: Any, client: httpx.Client, db: Path, ingestion_id: int, base: str) -> dict[str, Any]:
    page.goto(f"{base}/ingestions/{ingestion_id}")
    page.wait_for_selector("text=Run Now", timeout=60_000)
    page.evaluate(WATCH_JS)
    answer = client.post(f"/api/v1/ingestions/{ingestion_id}/run")
    if answer.status_code >= 300:
        raise SystemExit(f"run failed to start: {answer.status_code} {answer.text[:300]}")
    reports = stored_reports(db, int(answer.json()["run_id"]), time.monotonic() + 600)
    page.wait_for_timeout(1500)  # the page's last reloads
    shown = {entry["done"]: float(entry["at"]) for entry in page.evaluate("window.__seen")}
    delays = [shown[done] - at for done, at in reports if done in shown and done > 0]
    return {"reports": len([r for r in reports if r[0] > 0]), "delays": delays}


def summary(delays: list[float]) -> str:
    if not delays:
        return "no report shown"
    ordered = sorted(delays)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(ordered):5.0f} ms   p90 {p90:5.0f} ms   worst {ordered[-1]:5.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=6000)
    parser.add_argument("--per-batch", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        data, landing = Path(tmp) / "data", Path(tmp) / "landing"
        data.mkdir()
        os.environ |= {
            "AUTOLOADER_ADMIN_EMAIL": ADMIN_EMAIL,
            "AUTOLOADER_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "AUTOLOADER_ADMIN_TOKEN": ADMIN_TOKEN,
            "AUTOLOADER_RATE_LIMIT_PER_MINUTE": "0",
            "AUTOLOADER_LOCAL_ROOTS": str(Path(tmp) / "landing"),
        }
        db = data / "autoloader.db"
        settings = Settings(data_dir=data, database_url=f"sqlite:///{db}", secret_key="bench")
        all_delays: list[float] = []
        with generator.server(settings, f"sqlite:///{db}") as base, api(base) as client, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=generator.CHROMIUM, args=generator.CHROMIUM_FLAGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_cookies([bench_paint.session_cookie(base)])
            page = context.new_page()
            for number in range(1, args.runs + 1):
                target = landing / f"run-{number}"
                write_files(target, args.files)  # new files for each run, in a folder of the landing
                if number == 1:
                    ingestion_id = create_ingestion(client, landing, args.per_batch)
                result = one_run(page, client, db, ingestion_id, base)
                all_delays += result["delays"]
                missed = result["reports"] - len(result["delays"])
                print(
                    f"run {number}: {result['reports']} stored reports, {len(result['delays'])} shown, "
                    f"{missed} superseded; {summary(result['delays'])}",
                    flush=True,
                )
            browser.close()
        print(
            f"\nall runs ({args.files:,} files of 20 rows per run, {args.per_batch} per batch): {summary(all_delays)}"
        )


if __name__ == "__main__":
    main()

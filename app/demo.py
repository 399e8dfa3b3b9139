"""`autoloader demo`: a landing folder with realistic files, an ingestion for each feed made and run through the
services (as the API makes them), then one more events file with a new column, so that every screen — the
dashboard, each detail page with its runs and files, the schema review — has real data to show.

Running it again sets nothing up twice: the ingestions are found by name and reused, files already in the folder
are left as they are, and a step already done (a first run, the late file loaded or held) is not done again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.bootstrap import Container, build
from app.demo_files import NEW_EVENT_COLUMN, event_files, late_event_file, order_files, write_missing
from app.settings import Settings
from core.access import SYSTEM
from core.config import IngestionSpec
from core.domain import Ingestion, RunOutcome
from core.errors import ConfigError, Conflict, NotFound
from core.guards import ROOTS_SETTING, LocalRoots
from core.wording import counted

EVENTS = "aws_logs_raw"
ORDERS = "orders"
MONEY = {column: "decimal(12,2)" for column in ("unit_price", "discount", "total_amount")}
"""Amounts as exact decimals (a type hint), not the doubles inference would choose for 19.99."""


@dataclass(frozen=True, slots=True)
class DemoFeed:
    """One demo ingestion: its folder under the landing folder, its files and how it is configured."""

    name: str
    folder: str
    files: Callable[[], dict[str, bytes]]
    spec: Callable[[Path], dict[str, Any]]


def _events_spec(folder: Path) -> dict[str, Any]:
    return {
        "name": EVENTS,
        "source": {"type": "local", "path": str(folder), "file_pattern": "*.json.gz"},
        "format": {"type": "json", "schema": {"on_schema_change": "pause"}},
        "destination": {"catalog": "analytics", "database": "logs", "table": "aws_logs_raw"},
        "schedule": {"mode": "scheduled", "frequency": "daily", "time": "02:00", "timezone": "UTC"},
    }


def _orders_spec(folder: Path) -> dict[str, Any]:
    return {
        "name": ORDERS,
        "source": {"type": "local", "path": str(folder), "file_pattern": "orders-*.csv"},
        "format": {"type": "csv", "options": {"header": True}, "schema": {"hints": MONEY}},
        "destination": {"catalog": "analytics", "database": "sales", "table": "orders"},
        "schedule": {"mode": "scheduled", "frequency": "hourly", "minute": 15, "timezone": "UTC"},
    }


FEEDS = (
    DemoFeed(EVENTS, "aws-logs", event_files, _events_spec),
    DemoFeed(ORDERS, "orders", order_files, _orders_spec),
)


@dataclass(slots=True)
class DemoReport:
    """What `set_up_demo` did, for the command to print."""

    landing: Path
    ingestions: dict[str, int] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)

    @property
    def already_set_up(self) -> bool:
        return not self.done


def default_landing(settings: Settings) -> Path:
    """Under the default local root (<data dir>/landing), so the demo works on the defaults."""
    return settings.data_dir / "landing" / "demo"


def check_landing(roots: LocalRoots, landing: Path) -> None:
    """Refuse, before anything is written, a landing folder the server could not read from."""
    if roots.contains(str(landing)):
        return
    suggestion = Path(roots.roots[0]) / "autoloader-demo" if roots.roots else None
    action = (
        f"Run `autoloader demo --landing {suggestion}` to put the demo under an allowed folder, or add "
        if suggestion
        else "Add "
    )
    raise ConfigError(
        f"The demo landing folder {landing} is outside the folders local sources may read ({roots.describe()}).",
        f"{action}{landing} to {ROOTS_SETTING} (comma-separated) for this command and the server.",
        field="landing",
    )


def set_up_demo(container: Container, landing: Path) -> DemoReport:
    """Files, ingestions and runs of the demo; each step only if it is not done yet."""
    landing = landing.expanduser().resolve()
    check_landing(container.guards.local_roots, landing)
    report = DemoReport(landing)
    for feed in FEEDS:
        folder = landing / feed.folder
        written = write_missing(folder, feed.files())
        if written:
            report.done.append(f"wrote {counted(written, 'file')} to {folder}")
        ingestion = _ingestion(container, feed, folder, report)
        report.ingestions[feed.name] = ingestion.id
        if not container.views.runs(SYSTEM, ingestion.id, days=None):
            report.done.append(_run(container, ingestion))
    _drop_late_events(container, landing, report)
    return report


def _ingestion(container: Container, feed: DemoFeed, folder: Path, report: DemoReport) -> Ingestion:
    """The demo's ingestion of this feed: the one already made by an earlier demo, or a new active one."""
    try:
        existing = container.store.find_ingestion(feed.name, SYSTEM.tenant_id)
    except NotFound:
        spec = IngestionSpec.model_validate(feed.spec(folder))
        created = container.ingestions.create(spec, activate=True, who=SYSTEM)
        report.done.append(f"created ingestion '{feed.name}' (id {created.id}) → {spec.destination.full_name}")
        return created
    if existing.spec.source.path != str(folder):
        raise Conflict(
            f"An ingestion named '{feed.name}' already exists and reads {existing.spec.source.path}, "
            f"not the demo folder {folder}.",
            f"Run the demo with --landing {Path(existing.spec.source.path).parent}, or rename or delete "
            f"ingestion {existing.id} first.",
        )
    return existing


def _drop_late_events(container: Container, landing: Path, report: DemoReport) -> None:
    """One more events file, now with a new column, and a run: the file is held for the schema review."""
    events = container.store.find_ingestion(EVENTS, SYSTEM.tenant_id)
    folder = landing / FEEDS[0].folder
    name, content = late_event_file()
    if str(folder / name) in container.store.known_files(events.id):
        return  # loaded, held for review or otherwise recorded by an earlier demo
    write_missing(folder, {name: content})
    report.done.append(f"dropped {name} into {folder}: its events carry a new column '{NEW_EVENT_COLUMN}'")
    report.done.append(_run(container, events))


def _run(container: Container, ingestion: Ingestion) -> str:
    outcome: RunOutcome = container.runs.run_now(str(ingestion.id), trigger="manual", who=SYSTEM)
    m = outcome.metrics
    recorded = container.store.get_run_by_id(outcome.run_id)
    named = f"run #{recorded.number}" if recorded is not None and recorded.number is not None else "run"
    line = (
        f"ran '{ingestion.name}': {named} {outcome.status.value}, {counted(m.files_processed, 'file')}, "
        f"{counted(m.records_ingested, 'record')}"
    )
    if outcome.schema_pending:
        line += " — a schema change waits for review"
    return line


def console_pages(settings: Settings, report: DemoReport) -> list[str]:
    """The pages to open, with what each shows."""
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    events, orders = report.ingestions[EVENTS], report.ingestions[ORDERS]
    pages = [
        (f"{base}/", "dashboard: both ingestions, one waiting for a schema review"),
        (f"{base}/ingestions/{events}", f"{EVENTS}: runs, files and schema history"),
        (f"{base}/ingestions/{orders}", f"{ORDERS}: runs and files"),
        (f"{base}/ingestions/{events}/schema-review", f"the new column '{NEW_EVENT_COLUMN}' to decide on"),
    ]
    width = max(len(url) for url, _ in pages)
    return [f"  {url.ljust(width)}  {what}" for url, what in pages]


def run_demo(settings: Settings, landing: Path | None) -> list[str]:
    """The command: set the demo up (or find it set up) and say what was done and where to look."""
    container = build(settings)
    try:
        report = set_up_demo(container, landing or default_landing(settings))
    finally:
        container.close()
    lines = (
        [f"demo already set up in {report.landing} (nothing to do)"]
        if report.already_set_up
        else [f"demo set up in {report.landing}:", *(f"  - {step}" for step in report.done)]
    )
    lines += [
        f"tables are under {settings.resolved_warehouse}; open the console (`autoloader serve` if it is not running):",
        *console_pages(settings, report),
    ]
    return lines

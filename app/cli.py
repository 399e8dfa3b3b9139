"""`autoloader serve | run | db upgrade`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict

from app.settings import Settings


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    from app.main import serve

    print(f"Autoloader on http://{settings.host}:{settings.port}  (API docs: /docs, data: {settings.data_dir})")
    serve(settings)
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from app.bootstrap import build
    from core.domain import RunStatus
    from core.errors import AutoloaderError

    container = build(settings)
    try:
        outcome = container.runs.run_now(args.ingestion)
    except AutoloaderError as exc:
        print(f"error: {exc.message}\n  what to do: {exc.action}", file=sys.stderr)
        return 2
    finally:
        container.close()
    m = outcome.metrics
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": outcome.run_id,
                    "status": outcome.status.value,
                    "metrics": m.as_dict(),
                    "message": outcome.message,
                    "errors": [asdict(e) for e in outcome.errors],
                }
            )
        )
    else:
        print(f"run {outcome.run_id}: {outcome.status.value} — {outcome.message}")
        print(
            f"  files {m.files_processed:,}  records {m.records_ingested:,}  read {m.bytes_read / 1e6:.1f} MB  "
            f"written {m.bytes_written / 1e6:.1f} MB  in {m.duration_seconds:.2f} s"
        )
        for error in outcome.errors:
            where = f"{error.file}: " if error.file else ""
            print(f"  ! {where}{error.message}" + (f"\n    → {error.action}" if error.action else ""))
    if outcome.status == RunStatus.FAILED or (args.strict and outcome.status != RunStatus.SUCCESS):
        return 1
    return 0


def _db_upgrade(_: argparse.Namespace, settings: Settings) -> int:
    from app.db.database import upgrade

    upgrade(settings.resolved_database_url)
    print("database is up to date")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autoloader", description="Load new files from object storage into Delta tables.")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the console, REST API and scheduler")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=_serve)
    run = sub.add_parser("run", help="run one ingestion once and print a summary (exit 1 on failure)")
    run.add_argument("ingestion", help="ingestion id or name")
    run.add_argument("--json", action="store_true", help="print the run record as JSON")
    run.add_argument("--strict", action="store_true", help="also exit 1 when the run is partial")
    run.set_defaults(func=_run)
    db = sub.add_parser("db", help="metadata database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply pending migrations").set_defaults(func=_db_upgrade)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())

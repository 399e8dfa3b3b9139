"""`autoloader serve | run | db upgrade | secrets rotate`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING

from app.logging_setup import configure_logging
from app.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.domain import RunError, RunOutcome
    from core.pipeline import RunPipeline

MIN_NEW_KEY_LENGTH = 16
"""`secrets rotate --new-key`: the stored credentials (and the backups holding them) rest on this key."""
SIGNAL_CHECK_SECONDS = 0.1
"""How often `autoloader run`'s main thread wakes while the run works on its worker thread: Python runs signal
handlers in the main thread once it runs again. A guard, not a proven cure: in CI (and 1 of ~40 local tries) the
SIGTERM of test_autoloader_run_ends_at_a_batch_boundary_on_sigterm was handled only after the whole run, and a
signal delivered to another thread did not reproduce that (it woke the waiting main thread)."""


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_format, settings.log_level)
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    from app.main import serve

    print(f"Autoloader on http://{settings.host}:{settings.port}  (API docs: /docs, data: {settings.data_dir})")
    print(sign_in_hint(settings))
    serve(settings)
    return 0


def sign_in_hint(settings: Settings) -> str:
    """Where to log in; on a data dir without any user, how to create the first admin."""
    from app.db.accounts import AccountRepository
    from app.db.database import make_engine, upgrade

    url = settings.resolved_database_url
    upgrade(url)
    engine = make_engine(url)
    try:
        users = AccountRepository(engine).count_users()
    finally:
        engine.dispose()
    base = f"http://{settings.host}:{settings.port}"
    if users or settings.admin_token or (settings.admin_email and settings.admin_password):
        return f"Log in at {base}/login"
    return (
        f"No user yet: open http://127.0.0.1:{settings.port}/setup on this machine to create the first admin "
        "(or set AUTOLOADER_ADMIN_EMAIL and AUTOLOADER_ADMIN_PASSWORD)."
    )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_format, settings.log_level)
    from app.bootstrap import build_runtime  # only what a run needs: no web stack, scheduler or read side
    from core.domain import RunStatus
    from core.errors import AutoloaderError

    runtime = build_runtime(settings)
    try:
        with _stop_between_batches_on_signals(runtime.pipeline):
            outcome = _in_worker_thread(runtime.runs.run_now, args.ingestion)
        recorded = runtime.store.get_run_by_id(outcome.run_id)
        _print_outcome(args, outcome, recorded.number if recorded is not None else None)  # before the alerts go
    except AutoloaderError as exc:
        print(f"error: {exc.message}\n  what to do: {exc.action}", file=sys.stderr)
        return 2
    finally:
        runtime.close()
    unfinished = outcome.status in (RunStatus.FAILED, RunStatus.CANCELLED)  # cancelled: stopped by SIGTERM
    return 1 if unfinished or (args.strict and outcome.status != RunStatus.SUCCESS) else 0


def _print_outcome(args: argparse.Namespace, outcome: RunOutcome, number: int | None) -> None:
    m = outcome.metrics
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": outcome.run_id,
                    "number": number,
                    "status": outcome.status.value,
                    "metrics": m.as_dict(),
                    "message": outcome.message,
                    "errors": [asdict(e) for e in outcome.errors],
                }
            )
        )
    else:
        named = f"run #{number}" if number is not None else f"run {outcome.run_id}"  # as the console numbers it
        print(f"{named} of '{args.ingestion}': {outcome.status.value} — {outcome.message}")
        print(
            f"  files {m.files_processed:,}  records {m.records_ingested:,}  read {m.bytes_read / 1e6:.1f} MB  "
            f"written {m.bytes_written / 1e6:.1f} MB  in {m.duration_seconds:.2f} s"
        )
        for error in outcome.errors:
            print(error_lines(error))
    sys.stdout.flush()


def _in_worker_thread(function: Callable[[str], RunOutcome], argument: str) -> RunOutcome:
    """`function(argument)` on a worker thread while the main thread waits: Python runs signal handlers in the main
    thread only between its own steps, so a run writing a batch there (inside delta-rs) took SIGTERM only once the
    batch was done, and a second SIGTERM did not stop it at once (a helper's trial: 13 s late)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="run") as pool:
        future = pool.submit(function, argument)
        while True:
            try:
                return future.result(timeout=SIGNAL_CHECK_SECONDS)
            except TimeoutError:
                continue


@contextmanager
def _stop_between_batches_on_signals(pipeline: RunPipeline) -> Iterator[None]:
    """A scheduler's kill (cron's timeout, Airflow, Kubernetes) sends SIGTERM before SIGKILL, a user presses Ctrl-C:
    the run then ends after the batch being written, committed and recorded, instead of dying part-way; a second
    signal ends the process at once (the next run settles the batch). The handlers before are put back after."""
    import signal

    sent = (signal.SIGTERM, signal.SIGINT)
    before = {number: signal.getsignal(number) for number in sent}

    def stop(signum: int, frame: object) -> None:
        for number in sent:  # first: a signal arriving while this runs must find the default action
            signal.signal(number, signal.SIG_DFL)
        name = signal.Signals(signum).name
        pipeline.stop_between_batches(f"The process received {name}")
        print(f"autoloader: stopping after the batch being written ({name} again stops at once)", file=sys.stderr)

    for number in sent:
        signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def error_lines(error: RunError) -> str:
    """A run error as `autoloader run` prints it: the file first unless the message already names it (a bad file's
    message starts with its path), then the action."""
    from core.domain import with_file

    return f"  ! {with_file(error.file, error.message)}" + (f"\n    → {error.action}" if error.action else "")


def _db_upgrade(_: argparse.Namespace, settings: Settings) -> int:
    from app.db.database import upgrade

    upgrade(settings.resolved_database_url)
    print("database is up to date")
    return 0


def _secrets_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """New master key: the stored credentials move to it in one transaction; a key kept in the data dir is replaced
    (the new one is written beside it first, so a failure never leaves data under a key that is gone)."""
    import os
    import secrets

    from app.db.database import make_engine, upgrade
    from app.db.secrets_rotation import rotate_credentials
    from app.secrets_box import SecretBox

    if args.new_key is not None and len(args.new_key) < MIN_NEW_KEY_LENGTH:
        print(
            f"error: the new key is {len(args.new_key)} characters long; the credentials and their backups rest on it\n"
            f"  what to do: give a key of at least {MIN_NEW_KEY_LENGTH} random characters, or leave --new-key out "
            "for a random one",
            file=sys.stderr,
        )
        return 2
    url = settings.resolved_database_url
    upgrade(url)
    new_key = args.new_key or secrets.token_urlsafe(32)
    key_file = settings.data_dir / "secret.key"
    staged = key_file.with_suffix(".key.new")
    from_file = not settings.secret_key
    if from_file:
        staged.write_text(new_key)
        staged.chmod(0o600)
    engine = make_engine(url)
    try:
        count = rotate_credentials(engine, SecretBox(settings.resolved_secret_key), SecretBox(new_key))
    finally:
        engine.dispose()
    if from_file:
        os.replace(staged, key_file)
        print(f"re-encrypted {count} credential(s); the new key is in {key_file} (keep a copy somewhere safe)")
    else:
        print(f"re-encrypted {count} credential(s). Set AUTOLOADER_SECRET_KEY to the new key and restart:")
        print(new_key)
    return 0


def _db_backup(args: argparse.Namespace, settings: Settings) -> int:
    """The metadata database into one SQLite file, consistent while servers run."""
    from pathlib import Path

    from app.db.backup import backup, describe_exclusions
    from core.errors import AutoloaderError

    try:
        made = backup(settings.resolved_database_url, Path(args.file))
    except AutoloaderError as exc:
        print(f"error: {exc.message}\n  what to do: {exc.action}", file=sys.stderr)
        return 2
    print(f"backed up the metadata (migration {made.revision}: {made.describe()}) to {Path(args.file).resolve()}")
    print("\n".join(describe_exclusions(settings)))
    return 0


def _db_restore(args: argparse.Namespace, settings: Settings) -> int:
    """A backup into the metadata database (empty, or replaced with --force), migrated to this release."""
    from pathlib import Path

    from sqlalchemy import make_url

    from app.bootstrap import build
    from app.db.backup import credentials_the_key_cannot_open, restore, settle_tables_ahead_of_ledger
    from app.secrets_box import SecretBox
    from core.errors import AutoloaderError

    try:
        restored = restore(Path(args.file), settings.resolved_database_url, force=args.force)
    except AutoloaderError as exc:
        print(f"error: {exc.message}\n  what to do: {exc.action}", file=sys.stderr)
        return 2
    made, into = restored.backup, make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    print(f"restored {made.describe()} into {into} (backup at migration {made.revision}, now at {restored.revision})")
    key = "AUTOLOADER_SECRET_KEY" if settings.secret_key else f"{settings.data_dir / 'secret.key'}"
    container = build(settings)
    try:
        secrets, unreadable = credentials_the_key_cannot_open(container.db, SecretBox(settings.resolved_secret_key))
        ahead = [] if unreadable else settle_tables_ahead_of_ledger(container)  # reading them opens their secrets
    finally:
        container.close()
    print(f"stored credentials decrypt only with the master key in use when the backup was made ({key} here)")
    if unreadable:
        print(
            f"  ! {unreadable} of {secrets} stored credential(s) do not decrypt with this key: set "
            "AUTOLOADER_SECRET_KEY (or put back secret.key) from the server the backup was made on; until then "
            "those ingestions cannot run"
        )
    for line in ahead:
        print(f"  ! {line}")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    """Landing files, two ingestions, their runs and a pending schema change: every screen with data."""
    from pathlib import Path

    from app.demo import run_demo
    from core.errors import AutoloaderError

    try:
        lines = run_demo(settings, Path(args.landing) if args.landing else None)
    except AutoloaderError as exc:
        print(f"error: {exc.message}\n  what to do: {exc.action}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    print(sign_in_hint(settings))
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
    db_backup = db_sub.add_parser("backup", help="copy the metadata database into one SQLite file (servers may run)")
    db_backup.add_argument("file", help="the backup file to write (replaced if it exists)")
    db_backup.set_defaults(func=_db_backup)
    db_restore = db_sub.add_parser("restore", help="put a backup into the metadata database, then migrate it")
    db_restore.add_argument("file", help="a file made by `autoloader db backup` (from SQLite or PostgreSQL)")
    db_restore.add_argument("--force", action="store_true", help="replace a metadata database that holds data")
    db_restore.set_defaults(func=_db_restore)
    demo = sub.add_parser("demo", help="a landing folder with sample files, two ingestions and their runs")
    demo.add_argument("--landing", help="where to put the sample files (default: <data dir>/landing/demo)")
    demo.set_defaults(func=_demo)
    keys = sub.add_parser("secrets", help="the master key that encrypts stored credentials")
    keys_sub = keys.add_subparsers(dest="secrets_command", required=True)
    rotate = keys_sub.add_parser("rotate", help="re-encrypt every stored credential under a new key")
    rotate.add_argument("--new-key", help="the new key (default: a random one)")
    rotate.set_defaults(func=_secrets_rotate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from core.errors import ConfigError

    try:
        return int(args.func(args, Settings()))
    except ConfigError as exc:  # a setting the server refuses to start with (e.g. AUTOLOADER_LOCAL_ROOTS)
        print(f"error: {exc.message}\n  what to do: {exc.action}", file=sys.stderr)
        return 2
    except Exception as exc:
        return _metadata_down(exc)


def _metadata_down(exc: Exception) -> int:
    """The metadata database down or full when a command needed it: one line saying which (anything else is a
    bug, raised with its traceback). Imported here: sqlalchemy is not loaded by every command."""
    from sqlalchemy.exc import DBAPIError

    from app.db.retrying import is_disconnect, metadata_failure

    if not isinstance(exc, DBAPIError) or not is_disconnect(exc):
        raise exc
    error = metadata_failure(exc, "answer")
    print(f"error: {error.message}\n  what to do: {error.action}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

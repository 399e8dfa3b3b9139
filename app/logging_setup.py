"""How the process logs (`AUTOLOADER_LOG_FORMAT`, `AUTOLOADER_LOG_LEVEL`): one handler on the root logger, text or
one JSON object per line, and the ids of the run being executed on every record logged while it executes.

The runner sets the ids (`run_log_context`) in the thread that executes a run; a filter on the handler copies them
onto each record. Threads a run starts for itself (its heartbeat) do not inherit them: those lines name the run in
their message. Only the fields below are written — never a record's arguments or extra attributes, so nothing
reaches the log that the message did not already say.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

RUN_ID: ContextVar[int | None] = ContextVar("autoloader_run_id", default=None)
INGESTION_ID: ContextVar[int | None] = ContextVar("autoloader_ingestion_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(run_tag)s: %(message)s"
CHATTY = ("apscheduler",)
"""Libraries whose INFO lines say nothing an operator needs (APScheduler: two lines per periodic job, every few
seconds): kept to warnings unless the level is DEBUG."""


@contextmanager
def run_log_context(run_id: int, ingestion_id: int) -> Iterator[None]:
    """Every record logged in this context carries the run's ids. Reset on exit: a worker thread executes many runs
    one after another, and a run's ids must not leak into the next task's lines."""
    run_token = RUN_ID.set(run_id)
    ingestion_token = INGESTION_ID.set(ingestion_id)
    try:
        yield
    finally:
        INGESTION_ID.reset(ingestion_token)
        RUN_ID.reset(run_token)


class RunContextFilter(logging.Filter):
    """Copies the current run's ids onto a record (None outside a run); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        run_id, ingestion_id = RUN_ID.get(), INGESTION_ID.get()
        record.run_id = run_id
        record.ingestion_id = ingestion_id
        record.run_tag = "" if run_id is None else f" [run {run_id} ingestion {ingestion_id}]"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the run's ids while a run executes,
    and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = getattr(record, "run_id", None)
        if run_id is not None:
            line["run_id"] = run_id
            line["ingestion_id"] = getattr(record, "ingestion_id", None)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def make_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(log_format: str = "text", level: str = "WARNING", stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers (the CLI's early default) with one of `log_format` at `level`."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(log_format, stream))
    root.setLevel(level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)

"""The run's ids on log records: set for the run's context only (a worker thread's next task starts clean), in both
formats; the JSON line holds only its named fields."""

from __future__ import annotations

import io
import json
import logging

import pytest

from app.logging_setup import configure_logging, make_handler, run_log_context


def _logged(log_format: str) -> list[str]:
    stream = io.StringIO()
    logger = logging.getLogger("tests.logging_setup")
    handler = make_handler(log_format, stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before")
        with run_log_context(7, 3):
            logger.warning("during %s", "the run", extra={"password": "s3cret"})
        logger.warning("after")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue().splitlines()


def test_json_lines_carry_the_ids_only_during_the_run() -> None:
    before, during, after = (json.loads(line) for line in _logged("json"))
    assert during["run_id"] == 7 and during["ingestion_id"] == 3 and during["message"] == "during the run"
    assert "run_id" not in before and "run_id" not in after
    assert set(during) == {"time", "level", "logger", "message", "run_id", "ingestion_id"}, "no extra attributes"
    assert during["level"] == "WARNING" and during["logger"] == "tests.logging_setup"
    assert during["time"].endswith("+00:00")


def test_text_lines_name_the_run() -> None:
    before, during, after = _logged("text")
    assert "[run 7 ingestion 3]: during the run" in during
    assert "[run" not in before and "[run" not in after


def test_an_exception_is_one_json_line() -> None:
    stream = io.StringIO()
    handler = make_handler("json", stream)
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, exc_info=True)
        record.exc_info = __import__("sys").exc_info()
    handler.handle(record)
    (line,) = stream.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_configure_logging_replaces_the_root_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(root, "level", root.level)
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    logging.getLogger("tests.configured").info("hello")
    assert len(root.handlers) == 1 and root.level == logging.INFO
    assert json.loads(stream.getvalue())["message"] == "hello"

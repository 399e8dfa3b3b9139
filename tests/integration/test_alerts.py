"""Alerts reach a real SMTP server and a real webhook on 127.0.0.1 and the in-app list; repeats of an
open condition are suppressed until it clears."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from app.alerts import Delivery, Outbox
from app.bootstrap import Container, build
from core.access import SYSTEM
from core.domain import RunStatus
from tests.helpers import spec, write_json_files
from tests.services import free_port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


@pytest.fixture
def alerting_services(settings, smtp) -> Iterator[Container]:  # type: ignore[no-untyped-def]
    settings.smtp_host, settings.smtp_port = "127.0.0.1", smtp[0]
    svc = build(settings)
    yield svc
    svc.close()


def test_failure_alerts_once_until_cleared(alerting_services, smtp, webhook, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc = alerting_services
    _, inbox = smtp
    url, hooks = webhook
    landing = tmp_path / "landing"
    quality = {"alert_recipients": ["oncall@example.com"], "webhook_url": url}
    ing = svc.ingestions.create(spec(str(landing), name="orders", quality=quality), activate=True)

    svc.runs.run_now(ing.name)  # the folder does not exist: a terminal failure
    assert svc.alerts.flush(timeout=30)
    assert len(inbox.messages) == 1 and len(hooks) == 1
    mail = inbox.messages[0].content.decode()
    assert "orders" in mail and "What to do:" in mail and f"/ingestions/{ing.id}" in mail
    assert inbox.messages[0].rcpt_tos == ["oncall@example.com"]
    assert hooks[0]["kind"] == "run_failed" and "does not exist" in hooks[0]["text"] and hooks[0]["action"]
    (note,) = svc.views.notifications(SYSTEM).items
    assert note.title == "Run #1 of 'orders' failed"  # the run's number within the ingestion, as the console shows it
    assert note.kind == "run_failed" and note.read_at is None and note.deliveries == {
        "in_app": "ok", "email": "ok", "webhook": "ok"
    }  # fmt: skip
    assert svc.views.unread_count(SYSTEM) == 1

    svc.runs.run_now(ing.name)  # the same condition again: suppressed
    assert svc.alerts.flush(timeout=30)
    assert (len(inbox.messages), len(hooks), len(svc.views.notifications(SYSTEM).items)) == (1, 1, 1)

    write_json_files(landing, 1, 5)
    svc.runs.run_now(ing.name)  # success clears the condition
    assert svc.views.notifications(SYSTEM).items[0].cleared_at is not None
    shutil.rmtree(landing)
    svc.runs.run_now(ing.name)  # failing again is a new alert
    assert svc.alerts.flush(timeout=30)
    assert (len(inbox.messages), len(hooks), len(svc.views.notifications(SYSTEM).items)) == (2, 2, 2)
    assert svc.views.notifications(SYSTEM).items[0].title == "Run #4 of 'orders' failed"


def test_rows_below_minimum_and_broken_channel(alerting_services, smtp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc = alerting_services
    write_json_files(tmp_path / "in", 1, 3)
    quality = {"row_count_min": 10, "webhook_url": f"http://127.0.0.1:{free_port()}/closed"}
    ing = svc.ingestions.create(spec(str(tmp_path / "in"), quality=quality), activate=True)
    svc.runs.run_now(ing.name)
    assert svc.alerts.flush(timeout=30)
    (note,) = svc.views.notifications(SYSTEM).items
    assert note.kind == "rows_below_min" and "below the minimum of 10" in note.title
    assert note.deliveries["webhook"].startswith("failed: the webhook at http://127.0.0.1:")  # not raised into the run
    assert "/closed" not in note.deliveries["webhook"]  # a webhook's path is often its secret


def test_notifications_api(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ing = services.ingestions.create(spec(str(tmp_path / "missing")), activate=True)
    services.runs.run_now(ing.name)
    page = api.get("/api/v1/notifications").json()
    assert page["unread"] == 1 and page["items"][0]["link"].endswith(f"/ingestions/{ing.id}")
    assert api.post(f"/api/v1/notifications/{page['items'][0]['id']}/read").status_code == 204
    assert api.get("/api/v1/notifications").json()["unread"] == 0


def test_a_receiver_that_does_not_answer_holds_no_run(alerting_services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Deliveries leave the run's thread: a receiver that kept its answer back held the run's worker for as long as
    it liked (an outside attack delayed another ingestion's run by 238 s with one header line every 8 s)."""
    svc = alerting_services
    release, arrived = threading.Event(), threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.set()
            release.wait(30)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        quality = {"webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook"}
        ing = svc.ingestions.create(spec(str(tmp_path / "missing"), quality=quality), activate=True)
        svc.runs.run_now(ing.name)
        (note,) = svc.views.notifications(SYSTEM).items
        assert note.deliveries == {"in_app": "ok", "webhook": "sending"}  # the run ended; its alert is on its way
        assert arrived.wait(30) and not release.is_set()
        release.set()
        assert svc.alerts.flush(timeout=30)
        assert svc.views.notifications(SYSTEM).items[0].deliveries["webhook"] == "ok"
    finally:
        release.set()
        server.shutdown()


def test_a_delivery_past_its_deadline_is_recorded_failed_and_holds_up_no_other() -> None:
    """One slow receiver delayed every other ingestion's alerts behind it (a single outbox thread: 125 s in an
    outside attack); each notification now goes on its own, its channels at once."""
    recorded: list[tuple[int, dict[str, Any]]] = []
    outbox = Outbox(lambda nid, deliveries: recorded.append((nid, dict(deliveries))), deadline=0.5)
    hang, sent = threading.Event(), threading.Event()
    slow = [Delivery("webhook", "webhook at http://slow", lambda: hang.wait(30) and None)]
    outbox.send(7, {"in_app": "ok", "webhook": "sending"}, slow)
    outbox.send(8, {"in_app": "ok", "email": "sending"}, [Delivery("email", "SMTP server x:25", sent.set)])
    assert sent.wait(5) and not hang.is_set()  # the second went while the first waited
    assert outbox.flush(timeout=10)
    hang.set()
    assert sorted(recorded) == [
        (7, {"in_app": "ok", "webhook": "failed: the webhook at http://slow gave no complete answer within 0.5 s"}),
        (8, {"in_app": "ok", "email": "ok"}),
    ]


def test_deliveries_still_going_at_exit_are_recorded_as_not_sent() -> None:
    recorded: dict[int, dict[str, Any]] = {}
    outbox = Outbox(lambda nid, deliveries: recorded.__setitem__(nid, dict(deliveries)), deadline=30)
    hang = threading.Event()
    outbox.send(9, {"in_app": "ok", "webhook": "sending"}, [Delivery("webhook", "webhook at x", hang.wait)])
    assert not outbox.flush(timeout=0.2)
    outbox.abandon()
    hang.set()
    assert recorded[9]["webhook"] == "failed: not sent, the process stopped first"


def test_a_run_that_quarantines_files_alerts_once_until_a_clean_run(alerting_services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A run whose every file was quarantined loaded nothing, ended `partial` and raised no alert (an outside
    attack): an ingestion could load nothing for days without anyone hearing of it."""
    svc = alerting_services
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "a.json").write_text('{"id": 1}\n' + "garbage{\n" * 3)
    ing = svc.ingestions.create(spec(str(landing)), activate=True)
    first = svc.runs.run_now(ing.name)
    assert first.status == RunStatus.PARTIAL and first.metrics.records_ingested == 0, first
    (note,) = svc.views.notifications(SYSTEM).items
    assert note.kind == "files_quarantined" and note.title == f"1 file of '{ing.name}' quarantined"
    assert str(landing / "a.json") in note.message and "loaded nothing" in note.message and note.action
    (landing / "b.json").write_text('{"id": 2}\n' + "garbage{\n" * 3)
    svc.runs.run_now(ing.name)  # still open: not raised again
    assert len(svc.views.notifications(SYSTEM).items) == 1
    (landing / "c.json").write_text('{"id": 3}\n')
    assert svc.runs.run_now(ing.name).status == RunStatus.SUCCESS
    assert svc.views.notifications(SYSTEM).items[0].cleared_at is not None

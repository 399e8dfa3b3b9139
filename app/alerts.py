"""Alert delivery: in-app notifications, email (SMTP) and webhooks (JSON with a Slack-compatible `text`).

Rules live in core/alerts.py; this module remembers open conditions (so repeats are suppressed until
the condition clears) and delivers. A delivery failure is recorded on the notification, never raised
into a run. Webhooks go through the egress rule (core/egress.py): http(s) only, no refused address, redirects
checked too.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from app.db.models import Notification
from app.db.repository import NotificationStore
from app.settings import Settings
from core.alerts import Alert, AlertKind, judge_run, no_new_files, over_sla, run_name
from core.config import QualityConfig
from core.domain import Ingestion, IngestionStatus, RunOutcome
from core.egress import EgressAllow, open_url
from core.errors import AutoloaderError
from core.wording import sentence

log = logging.getLogger(__name__)


def link_base(settings: Settings) -> str:
    """Where alert links point: AUTOLOADER_PUBLIC_URL, else the host and port this server is served on (a wildcard
    bind address is not reachable as such: links then name localhost)."""
    if settings.public_url:
        return settings.public_url
    host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


DELIVERY_DEADLINE_SECONDS = 30.0
"""How long one email or webhook delivery may take in all (socket timeouts bound each read, not the whole)."""

_Job = tuple[int, dict[str, Any], dict[str, Callable[[], None]]]


class Outbox:
    """Email and webhook deliveries, sent in order on a thread of their own: a slow receiver never holds a run's
    worker (an outside attack: a receiver sending one header line every 8 s delayed another ingestion's run by
    238 s). A delivery still going after `deadline` seconds is recorded failed and left to end by itself, on its own
    daemon thread, when its socket times out."""

    def __init__(self, record: Callable[[int, dict[str, Any]], None], deadline: float = DELIVERY_DEADLINE_SECONDS):
        self._record = record
        self._deadline = deadline
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, notification_id: int, deliveries: dict[str, Any], sends: dict[str, Callable[[], None]]) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="alert-outbox", daemon=True)
                self._worker.start()
        self._queue.put((notification_id, deliveries, sends))

    def flush(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until every queued delivery is recorded; whether they all were."""
        end = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def _work(self) -> None:
        while True:
            notification_id, deliveries, sends = self._queue.get()
            try:
                for channel, send in sends.items():
                    deliveries[channel] = self._within_deadline(send)
                self._record(notification_id, deliveries)
            except Exception:  # the metadata DB failed: the alert is in the list, only its delivery note is lost
                log.exception("recording the deliveries of notification %s failed", notification_id)
            finally:
                self._queue.task_done()

    def _within_deadline(self, send: Callable[[], None]) -> str:
        result: list[str] = []
        thread = threading.Thread(target=lambda: result.append(_attempt(send)), name="alert-delivery", daemon=True)
        thread.start()
        thread.join(self._deadline)
        if not result:
            log.warning("alert delivery failed: no complete answer within %g s", self._deadline)
            return f"failed: no complete answer within {self._deadline:g} s"
        return result[0]


def _attempt(send: Callable[[], None]) -> str:
    try:
        send()
        return "ok"
    except Exception as exc:  # a broken channel must not break the run or the other channels
        reason = f"{sentence(exc.message)} {exc.action}" if isinstance(exc, AutoloaderError) else str(exc)
        log.warning("alert delivery failed: %s", reason)
        return f"failed: {reason}"


class AlertService:
    def __init__(self, notifications: NotificationStore, settings: Settings, egress: EgressAllow):
        self.notifications = notifications
        self.settings = settings
        self.egress = egress
        self.outbox = Outbox(notifications.set_deliveries)

    def flush(self, timeout: float = 2 * DELIVERY_DEADLINE_SECONDS + 5) -> bool:
        """Wait for the queued email and webhook deliveries (at shutdown, so that `autoloader run` sends its run's
        alerts before it exits)."""
        return self.outbox.flush(timeout)

    # --- triggers -------------------------------------------------------------------------------------
    def on_run(self, ingestion: Ingestion, outcome: RunOutcome, will_retry: bool) -> None:
        quality = ingestion.spec.quality
        verdict = judge_run(
            ingestion.id, ingestion.name, outcome, will_retry=will_retry,
            row_count_min=quality.row_count_min, duration_sla_minutes=quality.duration_sla_minutes,
            run_number=self.notifications.run_number(outcome.run_id),
        )  # fmt: skip
        for kind in verdict.clear:
            self.notifications.clear(ingestion.id, kind.value)
        for alert in verdict.raise_:
            self.raise_alert(alert, quality, ingestion.tenant_id)

    def check(self, ingestions: list[Ingestion], now: datetime | None = None) -> None:
        """Periodic conditions: runs past their SLA, and no new files for N days."""
        now = now or datetime.now(UTC)
        by_id = {i.id: i for i in ingestions}
        for run in self.notifications.running_runs():
            ingestion = by_id.get(run.ingestion_id)
            sla = ingestion.spec.quality.duration_sla_minutes if ingestion else None
            if ingestion and sla and run.started_at and (now - run.started_at).total_seconds() > sla * 60:
                elapsed = (now - run.started_at).total_seconds()
                late = over_sla(ingestion.id, ingestion.name, run_name(run.id or 0, run.number), elapsed, sla)
                self.raise_alert(late, ingestion.spec.quality, ingestion.tenant_id)
        for ingestion in ingestions:
            days = ingestion.spec.quality.no_files_alert_days
            if not days or ingestion.status != IngestionStatus.ACTIVE:
                continue
            last = self.notifications.last_loaded_at(ingestion.id)
            alert = no_new_files(ingestion.id, ingestion.name, last, ingestion.created_at or now, now, days)
            if alert is not None:
                self.raise_alert(alert, ingestion.spec.quality, ingestion.tenant_id)

    # --- delivery ---------------------------------------------------------------------------------------
    def raise_alert(self, alert: Alert, quality: QualityConfig, tenant_id: int) -> Notification | None:
        """Record and deliver an alert unless the same condition is already open (suppressed)."""
        if self.notifications.open_alert(alert.ingestion_id, alert.kind.value) is not None:
            return None
        link = alert.link(link_base(self.settings))
        notification = self.notifications.add(
            Notification(
                tenant_id=tenant_id,
                ingestion_id=alert.ingestion_id,
                kind=alert.kind.value,
                severity=alert.severity,
                title=alert.title,
                message=alert.message,
                action=alert.action,
                link=link,
            )
        )
        sends: dict[str, Callable[[], None]] = {}
        if quality.alert_recipients:
            sends["email"] = partial(self._send_email, alert, link, quality.alert_recipients)
        if quality.webhook_url:
            sends["webhook"] = partial(self._post_webhook, alert, link, quality.webhook_url)
        deliveries: dict[str, Any] = {"in_app": "ok"} | dict.fromkeys(sends, "sending")
        assert notification.id is not None
        self.notifications.set_deliveries(notification.id, deliveries)
        notification.deliveries = dict(deliveries)
        if sends:
            self.outbox.send(notification.id, deliveries, sends)
        return notification

    def _send_email(self, alert: Alert, link: str, recipients: list[str]) -> None:
        s = self.settings
        if not s.smtp_host:
            raise RuntimeError("email is not configured (set AUTOLOADER_SMTP_HOST)")
        import smtplib  # the mail and HTTP clients load when an alert is sent, not with every `autoloader run`
        from email.message import EmailMessage

        message = EmailMessage()
        message["Subject"] = f"[Autoloader] {alert.title}"
        message["From"] = s.smtp_from
        message["To"] = ", ".join(recipients)
        message.set_content(_text(alert, link))
        server = f"{s.smtp_host}:{s.smtp_port}"
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_user:
                    smtp.login(s.smtp_user, s.smtp_password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(f"{to}: {_smtp_reply(reply)}" for to, reply in exc.recipients.items())
            raise RuntimeError(f"the SMTP server {server} refused the recipients ({refused})") from exc
        except smtplib.SMTPResponseException as exc:
            reply = _smtp_reply((exc.smtp_code, exc.smtp_error))
            raise RuntimeError(f"the SMTP server {server} answered {reply}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise RuntimeError(f"the SMTP server {server} could not be used: {exc or type(exc).__name__}") from exc

    def _post_webhook(self, alert: Alert, link: str, url: str) -> None:
        import urllib.request

        body = {
            "text": _text(alert, link),
            "kind": alert.kind.value,
            "severity": alert.severity,
            "ingestion_id": alert.ingestion_id,
            "ingestion": alert.ingestion_name,
            "title": alert.title,
            "message": alert.message,
            "action": alert.action,
            "link": link,
            "at": datetime.now(UTC).isoformat(),
        }
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        where = webhook_host(url)
        try:
            with open_url(request, self.egress, timeout=10, field="quality.webhook_url") as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            if 300 <= status < 400:
                target = webhook_host(exc.headers.get("Location") or "") or "another address"
                raise RuntimeError(
                    f"the webhook at {where} answered HTTP {status}, a redirect to {target}, which is not followed "
                    "(the alert would arrive without its body). Set the webhook URL to the final address."
                ) from exc
        except OSError as exc:
            raise RuntimeError(f"the webhook at {where} could not be reached: {exc}") from exc
        if status >= 300:
            raise RuntimeError(f"the webhook at {where} answered HTTP {status}")


def _smtp_reply(reply: tuple[int, bytes | str]) -> str:
    code, text = reply
    return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}".strip()


def webhook_host(url: str) -> str:
    """A webhook's scheme, host and port: what a delivery message may name (its path is often a secret token)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.scheme and parts.netloc else ""


def _text(alert: Alert, link: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{alert.title}\n{alert.message}\nWhat to do: {alert.action}\nWhen: {when}\nDetails: {link}"


__all__ = ["AlertKind", "AlertService"]

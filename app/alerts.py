"""Alert delivery: in-app notifications, email (SMTP) and webhooks (JSON with a Slack-compatible `text`).

Rules live in core/alerts.py; this module remembers open conditions (so repeats are suppressed until
the condition clears) and delivers. A delivery failure is recorded on the notification, never raised
into a run. Webhooks go through the egress rule (core/egress.py): http(s) only, no refused address, redirects
checked too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from app.db.models import Notification
from app.db.repository import NotificationStore
from app.settings import Settings
from core.alerts import Alert, AlertKind, judge_run, no_new_files, over_sla, run_name
from core.config import QualityConfig, webhook_origin
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


DELIVERY_DEADLINE_SECONDS = 15.0
"""How long one email or webhook delivery may take in all (socket timeouts bound each read, not the whole)."""

MAX_NOTIFICATIONS_IN_FLIGHT = 8
"""Notifications delivered at once; more wait for a slot (each holds a thread per channel while it is sent)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: str
    """Its key in the notification's `deliveries`: email or webhook."""
    target: str
    """What a failure names: "SMTP server host:port", "webhook at https://host" (never the webhook's path)."""
    send: Callable[[], None]


class Outbox:
    """Email and webhook deliveries, off the run's thread: a slow receiver never holds a run's worker (an outside
    attack: a receiver sending one header line every 8 s delayed another ingestion's run by 238 s). Each
    notification is sent on a thread of its own, its channels at once, so a slow receiver delays only its own
    alerts; a channel still going after `deadline` seconds is recorded failed and left to end by itself, on its own
    daemon thread, when its socket times out. At most `in_flight` notifications are sent at once."""

    def __init__(
        self,
        record: Callable[[int, dict[str, Any]], None],
        deadline: float = DELIVERY_DEADLINE_SECONDS,
        in_flight: int = MAX_NOTIFICATIONS_IN_FLIGHT,
    ):
        self._record = record
        self._deadline = deadline
        self._slots = threading.BoundedSemaphore(in_flight)
        self._changed = threading.Condition()
        self._under_way: dict[int, dict[str, Any]] = {}

    def send(self, notification_id: int, deliveries: dict[str, Any], sends: list[Delivery]) -> None:
        with self._changed:
            self._under_way[notification_id] = deliveries
        threading.Thread(
            target=self._deliver, args=(notification_id, deliveries, sends), name="alert-outbox", daemon=True
        ).start()

    def flush(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until every delivery under way is recorded; whether they all were."""
        end = time.monotonic() + timeout
        with self._changed:
            while self._under_way:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def abandon(self) -> None:
        """Record the deliveries still under way as not sent: at exit they would read "sending" for ever."""
        with self._changed:
            left = {nid: dict(deliveries) for nid, deliveries in self._under_way.items()}
        for notification_id, deliveries in left.items():
            unsent = "failed: not sent, the process stopped first"
            marked = {k: unsent if v == "sending" else v for k, v in deliveries.items()}
            try:
                self._record(notification_id, marked)
            except Exception:  # the metadata DB is gone too: nothing more can be said
                log.warning("the deliveries of notification %s could not be recorded at exit", notification_id)

    def _deliver(self, notification_id: int, deliveries: dict[str, Any], sends: list[Delivery]) -> None:
        try:
            with self._slots:
                deliveries.update(self._within_deadline(sends))
                self._record(notification_id, deliveries)
        except Exception:  # the metadata DB failed: the alert is in the list, only its delivery note is lost
            log.exception("recording the deliveries of notification %s failed", notification_id)
        finally:
            with self._changed:
                self._under_way.pop(notification_id, None)
                self._changed.notify_all()

    def _within_deadline(self, sends: list[Delivery]) -> dict[str, str]:
        answers: dict[str, str] = {}
        threads = []
        for delivery in sends:
            thread = threading.Thread(
                target=lambda d=delivery: answers.__setitem__(d.channel, _attempt(d.send)),
                name="alert-delivery",
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        end = time.monotonic() + self._deadline
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
        results = {}
        for delivery in sends:
            if delivery.channel in answers:
                results[delivery.channel] = answers[delivery.channel]
                continue
            late = f"the {delivery.target} gave no complete answer within {self._deadline:g} s"
            log.warning("alert delivery failed: %s", late)
            results[delivery.channel] = f"failed: {late}"
        return results


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

    def flush(self, timeout: float = DELIVERY_DEADLINE_SECONDS + 2) -> bool:
        """Wait for the email and webhook deliveries under way (tests; `close`)."""
        return self.outbox.flush(timeout)

    def close(self) -> None:
        """At shutdown: wait for the deliveries under way (so `autoloader run` sends its run's alerts before it
        exits), at most one delivery deadline; those still going are recorded as not sent."""
        if not self.flush():
            log.warning("alert deliveries still under way at shutdown were not sent")
            self.outbox.abandon()

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
        sends: list[Delivery] = []
        if quality.alert_recipients:
            server = f"SMTP server {self.settings.smtp_host}:{self.settings.smtp_port}"
            sends.append(Delivery("email", server, partial(self._send_email, alert, link, quality.alert_recipients)))
        if quality.webhook_url:
            where = f"webhook at {webhook_host(quality.webhook_url)}"
            sends.append(Delivery("webhook", where, partial(self._post_webhook, alert, link, quality.webhook_url)))
        deliveries: dict[str, Any] = {"in_app": "ok"} | {d.channel: "sending" for d in sends}
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
    return webhook_origin(url) if parts.scheme and parts.netloc else ""


def _text(alert: Alert, link: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{alert.title}\n{alert.message}\nWhat to do: {alert.action}\nWhen: {when}\nDetails: {link}"


__all__ = ["AlertKind", "AlertService"]

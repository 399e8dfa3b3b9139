"""Alert delivery: in-app notifications, email (SMTP) and webhooks (JSON with a Slack-compatible `text`).

Rules live in core/alerts.py; this module remembers open conditions (so repeats are suppressed until
the condition clears) and delivers. A delivery failure is recorded on the notification, never raised
into a run. Webhooks go through the egress rule (core/egress.py): http(s) only, no refused address, redirects
checked too.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
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


class AlertService:
    def __init__(self, notifications: NotificationStore, settings: Settings, egress: EgressAllow):
        self.notifications = notifications
        self.settings = settings
        self.egress = egress

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
        deliveries: dict[str, Any] = {"in_app": "ok"}
        if quality.alert_recipients:
            deliveries["email"] = self._attempt(self._send_email, alert, link, quality.alert_recipients)
        if quality.webhook_url:
            deliveries["webhook"] = self._attempt(self._post_webhook, alert, link, quality.webhook_url)
        assert notification.id is not None
        self.notifications.set_deliveries(notification.id, deliveries)
        notification.deliveries = deliveries
        return notification

    @staticmethod
    def _attempt(send: Any, *args: Any) -> str:
        try:
            send(*args)
            return "ok"
        except Exception as exc:  # a broken channel must not break the run or the other channels
            reason = f"{sentence(exc.message)} {exc.action}" if isinstance(exc, AutoloaderError) else str(exc)
            log.warning("alert delivery failed: %s", reason)
            return f"failed: {reason}"

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
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            smtp.send_message(message)

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
        with open_url(request, self.egress, timeout=10, field="quality.webhook_url") as response:
            if response.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {response.status}")


def _text(alert: Alert, link: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{alert.title}\n{alert.message}\nWhat to do: {alert.action}\nWhen: {when}\nDetails: {link}"


__all__ = ["AlertKind", "AlertService"]

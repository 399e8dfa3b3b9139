"""Re-encrypt every stored credential (ingestion source secrets and webhook URLs, cluster tokens) under a new master
key, in one transaction: either all of them move to the new key or none does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from app.db.models import Cluster, Ingestion
from app.db.repository.ingestions import open_webhook, seal_webhook
from app.secrets_box import SecretBox
from core.config import SECRET_FIELDS


def _reencrypt(value: str | None, old: SecretBox, new: SecretBox) -> str | None:
    if not value:
        return value
    return new.encrypt(old.decrypt(value))


def rotate_credentials(engine: Engine, old: SecretBox, new: SecretBox) -> int:
    """Returns how many secrets were re-encrypted. A secret the old key cannot open stops everything (ConfigError)."""
    count = 0
    with Session(engine) as s:
        for row in s.execute(select(Ingestion)).scalars():
            credentials: dict[str, Any] = dict((row.source or {}).get("credentials") or {})
            changed = False
            for key in SECRET_FIELDS:
                if credentials.get(key):
                    credentials[key] = _reencrypt(credentials[key], old, new)
                    changed = True
                    count += 1
            if changed:
                row.source = {**row.source, "credentials": credentials}
                s.add(row)
            if url := (row.quality or {}).get("webhook_url"):
                row.quality = {**row.quality, "webhook_url": seal_webhook(open_webhook(url, old), new)}
                s.add(row)
                count += 1
        for cluster in s.execute(select(Cluster)).scalars():
            if cluster.token_encrypted:
                cluster.token_encrypted = _reencrypt(cluster.token_encrypted, old, new)
                s.add(cluster)
                count += 1
        s.commit()
    return count

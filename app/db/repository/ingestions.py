"""Ingestion rows: the spec mapping (credentials encrypted at rest), CRUD, status, the run slot and the
scheduler's next fire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from app.db.models import (
    SPEC_COLUMNS,
    AuditEntry,
    LedgerFile,
    MaintenanceRun,
    Notification,
    Run,
    SchemaVersion,
    utcnow,
)
from app.db.models import Ingestion as IngestionRow
from app.db.repository.base import Rows, save_named
from core.config import MAX_ID, SECRET_FIELDS, STORED, IngestionSpec, name_as_entered, webhook_origin
from core.domain import (
    Ingestion,
    IngestionStatus,
)
from core.errors import EditConflict, NotFound

if TYPE_CHECKING:
    from app.secrets_box import SecretBox
from core.ports import ActiveRun


def seal_webhook(url: str, secrets: SecretBox) -> str:
    """A webhook URL as stored: its scheme and host in the clear (what the read side shows, masked_webhook), the
    whole URL encrypted after them. An already sealed one is kept."""
    if secrets.is_encrypted(url.rpartition("/")[2]):
        return url
    return f"{webhook_origin(url)}/{secrets.encrypt(url)}"


def open_webhook(stored: str, secrets: SecretBox) -> str:
    """The webhook URL of a stored one (one stored before sealing is returned as it is)."""
    _, _, last = stored.rpartition("/")
    return secrets.decrypt(last) if secrets.is_encrypted(last) else stored


class IngestionRows(Rows):
    def _encrypt_source(self, source: dict[str, Any]) -> dict[str, Any]:
        creds = dict(source.get("credentials") or {})
        for key in SECRET_FIELDS:
            value = creds.get(key)
            if value and not self.secrets.is_encrypted(value):
                creds[key] = self.secrets.encrypt(value)
        return {**source, "credentials": creds}

    def _decrypt_source(self, source: dict[str, Any]) -> dict[str, Any]:
        creds = dict(source.get("credentials") or {})
        for key in SECRET_FIELDS:
            if creds.get(key):
                creds[key] = self.secrets.decrypt(creds[key])
        return {**source, "credentials": creds}

    def _encrypt_quality(self, quality: dict[str, Any]) -> dict[str, Any]:
        """The webhook URL is stored encrypted as the source's secrets are (its path is often the hook's token)."""
        url = quality.get("webhook_url")
        return {**quality, "webhook_url": seal_webhook(url, self.secrets)} if url else quality

    def _decrypt_quality(self, quality: dict[str, Any]) -> dict[str, Any]:
        url = (quality or {}).get("webhook_url")
        return {**quality, "webhook_url": open_webhook(url, self.secrets)} if url else quality

    def _to_domain(self, row: IngestionRow) -> Ingestion:
        spec = IngestionSpec.model_validate(
            {
                "name": row.name,
                "cluster_id": row.cluster_id,
                **{part: getattr(row, part) for part in SPEC_COLUMNS},
                "source": self._decrypt_source(row.source),
                "quality": self._decrypt_quality(row.quality),
            },
            context=STORED,
        )
        assert row.id is not None
        return Ingestion(
            id=row.id,
            uid=row.uid,
            name=row.name,
            spec=spec,
            status=IngestionStatus(row.status),
            created_at=row.created_at,
            tenant_id=row.tenant_id,
            created_by=row.created_by,
            revision=row.revision,
        )

    @staticmethod
    def _spec_columns(spec: IngestionSpec) -> dict[str, Any]:
        data = spec.model_dump(mode="json", by_alias=True)
        return {part: data[part] for part in SPEC_COLUMNS}

    def create_ingestion(
        self, spec: IngestionSpec, status: IngestionStatus, tenant_id: int = 1, created_by: int | None = None
    ) -> Ingestion:
        columns = self._spec_columns(spec)
        columns["source"] = self._encrypt_source(columns["source"])
        columns["quality"] = self._encrypt_quality(columns["quality"])
        row = IngestionRow(
            tenant_id=tenant_id,
            created_by=created_by,
            name=spec.name,
            status=IngestionStatus(status).value,
            cluster_id=spec.cluster_id,
            uid=str(uuid.uuid4()),
            **columns,
        )
        with self.session() as s:
            self._save_named(s, row)
        return self._to_domain(row)

    @staticmethod
    def _save_named(s: Session, row: IngestionRow) -> None:
        save_named(s, row, "An ingestion")

    def _row(self, s: Session, ingestion_id: int, tenant_id: int | None = None) -> IngestionRow:
        """The row, if it exists and (given a tenant) belongs to it: another tenant's row is as missing as none."""
        row = s.get(IngestionRow, ingestion_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise NotFound(f"Ingestion {ingestion_id} does not exist.", "List ingestions with GET /api/v1/ingestions.")
        return row

    def get_ingestion(self, ingestion_id: int, tenant_id: int | None = None) -> Ingestion:
        with self.session() as s:
            return self._to_domain(self._row(s, ingestion_id, tenant_id))

    def find_ingestion(self, id_or_name: str, tenant_id: int = 1) -> Ingestion:
        """By id, or else by name, within one tenant."""
        with self.session() as s:
            by_id = id_or_name.isascii() and id_or_name.isdigit() and int(id_or_name) <= MAX_ID  # not '²', '٢٢'
            row = s.get(IngestionRow, int(id_or_name)) if by_id else None
            if row is not None and row.tenant_id != tenant_id:
                row = None
            if row is None:  # as typed, else as a name is saved (`café` typed the other way, spaces around it)
                row = _by_name(s, id_or_name, tenant_id) or _by_name(s, name_as_entered(id_or_name), tenant_id)
            if row is None:
                raise NotFound(
                    f"No ingestion with id or name '{id_or_name}'.", "List them with GET /api/v1/ingestions."
                )
            return self._to_domain(row)

    def list_ingestions(
        self, status: str | None = None, source_type: str | None = None, mode: str | None = None
    ) -> list[Ingestion]:
        with self.session() as s:
            query = select(IngestionRow).order_by(col(IngestionRow.id))
            if status:
                query = query.where(col(IngestionRow.status) == status)
            rows = s.execute(query).scalars().all()
        items = [self._to_domain(r) for r in rows]
        if source_type:
            items = [i for i in items if i.spec.source.type == source_type]
        if mode:
            items = [i for i in items if i.spec.schedule.mode == mode]
        return items

    def seal_plain_webhooks(self) -> int:
        """Seal the webhook URLs stored in the clear (saved before URLs were sealed, 2026-12-05); how many. Run at
        server start: the stored form is otherwise sealed only at the next save."""
        sealed = 0
        with self.session() as s:
            for row in s.execute(select(IngestionRow)).scalars():
                url = (row.quality or {}).get("webhook_url")
                if url and not self.secrets.is_encrypted(url.rpartition("/")[2]):
                    row.quality = {**row.quality, "webhook_url": seal_webhook(url, self.secrets)}
                    row.updated_at = utcnow()
                    s.add(row)
                    sealed += 1
            s.commit()
        return sealed

    def update_ingestion(
        self, ingestion_id: int, spec: IngestionSpec, expected_revision: int | None = None
    ) -> Ingestion:
        """Save the settings and move the revision on; with `expected_revision`, only if no other save came since
        (EditConflict), checked and moved in one statement."""
        columns = self._spec_columns(spec)
        columns["source"] = self._encrypt_source(columns["source"])
        columns["quality"] = self._encrypt_quality(columns["quality"])
        with self.session() as s:
            bump = update(IngestionRow).where(col(IngestionRow.id) == ingestion_id)
            if expected_revision is not None:
                bump = bump.where(col(IngestionRow.revision) == expected_revision)
            if s.execute(bump.values(revision=col(IngestionRow.revision) + 1)).rowcount == 0:  # type: ignore[attr-defined]
                current = self._row(s, ingestion_id)  # NotFound if it is gone
                raise EditConflict(
                    f"'{current.name}' was changed after you opened it (saved {current.revision} times now, "
                    f"{expected_revision} when you read it); saving would undo that change.",
                    "Reload the ingestion to see its settings as they are now, then make your change again.",
                    field="revision",
                )
            row = self._row(s, ingestion_id)
            row.name, row.cluster_id, row.updated_at = spec.name, spec.cluster_id, utcnow()
            for part, value in columns.items():
                setattr(row, part, value)
            self._save_named(s, row)
            return self._to_domain(row)

    def set_ingestion_status(self, ingestion_id: int, status: str) -> None:
        with self.session() as s:
            result = s.execute(
                update(IngestionRow)
                .where(col(IngestionRow.id) == ingestion_id)
                .values(status=str(status), updated_at=utcnow())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"Ingestion {ingestion_id} does not exist.", "List ingestions first.")
            s.commit()

    def delete_ingestion(self, ingestion_id: int) -> None:
        with self.session() as s:
            self._row(s, ingestion_id)
            s.execute(delete(LedgerFile).where(col(LedgerFile.ingestion_id) == ingestion_id))
            s.execute(delete(Run).where(col(Run.ingestion_id) == ingestion_id))
            s.execute(delete(SchemaVersion).where(col(SchemaVersion.ingestion_id) == ingestion_id))
            s.execute(delete(Notification).where(col(Notification.ingestion_id) == ingestion_id))
            s.execute(delete(MaintenanceRun).where(col(MaintenanceRun.ingestion_id) == ingestion_id))
            s.execute(delete(IngestionRow).where(col(IngestionRow.id) == ingestion_id))
            s.commit()

    def claim_run_slot(self, ingestion_id: int, run_id: int, expected: int | None = None) -> bool:
        with self.session() as s:
            current = col(IngestionRow.active_run_id)
            condition = current.is_(None) if expected is None else current == expected
            result = s.execute(
                update(IngestionRow).where(col(IngestionRow.id) == ingestion_id, condition).values(active_run_id=run_id)
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_run_slot(self, ingestion_id: int, run_id: int) -> None:
        with self.session() as s:
            s.execute(
                update(IngestionRow)
                .where(col(IngestionRow.id) == ingestion_id, col(IngestionRow.active_run_id) == run_id)
                .values(active_run_id=None)
            )
            s.commit()

    def active_run(self, ingestion_id: int) -> ActiveRun | None:
        """The slot's holder: a run, or a table maintenance (a negative slot value), with its owner and heartbeat."""
        with self.session() as s:
            slot = s.execute(
                select(col(IngestionRow.active_run_id)).where(col(IngestionRow.id) == ingestion_id)
            ).scalar()
            if slot is None:
                return None
            holder = (
                select(col(MaintenanceRun.owner), col(MaintenanceRun.heartbeat_at)).where(
                    col(MaintenanceRun.id) == -slot
                )
                if slot < 0
                else select(col(Run.owner), col(Run.heartbeat_at), col(Run.number)).where(col(Run.id) == slot)
            )
            row = s.execute(holder).first()
            if row is None:
                return ActiveRun(slot, None, None)
            return ActiveRun(slot, row[0], row[1], row[2] if slot > 0 else None)

    def ingestion_versions(self) -> dict[int, datetime]:
        """id → updated_at of every ingestion (the scheduler's cheap change detector)."""
        with self.session() as s:
            rows = s.execute(select(col(IngestionRow.id), col(IngestionRow.updated_at)))
            return {row[0]: row[1] for row in rows}

    def set_next_fire(self, ingestion_id: int, at: datetime | None) -> None:
        with self.session() as s:
            s.execute(update(IngestionRow).where(col(IngestionRow.id) == ingestion_id).values(next_fire_at=at))
            s.commit()

    def next_fire(self, ingestion_id: int) -> datetime | None:
        with self.session() as s:
            row = self._row(s, ingestion_id)
            return row.next_fire_at

    def audit(
        self,
        action: str,
        object_type: str,
        object_id: str | int | None,
        actor: str = "system",
        tenant_id: int = 1,
        **details: Any,
    ) -> None:
        with self.session() as s:
            s.add(
                AuditEntry(
                    tenant_id=tenant_id,
                    action=action,
                    object_type=object_type,
                    object_id=None if object_id is None else str(object_id),
                    actor=actor,
                    details=details,
                )
            )
            s.commit()


def _by_name(s: Session, name: str, tenant_id: int) -> IngestionRow | None:
    query = select(IngestionRow).where(col(IngestionRow.name) == name, col(IngestionRow.tenant_id) == tenant_id)
    return s.execute(query).scalars().first()

"""What the repository modules share: a session factory, the unique-name commit, chunking."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.db.models import Run
from app.secrets_box import SecretBox
from core.domain import RunStatus
from core.errors import Conflict, run_taken_over

INSERT_CHUNK = 2000


def save_named(s: Session, row: Any, kind: str) -> None:
    """Commit a row whose unique name is the one constraint a user can hit; a clash names the field."""
    name = row.name  # read before the commit: a failed one leaves the row's attributes unreadable until a rollback
    s.add(row)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        raise Conflict(f"{kind} named '{name}' already exists.", "Choose another name.", field="name") from None
    s.refresh(row)


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Rows:
    """A session factory on the metadata database (and the secret box for stored credentials)."""

    def __init__(self, engine: Engine, secrets: SecretBox):
        self.engine = engine
        self.secrets = secrets

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


UNFINISHED = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


def fence_run(s: Session, run_id: int | None) -> None:
    """Raise RunTakenOver unless the run is still queued or running, holding its row for the transaction (on
    PostgreSQL; SQLite's writer lock serialises it), so the server settling it and this write take turns. No run
    (a write outside a run): nothing to check."""
    if run_id is None:
        return
    status = s.execute(select(col(Run.status)).where(col(Run.id) == run_id).with_for_update()).scalar()
    if status is not None and status not in UNFINISHED:
        raise run_taken_over(run_id, status)

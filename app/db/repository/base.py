"""What the repository modules share: a session factory, the unique-name commit, chunking."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.secrets_box import SecretBox
from core.errors import Conflict

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

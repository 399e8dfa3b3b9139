"""Tenants, users, API tokens and console sessions. Tokens and session ids are stored as SHA-256 only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.db.models import ApiToken, Tenant, User, UserSession, utcnow
from app.db.repository import save_named
from core.access import Principal, Role
from core.errors import Conflict, NotFound


def principal_of(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=Role(user.role),
        email=user.email,
        instance_admin=user.instance_admin,
    )


class AccountRepository:
    def __init__(self, engine: Engine):
        self.engine = engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- tenants -----------------------------------------------------------------------------------------------
    def create_tenant(self, name: str) -> Tenant:
        row = Tenant(name=name)
        with self.session() as s:
            save_named(s, row, "A tenant")
        return row

    def tenant(self, tenant_id: int) -> Tenant:
        with self.session() as s:
            row = s.get(Tenant, tenant_id)
        if row is None:
            raise NotFound(f"Tenant {tenant_id} does not exist.", "List tenants with GET /api/v1/tenants.")
        return row

    def tenants(self) -> list[Tenant]:
        with self.session() as s:
            return list(s.execute(select(Tenant).order_by(col(Tenant.id))).scalars())

    # --- users ---------------------------------------------------------------------------------------------------
    def count_users(self) -> int:
        with self.session() as s:
            return int(s.execute(select(func.count()).select_from(User)).scalar() or 0)

    def create_user(self, user: User) -> User:
        with self.session() as s:
            s.add(user)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                raise Conflict(
                    f"A user with email '{user.email}' already exists.", "Use another email.", field="email"
                ) from None
            s.refresh(user)
        return user

    def user(self, user_id: int, tenant_id: int | None = None) -> User:
        with self.session() as s:
            row = s.get(User, user_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise NotFound(f"User {user_id} does not exist.", "List users with GET /api/v1/users.")
        return row

    def user_by_email(self, email: str) -> User | None:
        with self.session() as s:
            return s.execute(select(User).where(func.lower(col(User.email)) == email.strip().lower())).scalars().first()

    def users(self, tenant_id: int) -> list[User]:
        with self.session() as s:
            query = select(User).where(col(User.tenant_id) == tenant_id).order_by(col(User.id))
            return list(s.execute(query).scalars())

    def first_admin(self, tenant_id: int) -> User | None:
        with self.session() as s:
            query = (
                select(User)
                .where(col(User.tenant_id) == tenant_id, col(User.role) == Role.ADMIN.value)
                .order_by(col(User.id))
            )
            return s.execute(query).scalars().first()

    def set_user(self, user_id: int, **values: object) -> None:
        with self.session() as s:
            s.execute(update(User).where(col(User.id) == user_id).values(**values))
            s.commit()

    # --- API tokens --------------------------------------------------------------------------------------------------
    def add_token(self, token: ApiToken) -> ApiToken:
        with self.session() as s:
            s.add(token)
            s.commit()
            s.refresh(token)
        return token

    def token_by_hash(self, token_hash: str) -> tuple[ApiToken, User] | None:
        with self.session() as s:
            row = s.execute(
                select(ApiToken, User)
                .join(User, col(User.id) == col(ApiToken.user_id))
                .where(col(ApiToken.token_hash) == token_hash, col(ApiToken.revoked_at).is_(None))
            ).first()
        return (row[0], row[1]) if row is not None else None

    def token_named(self, user_id: int, name: str) -> ApiToken | None:
        with self.session() as s:
            query = select(ApiToken).where(
                col(ApiToken.user_id) == user_id, col(ApiToken.name) == name, col(ApiToken.revoked_at).is_(None)
            )
            return s.execute(query).scalars().first()

    def tokens(self, user_id: int) -> list[ApiToken]:
        with self.session() as s:
            query = select(ApiToken).where(col(ApiToken.user_id) == user_id).order_by(col(ApiToken.id))
            return list(s.execute(query).scalars())

    def set_token(self, token_id: int, **values: object) -> None:
        with self.session() as s:
            s.execute(update(ApiToken).where(col(ApiToken.id) == token_id).values(**values))
            s.commit()

    def token(self, user_id: int, token_id: int) -> ApiToken:
        with self.session() as s:
            row = s.get(ApiToken, token_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"Token {token_id} does not exist.", "List the user's tokens first.")
        return row

    # --- console sessions ---------------------------------------------------------------------------------------------
    def add_session(self, user_id: int, token_hash: str, expires_at: datetime) -> None:
        with self.session() as s:
            s.add(UserSession(user_id=user_id, token_hash=token_hash, expires_at=expires_at))
            s.commit()

    def session_user(self, token_hash: str) -> User | None:
        now = utcnow()
        with self.session() as s:
            row = s.execute(
                select(User)
                .join(UserSession, col(UserSession.user_id) == col(User.id))
                .where(col(UserSession.token_hash) == token_hash, col(UserSession.expires_at) > now)
            ).first()
        return row[0] if row is not None else None

    def drop_session(self, token_hash: str) -> None:
        with self.session() as s:
            s.execute(delete(UserSession).where(col(UserSession.token_hash) == token_hash))
            s.commit()

    def drop_sessions_of(self, user_id: int) -> None:
        with self.session() as s:
            s.execute(delete(UserSession).where(col(UserSession.user_id) == user_id))
            s.commit()

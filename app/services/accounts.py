"""Logins, sessions, API tokens, users and tenants. Passwords are hashed with argon2; tokens and session ids are
random and stored as SHA-256. Repeated failed logins lock the account for a growing time, and every login (success
or failure), token and user change is audited."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.db.accounts import AccountRepository, principal_of
from app.db.models import ApiToken, Tenant, User
from app.db.repository import SqlStore
from core.access import FIRST_TENANT, Principal, Role, require_admin, require_instance_admin
from core.errors import ConfigError, Forbidden, Unauthorized

log = logging.getLogger(__name__)

SESSION_DAYS = 7
FREE_FAILURES = 5
"""Failed logins allowed before the account locks; each further failure doubles the lock (30 s … 15 min)."""
MAX_LOCK = timedelta(minutes=15)
MIN_PASSWORD = 10
ENV_TOKEN_NAME = "AUTOLOADER_ADMIN_TOKEN"
AUTOMATION_EMAIL = "automation@autoloader.local"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(
            f"The password is too short ({len(password)} characters).",
            f"Use at least {MIN_PASSWORD} characters.",
            field="password",
        )


def wait_text(seconds: int) -> str:
    """A lock's remaining time as a person reads it: "40 seconds", "about 3 minutes"."""
    if seconds <= 90:
        return f"{seconds} seconds"
    return f"about {-(-seconds // 60)} minutes"


def _bad_login() -> Unauthorized:
    return Unauthorized("Wrong email or password.", "Check both and try again.")


@dataclass(slots=True)
class IssuedToken:
    """A token as created: the value is shown this once and never stored."""

    id: int
    name: str
    token: str
    created_at: datetime


class AccountService:
    def __init__(self, accounts: AccountRepository, store: SqlStore):
        self.accounts = accounts
        self.store = store
        self.hasher = PasswordHasher()
        self._tenant_names: dict[int, str] = {}

    # --- who is calling ------------------------------------------------------------------------------------------
    def principal_for_token(self, token: str) -> Principal:
        found = self.accounts.token_by_hash(digest(token)) if token else None
        if found is None:
            raise Unauthorized(
                "The API token is missing, unknown or revoked.",
                "Send 'Authorization: Bearer <token>' with a token from POST /api/v1/users/{id}/tokens.",
            )
        row, user = found
        if row.last_used_at is None or datetime.now(UTC) - row.last_used_at > timedelta(minutes=1):
            self.accounts.set_token(row.id or 0, last_used_at=datetime.now(UTC))
        return principal_of(user)

    def principal_for_session(self, session_id: str) -> Principal | None:
        user = self.accounts.session_user(digest(session_id)) if session_id else None
        return principal_of(user) if user is not None else None

    # --- console login -------------------------------------------------------------------------------------------
    def login(self, email: str, password: str, client: str = "") -> tuple[str, Principal]:
        """A new session id for the right email and password; counts failures and locks the account."""
        user = self.accounts.user_by_email(email)
        now = datetime.now(UTC)
        if user is None:
            self._hash_anyway(password)
            self.store.audit("login_failed", "user", None, email[:200], reason="unknown email", client=client)
            raise _bad_login()
        if user.locked_until is not None and user.locked_until > now:
            wait = wait_text(int((user.locked_until - now).total_seconds()) + 1)
            self.store.audit("login_locked", "user", user.id, user.email, FIRST_TENANT, client=client)
            raise Unauthorized(
                f"Too many failed logins: this account is locked for {wait} more.",
                f"Wait {wait}, then log in with the right password: the lock ends by itself (it never lasts more "
                f"than {int(MAX_LOCK.total_seconds() // 60)} minutes).",
            )
        if not self._verify(user, password):
            self._count_failure(user, now, client)
            raise _bad_login()
        self.accounts.set_user(user.id or 0, failed_logins=0, locked_until=None, last_login_at=now)
        session_id = new_secret("s")
        self.accounts.add_session(user.id or 0, digest(session_id), now + timedelta(days=SESSION_DAYS))
        self.store.audit("login", "user", user.id, user.email, user.tenant_id, client=client)
        return session_id, principal_of(user)

    def _verify(self, user: User, password: str) -> bool:
        try:
            return bool(self.hasher.verify(user.password_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    def _hash_anyway(self, password: str) -> None:
        """Spend the time of a real check, so an unknown email answers as slowly as a wrong password."""
        self.hasher.hash(password or "x")

    def _count_failure(self, user: User, now: datetime, client: str) -> None:
        failures = user.failed_logins + 1
        locked_until = None
        if failures >= FREE_FAILURES:
            locked_until = now + min(timedelta(seconds=30 * 2 ** (failures - FREE_FAILURES)), MAX_LOCK)
        self.accounts.set_user(user.id or 0, failed_logins=failures, locked_until=locked_until)
        self.store.audit(
            "login_failed", "user", user.id, user.email, user.tenant_id, reason="wrong password", client=client
        )

    def logout(self, session_id: str) -> None:
        self.accounts.drop_session(digest(session_id))

    def change_password(self, who: Principal, current: str, new: str) -> None:
        user = self.accounts.user(who.user_id or 0)
        if not self._verify(user, current):
            raise Unauthorized("The current password is wrong.", "Enter your current password.")
        check_password_strength(new)
        self.accounts.set_user(user.id or 0, password_hash=self.hasher.hash(new), failed_logins=0, locked_until=None)
        self.accounts.drop_sessions_of(user.id or 0)
        self.store.audit("password_change", "user", user.id, who.actor, who.tenant_id)

    # --- users and tenants ---------------------------------------------------------------------------------------
    def needs_setup(self) -> bool:
        return self.accounts.count_users() == 0

    def setup_first_admin(self, email: str, password: str) -> Principal:
        """The one-time setup (the console's /setup, reachable from loopback only): only while there is no user."""
        if not self.needs_setup():
            raise Forbidden("This server is already set up.", "Log in at /login.")
        return principal_of(self._new_user(email, password, Role.ADMIN, FIRST_TENANT, instance_admin=True))

    def create_user(self, who: Principal, email: str, password: str, role: Role, tenant_id: int | None) -> User:
        require_admin(who, "create users")
        tenant = tenant_id if tenant_id is not None else who.tenant_id
        if tenant != who.tenant_id:
            require_instance_admin(who, "create users in another tenant")
        self.accounts.tenant(tenant)
        user = self._new_user(email, password, role, tenant)
        self.store.audit("create", "user", user.id, who.actor, who.tenant_id, email=user.email, role=role.value)
        return user

    def _new_user(self, email: str, password: str, role: Role, tenant_id: int, instance_admin: bool = False) -> User:
        if "@" not in email or len(email) > 320:
            raise ConfigError(
                f"'{email}' is not an email address.", "Enter an address like ada@example.com.", field="email"
            )
        check_password_strength(password)
        return self.accounts.create_user(
            User(
                tenant_id=tenant_id,
                email=email.strip(),
                password_hash=self.hasher.hash(password),
                role=role.value,
                instance_admin=instance_admin,
            )
        )

    def users(self, who: Principal) -> list[User]:
        return self.accounts.users(who.tenant_id)

    def create_tenant(self, who: Principal, name: str) -> Tenant:
        require_instance_admin(who, "create tenants")
        if not name.strip():
            raise ConfigError("A tenant needs a name.", "Enter a name, e.g. analytics.", field="name")
        tenant = self.accounts.create_tenant(name.strip())
        self.store.audit("create", "tenant", tenant.id, who.actor, who.tenant_id, name=tenant.name)
        return tenant

    def tenant_name(self, tenant_id: int) -> str:
        """For every page's header: read once per tenant (tenants are never renamed), not on each page load."""
        name = self._tenant_names.get(tenant_id)
        if name is None:
            name = self._tenant_names[tenant_id] = self.accounts.tenant(tenant_id).name
        return name

    def tenants(self, who: Principal) -> list[Tenant]:
        if who.instance_admin:
            return self.accounts.tenants()
        return [self.accounts.tenant(who.tenant_id)]

    # --- API tokens ----------------------------------------------------------------------------------------------
    def _token_owner(self, who: Principal, user_id: int) -> User:
        """A user's tokens are managed by the user, or by an admin of the same tenant."""
        user = self.accounts.user(user_id, who.tenant_id)
        if user.id != who.user_id:
            require_admin(who, "manage another user's tokens")
        return user

    def create_token(self, who: Principal, user_id: int, name: str) -> IssuedToken:
        user = self._token_owner(who, user_id)
        if not name.strip() or len(name) > 200:
            raise ConfigError("A token needs a name (up to 200 characters).", "Name it after its use.", field="name")
        token = new_secret("al")
        row = self.accounts.add_token(ApiToken(user_id=user.id or 0, name=name.strip(), token_hash=digest(token)))
        self.store.audit("token_create", "user", user.id, who.actor, who.tenant_id, token_id=row.id, name=row.name)
        return IssuedToken(row.id or 0, row.name, token, row.created_at)

    def tokens(self, who: Principal, user_id: int) -> list[ApiToken]:
        return self.accounts.tokens(self._token_owner(who, user_id).id or 0)

    def revoke_token(self, who: Principal, user_id: int, token_id: int) -> None:
        user = self._token_owner(who, user_id)
        token = self.accounts.token(user.id or 0, token_id)
        if token.revoked_at is None:
            self.accounts.set_token(token_id, revoked_at=datetime.now(UTC))
        self.store.audit("token_revoke", "user", user.id, who.actor, who.tenant_id, token_id=token_id)

    # --- start-up ------------------------------------------------------------------------------------------------
    def bootstrap(self, admin_email: str | None, admin_password: str | None, admin_token: str | None) -> None:
        """The first admin from the environment, and the automation token (created or updated at each start)."""
        if admin_email and admin_password and self.accounts.user_by_email(admin_email) is None:
            self._new_user(admin_email, admin_password, Role.ADMIN, FIRST_TENANT, instance_admin=self.needs_setup())
            log.warning("created the admin %s from AUTOLOADER_ADMIN_EMAIL", admin_email)
        if admin_token:
            self._ensure_env_token(admin_token)

    def _ensure_env_token(self, token: str) -> None:
        owner = self.accounts.first_admin(FIRST_TENANT)
        if owner is None:
            owner = self._new_user(
                AUTOMATION_EMAIL, secrets.token_urlsafe(24), Role.ADMIN, FIRST_TENANT, instance_admin=True
            )
        current = self.accounts.token_named(owner.id or 0, ENV_TOKEN_NAME)
        if current is not None and current.token_hash == digest(token):
            return
        if current is not None:
            self.accounts.set_token(current.id or 0, revoked_at=datetime.now(UTC))
        try:
            self.accounts.add_token(ApiToken(user_id=owner.id or 0, name=ENV_TOKEN_NAME, token_hash=digest(token)))
        except Exception as exc:  # the same token already belongs to another user
            raise ConfigError(
                "AUTOLOADER_ADMIN_TOKEN is already in use as another user's token.", "Set another value."
            ) from exc
        self.store.audit("token_create", "user", owner.id, "system", FIRST_TENANT, name=ENV_TOKEN_NAME)

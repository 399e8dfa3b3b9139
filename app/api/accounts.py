"""Sign-in (the console's form posts under /auth) and the account API: me, tenants, users, API tokens."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from app.api.guard import SESSION_COOKIE, GuardState
from app.services.accounts import SESSION_DAYS, AccountService
from core.access import Principal, Role
from core.config import OptionalInt
from core.errors import AutoloaderError, Unauthorized

auth_router = APIRouter(prefix="/auth", include_in_schema=False)
router = APIRouter(prefix="/api/v1", tags=["accounts"])


def accounts(request: Request) -> AccountService:
    found: AccountService = request.app.state.services.accounts
    return found


def principal(request: Request) -> Principal:
    """The caller the guard identified (every /api/v1 route but health is behind it)."""
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):
        raise Unauthorized("No valid credentials.", "Send 'Authorization: Bearer <token>'.")
    return found


Accounts = Annotated[AccountService, Depends(accounts)]
Who = Annotated[Principal, Depends(principal)]


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def safe_next(target: str | None) -> str:
    """Only a path of this site: never another host (an open redirect), never a scheme-relative URL."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _back_to(page: str, message: str, next_path: str) -> RedirectResponse:
    location = f"{page}?error={quote(message)}&next={quote(next_path, safe='')}"
    return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)


def _signed_in(request: Request, session_id: str, next_path: str) -> RedirectResponse:
    response = RedirectResponse(safe_next(next_path), status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


# --- the console's forms ---------------------------------------------------------------------------------------------
@auth_router.post("/login")
def login(
    request: Request,
    svc: Accounts,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> RedirectResponse:
    address = client_address(request)
    guard: GuardState = request.app.state.guard
    try:
        guard.login_limiter.check(f"login:{address}", "login attempts from your address")
        session_id, _ = svc.login(email, password, address)
    except AutoloaderError as exc:
        return _back_to("/login", f"{exc.message} {exc.action}", next)
    return _signed_in(request, session_id, next)


@auth_router.post("/logout")
def logout(request: Request, svc: Accounts) -> RedirectResponse:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        svc.logout(session_id)
        guard: GuardState = request.app.state.guard
        guard.forget_session(session_id)
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@auth_router.post("/setup")
def setup(
    request: Request,
    svc: Accounts,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> RedirectResponse:
    """The one-time creation of the first admin: only from this machine, only while no user exists."""
    if not is_loopback(client_address(request)):
        return _back_to("/setup", "Setup is only possible from the server itself (127.0.0.1).", "/")
    try:
        svc.setup_first_admin(email, password)
        session_id, _ = svc.login(email, password, client_address(request))
    except AutoloaderError as exc:
        return _back_to("/setup", f"{exc.message} {exc.action}", "/")
    return _signed_in(request, session_id, "/")


@auth_router.post("/password")
def change_password(
    request: Request,
    svc: Accounts,
    current: Annotated[str, Form(max_length=1000)] = "",
    new: Annotated[str, Form(max_length=1000)] = "",
) -> RedirectResponse:
    who = principal(request)
    try:
        svc.change_password(who, current, new)
    except AutoloaderError as exc:
        return _back_to("/account", f"{exc.message} {exc.action}", "/account")
    response = RedirectResponse("/login?notice=password", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- the account API --------------------------------------------------------------------------------------------------
class Me(BaseModel):
    user_id: int | None
    email: str
    role: str
    tenant_id: int
    instance_admin: bool


class TenantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TenantPublic(BaseModel):
    id: int
    name: str
    created_at: datetime


class UserCreate(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1000)
    role: Literal["admin", "member", "viewer"] = "member"
    tenant_id: OptionalInt = Field(default=None, ge=1, le=2**63 - 1)


class UserPublic(BaseModel):
    id: int
    email: str
    role: str
    tenant_id: int
    instance_admin: bool
    created_at: datetime
    last_login_at: datetime | None


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TokenIssued(BaseModel):
    id: int
    name: str
    token: str = Field(description="Shown once: only its hash is stored.")
    created_at: datetime


class TokenPublic(BaseModel):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


@router.get("/me", response_model=Me)
def me(who: Who) -> Me:
    return Me(
        user_id=who.user_id,
        email=who.email,
        role=who.role.value,
        tenant_id=who.tenant_id,
        instance_admin=who.instance_admin,
    )


@router.get("/tenants", response_model=list[TenantPublic])
def list_tenants(who: Who, svc: Accounts) -> list[TenantPublic]:
    return [TenantPublic.model_validate(t, from_attributes=True) for t in svc.tenants(who)]


@router.post("/tenants", response_model=TenantPublic, status_code=status.HTTP_201_CREATED)
def create_tenant(body: TenantCreate, who: Who, svc: Accounts) -> TenantPublic:
    return TenantPublic.model_validate(svc.create_tenant(who, body.name), from_attributes=True)


@router.get("/users", response_model=list[UserPublic])
def list_users(who: Who, svc: Accounts) -> list[UserPublic]:
    return [UserPublic.model_validate(u, from_attributes=True) for u in svc.users(who)]


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, who: Who, svc: Accounts) -> UserPublic:
    user = svc.create_user(who, body.email, body.password, Role(body.role), body.tenant_id)
    return UserPublic.model_validate(user, from_attributes=True)


@router.post("/users/{user_id}/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED)
def create_token(user_id: Id, body: TokenCreate, who: Who, svc: Accounts) -> TokenIssued:
    issued = svc.create_token(who, user_id, body.name)
    return TokenIssued(id=issued.id, name=issued.name, token=issued.token, created_at=issued.created_at)


@router.get("/users/{user_id}/tokens", response_model=list[TokenPublic])
def list_tokens(user_id: Id, who: Who, svc: Accounts) -> list[TokenPublic]:
    return [TokenPublic.model_validate(t, from_attributes=True) for t in svc.tokens(who, user_id)]


@router.delete("/users/{user_id}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(user_id: Id, token_id: Id, who: Who, svc: Accounts) -> None:
    svc.revoke_token(who, user_id, token_id)

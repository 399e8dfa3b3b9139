"""Closed by default: one ASGI middleware in front of the whole app (API, console, docs, websocket).

- `/api/v1/*` needs `Authorization: Bearer <token>` (only `GET /api/v1/health` is open) and is rate limited per user;
  so does `/metrics`, unless the settings open it (`open_routes`, from AUTOLOADER_METRICS_PUBLIC);
- every other path needs a console session cookie: a page request without one is sent to `/login`;
- only the login and setup pages, their form posts and NiceGUI's static assets are public;
- a state-changing request or a websocket from another origin is refused (CSRF), and every answer carries the
  security headers (CSP suited to NiceGUI, no framing, nosniff, a strict referrer policy).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from anyio import to_thread
from nicegui import __version__ as nicegui_version
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import Headers

from app.db.retrying import is_disconnect, metadata_failure
from app.services.accounts import AccountService
from core.access import Principal
from core.errors import AutoloaderError, Forbidden, RateLimited, Unauthorized

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "autoloader_session"
PUBLIC_PATHS = frozenset({"/login", "/setup", "/auth/login", "/auth/setup", "/favicon.ico"})
PUBLIC_PREFIXES = (f"/_nicegui/{nicegui_version}/",)
"""NiceGUI's versioned static assets only: its other /_nicegui paths (uploads) act for a page's user."""
OPEN_API = frozenset({("GET", "/api/v1/health")})
DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")
METRICS_PATH = "/metrics"
"""Where Prometheus scrapes: outside /api, yet a bearer token's path like it (a scraper has no session)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_CACHE_SECONDS = 5.0
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def is_public(method: str, path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or (method, path) in OPEN_API


def same_origin(headers: Headers, trusted: frozenset[str] = frozenset()) -> bool:
    """A request's Origin (when the browser sends one) names this server: the Host it was sent to, or the public
    address it is served under (`AUTOLOADER_PUBLIC_URL`, for a reverse proxy that rewrites Host)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    netloc = urlsplit(origin).netloc.lower()
    return netloc == headers.get("host", "").lower() or netloc in trusted


class RateLimiter:
    """A sliding one-minute window per key (user or client address), in memory (per replica)."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}

    def check(self, key: str, what: str) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            retry_after = max(1, int(hits[0] + 60 - now) + 1)
            raise RateLimited(
                f"Too many {what}: at most {self.per_minute} a minute.",
                f"Wait {retry_after} s and try again.",
                retry_after,
            )
        hits.append(now)


@dataclass(slots=True)
class _Cached:
    principal: Principal | None
    until: float


class GuardState:
    """What the middleware keeps between requests; on `app.state.guard`, so that logging out forgets a session."""

    def __init__(
        self,
        accounts: Callable[[], AccountService],
        api_limit: int,
        login_limit: int,
        public_url: str = "",
        open_routes: frozenset[tuple[str, str]] = frozenset(),
    ):
        self.accounts = accounts
        self.open_routes = open_routes
        """(method, path) pairs the settings open to anyone, beside the always public ones."""
        self.trusted_origins = frozenset({urlsplit(public_url).netloc.lower()} - {""})
        self.limiter = RateLimiter(api_limit)
        self.login_limiter = RateLimiter(login_limit)
        self.sessions: dict[str, _Cached] = {}

    def forget_session(self, session: str) -> None:
        self.sessions.pop(session, None)


class Guard:
    """The middleware (installed by `app.api.mount_api`)."""

    def __init__(self, app: ASGIApp, state: GuardState):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        path = scope["path"]
        headers = Headers(scope=scope)
        send = self._with_headers(send, path)
        try:
            changes = scope["type"] == "websocket" or method not in SAFE_METHODS
            if changes and not same_origin(headers, self.state.trusted_origins):
                raise Forbidden("This request came from another site.", "Use the console at its own address.")
            if not is_public(method, path) and (method, path) not in self.state.open_routes:
                principal = await self._principal(path, headers)
                if principal is None:
                    await self._to_login(scope, send, path)
                    return
                scope.setdefault("state", {})["principal"] = principal
        except AutoloaderError as exc:
            await self._refuse(scope, send, exc)
            return
        except DBAPIError as exc:  # the metadata DB is down: the sign-in check cannot answer (the app's handlers
            if not is_disconnect(exc):  # are below this middleware, so the 503 is said here)
                raise
            await self._refuse(scope, send, metadata_failure(exc, "check the request's sign-in"))
            return
        await self.app(scope, receive, send)

    async def _principal(self, path: str, headers: Headers) -> Principal | None:
        if path.startswith("/api/") or path == METRICS_PATH:
            token = _bearer(headers)
            principal: Principal = await to_thread.run_sync(self.state.accounts().principal_for_token, token)
            self.state.limiter.check(f"user:{principal.user_id}", "API requests")
            return principal
        session = _cookie(headers, SESSION_COOKIE)
        if session is None:
            bearer = _bearer(headers)
            if bearer and path.startswith(DOCS_PATHS):
                found: Principal = await to_thread.run_sync(self.state.accounts().principal_for_token, bearer)
                return found
            return None
        return await self._session_principal(session)

    async def _session_principal(self, session: str) -> Principal | None:
        """Sessions are checked in the database, at most every few seconds per session (websocket polling)."""
        now = time.monotonic()
        sessions = self.state.sessions
        cached = sessions.get(session)
        if cached is not None and cached.until > now:
            return cached.principal
        principal = await to_thread.run_sync(self.state.accounts().principal_for_session, session)
        if len(sessions) > 10_000:
            sessions.clear()
        sessions[session] = _Cached(principal, now + SESSION_CACHE_SECONDS)
        return principal

    def _with_headers(self, send: Send, path: str) -> Send:
        extra = list(SECURITY_HEADERS)
        if not path.startswith(DOCS_PATHS):
            extra.append((b"content-security-policy", CSP.encode()))

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        return send_with_headers

    @staticmethod
    async def _to_login(scope: Scope, send: Send, path: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        query = scope.get("query_string", b"").decode()
        target = path + (f"?{query}" if query else "")
        location = f"/login?next={quote(target, safe='')}"
        await send({"type": "http.response.start", "status": 303, "headers": [(b"location", location.encode())]})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _refuse(scope: Scope, send: Send, exc: AutoloaderError) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403 if exc.http_status == 403 else 4401})
            return
        headers = [(b"content-type", b"application/json")]
        if isinstance(exc, Unauthorized):
            headers.append((b"www-authenticate", b'Bearer realm="autoloader"'))
        if isinstance(exc, RateLimited):
            headers.append((b"retry-after", str(exc.retry_after).encode()))
        body = json.dumps({"error": exc.to_dict()}).encode()
        await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _bearer(headers: Headers) -> str:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None

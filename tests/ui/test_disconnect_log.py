"""A browser that leaves before its answer (a tab closed while a page loads) logs no traceback; other errors do.

Driven at the ASGI level: the app under NiceGUI's kind of middleware (Starlette's BaseHTTPMiddleware) ends without
answering, as it does once the browser has gone (reproduced with Chromium against `autoloader serve` when this was
written: `RuntimeError: No response returned.` from nicegui/middlewares.py, logged twice with its traceback)."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.middleware.base import BaseHTTPMiddleware

from app.api.errors import install_error_handlers


class _LeavesWithoutAnswer:
    """The app below the middleware seeing the browser gone and returning without a response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await receive()


class _Fails:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a real bug")


def _app(inner: Any) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(inner)
    app.add_middleware(BaseHTTPMiddleware, dispatch=lambda request, call_next: call_next(request))
    return app


async def _request(app: FastAPI) -> BaseException:
    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"", "headers": []}
    scope |= {"http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    with pytest.raises(RuntimeError) as raised:  # Starlette's ServerErrorMiddleware re-raises to the server
        await app(scope, receive, send)
    return raised.value


def _uvicorn_logs(exc: BaseException) -> bool:
    """Whether uvicorn's "Exception in ASGI application" record for `exc` passes its logger's filters."""
    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 0, "Exception in ASGI application", (), None)
    record.exc_info = (type(exc), exc, exc.__traceback__)
    return logging.getLogger("uvicorn.error").filter(record) is not False


async def test_a_browser_that_left_logs_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.api.errors")
    exc = await _request(_app(_LeavesWithoutAnswer))
    assert str(exc) == "No response returned."
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not _uvicorn_logs(exc)


async def test_a_real_error_still_logs_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    exc = await _request(_app(_Fails))
    assert any(r.exc_info and r.message == "unhandled API error" for r in caplog.records)
    assert _uvicorn_logs(exc)

"""Every API error is `{"error": {"code", "message", "action"}}` with the right HTTP status."""

from __future__ import annotations

import logging
import re
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException

from app.db.retrying import is_disconnect, metadata_failure
from core.errors import AutoloaderError, Conflict

log = logging.getLogger(__name__)
CLIENT_GONE_MARK = "autoloader_client_gone"
"""Set on the exception of a request whose browser left before the answer, so uvicorn's log skips it too."""


def is_client_gone(exc: BaseException) -> bool:
    """Starlette's BaseHTTPMiddleware (NiceGUI's middlewares) raises "No response returned." when the app below
    ended without answering: it does so when the browser closed the connection (a tab closed, a page left while
    it loaded). The error handler cannot ask the connection (it gets no receive channel), so the error's shape
    decides: that message, raised while the answer stream ended."""
    return (
        isinstance(exc, RuntimeError)
        and exc.args == ("No response returned.",)
        and isinstance(exc.__cause__ or exc.__context__, anyio.EndOfStream)
    )


class SkipClientGone(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" traceback for a request whose browser left."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, CLIENT_GONE_MARK, False)


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    action: str
    field: str | None = None
    fields: list[FieldProblem] | None = None


class ErrorBody(BaseModel):
    """Every error answer: `{"error": {"code", "message", "action"}}`; a validation error names its field(s)."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request cannot be carried out (a bad source, path or file)."},
    401: {"model": ErrorBody, "description": "No valid `Authorization: Bearer <token>`."},
    403: {"model": ErrorBody, "description": "The token's role does not allow this."},
    404: {"model": ErrorBody, "description": "No such object."},
    409: {"model": ErrorBody, "description": "Conflicts with the current state (a name in use, a run in progress)."},
    422: {"model": ErrorBody, "description": "A field is invalid; `field` names it."},
    429: {"model": ErrorBody, "description": "Too many requests; retry later."},
    503: {"model": ErrorBody, "description": "A dependency (storage, a cluster) is unavailable; retry later."},
}
"""The error answers documented on every v1 operation (in place of FastAPI's default 422 body, which the handlers
below never send)."""


_FIELD_PREFIX = re.compile(r"^([a-z_]+(?:\.[a-z_]+)+): (.*)$", re.DOTALL)


_LOCATIONS = ("body", "query", "path", "header", "cookie")
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _field_name(loc: tuple[int | str, ...]) -> str:
    """The field's dotted name without the request part it came in (a field may itself be called `path`)."""
    parts = [str(p) for p in (loc[1:] if loc and loc[0] in _LOCATIONS else loc)]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, SkipClientGone) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(SkipClientGone())

    @app.exception_handler(AutoloaderError)
    async def _autoloader_error(_: Request, exc: AutoloaderError) -> JSONResponse:
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        """FastAPI's own refusals under /api (a body that is not JSON, a method the path lacks) in the same format;
        elsewhere (the console's pages) the framework's answer is kept."""
        if not request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        body = {
            "code": _HTTP_CODES.get(exc.status_code, "bad_request"),
            "message": str(exc.detail),
            "action": "Check the method, the path and that the body is JSON, then send the request again.",
        }
        return JSONResponse({"error": body}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            field = _field_name(tuple(err.get("loc", ())))
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            if nested := _FIELD_PREFIX.match(message):
                field, message = nested.group(1), nested.group(2)
            problems.append({"field": field, "message": message})
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        body = {
            "code": "validation_error",
            "message": f"{first['field']}: {first['message']}",
            "action": "Correct the field(s) listed in 'fields' and send the request again.",
            "field": first["field"],
            "fields": problems,
        }
        return JSONResponse({"error": body}, status_code=422)

    @app.exception_handler(StaleDataError)
    async def _changed_meanwhile(request: Request, exc: Exception) -> Response:
        """A row this request read was deleted or changed by another one before it was written (a PATCH or a run
        racing a DELETE): what the database refused is a conflict to retry, not an internal error."""
        log.info("%s %s raced another request: %s", request.method, request.url.path, exc)
        error = Conflict(
            "What this request changes was deleted or changed by another request at the same moment.",
            "Read it again (GET), then send the request again if it still applies.",
        )
        return JSONResponse({"error": error.to_dict()}, status_code=error.http_status)

    @app.exception_handler(DBAPIError)
    async def _metadata_down(request: Request, exc: DBAPIError) -> Response:
        """The metadata database down or full: 503 saying which, as a run's error would; a row another request
        deleted meanwhile (a foreign key refused) is a conflict (anything else a statement raises is a bug,
        answered as one)."""
        if isinstance(exc, IntegrityError) and "foreign key" in str(exc.orig).lower():
            return await _changed_meanwhile(request, exc)
        if not is_disconnect(exc):
            return await _unexpected(request, exc)
        log.warning("metadata DB failed on %s %s: %s", request.method, request.url.path, exc.orig or exc)
        error = metadata_failure(exc, "answer this request")
        return JSONResponse({"error": error.to_dict()}, status_code=error.http_status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        if is_client_gone(exc):
            setattr(exc, CLIENT_GONE_MARK, True)
            log.info("the browser left before %s %s was answered", request.method, request.url.path)
            return Response(status_code=499)
        log.exception("unhandled API error")
        body = {
            "code": "internal",
            "message": f"Internal error ({type(exc).__name__}).",
            "action": "Retry; if it keeps failing, check the server log.",
        }
        return JSONResponse({"error": body}, status_code=500)

"""Every API error is `{"error": {"code", "message", "action"}}` with the right HTTP status."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.errors import AutoloaderError

log = logging.getLogger(__name__)


_FIELD_PREFIX = re.compile(r"^([a-z_]+(?:\.[a-z_]+)+): (.*)$", re.DOTALL)


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AutoloaderError)
    async def _autoloader_error(_: Request, exc: AutoloaderError) -> JSONResponse:
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)

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

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled API error")
        body = {
            "code": "internal",
            "message": f"Internal error ({type(exc).__name__}).",
            "action": "Retry; if it keeps failing, check the server log.",
        }
        return JSONResponse({"error": body}, status_code=500)

"""Domain errors and their one rendering: RFC 9457 problem details with a stable ``code``.

Services raise these; they never raise ``HTTPException``. Every 4xx/5xx the API sends, including
FastAPI's own validation errors and unknown routes, has the same JSON shape:
``{"type", "title", "status", "detail", "code"}`` (validation errors add ``errors``).

A saturated database is load, not a fault: no pooled connection within ``db_pool_timeout_s``
(``overloaded``), SQLite's write lock not free within its busy timeout, or PostgreSQL out of
connections or locks (``busy``) are answered 503 with ``Retry-After``. Each happens before
the request's unit of work commits (taking a connection, ``BEGIN IMMEDIATE``, a lock) or is
the commit failing, so the 503 always means "nothing was saved, try again". Should a request
have committed a unit of work already, the error is not dressed as a 503 (DESIGN.md,
invariant 7): it stays the last-resort 500.
"""

import logging
import sqlite3
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import logs, metrics

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://doorstep.example/problems/"
RETRY_AFTER_S = 1
# PostgreSQL: out of connections or resources (class 53), starting up or shutting down, a
# lock not granted within lock_timeout.
_BUSY_SQLSTATES = ("53", "57P03", "55P03")

logger = logging.getLogger(__name__)


class AppError(Exception):
    """Base of every error a client can cause; rendered as problem+json."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra or {}


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(AppError):
    status_code = 422
    code = "unprocessable"


class TooManyRequests(AppError):
    """A limit was reached: 429 with ``Retry-After`` (whole seconds, at least 1) in the header
    and as ``retry_after_s`` in the problem."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: int, code: str | None = None) -> None:
        self.retry_after_s = max(1, retry_after_s)
        super().__init__(detail, code=code, extra={"retry_after_s": self.retry_after_s})


def problem(
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """Render one problem+json response; ``extra`` members never replace the standard ones."""
    body: dict[str, Any] = {
        **(extra or {}),
        "type": PROBLEM_TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return problem(exc.status_code, exc.code, exc.detail, headers=headers, extra=exc.extra)


# FastAPI answers 422 for JSON with a syntax error but 400 for bodies it cannot decode at all
# (not UTF-8, nested too deep, an integer too long); clients get one answer for both.
_UNPARSEABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSEABLE_BODY:
        return await _validation_error(
            request,
            RequestValidationError(
                [{"loc": ("body",), "msg": "could not be parsed as JSON", "type": "json_invalid"}]
            ),
        )
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, code, detail, headers=exc.headers)


def _jsonable_error(err: Any) -> dict[str, Any]:
    return {
        "loc": list(err.get("loc", ())),
        "msg": str(err.get("msg", "")),
        "type": str(err.get("type", "")),
    }


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_jsonable_error(e) for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    detail = f"{where}: {first['msg']}" if where else str(first["msg"])
    return problem(422, "validation_error", detail, extra={"errors": errors})


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    # A value the database refuses to store (bad encoding, out of range) came from the client;
    # the driver's message quotes it, so only its kind is logged.
    logger.info("database refused a value: %s", logs.describe_exception(exc))
    return problem(422, "invalid_value", "A value in the request cannot be stored.")


def _busy(exc: DBAPIError) -> bool:
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        name = getattr(orig, "sqlite_errorname", "")
        return name in {"SQLITE_BUSY", "SQLITE_LOCKED"} or "is locked" in str(orig)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return isinstance(code, str) and code.startswith(_BUSY_SQLSTATES)


def _overloaded(request: Request, code: str, detail: str) -> JSONResponse | None:
    context = request.scope.get(logs.SCOPE_KEY)
    if isinstance(context, logs.RequestContext) and context.committed:
        return None
    metrics.count_overloaded(code)
    logger.warning("shed a request: %s", code)
    return problem(503, code, detail, headers={"Retry-After": str(RETRY_AFTER_S)})


async def _pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    answer = _overloaded(
        request, "overloaded", "The service is at capacity; try again in a moment."
    )
    if answer is None:
        raise exc
    return answer


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    answer = (
        _overloaded(request, "busy", "The database is busy; try again in a moment.")
        if _busy(exc)
        else None
    )
    if answer is None:
        raise exc  # the last-resort handler logs it and answers 500
    return answer


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Starlette calls this outside the request middleware: log as part of the request anyway.
    context = request.scope.get(logs.SCOPE_KEY)
    context = context if isinstance(context, logs.RequestContext) else None
    with logs.bound(context):
        logger.exception("unhandled error", exc_info=exc)
    headers = {"X-Request-ID": context.request_id} if context is not None else None
    return problem(
        500, "internal_error", "The server failed to handle this request.", headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one problem+json shape."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(PoolTimeoutError, _pool_timeout)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unhandled)

"""Structured logs: one JSON object a line from every process, with the request's id and the
caller's role, and never personal data.

Every line has ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
``request_id``, ``role`` and ``account_id`` (``null`` outside a request or before the caller is
known), plus what the call site passes in ``extra=`` — ids, counts, codes, durations; never
names, phone numbers, addresses, notes or other free text, tokens or passwords. Two guards keep
what the code does not choose out of the logs: the engine hides bound SQL parameters
(``hide_parameters``, ``app/db.py``), and tracebacks withhold PostgreSQL's messages and details,
which quote the values a statement was refused for (``describe_exception``).

``DOORSTEP_LOG_FORMAT=text`` gives one readable line a record for a person at a terminal
(same fields, same redaction). Logs go to standard error; standard output stays for what a
command prints. The request context (id, role) is set by ``app.middleware.RequestContext``
and ``app.deps.get_principal``.
"""

import logging
import logging.config
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from pydantic import ValidationError
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter
from sqlalchemy.exc import StatementError

from app.config import Settings

ACCESS_LOGGER = "doorstep.access"
# Where the request's context travels in the ASGI scope, for the error handlers that run
# outside the middleware (Starlette's last-resort 500 handler).
SCOPE_KEY = "doorstep.request"
CONTEXT_FIELDS = ("request_id", "role", "account_id")
_SQL_SHOWN = 1000


@dataclass(slots=True)
class RequestContext:
    """What the logs (and the error handlers) know about the request being served."""

    request_id: str
    role: str | None = None
    account_id: str | None = None
    # A unit of work of this request committed: an error after it must not be answered as
    # "nothing happened, retry" (503).
    committed: bool = False


_current: ContextVar[RequestContext | None] = ContextVar("doorstep_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current() -> RequestContext | None:
    """The request being served in this task, if any."""
    return _current.get()


def bind(context: RequestContext) -> Token[RequestContext | None]:
    return _current.set(context)


def unbind(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


@contextmanager
def bound(context: RequestContext | None) -> Iterator[None]:
    """Log as part of ``context`` for a while (an error handler outside the middleware)."""
    if context is None:
        yield
        return
    token = bind(context)
    try:
        yield
    finally:
        unbind(token)


def set_principal(role: str, account_id: str) -> None:
    """Who is calling, once authentication resolved it (no-op outside a request)."""
    context = _current.get()
    if context is not None:
        context.role = role
        context.account_id = account_id


def mark_committed() -> None:
    """A unit of work of the current request committed (no-op outside a request)."""
    context = _current.get()
    if context is not None:
        context.committed = True


def _sqlstate(error: BaseException | None) -> str | None:
    while error is not None:
        code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(code, str):
            return code
        error = error.__cause__
    return None


def _is_postgres_error(error: BaseException) -> bool:
    module = type(error).__module__
    return module.startswith("asyncpg") or (
        module.startswith("sqlalchemy.dialects.postgresql") and _sqlstate(error) is not None
    )


def describe_exception(error: BaseException) -> str:
    """``Type: message`` with what could quote stored values withheld: PostgreSQL's messages
    and details (``Key (login)=(…) already exists``), validation errors' inputs. SQLite's
    messages name columns, never values, and are kept; so is the SQL text (placeholders
    only)."""
    name = f"{type(error).__module__}.{type(error).__qualname__}"
    if isinstance(error, StatementError):
        orig = error.orig
        if orig is not None and _is_postgres_error(orig):
            inner = f"{type(orig).__qualname__} (SQLSTATE {_sqlstate(orig)}, message withheld)"
        else:
            inner = f"{type(orig).__qualname__}: {orig}" if orig is not None else "?"
        statement = (error.statement or "")[:_SQL_SHOWN]
        return f"{name}: {inner} [SQL: {statement}]"
    if _is_postgres_error(error):
        where = ", ".join(
            f"{field}={value}"
            for field in ("constraint_name", "table_name", "column_name")
            if (value := getattr(error, field, None))
        )
        return f"{name}: SQLSTATE {_sqlstate(error)}, message withheld" + (
            f" ({where})" if where else ""
        )
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        return f"{name}: {problems}"
    return f"{name}: {error}"


def format_exception(error: BaseException) -> str:
    """A traceback like Python's (causes first), each exception told by
    ``describe_exception``; frames show code, never local values."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    link = ""
    current_error: BaseException | None = error
    while current_error is not None and id(current_error) not in seen:
        seen.add(id(current_error))
        chain.append((current_error, link))
        if current_error.__cause__ is not None:
            current_error = current_error.__cause__
            link = "The above exception was the direct cause of the following exception:"
        elif current_error.__context__ is not None and not current_error.__suppress_context__:
            current_error = current_error.__context__
            link = "During handling of the above exception, another exception occurred:"
        else:
            current_error = None
    parts: list[str] = []
    for exc, following in reversed(chain):
        frames = "".join(traceback.format_tb(exc.__traceback__))
        head = "Traceback (most recent call last):\n" + frames if frames else ""
        parts.append(head + describe_exception(exc))
        if following:
            parts.append(following)
    return "\n\n".join(parts)


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def _format_exc_info(exc_info: ExcInfo) -> str:
    error = exc_info[1]
    return format_exception(error) if error is not None else ""


def _timestamp(created: float) -> str:
    return (
        datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class ContextFilter(logging.Filter):
    """Adds the request's id, role and account id to every record (``None`` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, getattr(context, name) if context is not None else None)
        return True


class JsonFormatter(_LibraryJsonFormatter):
    """python-json-logger with the service's field names, UTC timestamps and redacted
    tracebacks."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message", *CONTEXT_FIELDS],
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            # uvicorn's coloured duplicate of the message, and the task name, are noise.
            reserved_attrs=[*RESERVED_ATTRS, "color_message", "taskName"],
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["timestamp"] = _timestamp(record.created)  # first, for people reading raw lines
        super().add_fields(log_data, record, message_dict)

    def formatException(self, ei: Any) -> str:
        return _format_exc_info(ei)


class TextFormatter(logging.Formatter):
    """One readable line a record: ``time level logger [request role] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s %(role)s] %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record.created)

    def formatException(self, ei: Any) -> str:
        return _format_exc_info(ei)


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` dictionary for every Doorstep process; pass it to
    uvicorn as ``log_config`` so its server and worker processes log the same way.

    uvicorn's access log is silenced (``doorstep.access`` writes one line per request with the
    route template instead of the raw path and query, and without the client's address)."""
    formatter = "json" if settings.log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "app.logs.ContextFilter"}},
        "formatters": {
            "json": {"()": "app.logs.JsonFormatter"},
            "text": {"()": "app.logs.TextFormatter"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["default"], "level": settings.log_level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": settings.log_level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": settings.log_level},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            # SQL statements only when asked for (their parameters stay hidden).
            "sqlalchemy.engine": {"level": "INFO" if settings.db_echo else "WARNING"},
            # aiosqlite's debug lines print each call with its SQL parameters.
            "aiosqlite": {"level": "INFO"},
            # Every request a command makes (the bench, the supervisor's probes) is not news.
            "httpx": {"level": "WARNING"},
        },
    }


def configure_logging(settings: Settings) -> None:
    """Set up this process's logging (a command that is not served by uvicorn calls it first:
    the dispatcher, migrations, the seed)."""
    logging.config.dictConfig(uvicorn_log_config(settings))

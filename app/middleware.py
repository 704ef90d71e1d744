"""Pure ASGI middleware: the request's context (id, access log, latency) and the body limit.

``BodyLimit`` refuses oversized request bodies before the app parses them. The body is read
there, up to the limit, and handed on in one piece: a declared or streamed (chunked) body over
the limit gets a 413 problem, never a parser's 400 or a half-read request.
"""

import logging
import re
import time

from fastapi.routing import iter_route_contexts
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs, metrics
from app.errors import RETRY_AFTER_S, problem


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await problem(400, "bad_request", "Content-Length is not a number.")(
                    scope, receive, send
                )
                return
            if int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, "payload_too_large", f"The request body is larger than {self.max_bytes} bytes."
        )
        await response(scope, receive, send)


_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:+/=-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
access_log = logging.getLogger(logs.ACCESS_LOGGER)


class RouteTemplates:
    """The matched route's full template (``/v1/orders/{order_id}``), never the raw path: ids
    and query strings stay out of logs and metric labels. FastAPI hands over the route as its
    router declared it (``/orders/{order_id}``); the full template comes from the same route
    walk the OpenAPI schema uses, cached per route."""

    def __init__(self) -> None:
        self.known: dict[int, str] = {}

    def __call__(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        found = self.known.get(id(route))
        if found is None and "app" in scope:
            self.known = {
                id(context.original_route): context.path_format
                for context in iter_route_contexts(scope["app"].routes)
                if context.path_format is not None
            }
            found = self.known.get(id(route))
        if found is None:  # a route outside the app's table: what it says of itself
            path = getattr(route, "path", None)
            return path if isinstance(path, str) else UNMATCHED
        return found


class RequestContext:
    """The outermost layer: gives each request an id (the client's ``X-Request-ID`` if it is a
    sane one — at most 128 of ``A-Za-z0-9._:+/=-`` — else a new one), echoes it in the
    response, binds it for the logs, and writes one access line and one latency observation
    per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route_template = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = given.decode() if _REQUEST_ID.fullmatch(given) else logs.new_request_id()
        context = logs.RequestContext(request_id=request_id)
        scope[logs.SCOPE_KEY] = context
        status = 500  # if the app raises before answering, the last-resort handler sends 500
        streaming = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.append("X-Request-ID", request_id)
                streaming = headers.get("content-type", "").startswith("text/event-stream")
            await send(message)

        started = time.perf_counter()
        token = logs.bind(context)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = self.route_template(scope)
            # A stream's duration is how long someone watched, not how fast we answered.
            if not streaming:
                metrics.observe_request(method, route, status, elapsed)
            access_log.info(
                "%s %s %d %.1fms",
                method,
                route,
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
            logs.unbind(token)


class InFlight:
    """Sheds load at once: while ``limit`` requests are being served by this worker, the next
    is answered 503 ``saturated`` with ``Retry-After`` before anything else runs (no queueing
    behind the pool). Probes (``/healthz``, ``/readyz``, ``/metrics``) are never shed, and an
    event stream stops counting once its headers are sent (it is watched, not served)."""

    EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.serving = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.serving >= self.limit:
            metrics.count_overloaded("saturated")
            response = problem(
                503,
                "saturated",
                "The service is at capacity; try again in a moment.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
            await response(scope, receive, send)
            return
        self.serving += 1
        counted = True

        async def send_release_streams(message: Message) -> None:
            nonlocal counted
            if counted and message["type"] == "http.response.start":
                kind = MutableHeaders(scope=message).get("content-type", "")
                if kind.startswith("text/event-stream"):
                    counted = False
                    self.serving -= 1
            await send(message)

        try:
            await self.app(scope, receive, send_release_streams)
        finally:
            if counted:
                self.serving -= 1

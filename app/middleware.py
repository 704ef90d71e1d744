"""A pure ASGI guard that refuses oversized request bodies before the app parses them.

The body is read here, up to the limit, and handed on in one piece: a declared or streamed
(chunked) body over the limit gets a 413 problem, never a parser's 400 or a half-read request.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem


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

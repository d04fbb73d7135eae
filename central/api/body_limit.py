"""A cap on request bodies, enforced before anything parses them (pure ASGI).

A declared ``Content-Length`` past the cap is answered 413 at once, without reading a byte of
the body; a chunked body is counted as it arrives and refused as soon as it passes the cap, so
at most ``max_bytes`` (plus one chunk) is ever held. The server drops what the client still
sends after the answer.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.api.problems import problem


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a counted body passes the cap; FastAPI passes an
    HTTPException raised while it reads the body on to the handlers unchanged."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await problem(413, BodyTooLarge(self.max_bytes).detail)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)

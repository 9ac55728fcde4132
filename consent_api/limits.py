"""Refuse oversized request bodies before any route reads them (413, as a problem document)."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import send_answer


class BodyLimit:
    """ASGI middleware: a declared or streamed body over ``max_bytes`` gets 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                # ASCII digits only: int() would take b" 1_0" or b"+10" (RFC 9110 8.6).
                if not re.fullmatch(rb"[0-9]+", value):
                    detail = "Content-Length is not a number"
                    await send_answer(scope, receive, send, 400, "bad-request", detail, detail)
                    return
                if len(value) > 19 or int(value) > self.max_bytes:  # 19: int() stays cheap
                    await self._refuse_large(scope, receive, send)
                    return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse_large(scope, receive, send)

    async def _refuse_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the body is larger than {self.max_bytes} bytes"
        await send_answer(scope, receive, send, 413, "payload-too-large", detail, detail)


class _TooLarge(HTTPException):
    """A streamed body passed the limit. An ``HTTPException``, since FastAPI turns any other
    error raised while it reads a body into a 400; this one it lets through to the 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the body is larger than {max_bytes} bytes")

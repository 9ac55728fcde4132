"""The HTTP protocol ``consent-ledger serve`` runs: uvicorn's, with deadlines for reading a request.

Uvicorn waits for a request's headers (and body) as long as the client likes, so a few hundred
connections that each send half a request hold the server's sockets indefinitely (slowloris).
``DeadlineProtocol`` closes a connection whose request headers are not all in within
``header_timeout`` seconds of its first byte (or of the connection, before any byte), with a
``408``, and one whose body is not all in within ``body_timeout`` seconds of its headers. An
idle kept-alive connection is still closed by uvicorn's own ``timeout_keep_alive``.

Uvicorn builds the protocol itself, in every worker process, so the deadlines come from the
environment (``ApiSettings``: ``CONSENT_API_HEADER_TIMEOUT``, ``CONSENT_API_BODY_TIMEOUT``),
read once per process on the first connection.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .settings import ApiSettings

PROTOCOL: Final = "consent_api.serving:DeadlineProtocol"
"""What ``serve`` passes to uvicorn as ``http``: an import string, for spawned workers too."""

_TIMEOUT_RESPONSE: Final = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 31\r\n"
    b"connection: close\r\n\r\n"
    b"the request was not sent in time"
)


@cache
def deadlines() -> tuple[float, float]:
    """(header, body) timeouts in seconds, from the environment of this process."""
    settings = ApiSettings()
    return float(settings.header_timeout), float(settings.body_timeout)


class DeadlineProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol, closing connections that send a request too slowly."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(deadlines()[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a kept-alive connection's next request has begun
            self._arm(deadlines()[0])

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._arm(deadlines()[1])

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_TIMEOUT_RESPONSE)  # no response begun: say why
        self.transport.close()

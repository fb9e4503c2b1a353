"""Connection hygiene for mloop's HTTP servers: deadlines on reading a request, caps per client.

uvicorn closes an idle keep-alive connection, but a connection that stalls halfway
through its headers or body stays open for ever; a few thousand such sockets from
one address (slowloris) starve a server of file descriptors without a key. This
protocol, uvicorn's httptools protocol plus three rules, is what ``mloop serve``
and ``mloop gateway`` run:

- a request's headers must arrive in full within ``header_timeout_s`` of its first
  byte (or of the connection opening), however slowly they trickle;
- its body must arrive in full within ``body_timeout_s`` of the headers;
- one client address holds at most ``max_per_client`` open connections; further
  ones are closed on arrival (0 lifts the cap: behind a load balancer every
  connection comes from the balancer's address).

A connection that misses a deadline is closed; one whose headers timed out gets a
``408`` first, so a slow but honest client learns why.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["GRACEFUL_SHUTDOWN_S", "ConnectionLimits", "guarded_protocol"]

# On SIGTERM, requests in flight get this long to finish before they are cancelled:
# uvicorn would otherwise wait for a two-minute upstream call (or a stuck one) for ever.
GRACEFUL_SHUTDOWN_S = 10

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)
_TIMEOUT_BODY = (
    b'{"error":{"type":"user_fixable","code":"request_timeout","message":'
    b'"The request headers did not arrive in time; send the whole request at once.",'
    b'"retryable":true}}'
)


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a request may take to arrive, and how many connections one client holds."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_per_client: int = 512


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """An httptools protocol class for ``uvicorn.Config(http=...)`` that enforces ``limits``."""
    open_by_client: Counter[str] = Counter()  # one per server process, shared by its connections

    class GuardedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _counted: str | None = None
        _in_body = False
        _partial = False  # bytes of a request arrived, its headers have not all

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else None
            if host is not None and limits.max_per_client > 0:
                if open_by_client[host] >= limits.max_per_client:
                    transport.abort()
                    return
                open_by_client[host] += 1
                self._counted = host
            self._arm(limits.header_timeout_s, self._headers_late)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._counted is not None:
                open_by_client[self._counted] -= 1
                if open_by_client[self._counted] <= 0:
                    del open_by_client[self._counted]
                self._counted = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            # The first byte of a new request on a kept-alive connection starts its clock.
            if not self._in_body and self._between_requests():
                if self._deadline is None:
                    self._arm(limits.header_timeout_s, self._headers_late)
                self._partial = True
            super().data_received(data)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._disarm()
            self._partial = False
            self._in_body = True
            self._arm(limits.body_timeout_s, self._body_late)

        def on_message_complete(self) -> None:
            self._disarm()
            self._in_body = False
            super().on_message_complete()

        def _between_requests(self) -> bool:
            cycle: Any = self.cycle
            return cycle is None or cycle.response_complete

        def _arm(self, seconds: float, callback: Any) -> None:
            self._disarm()
            if seconds > 0:
                self._deadline = self.loop.call_later(seconds, callback)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _headers_late(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                if self._partial:  # a connection that never sent a byte is just closed
                    self.transport.write(_REQUEST_TIMEOUT % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))
                self.transport.close()

        def _body_late(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                cycle: Any = self.cycle
                if cycle is not None and not cycle.response_complete:
                    cycle.disconnected = True  # the app's receive() sees a disconnect
                    cycle.message_event.set()
                self.transport.close()

    return GuardedProtocol

"""Serving an API with uvicorn, with limits on how slowly and how much a client sends as headers."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_S = 10.0
"""How long a client has, from connecting or from a request's first byte, to send the request's headers."""

MAX_HEADER_BYTES = 64 * 1024
"""The most a request line and headers may take: far above any real request, bounded memory per client."""


def _closing_answer(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, len(text), text)
    )


_TIMED_OUT = _closing_answer(b"408 Request Timeout", b"the request headers did not arrive in time")
_TOO_LARGE = _closing_answer(b"431 Request Header Fields Too Large", b"the request headers are too large")


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers come too slowly or are
    too large (docs/design/http.md).

    uvicorn times out neither: a client that connects and sends nothing, or trickles its headers,
    holds a connection for ever, and one that sends endless headers grows the server's memory. The
    body is timed by the application (``dxpulse.http.handlers``); after a response, uvicorn's
    keep-alive timeout closes an idle connection.
    """

    header_timeout_s = HEADER_TIMEOUT_S
    max_header_bytes = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Still waiting for the headers after this chunk: all of it was request line and headers.
        if self._header_timer is not None and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._cancel_header_timer()
                self.logger.info("closing a connection whose request headers are too large")
                self.transport.write(_TOO_LARGE)
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers did not arrive in time")
            self.transport.write(_TIMED_OUT)
            self.transport.close()


def guarded_protocol(
    header_timeout_s: float = HEADER_TIMEOUT_S, max_header_bytes: int = MAX_HEADER_BYTES
) -> type[GuardedHttpProtocol]:
    """``GuardedHttpProtocol`` with these limits, for uvicorn's ``http`` option."""
    return type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {"header_timeout_s": header_timeout_s, "max_header_bytes": max_header_bytes},
    )


def serve(app: Any, host: str, port: int, **options: Any) -> None:
    """Serve ``app`` with uvicorn (its other ``options`` as ``uvicorn.run`` takes them) until stopped,
    with ``GuardedHttpProtocol``'s limits on headers."""
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, http=guarded_protocol(), **options)).run()

"""The workers' web server: a malformed request is one WARNING line, not an ERROR with a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from mode.utils.logging import ExtensionFormatter

from dxpulse.faust_engine.worker_logging import (
    MALFORMED_REQUESTS,
    WEB_SERVER_LOGGER,
    quiet_malformed_requests,
)


async def _failing(request: web.Request) -> web.Response:
    raise RuntimeError("the worker's own fault")


@pytest.fixture
async def server() -> AsyncIterator[int]:
    """An aiohttp server as the workers run one, with the filter on; its port."""
    quiet_malformed_requests()
    app = web.Application()
    app.router.add_get("/fails", _failing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
        logging.getLogger(WEB_SERVER_LOGGER).removeFilter(MALFORMED_REQUESTS)


async def _send(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read(1000)
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 100_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /%00%ff HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ%s\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
)
async def test_a_malformed_request_is_one_warning_without_a_traceback(
    server: int, request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=WEB_SERVER_LOGGER):
        answer = await _send(server, request_bytes)
    assert answer.split(b" ", 2)[1].startswith(b"4"), answer[:100]
    records = [r for r in caplog.records if r.name == WEB_SERVER_LOGGER]
    assert records, "aiohttp logged nothing"
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in records), records
    assert "refused a malformed request (400" in records[0].getMessage()
    assert "\n" not in records[0].getMessage()
    # As the worker's handlers write it: mode's formatter, which turns any args into a tuple.
    assert "refused a malformed request" in ExtensionFormatter().format(records[0])


async def test_the_workers_own_error_stays_an_error_with_its_traceback(
    server: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=WEB_SERVER_LOGGER):
        answer = await _send(server, b"GET /fails HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.split(b" ", 2)[1] == b"500", answer[:100]
    (record,) = [r for r in caplog.records if r.name == WEB_SERVER_LOGGER]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None

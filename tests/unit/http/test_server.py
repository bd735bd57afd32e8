"""The API server closes connections whose request headers come too slowly or are too large."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from dxpulse.http.server import guarded_protocol
from dxpulse.stack.testing import free_ports


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    port = free_ports(1)[0]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=guarded_protocol(header_timeout_s=1.0, max_header_bytes=4_096),
        log_level="warning",
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield ("127.0.0.1", port)
    server.should_exit = True
    thread.join(timeout=10)


def _closed_within(conn: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed ``conn`` within ``seconds``, and what it sent before."""
    conn.settimeout(seconds)
    received = b""
    try:
        while chunk := conn.recv(4096):
            received += chunk
    except TimeoutError:
        return False, received
    return True, received


def test_a_client_that_sends_nothing_is_closed(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as conn:
        closed, answer = _closed_within(conn, 5)
    assert closed
    assert answer.startswith(b"HTTP/1.1 408")


def test_trickled_headers_are_closed(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as conn:
        started = time.monotonic()
        conn.sendall(b"GET /ping HTTP/1.1\r\n")
        closed = False
        for n in range(10):
            try:
                conn.sendall(b"x-slow-%d: 1\r\n" % n)
            except OSError:
                closed = True
                break
            time.sleep(0.4)
        if not closed:
            closed, _ = _closed_within(conn, 3)
    assert closed
    assert time.monotonic() - started < 6


def test_endless_headers_are_refused(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as conn:
        try:
            conn.sendall(b"GET /ping HTTP/1.1\r\n" + b"x-big: " + b"a" * 10_000)
        except OSError:
            return
        closed, answer = _closed_within(conn, 5)
    assert closed
    assert answer.startswith(b"HTTP/1.1 431")


def _answer(conn: socket.socket) -> bytes:
    received = b""
    while not received.endswith(b'{"status":"ok"}'):
        chunk = conn.recv(4096)
        assert chunk, received
        received += chunk
    return received


def test_a_large_body_sent_with_its_headers_is_not_taken_for_headers(address: tuple[str, int]) -> None:
    body = b"a" * 200_000
    with socket.create_connection(address) as conn:
        conn.settimeout(5)
        conn.sendall(b"POST /ping HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        assert conn.recv(4096).startswith(b"HTTP/1.1 405")


def test_ordinary_requests_on_a_kept_alive_connection_are_answered(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as conn:
        conn.settimeout(5)
        for _ in range(4):
            conn.sendall(b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
            assert _answer(conn).startswith(b"HTTP/1.1 200")
            time.sleep(0.6)  # 2.4 s idle in all: the keep-alive timeout's (30 s), not the header timeout's

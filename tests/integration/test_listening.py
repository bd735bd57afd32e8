"""On the running stack every process listens on loopback only, and the workers serve no faust pages."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import httpx
import pytest

from dxpulse.http.server import HEADER_TIMEOUT_S
from dxpulse.stack.config import SERVICE_NAMES
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack

pytestmark = pytest.mark.integration

CONFIGURED_HOST = "127.0.0.1"
"""Where the stack's services listen: the DXPULSE_*_HOST defaults, which the stack leaves alone."""

LISTEN = "0A"
"""TCP_LISTEN in the state column of /proc/net/tcp and tcp6."""


def _address(hex_address: str) -> str:
    """An address as /proc/net/tcp(6) writes it (32-bit words in host, little-endian, order) as text.

    An IPv4-mapped IPv6 address (Java listens on those) is its IPv4 address: ::ffff:127.0.0.1 is
    loopback, :: (all IPv6 and IPv4 interfaces) is not.
    """
    raw = bytes.fromhex(hex_address)
    address = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def listening_sockets() -> dict[int, tuple[str, int]]:
    """Every listening TCP socket of this network namespace: inode to (address, port)."""
    sockets: dict[int, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == LISTEN:
                address, port = local.split(":")
                sockets[inode] = (_address(address), int(port, 16))
    return sockets


def session_of(pid: int) -> int | None:
    """The session id of ``pid`` (field 6 of /proc/<pid>/stat), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[3])


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets ``pid`` has open."""
    inodes: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def listening_of(pid: int) -> set[tuple[str, int]]:
    """Where ``pid`` and the processes of the session it leads listen for TCP connections (the stack
    starts each process in a session of its own, so helpers it spawned count too)."""
    processes = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    members = {pid, *(p for p in processes if session_of(p) == pid)}
    inodes: set[int] = set().union(*(socket_inodes(p) for p in members))
    sockets = listening_sockets()
    return {sockets[inode] for inode in inodes if inode in sockets}


def test_every_process_of_the_stack_listens_on_the_configured_host_only(pipeline: StackSettings) -> None:
    components = {c.name: c for c in Stack(pipeline, report=lambda _: None).status() if c.running}
    assert set(SERVICE_NAMES) <= set(components), f"not running: {set(SERVICE_NAMES) - set(components)}"
    elsewhere: dict[str, set[tuple[str, int]]] = {}
    for name, component in components.items():
        assert component.pid is not None
        listening = listening_of(component.pid)
        if component.address is not None:
            port = int(component.address.rsplit(":", 1)[1])
            assert port in {p for _, p in listening}, f"{name} does not listen on port {port}"
        others = {(host, port) for host, port in listening if host != CONFIGURED_HOST}
        if others:
            elsewhere[name] = others
    assert elsewhere == {}, f"listening beyond {CONFIGURED_HOST}: {elsewhere}"


@pytest.mark.parametrize("worker", ["aggregate", "alerts", "history"])
def test_a_worker_serves_metrics_and_none_of_fausts_pages(pipeline: StackSettings, worker: str) -> None:
    port = {
        "aggregate": pipeline.aggregate_web_port,
        "alerts": pipeline.alerts_web_port,
        "history": pipeline.history_web_port,
    }[worker]
    with httpx.Client(base_url=f"http://{CONFIGURED_HOST}:{port}", timeout=10) as client:
        assert client.get("/metrics").status_code == 200
        # The tables' contents, the cluster's layout, faust's statistics and its index page.
        for path in ("/table/", "/router/", "/assignment/", "/graph/", "/performance/", "/"):
            response = client.get(path)
            assert response.status_code == 404, f"{worker} serves {path}: {response.status_code}"


@pytest.mark.parametrize("api", ["ingest", "query"])
def test_an_api_closes_a_connection_that_sends_no_headers(pipeline: StackSettings, api: str) -> None:
    port = pipeline.ingest_port if api == "ingest" else pipeline.query_port
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.settimeout(HEADER_TIMEOUT_S + 10)
        conn.sendall(b"GET /healthz HTTP/1.1\r\n")  # and never the rest
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer

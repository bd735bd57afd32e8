"""Test helper: a real stack on free ports in a temporary folder, stopped afterwards."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from dxpulse.stack.config import ServiceSpec
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack

log = logging.getLogger(__name__)

_PORT_FIELDS: tuple[str, ...] = (
    "kafka_port",
    "kafka_controller_port",
    "postgres_port",
    "ingest_port",
    "aggregate_web_port",
    "alerts_web_port",
    "history_web_port",
    "query_port",
    "prometheus_port",
    "alertmanager_port",
)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now."""
    # All sockets stay bound until every port is picked, so the kernel hands out distinct ones.
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def stack_settings_for_tests(state_dir: Path, **overrides: object) -> StackSettings:
    """Settings for a throwaway stack: free ports, no monitoring unless asked, shared jar cache."""
    values: dict[str, object] = dict(zip(_PORT_FIELDS, free_ports(len(_PORT_FIELDS)), strict=True))
    # Monitoring only when asked for, e.g. alertmanager_config=path to run Alertmanager too.
    values.update(state_dir=state_dir, prometheus_config=None, alertmanager_config=None, prometheus=False)
    values.update(overrides)
    return StackSettings(**values)  # type: ignore[arg-type]


@contextmanager
def running_stack(
    tmp_dir: Path,
    with_services: bool = False,
    *,
    services: Sequence[ServiceSpec] | None = None,
    report: Callable[[str], None] = log.info,
    **overrides: object,
) -> Iterator[StackSettings]:
    """Install what is missing, bring a stack up under ``tmp_dir`` and take it down on exit.

    Ports are free ones, never the defaults, so a developer's own stack is left alone.
    Failures to start raise (a test using this fails rather than skips).
    """
    settings = stack_settings_for_tests(tmp_dir / "stack", **overrides)
    stack = Stack(settings, report=report)
    stack.install()
    try:
        stack.up(with_services=with_services, services=services)
        yield settings
    finally:
        stack.down()

"""The local stack's PostgreSQL exporter: started beside Prometheus, it reports the database up."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from dxpulse.stack import Stack
from dxpulse.stack.config import POSTGRES_EXPORTER
from dxpulse.stack.process import port_open
from dxpulse.stack.testing import stack_settings_for_tests

pytestmark = pytest.mark.integration


def scrape(port: int, deadline_s: float = 60.0) -> str:
    """The exporter's /metrics once it has queried PostgreSQL (pg_up appears), else its last answer."""
    deadline = time.monotonic() + deadline_s
    while True:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        if "\npg_up " in text or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_the_exporter_reports_pg_up_and_stops_with_the_stack(tmp_path: Path) -> None:
    # Prometheus is asked for, so `up` would start the exporter; only PostgreSQL and it run here.
    settings = stack_settings_for_tests(tmp_path / "stack", prometheus=True)
    stack = Stack(settings, report=lambda _: None)
    assert POSTGRES_EXPORTER in stack.components_up_starts()
    port = settings.postgres_exporter_port
    try:
        stack.start_postgres()
        stack.start_postgres_exporter()
        metrics = scrape(port)
        assert "\npg_up 1\n" in metrics, metrics[-2000:]
        assert 'pg_stat_database_numbackends{datid="' in metrics
        (status,) = [item for item in stack.status() if item.name == POSTGRES_EXPORTER]
        assert status.ready
        assert status.address == f"127.0.0.1:{port}"
        # PostgreSQL gone: the exporter stays up and says so.
        stack.stop_postgres()
        deadline = time.monotonic() + 60
        while "\npg_up 0\n" not in (metrics := scrape(port)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "\npg_up 0\n" in metrics
    finally:
        stack.down()
    assert not port_open(port)

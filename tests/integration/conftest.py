"""Fixtures for tests against the real Kafka and PostgreSQL: one stack per session, on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dxpulse.stack.settings import StackSettings
from dxpulse.stack.testing import running_stack

ALERTMANAGER_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    """Kafka, PostgreSQL, Prometheus and the services, started once for the session.

    Fails (never skips) when a server cannot start: a skipped integration suite proves nothing.
    """
    # Services inherit this environment: a short hold-down and re-evaluation keep the alert tests quick,
    # and a public scoreboard lets the tests read rollups without a read token (reporters' values
    # still need one; test_query_api.py checks the default, where everything does).
    timing = {
        "DXPULSE_HOLD_DOWN_S": "3",
        "DXPULSE_REEVALUATE_INTERVAL_S": "1",
        "DXPULSE_QUERY_PUBLIC": "true",
    }
    saved = {name: os.environ.get(name) for name in timing}
    os.environ.update(timing)
    try:
        # Prometheus scrapes every second, so the monitoring tests see the scenario within seconds;
        # the real Alertmanager receives what the alerts service pushes.
        with running_stack(
            tmp_path_factory.mktemp("pipeline"),
            with_services=True,
            prometheus=True,
            prometheus_scrape_interval_s=1,
            alertmanager_config=ALERTMANAGER_CONFIG,
        ) as settings:
            yield settings
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

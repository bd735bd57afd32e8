"""The repository's Alertmanager configuration on a real Alertmanager: routes and inhibition.

Only Alertmanager runs: the alerts are posted as the alerts service and Prometheus post them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dxpulse.domain.catalog import default_catalog
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import free_ports
from schemas import AlertEvent
from services.alerts.alertmanager import Annotations, alertmanager_alert

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    (port,) = free_ports(1)
    settings = StackSettings(
        state_dir=tmp_path_factory.mktemp("alertmanager"), alertmanager_port=port, alertmanager_config=CONFIG
    )
    stack = Stack(settings)
    stack.paths.logs.mkdir(parents=True, exist_ok=True)
    stack.paths.run.mkdir(parents=True, exist_ok=True)
    stack.start_alertmanager(CONFIG)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stack.stop_alertmanager()


def scoreboard_alert(rule: str, scope: str = "national", severity: str = "critical") -> dict[str, Any]:
    event = AlertEvent.model_validate(
        {
            "fingerprint": f"{rule}-{scope}",
            "rule": rule,
            # An indicator and period of their own: the Alertmanager of this module is not shared.
            "indicator": "emc_connection",
            "period": "2024-H1",
            "scope": scope,
            "status": "firing",
            "severity": severity,
            "summary": f"{rule} on {scope}",
            "value": 0.5,
            "target": 1.0,
            "reporters": ["ministry:GI"],
            "starts_at": NOW,
            "ends_at": None,
            "changed_at": NOW,
        }
    )
    annotate = Annotations(default_catalog(), "http://docs", "http://scoreboard")
    return alertmanager_alert(event, NOW + timedelta(minutes=10), annotate)


def held(url: str, want: int, deadline_s: float = 60.0) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds, once it holds ``want`` of them (polled up to the deadline)."""
    deadline = time.monotonic() + deadline_s
    while True:
        alerts: list[dict[str, Any]] = httpx.get(f"{url}/api/v2/alerts", timeout=10).json()
        if len(alerts) >= want or time.monotonic() > deadline:
            return alerts
        time.sleep(0.5)


def test_missing_reports_inhibits_below_target_of_the_same_figure_only(alertmanager: str) -> None:
    posted = [
        scoreboard_alert("missing_reports", severity="warning"),
        scoreboard_alert("below_target"),
        # The provinces' figure of the same period: another figure, not inhibited.
        scoreboard_alert("below_target", scope="provinces", severity="warning"),
    ]
    response = httpx.post(f"{alertmanager}/api/v2/alerts", json=posted, timeout=10)
    response.raise_for_status()
    alerts = held(alertmanager, len(posted))
    state = {(a["labels"]["alertname"], a["labels"]["scope"]): a["status"] for a in alerts}
    missing = state["missing_reports", "national"]
    assert missing["state"] == "active"
    national = state["below_target", "national"]
    assert national["state"] == "suppressed"
    assert national["inhibitedBy"], national
    assert state["below_target", "provinces"]["state"] == "active"
    receivers = {(a["labels"]["alertname"], a["labels"]["scope"]): a["receivers"] for a in alerts}
    assert receivers["below_target", "national"] == [{"name": "scoreboard-critical"}]
    assert receivers["missing_reports", "national"] == [{"name": "scoreboard-warnings"}]


def test_the_watchdog_goes_to_the_heartbeat_receiver(alertmanager: str) -> None:
    watchdog = {
        "labels": {"alertname": "DxpulseWatchdog", "severity": "none", "audience": "heartbeat"},
        "annotations": {"summary": "the pipeline's alerting is alive"},
        "startsAt": NOW.isoformat(),
        "endsAt": (NOW + timedelta(minutes=10)).isoformat(),
    }
    httpx.post(f"{alertmanager}/api/v2/alerts", json=[watchdog], timeout=10).raise_for_status()
    deadline = time.monotonic() + 60
    while True:
        found = [a for a in held(alertmanager, 1) if a["labels"]["alertname"] == "DxpulseWatchdog"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [a["receivers"] for a in found] == [[{"name": "heartbeat"}]]
    assert found[0]["status"]["state"] == "active"

"""The alerts service's pure parts: Alertmanager payloads, history rows, the firing gauge, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from dxpulse.domain.catalog import default_catalog
from dxpulse.stack.settings import StackSettings
from schemas import AlertEvent
from services.alerts.alertmanager import RESEND_FACTOR, Annotations, alertmanager_payload
from services.alerts.history import history_row
from services.alerts.metrics import AlertsMetrics
from services.alerts.settings import AlertsSettings

START = datetime(2025, 2, 1, tzinfo=UTC)
NOW = START + timedelta(hours=1)
RESEND = timedelta(minutes=1)
ANNOTATE = Annotations(default_catalog(), "https://docs.example.org", "https://scoreboard.example.org")


def alert(status: str = "firing", fingerprint: str = "f1", rule: str = "below_target") -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "fingerprint": fingerprint,
            "transition_id": f"{fingerprint}:1:{status}",
            "rule": rule,
            "indicator": "emc_connection",
            "period": "2024-H1",
            "scope": "national",
            "status": status,
            "severity": "critical",
            "summary": "Procedure systems connected to EMC 97.6% (82/84) below target 100.0% due 2024-12-31",
            "value": 82 / 84,
            "target": 1.0,
            "reporters": ["ministry:GI", "ministry:MOC"],
            "starts_at": START,
            "ends_at": START + timedelta(minutes=30) if status == "resolved" else None,
            "changed_at": NOW,
        }
    )


def test_firing_alert_has_the_fingerprint_labels_and_ends_resends_ahead() -> None:
    (sent,) = alertmanager_payload([alert()], [], NOW, RESEND, ANNOTATE)
    assert sent == {
        "labels": {
            "alertname": "below_target",
            "indicator": "emc_connection",
            "period": "2024-H1",
            "scope": "national",
            "severity": "critical",
            "audience": "scoreboard",
        },
        "annotations": {
            "summary": alert().summary,
            "description": (
                "Procedure systems connected to EMC (emc_connection), 2024-H1, scope national:"
                " value 97.6% (share of units), target 100.0% (share of units).\n"
                "Units not met (2): ministry:GI, ministry:MOC."
            ),
            "runbook_url": "https://docs.example.org/runbooks/below_target/",
            "dashboard_url": "https://scoreboard.example.org/indicators/emc_connection?period=2024-H1",
            "fingerprint": "f1",
        },
        "startsAt": "2025-02-01T00:00:00+00:00",
        "endsAt": (NOW + RESEND_FACTOR * RESEND).isoformat(),
    }


def test_resolved_alert_ends_when_its_condition_ended() -> None:
    (sent,) = alertmanager_payload([], [alert("resolved")], NOW, RESEND, ANNOTATE)
    assert sent["endsAt"] == "2025-02-01T00:30:00+00:00"
    assert sent["labels"]["alertname"] == "below_target"


def test_an_alert_firing_again_is_not_also_sent_resolved() -> None:
    sent = alertmanager_payload(
        [alert()], [alert("resolved"), alert("resolved", "f2")], NOW, RESEND, ANNOTATE
    )
    assert [(a["annotations"]["fingerprint"], a["endsAt"] > NOW.isoformat()) for a in sent] == [
        ("f1", True),
        ("f2", False),
    ]


def test_history_row_carries_the_episode_key_and_the_transition_id() -> None:
    row = history_row(alert("resolved"))
    assert row[:3] == ("f1", "resolved", NOW)
    assert row[4:] == (
        "below_target",
        "emc_connection",
        "2024-H1",
        "national",
        "critical",
        START,
        "f1:1:resolved",
    )
    assert AlertEvent.model_validate_json(row[3]) == alert("resolved")


def test_firing_gauge_counts_every_rule_and_severity() -> None:
    metrics = AlertsMetrics(
        lambda: [alert(), alert(fingerprint="f2"), alert(fingerprint="f3", rule="regression")]
    )
    metrics.transitions.labels(rule="below_target", status="firing").inc()
    text = generate_latest(metrics.registry).decode()
    assert 'dxpulse_alerts_firing{rule="below_target",severity="critical"} 2.0' in text
    assert 'dxpulse_alerts_firing{rule="regression",severity="critical"} 1.0' in text
    assert 'dxpulse_alerts_firing{rule="missing_reports",severity="info"} 0.0' in text
    assert 'dxpulse_alert_transitions_total{rule="below_target",status="firing"} 1.0' in text
    assert "# TYPE dxpulse_alertmanager_pushes_total counter" in text


def test_alertmanager_url_is_checked_and_may_be_empty() -> None:
    assert AlertsSettings(alertmanager_url="http://am:9093/").alertmanager_url == "http://am:9093"
    assert AlertsSettings(alertmanager_url="").alertmanager_url == ""
    with pytest.raises(ValidationError, match="alertmanager_url"):
        AlertsSettings(alertmanager_url="am:9093 please")


def test_stack_runs_the_repository_alertmanager_config_by_default() -> None:
    default = StackSettings().alertmanager_config
    assert default == Path("deploy/alertmanager/alertmanager.yml")
    assert (Path(__file__).parents[3] / default).is_file()

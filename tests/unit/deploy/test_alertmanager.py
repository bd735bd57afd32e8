"""deploy/alertmanager/alertmanager.yml: amtool accepts it, and it routes every alert dxpulse raises."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.rules import RULES
from dxpulse.stack.config import PROMETHEUS_RULES
from schemas import AlertEvent
from services.alerts.alertmanager import Annotations, alertmanager_alert

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> str:
    """Run amtool; fail (not skip) without it: `dxpulse stack install` brings it with Alertmanager."""
    binary = shutil.which("amtool")
    assert binary is not None, "amtool is missing: apt-get install prometheus-alertmanager"
    result = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def receiver_of(labels: dict[str, str]) -> str:
    """The receiver Alertmanager's routing tree picks for an alert with ``labels``."""
    pairs = [f"{name}={value}" for name, value in labels.items()]
    return amtool("config", "routes", "test", f"--config.file={CONFIG}", *pairs).strip()


def scoreboard_labels(rule: str, severity: str, scope: str = "national") -> dict[str, str]:
    """The labels the alerts service sends for one scoreboard alert."""
    at = datetime(2025, 2, 1, tzinfo=UTC)
    event = AlertEvent.model_validate(
        {
            "fingerprint": "f1",
            "rule": rule,
            "indicator": "emc_connection",
            "period": "2024-H1",
            "scope": scope,
            "status": "firing",
            "severity": severity,
            "summary": "s",
            "value": 0.5,
            "target": 1.0,
            "reporters": [],
            "starts_at": at,
            "ends_at": None,
            "changed_at": at,
        }
    )
    annotate = Annotations(default_catalog(), "http://docs", "http://scoreboard")
    labels: dict[str, str] = alertmanager_alert(event, at + timedelta(minutes=4), annotate)["labels"]
    return labels


def pipeline_rules() -> list[dict[str, object]]:
    return [
        rule
        for path in sorted(PROMETHEUS_RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_amtool_accepts_the_configuration() -> None:
    out = amtool("check-config", str(CONFIG))
    assert "SUCCESS" in out
    assert "2 inhibit rules" in out


@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("critical", "scoreboard-critical"), ("warning", "scoreboard-warnings"), ("info", "scoreboard-digest")],
)
def test_scoreboard_alerts_go_to_the_scoreboard_receivers_by_severity(severity: str, receiver: str) -> None:
    for rule in RULES:
        assert receiver_of(scoreboard_labels(rule, severity)) == receiver, rule


@pytest.mark.parametrize("rule", pipeline_rules(), ids=lambda rule: str(rule["alert"]))
def test_each_pipeline_alert_goes_to_its_audience_and_severity(rule: dict[str, object]) -> None:
    labels = rule["labels"]
    assert isinstance(labels, dict)
    expected = {
        ("heartbeat", "none"): "heartbeat",
        ("operators", "critical"): "operators-pager",
        ("operators", "warning"): "operators-tickets",
    }[(labels["audience"], labels["severity"])]
    assert receiver_of({"alertname": str(rule["alert"]), **labels}) == expected


def test_an_alert_of_no_known_audience_still_reaches_the_default_receiver() -> None:
    assert receiver_of({"alertname": "SomethingElse", "severity": "critical"}) == "dxpulse-default"


def test_missing_reports_inhibits_below_target_of_the_same_figure() -> None:
    rules = yaml.safe_load(CONFIG.read_text())["inhibit_rules"]
    (inhibition,) = [r for r in rules if r["target_matchers"] == ['alertname="below_target"']]
    assert inhibition["source_matchers"] == ['alertname="missing_reports"']
    # The fingerprint's parts: the same figure, as the alerts service labels it.
    assert sorted(inhibition["equal"]) == ["indicator", "period", "scope"]
    assert set(inhibition["equal"]) <= set(scoreboard_labels("below_target", "critical"))

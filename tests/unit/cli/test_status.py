"""``dxpulse status``'s pure parts: alert order and the summary line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dxpulse.cli.status import by_severity, summary
from schemas import AlertEvent
from tests.unit.conftest import feed, flag, make_report

START = datetime(2025, 1, 1, tzinfo=UTC)


def _alert(rule: str, severity: str, minutes: int) -> AlertEvent:
    return AlertEvent(
        fingerprint=f"{rule}|emc_connection|2024-H1|national",
        rule=rule,
        indicator="emc_connection",
        period="2024-H1",
        scope="national",
        status="firing",
        severity=severity,
        summary=rule,
        value=None,
        target=None,
        reporters=[],
        starts_at=START + timedelta(minutes=minutes),
        ends_at=None,
        changed_at=START,
    )


def test_critical_alerts_come_first_then_the_oldest() -> None:
    alerts = [
        _alert("regression", "warning", 1),
        _alert("below_target", "critical", 5),
        _alert("off_trajectory", "info", 0),
    ]
    alerts.append(_alert("missing_reports", "warning", 0))
    assert [a.fingerprint.split("|")[0] for a in by_severity(alerts)] == [
        "below_target",
        "missing_reports",
        "regression",
        "off_trajectory",
    ]


def test_summary_counts_figures_and_alerts_by_severity() -> None:
    _, published = feed([make_report("province:01", flag(True))], "emc_connection", "2024-H1")
    rollups = [r for batch in published for r in batch]
    assert len(rollups) == 3  # two groups and national: one figure
    line = summary(rollups, [_alert("below_target", "critical", 0), _alert("regression", "warning", 0)])
    assert line.startswith("1 figures, newest computed 2025-09-01 12:30:00 UTC;")
    assert line.endswith("2 alerts firing (1 critical, 1 warning)")
    assert summary([], []) == "0 figures; 0 alerts firing (none)"

"""``dxpulse status``: alert order, the summary line, its JSON; and every read command's --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from dxpulse.cli.main import app
from dxpulse.cli.status import by_severity, status_document, summary
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


def test_json_holds_the_events_as_their_topics_carry_them() -> None:
    alerts = [_alert("regression", "warning", 1)]
    document = status_document([], alerts)
    assert json.loads(json.dumps(document)) == document
    assert AlertEvent.model_validate(document["alerts"][0]) == alerts[0]
    assert document["summary"] == "0 figures; 1 alerts firing (1 warning)"


@pytest.mark.parametrize(
    "command",
    [
        ["rollups"],
        ["alerts"],
        ["status"],
        ["remap"],
        ["token", "list"],
        ["token", "create"],
        ["stack", "status"],
        ["check-data"],
        ["db", "migrate"],
    ],
    ids=" ".join,
)
def test_every_read_command_has_json(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "--json" in result.stdout

"""``dxpulse alerts``: the history's columns, the filters, and filters the catalog does not know."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from dxpulse.cli.filters import Rule, Severity, matching_alerts
from dxpulse.cli.main import app
from dxpulse.cli.presentation import alert_table
from dxpulse.stack.testing import free_ports
from schemas import AlertEvent
from tests.unit.conftest import feed, flag, last_per_scope, make_report

START = datetime(2025, 1, 1, 8, 30, tzinfo=UTC)
RULES: list[Rule] = ["below_target", "off_trajectory", "regression", "missing_reports"]
SEVERITIES: list[Severity] = ["critical", "warning", "info"]


def alert(rule: Rule, severity: Severity, indicator: str, period: str, minutes: int = 0) -> AlertEvent:
    return AlertEvent(
        fingerprint=f"{rule}|{indicator}|{period}|national",
        rule=rule,
        indicator=indicator,
        period=period,
        scope="national",
        status="firing",
        severity=severity,
        summary=f"{rule} on {indicator}",
        value=None,
        target=None,
        reporters=[],
        starts_at=START,
        ends_at=None,
        changed_at=START + timedelta(minutes=minutes),
    )


def test_the_table_gives_time_indicator_and_period() -> None:
    console = Console(record=True, width=80)
    console.print(alert_table([alert("regression", "warning", "emc_connection", "2024-H1", minutes=5)]))
    text = console.export_text()
    assert "time (UTC)" in text
    rows = [line for line in text.splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in row.strip("│").split("│")] for row in rows]
    assert [c[0] for c in cells][:2] == ["2025-01-01", "08:35:00"]
    assert [c[3] for c in cells][:4] == ["regression", "emc_connection", "2024-H1", "national"]
    assert all(len(line) <= 80 for line in text.splitlines())


ALERTS = st.lists(
    st.builds(
        alert,
        st.sampled_from(RULES),
        st.sampled_from(SEVERITIES),
        st.sampled_from(["emc_connection", "online_records_rate"]),
        st.sampled_from(["2024-H1", "2024-H2"]),
    ),
    max_size=12,
)


@given(
    ALERTS,
    st.sampled_from([None, *RULES]),
    st.sampled_from([None, *SEVERITIES]),
    st.sampled_from([None, "emc_connection"]),
    st.sampled_from([None, "2024-H2"]),
)
def test_filters_keep_exactly_the_matching_alerts_in_order(
    alerts: list[AlertEvent],
    rule: str | None,
    severity: str | None,
    indicator: str | None,
    period: str | None,
) -> None:
    kept = matching_alerts(alerts, rule=rule, severity=severity, indicator=indicator, period=period)
    wanted = {"rule": rule, "severity": severity, "indicator": indicator, "period": period}

    def matches(a: AlertEvent) -> bool:
        return all(v is None or getattr(a, k) == v for k, v in wanted.items())

    assert kept == [a for a in alerts if matches(a)]


@pytest.mark.parametrize("command", [["alerts", "--history"], ["rollups"]], ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (["--indicator", "emc"], "error: unknown indicator 'emc'; known: emc_connection, "),
        (["--period", "2024-H3"], "error: '2024-H3' is not a period; write e.g. 2024, 2024-H1,"),
        (
            ["--indicator", "emc_connection", "--period", "2024-07"],
            "error: period '2024-07' is a month, but this indicator is reported per half;",
        ),
    ],
)
def test_an_unknown_indicator_or_period_is_refused_before_kafka(
    command: list[str], filters: list[str], message: str
) -> None:
    closed = f"127.0.0.1:{free_ports(1)[0]}"  # reached only if the filters passed
    result = CliRunner().invoke(app, [*command, *filters, "--kafka-bootstrap", closed])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(message)


def test_status_refuses_a_period_that_is_none() -> None:
    closed = f"127.0.0.1:{free_ports(1)[0]}"
    result = CliRunner().invoke(app, ["status", "--period", "2024-H3", "--kafka-bootstrap", closed])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: '2024-H3' is not a period")


@pytest.mark.parametrize("option", ["--rule", "--severity"])
def test_an_unknown_rule_or_severity_is_a_usage_error(option: str) -> None:
    result = CliRunner().invoke(app, ["alerts", option, "nope"])
    assert result.exit_code == 2
    assert "nope" in result.stderr


def test_remap_json_gives_each_unit_its_predecessors_and_both_figures() -> None:
    from dxpulse.cli.presentation import remap_json
    from dxpulse.domain.remap import RemappedFigure

    def figure(period: str) -> RemappedFigure:
        reports = [make_report("province:56", flag(True), period=period)]
        rollup = last_per_scope(feed(reports, "emc_connection", period)[1])["national"]
        return RemappedFigure("province:56", "Khanh Hoa", ("province:56", "province:58"), rollup)

    lines = remap_json([figure("2024-H1")], [figure("2025-H2")], START.date())
    assert [(line["unit"], line["formed_from"], line["map_date"]) for line in lines] == [
        ("province:56", ["province:56", "province:58"], "2025-01-01")
    ]
    assert lines[0]["rollup"]["period"] == "2024-H1"
    assert lines[0]["compare"]["period"] == "2025-H2"
    assert remap_json([figure("2024-H1")], [], START.date())[0]["compare"] is None

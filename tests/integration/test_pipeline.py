"""End to end on the real stack: the sample scenario over HTTP, rollups and alerts read from Kafka."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from dxpulse.cli.main import app as cli_app
from dxpulse.client import send_as_reporters
from dxpulse.domain.scenario import sample_reports
from dxpulse.kafka.subscriber import alert_events, latest_rollups
from dxpulse.postgres.token_store import temporary_tokens
from dxpulse.stack.settings import StackSettings
from schemas import AlertEvent, Rollup

pytestmark = pytest.mark.integration


async def _rollups_when_settled(settings: StackSettings, timeout_s: float = 120.0) -> dict[str, Rollup]:
    """Poll the rollup topic until every national figure rests on all the reporters sent."""
    deadline = time.monotonic() + timeout_s
    while True:
        rollups = await latest_rollups(settings.kafka_bootstrap)
        # Only the scenario's period: other tests add figures of their own for other periods.
        national = [r for k, r in rollups.items() if k.endswith("|2024-H1|national")]
        if len(national) == 6 and all(
            r.reporters_reported
            == (1 if r.indicator == "essential_public_services" else r.reporters_expected)
            for r in national
        ):
            return rollups
        assert time.monotonic() < deadline, f"rollups did not settle: {sorted(rollups)}"
        await asyncio.sleep(1)


def _figure(rollups: dict[str, Rollup], key: str) -> tuple[float, float | None, float]:
    rollup = rollups[key]
    assert rollup.value is not None
    return rollup.numerator, rollup.denominator, round(rollup.value, 3)


@pytest.fixture(scope="module")
def refused(pipeline: StackSettings) -> list[str]:
    """Send the sample scenario over HTTP, each reporter with its own token; the reasons of refusals."""

    async def send() -> list[str]:
        reports = sample_reports()
        async with temporary_tokens(pipeline.database_url, (r.reporter for r in reports), "test") as tokens:
            sent = await send_as_reporters(f"http://127.0.0.1:{pipeline.ingest_port}", tokens, reports)
        return [outcome.reason for _, outcome in sent if not outcome.ok]

    return asyncio.run(send())


async def test_scenario_over_http_gives_seed_figures_on_the_rollup_topic(
    pipeline: StackSettings, refused: list[str]
) -> None:
    assert refused == []

    rollups = await _rollups_when_settled(pipeline)

    assert _figure(rollups, "emc_connection|2024-H1|ministries_with_procedures")[:2] == (19, 21)
    assert _figure(rollups, "emc_connection|2024-H1|provinces")[:2] == (63, 63)
    assert _figure(rollups, "emc_connection|2024-H1|national") == (82, 84, 0.976)
    assert _figure(rollups, "gov_reporting_connection|2024-H1|ministries")[:2] == (15, 22)
    assert _figure(rollups, "gov_reporting_connection|2024-H1|provinces")[:2] == (63, 63)
    assert _figure(rollups, "gov_reporting_connection|2024-H1|national") == (78, 85, 0.918)
    assert _figure(rollups, "online_records_rate|2024-H1|ministries_with_procedures")[2] == 0.61
    assert _figure(rollups, "online_records_rate|2024-H1|provinces")[2] == 0.17
    assert _figure(rollups, "online_records_rate|2024-H1|national")[2] == 0.42
    assert _figure(rollups, "low_signal_villages_broadband|2024-H1|national") == (256, 896, 0.286)
    enterprises = rollups["digital_tech_enterprises|2024-H1|national"]
    assert (enterprises.numerator, round(enterprises.attainment or 0, 3)) == (50_350, 1.049)
    assert _figure(rollups, "essential_public_services|2024-H1|national") == (43, 53, 0.811)


async def _emc_alert(settings: StackSettings, timeout_s: float = 120.0) -> AlertEvent:
    """The EMC national below_target alert, once it has fired on the topic and, as the alerts service
    shows it now, rests on the settled 82/84 (it may have fired while reports were still arriving)."""
    deadline = time.monotonic() + timeout_s
    key = ("below_target", "emc_connection", "national")
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            events = await alert_events(settings.kafka_bootstrap)
            fired = [e for e in events if (e.rule, e.indicator, e.scope) == key and e.status == "firing"]
            response = await client.get(f"http://127.0.0.1:{settings.alerts_web_port}/alerts")
            response.raise_for_status()
            now = [AlertEvent.model_validate(a) for a in response.json()]
            current = [a for a in now if (a.rule, a.indicator, a.scope) == key and "82/84" in a.summary]
            if fired and current:
                assert len(fired) == 1, "the alert fired twice"
                assert current[0].fingerprint == fired[0].fingerprint
                return current[0]
            assert time.monotonic() < deadline, f"no firing EMC alert: {[e.summary for e in events][-5:]}"
            await asyncio.sleep(1)


async def test_emc_below_target_alert_fires_after_its_deadline(
    pipeline: StackSettings, refused: list[str]
) -> None:
    await _rollups_when_settled(pipeline)
    alert = await _emc_alert(pipeline)
    # Today (after 2024-12-31) the deadline has passed and 97.6% < 100%.
    assert alert.summary.startswith("Procedure systems connected to EMC 97.6% (82/84) below target 100.0%")
    assert alert.severity == "critical"
    assert set(alert.reporters) <= {r.reporter for r in sample_reports() if r.indicator == "emc_connection"}
    assert len(alert.reporters) == 2


async def test_rollup_history_reaches_postgresql(pipeline: StackSettings, refused: list[str]) -> None:
    await _rollups_when_settled(pipeline)
    deadline = time.monotonic() + 30
    conn = await asyncpg.connect(pipeline.database_url)
    try:
        while True:
            row = await conn.fetchrow(
                "SELECT numerator, denominator FROM rollup_history"
                " WHERE indicator = 'emc_connection' AND scope = 'national'"
                " ORDER BY computed_at DESC, numerator DESC LIMIT 1"
            )
            if row is not None and (row["numerator"], row["denominator"]) == (82, 84):
                break
            assert time.monotonic() < deadline, f"history has {row}"
            await asyncio.sleep(1)
        # A figure may return to an earlier revision (a new row); the same one twice in a row is a duplicate.
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM rollup_history h JOIN rollup_history p USING (indicator, period, scope)"
            " WHERE p.seq = h.seq - 1 AND p.revision = h.revision"
        )
        assert duplicates == 0
    finally:
        await conn.close()


async def test_status_shows_the_national_figures_and_the_firing_emc_alert(
    pipeline: StackSettings, refused: list[str]
) -> None:
    await _rollups_when_settled(pipeline)
    await _emc_alert(pipeline)
    args = ["status", "--period", "2024-H1", "--kafka-bootstrap", pipeline.kafka_bootstrap]
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    assert "82/84 = 97.6%" in result.output
    assert "78/85 = 91.8%" in result.output
    alert_lines = [line for line in result.output.splitlines() if "below_target" in line]
    assert any("emc_connection" in line or "EMC" in line for line in alert_lines), result.output

"""The alerts service on the real stack: Alertmanager gets alerts and resolutions; restarts repeat nothing.

Rollups are produced straight onto the rollup topic (the alerts service's only input), so these tests
run Kafka, PostgreSQL, Alertmanager and the alerts service alone.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.rollup import Snapshot, compute_rollups
from dxpulse.domain.rules import AlertState, due_periods, evaluate, fingerprint
from dxpulse.kafka.subscriber import alert_events
from dxpulse.kafka.topics import ALERTS as ALERTS_TOPIC
from dxpulse.kafka.topics import ROLLUPS
from dxpulse.stack.config import ALERTS, ServiceSpec, service_env
from dxpulse.stack.process import port_open, wait_for
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import free_ports, running_stack
from schemas import AlertEvent, FlagValue, RatioValue, Rollup

pytestmark = pytest.mark.integration

T = TypeVar("T")

TIMING = {
    "DXPULSE_HOLD_DOWN_S": "2",
    "DXPULSE_RESOLVE_HOLD_DOWN_S": "2",
    "DXPULSE_REEVALUATE_INTERVAL_S": "1",
    "DXPULSE_ALERTMANAGER_RESEND_S": "5",
    "DXPULSE_ALERTMANAGER_MAX_BACKOFF_S": "4",
}


class Webhook:
    """A notification receiver for the real Alertmanager: records every payload it is sent."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        received = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_ports(1)[0]), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def notified(self) -> list[dict[str, Any]]:
        return [alert for payload in list(self.payloads) for alert in payload["alerts"]]


class AlertsStack:
    """The running stack, and the alerts service as a component that can be stopped and started."""

    def __init__(self, settings: StackSettings, webhook: Webhook) -> None:
        self.settings = settings
        self.webhook = webhook
        self.stack = Stack(settings)
        env = {**service_env(settings, self.stack.paths), **TIMING}
        self.spec = ServiceSpec(
            ALERTS, (sys.executable, "-m", "services.alerts"), env, settings.alerts_web_port
        )

    def start_alerts(self) -> None:
        self.stack.start_spec(self.spec, timeout_s=120)

    def stop_alerts(self) -> None:
        assert self.stack.stop_service(ALERTS, timeout_s=60)

    @property
    def alertmanager(self) -> str:
        return f"http://127.0.0.1:{self.settings.alertmanager_port}"


@pytest.fixture(scope="module")
def alerts_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertsStack]:
    webhook = Webhook()
    folder = tmp_path_factory.mktemp("alerts")
    config = folder / "alertmanager.yml"
    # Quick grouping, so the resolved notification arrives within the test's patience.
    config.write_text(
        "route:\n  receiver: test\n  group_by: [alertname, indicator, period, scope]\n"
        "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        f"receivers:\n  - name: test\n    webhook_configs:\n      - url: {webhook.url}\n"
        "        send_resolved: true\n"
    )
    try:
        with running_stack(folder, alertmanager_config=config) as settings:
            running = AlertsStack(settings, webhook)
            running.start_alerts()
            yield running
    finally:
        webhook.server.shutdown()
        webhook.server.server_close()


def flag_rollup(indicator_id: str, not_connected: set[str], scope: str = "national") -> Rollup:
    """A 2024-H1 rollup on which every expected reporter reported, connected unless listed."""
    catalog, registry = default_catalog(), default_registry()
    indicator = catalog[indicator_id]
    period = parse_period("2024-H1")
    observed = datetime(2024, 6, 30, tzinfo=UTC)
    latest = {
        r: Snapshot(observed, f"e-{r}", FlagValue(value=r not in not_connected))
        for r in registry.expected(indicator.groups, period.end)
    }
    rollups = compute_rollups(indicator, period, latest, registry, datetime.now(UTC))
    return next(r for r in rollups if r.scope == scope)


async def publish(settings: StackSettings, *rollups: Rollup) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for rollup in rollups:
            await producer.send_and_wait(
                ROLLUPS, key=rollup.key.encode(), value=rollup.model_dump_json().encode()
            )
    finally:
        await producer.stop()


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = 180.0) -> T:
    """Poll ``probe`` until it returns something; fail naming ``what`` after a generous deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await probe()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(1)


def ss(port: int) -> str:
    """What holds ``port``, for a failure message."""
    listing = subprocess.run(["ss", "-tanp"], capture_output=True, text=True, check=False).stdout
    return "\n".join(line for line in listing.splitlines() if f":{port} " in line)


def same_instant(text: str, moment: datetime) -> bool:
    """Alertmanager keeps times to the millisecond."""
    return abs(datetime.fromisoformat(text.replace("Z", "+00:00")) - moment) < timedelta(milliseconds=1)


def key_of(rollup: Rollup, rule: str = "below_target") -> str:
    return fingerprint(rule, rollup.indicator, rollup.period, rollup.scope)


async def transition(settings: StackSettings, fp: str, status: str) -> AlertEvent:
    async def probe() -> AlertEvent | None:
        events = await alert_events(settings.kafka_bootstrap)
        return next((e for e in events if e.fingerprint == fp and e.status == status), None)

    return await eventually(probe, f"{status} transition of {fp} on the alerts topic")


async def alertmanager_alerts(url: str, rollup: Rollup) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{url}/api/v2/alerts", params={"filter": f'indicator="{rollup.indicator}"'}
        )
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return [
        a for a in alerts if a["labels"]["period"] == rollup.period and a["labels"]["scope"] == rollup.scope
    ]


async def test_alertmanager_receives_the_alert_and_its_resolution(alerts_stack: AlertsStack) -> None:
    settings, am = alerts_stack.settings, alerts_stack.alertmanager
    short = flag_rollup("emc_connection", {"ministry:GI", "ministry:MOC"})
    await publish(settings, short)
    fired = await transition(settings, key_of(short), "firing")
    assert "97.6% (82/84) below target 100.0% due 2024-12-31" in fired.summary

    async def active() -> dict[str, Any] | None:
        found = [a for a in await alertmanager_alerts(am, short) if a["status"]["state"] == "active"]
        return found[0] if found else None

    shown = await eventually(active, "the alert active in Alertmanager")
    assert shown["labels"] == {
        "alertname": "below_target",
        "indicator": "emc_connection",
        "period": "2024-H1",
        "scope": "national",
        "severity": "critical",
        "audience": "scoreboard",
    }
    assert shown["annotations"]["summary"] == fired.summary
    assert "Units not met (2): ministry:GI, ministry:MOC." in shown["annotations"]["description"]
    assert shown["annotations"]["runbook_url"].endswith("/runbooks/below_target/")
    assert same_instant(shown["startsAt"], fired.starts_at)

    # Alertmanager restarted: it forgets its alerts; the periodic re-send brings this one back.
    alerts_stack.stack.stop_alertmanager()
    closed = wait_for(lambda: not port_open(settings.alertmanager_port), 60)
    assert closed, f"Alertmanager's port stayed open: {ss(settings.alertmanager_port)}"
    assert alerts_stack.settings.alertmanager_config is not None
    alerts_stack.stack.start_alertmanager(alerts_stack.settings.alertmanager_config)
    await eventually(active, "the alert re-sent to the restarted Alertmanager")

    await publish(settings, flag_rollup("emc_connection", set()))
    resolved = await transition(settings, key_of(short), "resolved")
    assert resolved.ends_at is not None

    async def gone() -> bool | None:
        return True if not await alertmanager_alerts(am, short) else None

    await eventually(gone, "the alert resolved in Alertmanager")

    def notified_resolved() -> dict[str, Any] | None:
        return next(
            (
                a
                for a in alerts_stack.webhook.notified()
                if a["status"] == "resolved" and a["labels"]["indicator"] == "emc_connection"
            ),
            None,
        )

    async def probe() -> dict[str, Any] | None:
        return notified_resolved()

    note = await eventually(probe, "Alertmanager's resolved notification")
    # endsAt is the one dxpulse pushed (when the condition ended), not an expiry of the firing alert.
    assert same_instant(note["endsAt"], resolved.ends_at)


async def test_restarted_alerts_service_fires_nothing_twice_and_loses_no_resolve(
    alerts_stack: AlertsStack,
) -> None:
    settings = alerts_stack.settings
    first = flag_rollup("gov_reporting_connection", {"ministry:GO"})
    second = flag_rollup("edw_connection", {"province:79"})
    sentinel = flag_rollup("gov_reporting_connection", {"ministry:MOF"}, scope="ministries")

    await publish(settings, first)
    await transition(settings, key_of(first), "firing")

    # Down mid-stream: one alert's condition ends and another's starts while nobody judges them.
    alerts_stack.stop_alerts()
    await publish(settings, flag_rollup("gov_reporting_connection", set()), second)
    alerts_stack.start_alerts()
    await transition(settings, key_of(first), "resolved")
    await transition(settings, key_of(second), "firing")

    # Down again with alerts firing and nothing new: a restart must not fire them again. The
    # sentinel fires only after the hold-down and several re-evaluations of every key since.
    alerts_stack.stop_alerts()
    alerts_stack.start_alerts()
    await publish(settings, sentinel)
    await transition(settings, key_of(sentinel), "firing")

    events = await alert_events(settings.kafka_bootstrap)
    per_alert: dict[str, list[str]] = {}
    for event in events:
        per_alert.setdefault(event.fingerprint, []).append(event.status)
    assert per_alert[key_of(first)] == ["firing", "resolved"]
    assert per_alert[key_of(second)] == ["firing"]
    assert per_alert[key_of(sentinel)] == ["firing"]
    transitions = [(e.fingerprint, e.status, e.starts_at) for e in events]
    assert len(transitions) == len(set(transitions)), "a transition was published twice"

    async def history() -> list[asyncpg.Record] | None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT status FROM alert_history WHERE fingerprint = $1 ORDER BY changed_at", key_of(first)
            )
        finally:
            await conn.close()
        return rows if len(rows) == 2 else None

    rows = await eventually(history, "both transitions in alert_history")
    assert [r["status"] for r in rows] == ["firing", "resolved"]


async def test_a_due_period_nobody_reported_for_fires_missing_reports_naming_every_reporter(
    alerts_stack: AlertsStack,
) -> None:
    settings = alerts_stack.settings
    catalog, registry = default_catalog(), default_registry()
    indicator = catalog["records_digitisation_rate"]
    # Nothing was ever produced for this indicator: the calendar alone makes the service judge it.
    period = due_periods(indicator, datetime.now(UTC))[-1]
    expected = sorted(registry.expected(indicator.groups, period.end))
    fp = fingerprint("missing_reports", indicator.id, period.label, "national")

    fired = await transition(settings, fp, "firing")
    assert fired.reporters == expected
    assert f"for {period.label} (due " in fired.summary
    assert f"; 0/{len(expected)} reported): " in fired.summary
    assert fired.value is None

    # Every reporter reports (late): the alert resolves.
    observed = datetime.now(UTC)
    latest = {r: Snapshot(observed, f"e-{r}", RatioValue(numerator=1, denominator=2)) for r in expected}
    rollups = compute_rollups(indicator, period, latest, registry, observed)
    await publish(settings, next(r for r in rollups if r.scope == "national"))
    await transition(settings, fp, "resolved")


async def test_a_transition_published_twice_is_stored_once_in_history(alerts_stack: AlertsStack) -> None:
    """What a crash between publishing a transition and saving its state leads to: the transition is
    judged again, later and maybe with another starts_at, and published again with the same id."""
    settings = alerts_stack.settings
    start = datetime.now(UTC)
    _, (judged,) = evaluate(
        AlertState(),
        default_catalog()["emc_connection"],
        flag_rollup("emc_connection", {"ministry:GI"}),
        start,
    )
    # Its own fingerprint, apart from the alerts the service itself raises.
    first = judged.model_copy(
        update={"fingerprint": "dup0000000000001", "transition_id": "dup0000000000001:1:firing"}
    )
    again = first.model_copy(
        update={"starts_at": start + timedelta(seconds=5), "changed_at": start + timedelta(seconds=5)}
    )
    resolved = first.model_copy(
        update={
            "transition_id": "dup0000000000001:1:resolved",
            "status": "resolved",
            "changed_at": start + timedelta(seconds=9),
            "ends_at": start + timedelta(seconds=9),
        }
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in (first, again, resolved):
            await producer.send_and_wait(
                ALERTS_TOPIC, key=event.fingerprint.encode(), value=event.model_dump_json().encode()
            )
    finally:
        await producer.stop()

    async def stored() -> list[asyncpg.Record] | None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT transition_id, starts_at FROM alert_history WHERE fingerprint = $1"
                " ORDER BY changed_at",
                first.fingerprint,
            )
        finally:
            await conn.close()
        # Same partition, in order: once the resolution is stored, both firing copies were seen.
        return rows if any(r["transition_id"] == resolved.transition_id for r in rows) else None

    rows = await eventually(stored, "the resolution in alert_history")
    assert [(r["transition_id"], r["starts_at"]) for r in rows] == [
        (first.transition_id, first.starts_at),
        (resolved.transition_id, first.starts_at),
    ]


async def pushes(settings: StackSettings, outcome: str) -> float:
    """``dxpulse_alertmanager_pushes_total{outcome}`` on the alerts worker's /metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{settings.alerts_web_port}/metrics")
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "dxpulse_alertmanager_pushes_total" and sample.labels["outcome"] == outcome:
                return sample.value
    return 0.0


async def test_a_transition_while_alertmanager_is_down_is_retried_until_it_gets_through(
    alerts_stack: AlertsStack,
) -> None:
    settings, am = alerts_stack.settings, alerts_stack.alertmanager
    short = flag_rollup("edw_connection", {"province:01"}, scope="provinces")
    alerts_stack.stack.stop_alertmanager()
    closed = wait_for(lambda: not port_open(settings.alertmanager_port), 60)
    assert closed, f"Alertmanager's port stayed open: {ss(settings.alertmanager_port)}"
    failed_before = await pushes(settings, "error")

    await publish(settings, short)
    fired = await transition(settings, key_of(short), "firing")

    async def retried() -> bool | None:
        # Several failed pushes since: the pusher kept trying (backing off up to 4 s here).
        return True if await pushes(settings, "error") >= failed_before + 3 else None

    await eventually(retried, "pushes failing and retried while Alertmanager is down")

    succeeded_before = await pushes(settings, "ok")
    assert alerts_stack.settings.alertmanager_config is not None
    alerts_stack.stack.start_alertmanager(alerts_stack.settings.alertmanager_config)

    async def delivered() -> dict[str, Any] | None:
        found = [a for a in await alertmanager_alerts(am, short) if a["status"]["state"] == "active"]
        return found[0] if found else None

    shown = await eventually(delivered, "the alert in Alertmanager once it is back", timeout_s=60)
    assert shown["annotations"]["fingerprint"] == fired.fingerprint
    assert same_instant(shown["startsAt"], fired.starts_at)
    assert await pushes(settings, "ok") > succeeded_before

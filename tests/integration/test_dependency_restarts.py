"""Kafka under load, then PostgreSQL, stopped and started under a running pipeline: all recover by themselves.

No service process is restarted. After each outage a report sent over HTTP is accepted again within
30 s, reaches its rollup on the topic, and through the history writer the query API; and a figure
crossing its target makes an alert transition on the alerts topic and in alert_history.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.kafka.subscriber import alert_events, latest_rollups
from dxpulse.kafka.topics import REPORTS
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import running_stack
from tests.integration.ingest_support import auth, new_token, report
from tests.integration.processes import all_alive, service_pids
from tests.integration.test_alerts import flag_rollup, key_of, publish

pytestmark = pytest.mark.integration

INDICATOR, PERIOD, SCOPE = "digital_tech_enterprises", "2025-H2", "provinces"
OUTAGE_S = 30.0
RECOVERY_S = 30.0
"""How soon after a dependency is back the ingest must accept reports again."""


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float) -> float:
    """Seconds until ``check()`` holds, failing with ``what`` after ``timeout_s``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout_s, what
        await asyncio.sleep(0.5)
    return time.monotonic() - started


LOAD_INDICATOR, LOAD_PERIOD = "digital_tech_enterprises", "2025-H1"


class Load:
    """Every province restating its count for one figure, straight to Kafka, as fast as Kafka takes it,
    so that the workers are busy sending when Kafka stops."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.provinces = sorted(
            default_registry().expected(
                ("provinces",), parse_period(LOAD_PERIOD, default_catalog()[LOAD_INDICATOR].period_type).end
            )
        )
        self.sent = 0
        self._stop = asyncio.Event()

    def _report(self, reporter: str, value: int) -> bytes:
        body = report(reporter, LOAD_INDICATOR, LOAD_PERIOD, {"kind": "count", "value": value})
        body["observed_at"] = datetime.now(UTC).isoformat()
        return json.dumps(body).encode()

    async def run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", request_timeout_ms=5_000)
        await producer.start()
        key = f"{LOAD_INDICATOR}|{LOAD_PERIOD}".encode()
        try:
            while not self._stop.is_set():
                # Kafka away: the sends fail, and the load goes on trying, as a busy producer would.
                try:
                    sends = [
                        await producer.send(REPORTS, key=key, value=self._report(reporter, self.sent + n))
                        for n, reporter in enumerate(self.provinces)
                    ]
                except KafkaError:
                    await asyncio.sleep(0.5)
                    continue
                await asyncio.gather(*sends, return_exceptions=True)
                self.sent += len(sends)
                await asyncio.sleep(0.01)
        finally:
            await producer.stop()

    async def close(self) -> int:
        """Stop, then send each province's final value; the figure those make."""
        self._stop.set()
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        key = f"{LOAD_INDICATOR}|{LOAD_PERIOD}".encode()
        try:
            for number, reporter in enumerate(self.provinces):
                await producer.send_and_wait(REPORTS, key=key, value=self._report(reporter, number))
        finally:
            await producer.stop()
        return sum(range(len(self.provinces)))

    async def settled_on(self, figure: int) -> bool:
        rollups = await latest_rollups(self.bootstrap)
        rollup = rollups.get(f"{LOAD_INDICATOR}|{LOAD_PERIOD}|provinces")
        return rollup is not None and rollup.numerator == figure


async def _after(value: bool) -> bool:
    return value


class Reporter:
    """province:01 sending a count for one figure, each report a new value."""

    def __init__(self, settings: StackSettings, token: str) -> None:
        self.settings = settings
        self.token = token
        self.value = 0
        self.ingest = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.ingest_port}", timeout=30)
        self.query = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.query_port}", timeout=30)

    async def send(self) -> int:
        """Send the next value; the status answered (never a 2xx unless Kafka has it)."""
        body = report("province:01", INDICATOR, PERIOD, {"kind": "count", "value": self.value + 1})
        body["observed_at"] = datetime.now(UTC).isoformat()
        try:
            response = await self.ingest.post("/v1/reports", json=body, headers=auth(self.token))
        except httpx.TransportError:
            return 0
        assert response.status_code in (202, 503), response.text
        if response.status_code == 202:
            self.value += 1
        return response.status_code

    async def accepted(self) -> bool:
        return await self.send() == 202

    async def rolled_up(self) -> bool:
        rollups = await latest_rollups(self.settings.kafka_bootstrap)
        figure = rollups.get(f"{INDICATOR}|{PERIOD}|{SCOPE}")
        return figure is not None and figure.numerator == self.value

    async def in_history(self) -> bool:
        try:
            response = await self.query.get(
                "/v1/rollups", params={"indicator": INDICATOR, "period": PERIOD, "scope": SCOPE}
            )
        except httpx.TransportError:
            return False
        if response.status_code != 200:
            assert response.status_code == 503, response.text
            return False
        items = response.json()["items"]
        return bool(items) and items[0]["rollup"]["numerator"] == self.value

    async def all_through(self, after: str) -> None:
        await _until(self.rolled_up, f"no rollup of the report sent after {after}", 120)
        await _until(self.in_history, f"the query API did not show the report sent after {after}", 120)

    async def close(self) -> None:
        await self.ingest.aclose()
        await self.query.aclose()


class AlertFlow:
    """A figure published straight to the rollup topic, now short of its target, now meeting it: each
    flip is an alert transition the alerts service must publish and the history must store."""

    SHORT = flag_rollup("emc_connection", {"ministry:GI"})
    MET = flag_rollup("emc_connection", set())

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.fingerprint = key_of(self.SHORT)
        self.expected: list[str] = []

    async def flip(self, after: str) -> None:
        """Publish the other figure; its transition reaches the alerts topic and alert_history."""
        firing = len(self.expected) % 2 == 0
        await publish(self.settings, self.SHORT if firing else self.MET)
        self.expected.append("firing" if firing else "resolved")
        await _until(self._published, f"no {self.expected[-1]} alert on the topic after {after}", 120)
        await _until(self._stored, f"no {self.expected[-1]} alert in alert_history after {after}", 120)

    async def _published(self) -> bool:
        events = await alert_events(self.settings.kafka_bootstrap)
        return [e.status for e in events if e.fingerprint == self.fingerprint] == self.expected

    async def _stored(self) -> bool:
        try:
            conn = await asyncpg.connect(self.settings.database_url)
        except (OSError, asyncpg.PostgresError):
            return False
        try:
            rows = await conn.fetch(
                "SELECT status FROM alert_history WHERE fingerprint = $1 ORDER BY changed_at",
                self.fingerprint,
            )
        finally:
            await conn.close()
        return [row["status"] for row in rows] == self.expected


async def test_services_recover_from_kafka_and_postgres_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The services inherit these: alerts fire and resolve within seconds of their figure, and the
    # query API answers without a read token (as in the session's pipeline).
    for name in ("DXPULSE_HOLD_DOWN_S", "DXPULSE_RESOLVE_HOLD_DOWN_S", "DXPULSE_REEVALUATE_INTERVAL_S"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("DXPULSE_QUERY_PUBLIC", "true")
    with running_stack(tmp_path, with_services=True) as settings:
        stack = Stack(settings, report=lambda _: None)
        before = service_pids(stack)
        reporter = Reporter(settings, await new_token(settings.database_url, "province:01"))
        alerts = AlertFlow(settings)
        try:
            await _until(reporter.accepted, "the first report was not accepted", 60)
            await reporter.all_through("the start")
            await alerts.flip("the start")

            load = Load(settings.kafka_bootstrap)
            loading = asyncio.create_task(load.run())
            await _until(lambda: _after(load.sent > 2_000), "the load did not start", 60)
            # Stopped while the load runs: the workers' producers are mid-send when the broker goes.
            await asyncio.to_thread(stack.stop_kafka)
            down_until = time.monotonic() + OUTAGE_S
            while time.monotonic() < down_until:
                assert await reporter.send() in (0, 503)
                await asyncio.sleep(1)
            await asyncio.to_thread(stack.start_kafka)
            await _until(reporter.accepted, f"not accepting {RECOVERY_S} s after Kafka came back", RECOVERY_S)
            await reporter.all_through("Kafka's restart")
            await alerts.flip("Kafka's restart")
            figure = await load.close()
            await loading
            await _until(lambda: load.settled_on(figure), "the figure under load is not exact", 180)

            stack.stop_postgres()
            await asyncio.sleep(OUTAGE_S)
            stack.start_postgres()
            await _until(
                reporter.accepted, f"not accepting {RECOVERY_S} s after PostgreSQL came back", RECOVERY_S
            )
            await reporter.all_through("PostgreSQL's restart")
            await alerts.flip("PostgreSQL's restart")
        finally:
            await reporter.close()
        after = service_pids(stack)
        assert after == before, "a service was restarted"
        assert all_alive(after), after

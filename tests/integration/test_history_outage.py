"""History in a process of its own: a PostgreSQL outage holds back neither the aggregator's rollups
nor, once it ends, history, which catches up by itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from dxpulse.domain.registry import default_registry
from dxpulse.kafka.subscriber import latest_rollups
from dxpulse.kafka.topics import REPORTS
from dxpulse.stack.config import AGGREGATE, HISTORY
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import running_stack
from schemas import FlagValue, Report
from schemas.events import report_key

pytestmark = pytest.mark.integration

KEY = "edw_connection|2024-H2|provinces"
BASE = datetime(2024, 12, 20, 9, 0, tzinfo=UTC)


PROVINCES = default_registry().expected_sorted(("provinces",), BASE.date())


def _flag(province: int) -> Report:
    """The ``province``-th province reports its system connected."""
    reporter = PROVINCES[province]
    return Report(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"history-outage|{reporter}"),
        reporter=reporter,
        indicator="edw_connection",
        period="2024-H2",
        observed_at=BASE + timedelta(minutes=province),
        value=FlagValue(value=True),
    )


async def _produce(bootstrap: str, reports: list[Report]) -> None:
    """As a local system's direct producer would: keyed indicator|period, acks=all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for report in reports:
            key = report_key(report.indicator, report.period).encode()
            await producer.send_and_wait(REPORTS, report.model_dump_json().encode(), key=key)
    finally:
        await producer.stop()


async def _eventually(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


async def _history(settings: StackSettings) -> tuple[set[str], int | None]:
    """The event ids in reporter_latest, and the provinces' figure (numerator) in rollup_current."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        ids = {str(row["event_id"]) for row in await conn.fetch("SELECT event_id FROM reporter_latest")}
        numerator = await conn.fetchval(
            "SELECT numerator FROM rollup_current WHERE indicator || '|' || period || '|' || scope = $1", KEY
        )
    finally:
        await conn.close()
    return ids, None if numerator is None else int(numerator)


async def _published(settings: StackSettings) -> float | None:
    rollup = (await latest_rollups(settings.kafka_bootstrap)).get(KEY)
    return None if rollup is None else rollup.numerator


async def _write_failures(settings: StackSettings) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{settings.history_web_port}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dxpulse_history_write_failures_total{")
    )


async def test_postgresql_outage_delays_history_but_not_the_rollups(tmp_path: Path) -> None:
    with running_stack(tmp_path) as settings:
        stack = Stack(settings, report=lambda _: None)
        specs = {spec.name: spec for spec in stack.service_specs()}
        stack.start_specs([specs[AGGREGATE], specs[HISTORY]], timeout_s=120)
        before, during = [_flag(p) for p in range(3)], [_flag(p) for p in range(3, 8)]

        await _produce(settings.kafka_bootstrap, before)

        async def history_has_before() -> bool:
            ids, numerator = await _history(settings)
            return {str(r.event_id) for r in before} <= ids and numerator == len(before)

        await _eventually("history to hold the first reports", history_has_before)

        stack.stop_postgres()
        await _produce(settings.kafka_bootstrap, during)

        # The aggregator publishes the figure resting on every report while PostgreSQL is down ...
        async def rollups_current() -> bool:
            return await _published(settings) == len(before) + len(during)

        await _eventually("the rollups of the reports sent during the outage", rollups_current)

        # ... and the history writer, alive, keeps trying to write them.
        async def writer_retrying() -> bool:
            return await _write_failures(settings) > 0

        await _eventually("the history writer to report failed writes", writer_retrying)
        assert stack.service_status(HISTORY).running

        stack.start_postgres()

        async def history_caught_up() -> bool:
            ids, numerator = await _history(settings)
            return {str(r.event_id) for r in [*before, *during]} <= ids and numerator == len(before) + len(
                during
            )

        await _eventually("history to catch up after the outage", history_caught_up)

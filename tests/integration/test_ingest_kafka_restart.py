"""The ingest's producer after Kafka fails it: stopped and started under load, or refusing a batch for
good. The ingest gets every partition back by itself, with no restart, answers 2xx only for what
Kafka has, says it is not ready meanwhile, and logs little."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import product
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from dxpulse.domain.registry import default_registry
from dxpulse.kafka.batches import keyed_partition
from dxpulse.kafka.topics import REPORTS, TOPICS
from dxpulse.stack.config import INGEST
from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import running_stack
from schemas.events import report_key
from tests.integration.ingest_support import (
    auth,
    ingest_client,
    ingest_settings,
    new_token,
    published_event_ids,
    report,
)

pytestmark = pytest.mark.integration

INDICATORS = ("emc_connection", "gov_reporting_connection", "edw_connection")
WORKERS_PER_PARTITION = 3
BATCH_WORKERS = 2
WARM_S = 10.0
OUTAGE_S = 30.0
BACK_WITHIN_S = 30.0
OUTAGE_LOG_LINES = 200


def _one_key_per_partition(partitions: int) -> dict[int, tuple[str, str]]:
    """An (indicator, period) whose key lands on each partition."""
    found: dict[int, tuple[str, str]] = {}
    for indicator, year, half in product(INDICATORS, range(2020, 2025), (1, 2)):
        key = report_key(indicator, f"{year}-H{half}").encode()
        found.setdefault(keyed_partition(key, list(range(partitions)), []), (indicator, f"{year}-H{half}"))
    assert len(found) == partitions, "not every partition has a key among these indicators and periods"
    return found


def _reporters(count: int) -> list[str]:
    """Provinces that may report every period of 2020-2024: one per sender, so none is rate limited."""
    provinces = default_registry().expected_sorted(("provinces",), date(2020, 6, 30))
    assert len(provinces) >= count
    return list(provinces[:count])


@dataclass
class Traffic:
    """What the ingest answered, per partition: when each 202 came, and every event id it said Kafka has."""

    accepted_at: dict[int, list[float]] = field(default_factory=dict)
    acknowledged: set[str] = field(default_factory=set)
    statuses: dict[int, dict[int, int]] = field(default_factory=dict)

    def answered(self, partition: int, status: int) -> None:
        counts = self.statuses.setdefault(partition, {})
        counts[status] = counts.get(status, 0) + 1
        if status == 202:
            self.accepted_at.setdefault(partition, []).append(time.monotonic())

    def accepted_since(self, instant: float) -> set[int]:
        return {p for p, times in self.accepted_at.items() if times and times[-1] >= instant}


def _observed() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


async def _send_singles(
    client: httpx.AsyncClient,
    token: str,
    reporter: str,
    key: tuple[str, str],
    partition: int,
    traffic: Traffic,
) -> None:
    indicator, period = key
    while True:
        body = report(reporter, indicator, period, observed_at=_observed())
        try:
            response = await client.post("/v1/reports", json=body, headers=auth(token))
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        assert response.status_code in (202, 503), response.text
        traffic.answered(partition, response.status_code)
        if response.status_code == 202:
            traffic.acknowledged.add(str(body["event_id"]))
        await asyncio.sleep(0.05 if response.status_code == 202 else 0.2)


async def _send_batches(
    client: httpx.AsyncClient, token: str, reporter: str, keys: dict[int, tuple[str, str]], traffic: Traffic
) -> None:
    """Batches of two reports per partition, as ``reporter``; a 503 batch still lists what Kafka took."""
    while True:
        bodies = [
            report(reporter, indicator, period, observed_at=_observed())
            for indicator, period in keys.values()
            for _ in range(2)
        ]
        try:
            response = await client.post("/v1/batches", json={"reports": bodies}, headers=auth(token))
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        assert response.status_code in (200, 503), response.text
        for result in response.json()["results"]:
            assert result["status"] in ("accepted", "unavailable"), result
            if result["status"] == "accepted":
                traffic.acknowledged.add(result["event_id"])
        await asyncio.sleep(0.3)


def _log_lines(path: Path) -> int:
    with path.open("rb") as log:
        return sum(1 for _ in log)


def _log_tail(path: Path, start: int, lines: int = 60) -> str:
    with path.open(errors="replace") as log:
        text = log.readlines()[start:]
    return "".join(text[:lines])


async def _readyz(client: httpx.AsyncClient) -> int:
    try:
        return (await client.get("/readyz")).status_code
    except httpx.TransportError:
        return 0


async def test_kafka_restart_under_load_every_partition_recovers(tmp_path: Path) -> None:
    with running_stack(tmp_path) as settings:
        stack = Stack(settings, report=lambda _: None)
        ingest = next(spec for spec in stack.service_specs() if spec.name == INGEST)
        started = stack.start_spec(ingest, timeout_s=120)
        log = stack.paths.log(INGEST)
        keys = _one_key_per_partition(settings.topic_partitions)
        reporters = _reporters(len(keys) * WORKERS_PER_PARTITION + BATCH_WORKERS)
        tokens = [await new_token(settings.database_url, reporter) for reporter in reporters]
        traffic = Traffic()
        url = f"http://127.0.0.1:{settings.ingest_port}"
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            deadline = time.monotonic() + 120
            while await _readyz(client) != 200:
                assert time.monotonic() < deadline, "the ingest did not become ready"
                await asyncio.sleep(0.5)
            singles = [p for p in keys for _ in range(WORKERS_PER_PARTITION)]
            load = [
                asyncio.create_task(_send_singles(client, tokens[n], reporters[n], keys[p], p, traffic))
                for n, p in enumerate(singles)
            ]
            load += [
                asyncio.create_task(_send_batches(client, tokens[n], reporters[n], keys, traffic))
                for n in range(len(singles), len(singles) + BATCH_WORKERS)
            ]
            try:
                warm = time.monotonic()
                await asyncio.sleep(WARM_S)
                while traffic.accepted_since(warm + WARM_S) != set(keys):
                    # A sender that failed (an answer other than 202 or 503) says why, not this wait.
                    failed = [task.exception() for task in load if task.done() and task.exception()]
                    assert failed == [], failed
                    assert time.monotonic() < warm + 60, f"not every partition accepted: {traffic.statuses}"
                    await asyncio.sleep(0.2)

                lines_before = _log_lines(log)
                await asyncio.to_thread(stack.stop_kafka)  # the load goes on meanwhile
                stopped = time.monotonic()
                ready_while_down: list[int] = []
                while time.monotonic() < stopped + OUTAGE_S:
                    await asyncio.sleep(1)
                    ready_while_down.append(await _readyz(client))
                lines_during = _log_lines(log) - lines_before
                await asyncio.to_thread(stack.start_kafka)
                back = time.monotonic()

                recovered_in: float | None = None
                ready_again: float | None = None
                while time.monotonic() < back + BACK_WITHIN_S + 30:
                    if recovered_in is None and traffic.accepted_since(back) == set(keys):
                        recovered_in = time.monotonic() - back
                    if ready_again is None and await _readyz(client) == 200:
                        ready_again = time.monotonic() - back
                    if recovered_in is not None and ready_again is not None:
                        break
                    await asyncio.sleep(0.2)
                missing = set(keys) - traffic.accepted_since(back)
            finally:
                for task in load:
                    task.cancel()
                results = await asyncio.gather(*load, return_exceptions=True)
            failures = [r for r in results if not isinstance(r, asyncio.CancelledError)]
            assert failures == [], failures
            assert stack.service_status(INGEST).pid == started.pid, "the ingest was restarted"

            tail = _log_tail(log, lines_before)
            assert (recovered_in if recovered_in is not None else math.inf) <= BACK_WITHIN_S, (
                f"partitions {sorted(missing)} answered no 202 within {BACK_WITHIN_S} s of Kafka's return"
                f" (recovered after {recovered_in} s); answers: {traffic.statuses}; log:\n{tail}"
            )
            # Not ready while Kafka is down, after the first seconds (until a probe or a send fails).
            assert 200 not in ready_while_down[3:], ready_while_down
            assert (ready_again if ready_again is not None else math.inf) <= BACK_WITHIN_S, ready_again
            assert lines_during < OUTAGE_LOG_LINES, f"{lines_during} log lines during the outage:\n{tail}"

        published = set(await published_event_ids(settings.kafka_bootstrap))
        assert traffic.acknowledged - published == set()


async def _set_report_topic_configs(bootstrap: str, **extra: str) -> None:
    """The report topic's configuration as created, plus ``extra`` (AlterConfigs replaces it whole)."""
    [spec] = [spec for spec in TOPICS if spec.name == REPORTS]
    configs = {"cleanup.policy": "delete", **spec.configs, **extra}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, REPORTS, configs=configs)])
    finally:
        await admin.close()


async def test_a_batch_refused_for_good_does_not_stop_its_partition(tmp_path: Path) -> None:
    """Kafka refuses a batch for good (here it is larger than the topic allows, for a moment).

    aiokafka's idempotent producer gave that batch its sequence numbers, which the broker never saw:
    every later batch to the partition was refused OutOfOrderSequenceNumber, until the process
    restarted. The ingest replaces the producer instead, and is not ready until the partition works.
    """
    with running_stack(tmp_path) as stack_settings:
        token = await new_token(stack_settings.database_url, "province:79")
        settings = ingest_settings(stack_settings, produce_timeout_s=5.0)
        partition = keyed_partition(
            report_key("emc_connection", "2024-H1").encode(), list(range(stack_settings.topic_partitions)), []
        )
        acknowledged: set[str] = set()
        async with ingest_client(settings) as client:
            first = report()
            assert (await client.post("/v1/reports", json=first, headers=auth(token))).status_code == 202
            acknowledged.add(str(first["event_id"]))

            await _set_report_topic_configs(stack_settings.kafka_bootstrap, **{"max.message.bytes": "1000"})
            deadline = time.monotonic() + 30
            while True:  # until the broker applies the limit: then the batch of 20 is refused whole
                batch = await client.post(
                    "/v1/batches", json={"reports": [report() for _ in range(20)]}, headers=auth(token)
                )
                results = batch.json()["results"]
                acknowledged |= {r["event_id"] for r in results if r["status"] == "accepted"}
                if batch.status_code == 503:
                    break
                assert time.monotonic() < deadline, "the broker never refused the large batch"
                await asyncio.sleep(0.5)
            assert {r["status"] for r in results} == {"unavailable"}, results
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["failing_partitions"] == [partition], not_ready.json()
            await _set_report_topic_configs(stack_settings.kafka_bootstrap)

            deadline = time.monotonic() + 30
            answers: list[int] = []
            while True:
                single = report()
                response = await client.post("/v1/reports", json=single, headers=auth(token))
                answers.append(response.status_code)
                if response.status_code == 202:
                    acknowledged.add(str(single["event_id"]))
                    break
                assert response.status_code == 503, response.text
                assert time.monotonic() < deadline, f"partition {partition} refused every report: {answers}"
                await asyncio.sleep(0.5)
            assert (await client.get("/readyz")).status_code == 200

        published = set(await published_event_ids(stack_settings.kafka_bootstrap))
        assert acknowledged - published == set()

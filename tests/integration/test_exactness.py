"""Exact rollups on the real Kafka: two workers sharing partitions, a crash, a restart, the 2025 map."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.rollup import Snapshot, compute_rollups
from dxpulse.domain.scenario import sample_reports
from dxpulse.domain.state_records import bucket_of
from dxpulse.kafka.subscriber import latest_rollups, read_records, read_topic
from dxpulse.kafka.topics import DEAD_LETTERS, REPORTS, changelog, ensure_topics, partition_of
from dxpulse.stack.config import service_env
from dxpulse.stack.process import live_pid
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import free_ports, running_stack
from schemas import DeadLetter, FlagValue, Report, Rollup
from schemas.events import report_key
from services.aggregate.app import STATE_TABLE

pytestmark = pytest.mark.integration

WORKER_ARGV = (sys.executable, "-m", "services.aggregate")
SETTLE_S = 180.0


@pytest.fixture
def kafka_only(tmp_path: Path) -> Iterator[tuple[StackSettings, Stack]]:
    """Kafka and PostgreSQL of this test alone (the rollup topic must hold only its own workers' output).

    No services: each test starts the aggregator workers it needs.
    """
    with running_stack(tmp_path) as settings:
        yield settings, Stack(settings)


def start_worker(stack: Stack, name: str, app_id: str, tmp: Path) -> int:
    """An aggregator process in consumer group ``app_id``; returns its web (metrics) port."""
    port = free_ports(1)[0]
    env = {
        **service_env(stack.settings, stack.paths),
        "DXPULSE_AGGREGATE_APP_ID": app_id,
        "DXPULSE_AGGREGATE_WEB_PORT": str(port),
        "DXPULSE_STATE_DIR": str(tmp / name),
        # A killed worker's partitions move to the survivor after this long.
        "DXPULSE_SESSION_TIMEOUT_S": "6",
    }
    stack.start_service(name, WORKER_ARGV, env, ready_port=port, timeout_s=120)
    return port


def kill_worker(stack: Stack, name: str) -> None:
    """SIGKILL, as a crash: no flush, no leaving the group, no offset commit."""
    record = live_pid(stack.paths.pid_file(name))
    assert record is not None, f"{name} is not running"
    os.kill(record.pid, signal.SIGKILL)
    stack.paths.pid_file(name).unlink(missing_ok=True)


async def group_stable_with(bootstrap: str, group: str, members: int) -> None:
    """Wait until ``group`` has settled with ``members`` consumers (so each holds partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + SETTLE_S
        while True:
            # Raw DescribeGroups v0 rows: (error, group, state, protocol type, protocol, members).
            try:
                responses = await admin.describe_consumer_groups([group])
            except KafkaError:  # e.g. the group coordinator of a fresh cluster is not elected yet
                responses = []
            rows = [row for response in responses for row in response.groups]
            if rows and rows[0][2] == "Stable" and len(rows[0][5]) == members:
                return
            assert time.monotonic() < deadline, f"group {group} never settled with {members} members: {rows}"
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def consumed_offsets(bootstrap: str, group: str) -> dict[int, tuple[int | None, int]]:
    """Per report partition: (offset the group committed, end offset); tells a stall from a loss."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [TopicPartition(REPORTS, p) for p in range(6)]
        ends = await consumer.end_offsets(partitions)
        return {
            tp.partition: (committed[tp].offset if tp in committed else None, ends[tp]) for tp in partitions
        }
    finally:
        await consumer.stop()
        await admin.close()


def processed(port: int) -> float:
    """Reports a worker has consumed so far, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "dxpulse_aggregate_reports_processed"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


async def gauge_shows(port: int, indicator: str, period: str, scope: str, value: float) -> None:
    """Wait until a worker's dxpulse_rollup_value gauge for the figure shows ``value``; fail after a while."""
    wanted = {"indicator": indicator, "period": period, "scope": scope}
    deadline = time.monotonic() + 60
    seen: float | None = None
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            seen = next(
                (
                    sample.value
                    for family in text_string_to_metric_families(text)
                    if family.name == "dxpulse_rollup_value"
                    for sample in family.samples
                    if sample.labels == wanted
                ),
                None,
            )
            if seen is not None and abs(seen - value) < 1e-9:
                return
            await asyncio.sleep(0.5)
    pytest.fail(f"dxpulse_rollup_value{wanted} is {seen}, never {value}")


async def produce(bootstrap: str, reports: Iterable[Report]) -> None:
    """Publish straight to the raw report topic, keyed as the pipeline requires."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [
            await producer.send(
                REPORTS,
                key=report_key(r.indicator, r.period).encode(),
                value=r.model_dump_json().encode(),
            )
            for r in reports
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def oracle(reports: Iterable[Report]) -> dict[str, Rollup]:
    """What the topic must end with: latest per reporter by (observed_at, event id), computed in one go."""
    catalog, registry = default_catalog(), default_registry()
    latest: dict[tuple[str, str], dict[str, Snapshot]] = {}
    for report in reports:
        snaps = latest.setdefault((report.indicator, report.period), {})
        incoming = Snapshot.of(report)
        if report.reporter not in snaps or snaps[report.reporter].order < incoming.order:
            snaps[report.reporter] = incoming
    expected: dict[str, Rollup] = {}
    for (indicator_id, period_label), snaps in latest.items():
        indicator = catalog[indicator_id]
        period = parse_period(period_label, indicator.period_type)
        for rollup in compute_rollups(indicator, period, snaps, registry, computed_at=_EPOCH):
            expected[rollup.key] = rollup
    return expected


_EPOCH = sample_reports()[0].observed_at


def figures(rollups: Mapping[str, Rollup]) -> dict[str, tuple[float, float | None, int, str]]:
    """What must match exactly: numerator, denominator, reporters reported and the revision."""
    return {k: (r.numerator, r.denominator, r.reporters_reported, r.revision) for k, r in rollups.items()}


async def settled_on(bootstrap: str, expected: Mapping[str, Rollup], group: str) -> dict[str, Rollup]:
    """Poll the rollup topic until its latest rollups for ``expected``'s keys equal it; fail after a while."""
    deadline = time.monotonic() + SETTLE_S
    want = figures(expected)
    while True:
        rollups = await latest_rollups(bootstrap)
        got = figures({k: rollups[k] for k in expected if k in rollups})
        if got == want:
            return rollups
        if time.monotonic() > deadline:
            wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
            offsets = await consumed_offsets(bootstrap, group)
            pytest.fail(
                f"rollups never matched the batch recomputation; (got, want): {wrong};"
                f" report partitions (committed, end): {offsets}"
            )
        await asyncio.sleep(1)


def restated(report: Report, connected: bool, minutes: int) -> Report:
    """A newer observation of the same reporter, indicator and period."""
    return report.model_copy(
        update={
            "event_id": uuid4(),
            "observed_at": report.observed_at + timedelta(minutes=minutes),
            "value": FlagValue(value=connected),
        }
    )


def emc_reports_2025_h2() -> list[Report]:
    """Every unit on the 2025 map reporting EMC for 2025-H2; three provinces not yet connected."""
    registry = default_registry()
    period_end = parse_period("2025-H2").end
    members = sorted(registry.expected(("provinces", "ministries_with_procedures"), period_end))
    observed = _EPOCH.replace(year=2025, month=12, day=1)
    return [
        Report(
            event_id=uuid4(),
            reporter=reporter,
            indicator="emc_connection",
            period="2025-H2",
            observed_at=observed,
            value=FlagValue(value=reporter not in {"province:04", "province:08", "province:11"}),
        )
        for reporter in members
    ]


async def test_two_workers_one_killed_mid_stream_still_give_exact_rollups(
    kafka_only: tuple[StackSettings, Stack], tmp_path: Path
) -> None:
    settings, stack = kafka_only
    app_id = "agg-two-workers"
    rng = random.Random(7)
    flags = [r for r in sample_reports() if r.value.kind == "flag"]
    first_half = sample_reports()[:190] + emc_reports_2025_h2()[:25]
    second_half = sample_reports()[190:] + emc_reports_2025_h2()[25:]
    # Restatements and duplicates are spread over both halves, and the order is shuffled.
    late = [restated(r, connected=not r.value.value, minutes=30) for r in rng.sample(flags, 10)]  # type: ignore[union-attr]
    stream_a = first_half + late[:5] + rng.sample(first_half, 40)
    stream_b = second_half + late[5:] + rng.sample(second_half + first_half, 60)
    rng.shuffle(stream_a)
    rng.shuffle(stream_b)

    port_a = start_worker(stack, "agg-a", app_id, tmp_path)
    port_b = start_worker(stack, "agg-b", app_id, tmp_path)
    try:
        # Both hold partitions before the reports come, so both do part of the work.
        await group_stable_with(settings.kafka_bootstrap, app_id, members=2)
        await produce(settings.kafka_bootstrap, stream_a)
        await settled_on(settings.kafka_bootstrap, oracle(stream_a), app_id)
        # Both workers did part of the work before one of them crashes.
        assert processed(port_a) > 0
        assert processed(port_b) > 0
        assert processed(port_a) + processed(port_b) >= len(stream_a)

        kill_worker(stack, "agg-b")
        await produce(settings.kafka_bootstrap, stream_b)
        everything = stream_a + stream_b
        rollups = await settled_on(settings.kafka_bootstrap, oracle(everything), app_id)
    finally:
        stack.stop_services(["agg-a", "agg-b"])

    emc_2025 = rollups["emc_connection|2025-H2|provinces"]
    assert (emc_2025.numerator, emc_2025.denominator) == (31, 34)
    assert rollups["emc_connection|2025-H2|ministries_with_procedures"].denominator == 16


async def test_restarted_worker_recovers_its_table_from_the_changelog_without_double_counting(
    kafka_only: tuple[StackSettings, Stack], tmp_path: Path
) -> None:
    settings, stack = kafka_only
    app_id = "agg-restart"
    reports = sample_reports()
    emc = [r for r in reports if r.indicator == "emc_connection"]
    start_worker(stack, "agg-r", app_id, tmp_path)
    try:
        await produce(settings.kafka_bootstrap, reports)
        await settled_on(settings.kafka_bootstrap, oracle(reports), app_id)
        stack.stop_service("agg-r")
        # A new state folder too: everything the worker knows must come back from the changelog.
        port = start_worker(stack, "agg-r", app_id, tmp_path / "fresh")
        # Before any new report, its gauges show the figures it has not published itself: re-read
        # (paced) from the rollup topic.
        await gauge_shows(port, "emc_connection", "2024-H1", "national", 82 / 84)

        # One province disconnects. From a recovered table that is 81/84; from an empty one, 0/84.
        change = restated(next(r for r in emc if r.reporter == "province:79"), connected=False, minutes=60)
        # And everything delivered once more changes nothing.
        await produce(settings.kafka_bootstrap, [*reports, change, *reports])
        rollups = await settled_on(settings.kafka_bootstrap, oracle([*reports, change]), app_id)
    finally:
        stack.stop_service("agg-r")

    # The documented example subscriber, run as a downstream team would, ends with the same figures.
    subscriber = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examples.subscribe_rollups",
        "--bootstrap",
        settings.kafka_bootstrap,
        "--idle-exit",
        "5",
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await asyncio.wait_for(subscriber.communicate(), timeout=120)
    assert subscriber.returncode == 0
    printed_last: dict[str, str] = {}
    for line in output.decode().splitlines():
        name, _, figure = line.partition(": ")
        printed_last[name] = figure
    assert printed_last["emc_connection 2024-H1 national"] == "0.964 (81/84), 84/84 reported"
    assert len(printed_last) == len(rollups)

    national = rollups["emc_connection|2024-H1|national"]
    assert (national.numerator, national.denominator) == (81, 84)
    assert rollups["emc_connection|2024-H1|provinces"].lagging == ["province:79"]
    gov = rollups["gov_reporting_connection|2024-H1|national"]
    assert (gov.numerator, gov.denominator) == (78, 85)


async def test_a_table_of_one_record_per_reporter_is_recovered_then_moved_to_buckets(
    kafka_only: tuple[StackSettings, Stack], tmp_path: Path
) -> None:
    """A changelog written before bucket records (one record per reporter) recovers the same figures,
    and the first write moves it to buckets and deletes the old records; a restart then reads those."""
    settings, stack = kafka_only
    app_id = "agg-migrate"
    emc = [r for r in sample_reports() if r.indicator == "emc_connection"]
    period_key = report_key("emc_connection", "2024-H1")
    table = changelog(app_id, STATE_TABLE)
    await ensure_topics(settings.kafka_bootstrap, settings.topic_partitions, extra=(table,))
    partition = partition_of(period_key.encode(), settings.topic_partitions)
    singles = {f"{period_key}|{r.reporter}": Snapshot.of(r).to_json() for r in emc}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:  # as faust writes a JSON table: JSON keys and values, on the report's partition
        for key, value in [(period_key, {"published": {}, "last_offset": None}), *singles.items()]:
            await producer.send_and_wait(
                table.name,
                key=json.dumps(key).encode(),
                value=json.dumps(value).encode(),
                partition=partition,
            )
    finally:
        await producer.stop()

    disconnected = restated(next(r for r in emc if r.reporter == "province:79"), connected=False, minutes=60)
    reconnected = restated(disconnected, connected=True, minutes=90)
    start_worker(stack, "agg-m", app_id, tmp_path)
    try:
        # From the recovered 84 snapshots, 81/84; from none, 0/1.
        await produce(settings.kafka_bootstrap, [disconnected])
        await settled_on(settings.kafka_bootstrap, oracle([*emc, disconnected]), app_id)
        stack.stop_service("agg-m")
        start_worker(stack, "agg-m", app_id, tmp_path / "fresh")
        await produce(settings.kafka_bootstrap, [reconnected])
        rollups = await settled_on(
            settings.kafka_bootstrap, oracle([*emc, disconnected, reconnected]), app_id
        )
    finally:
        stack.stop_service("agg-m")
    national = rollups["emc_connection|2024-H1|national"]
    assert (national.numerator, national.denominator) == (82, 84)

    records = await read_records(settings.kafka_bootstrap, table.name)
    written = [  # what the worker wrote after the records above
        (json.loads(r.key or b"null"), r.value)
        for r in records
        if r.partition == partition and r.offset > len(singles)
    ]
    # The first write: the period record, every bucket, and only then the old records' deletions,
    # so a crash in between loses no snapshot.
    expected_buckets = {f"{period_key}|{bucket_of(r.reporter)}" for r in emc}
    split = 1 + len(expected_buckets)
    first = written[: split + len(singles)]
    assert first[0][0] == period_key
    assert "latest" not in json.loads(first[0][1] or b"{}")  # so the restart read the buckets
    assert {key for key, value in first[1:split] if value is not None} == expected_buckets
    assert {key for key, value in first[split:] if value is None} == set(singles)


async def test_retired_province_reporting_for_2025_h2_is_dead_lettered_naming_its_successor(
    kafka_only: tuple[StackSettings, Stack], tmp_path: Path
) -> None:
    settings, stack = kafka_only
    retired = emc_reports_2025_h2()[0].model_copy(update={"event_id": uuid4(), "reporter": "province:58"})
    start_worker(stack, "agg-dl", "agg-dead-letters", tmp_path)
    try:
        await produce(settings.kafka_bootstrap, [retired])
        deadline = time.monotonic() + SETTLE_S
        while True:
            letters = [
                letter
                for _, letter in await read_topic(
                    settings.kafka_bootstrap, DEAD_LETTERS, DeadLetter.model_validate_json
                )
                if str(retired.event_id) in base64.b64decode(letter.original).decode()
            ]
            if letters or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    finally:
        stack.stop_service("agg-dl")
    assert letters, "the retired unit's report never reached the dead-letter topic"
    assert "province:56" in letters[0].detail
    assert letters[0].reason == "retired-reporter"

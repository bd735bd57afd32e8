"""The pipeline on three brokers while a partition leader, the active controller and a worker die."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from dxpulse.domain.scenario import sample_reports
from dxpulse.kafka.subscriber import read_records
from dxpulse.kafka.topics import REPORTS, partition_of
from dxpulse.postgres.token_store import temporary_tokens
from dxpulse.stack.config import service_env
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import running_stack
from schemas import CountValue, FlagValue, RatioValue, Report
from schemas.events import report_key
from tests.integration.processes import all_alive
from tests.integration.test_exactness import kill_worker, oracle, settled_on, start_worker

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

APP_ID = "cluster-faults"
PARTITIONS = 6
# Longer than a dead leader takes to be fenced (broker.session.timeout.ms, 9 s) and replaced: a
# report sent to its partitions waits out the election instead of being answered 503
# (docs/operations/cluster.md).
PRODUCE_TIMEOUT_S = 30
# After the cluster is whole again, the ingest's producer may still be reconnecting and refreshing
# its metadata (retry backoff and DXPULSE_KAFKA_RETRY_INTERVAL_S) before its next 2xx.
RECONNECT_GRACE_S = 15.0
DOWN_S = 20.0
SENT_TO = {
    partition_of(report_key(report.indicator, period).encode(), PARTITIONS)
    for report in sample_reports()
    if report.value.kind != "catalog"
    for period in ("2024-H1", "2024-H2")
}
"""The report partitions the restatements reach (all but one of the six)."""
QUORUM_LEADER_JAVA = Path(__file__).with_name("QuorumLeader.java")


@dataclass(frozen=True)
class Answer:
    """One request of the sender: the report, when it was sent, when answered, and the status."""

    report: Report
    sent: float
    answered: float
    status: int


@dataclass(frozen=True)
class Fault:
    """Brokers killed together: when, when started again, when every replica was back in sync."""

    nodes: list[int]
    killed: float
    restarted: float
    in_sync: float
    led: set[int]
    """The report partitions (of those the reporters send to) the killed brokers led."""


@dataclass
class Run:
    """What the run saw: the answers, the windows below min ISR, and the timings of each fault."""

    answers: list[Answer] = field(default_factory=list)
    faults: dict[str, Fault] = field(default_factory=dict)


class Reporters:
    """Local systems sending one report per request, retrying a 503 with the same event id.

    Besides the sample scenario, a stream of restatements: flags flipped by a newer observation,
    and now and then an older one that must lose.
    """

    def __init__(self, url: str, tokens: dict[str, str], run: Run, seed: int = 23) -> None:
        self.url = url
        self.tokens = tokens
        self.run = run
        self.queue: asyncio.Queue[Report] = asyncio.Queue()
        self.rng = random.Random(seed)
        self.restatable = [r for r in sample_reports() if r.value.kind in ("flag", "ratio", "count")]
        self.restating = asyncio.Event()
        self.in_flight = 0

    def restatement(self, n: int) -> Report:
        """A new observation of a scenario report, for 2024-H1 or 2024-H2 (six of the partitions'
        keys between them); every fifth one older than the report it restates."""
        base = self.rng.choice(self.restatable)
        value: FlagValue | RatioValue | CountValue
        if isinstance(base.value, FlagValue):
            value = FlagValue(value=self.rng.random() < 0.5)
        elif isinstance(base.value, RatioValue):
            denominator = base.value.denominator
            value = RatioValue(numerator=self.rng.randint(0, int(denominator)), denominator=denominator)
        else:
            value = CountValue(value=self.rng.randint(0, 5_000))
        shift = timedelta(seconds=-n if n % 5 == 0 else n)
        return base.model_copy(
            update={
                "event_id": uuid4(),
                "period": self.rng.choice(("2024-H1", "2024-H2")),
                "observed_at": base.observed_at + shift,
                "value": value,
            }
        )

    async def restate(self, per_s: float) -> None:
        n = 1
        while self.restating.is_set():
            self.queue.put_nowait(self.restatement(n))
            n += 1
            await asyncio.sleep(1 / per_s)

    async def send(self, client: httpx.AsyncClient) -> None:
        while True:
            report = await self.queue.get()
            self.in_flight += 1
            sent = time.monotonic()
            try:
                response = await client.post(
                    "/v1/reports",
                    content=report.model_dump_json(),
                    headers={"authorization": f"Bearer {self.tokens[report.reporter]}"},
                )
                status = response.status_code
            except httpx.TransportError:
                status = 0
            self.run.answers.append(Answer(report, sent, time.monotonic(), status))
            self.in_flight -= 1
            if status == 503 or status == 0:
                await asyncio.sleep(1)
                self.queue.put_nowait(report)

    async def drained(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.queue.empty() or self.in_flight:
            assert time.monotonic() < deadline, f"{self.queue.qsize()} reports never accepted"
            await asyncio.sleep(0.5)


@asynccontextmanager
async def sending(
    url: str, tokens: dict[str, str], run: Run, senders: int = 6, per_s: float = 10.0
) -> AsyncIterator[Reporters]:
    """The sample scenario and a stream of restatements, sent until the block ends."""
    reporters = Reporters(url, tokens, run)
    for report in sample_reports():
        reporters.queue.put_nowait(report)
    reporters.restating.set()
    async with httpx.AsyncClient(base_url=url, timeout=PRODUCE_TIMEOUT_S + 30) as client:
        tasks = [asyncio.create_task(reporters.send(client)) for _ in range(senders)]
        tasks.append(asyncio.create_task(reporters.restate(per_s)))
        try:
            yield reporters
        finally:
            reporters.restating.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    with running_stack(tmp_path_factory.mktemp("cluster-faults"), kafka_brokers=3) as settings:
        assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
        yield settings


def active_controller(settings: StackSettings) -> int:
    """The node id of the KRaft quorum's leader."""
    libs = settings.kafka_home / "libs"
    answer = subprocess.run(
        ["java", "-cp", f"{libs}/*", str(QUORUM_LEADER_JAVA), settings.kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(answer.stdout.split()[-1])


async def _describe(
    bootstrap: str, topics: Sequence[str] | None = None
) -> dict[tuple[str, int], tuple[int, set[int], int]]:
    """Per partition: (leader, in-sync replicas, replicas)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        names = list(topics) if topics is not None else sorted(await admin.list_topics())
        return {
            (t["topic"], p["partition"]): (p["leader"], set(p["isr"]), len(p["replicas"]))
            for t in await admin.describe_topics(names)
            for p in t["partitions"]
        }
    finally:
        await admin.close()


async def busiest_reports_partition(bootstrap: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(REPORTS, p) for p in range(PARTITIONS)])
        busiest: int = max(ends, key=lambda tp: ends[tp]).partition
        return busiest
    finally:
        await consumer.stop()


async def every_replica_in_sync(bootstrap: str, timeout_s: float = 180.0) -> float:
    """Wait until every partition of every topic has all its replicas in sync; the time it took."""
    started = time.monotonic()
    while True:
        try:
            layout = await _describe(bootstrap)
            lagging = repr({tp: isr for tp, (_, isr, replicas) in layout.items() if len(isr) < replicas})
        except KafkaError as error:  # a broker still starting answers with errors
            lagging = repr(error)
        if lagging == "{}":
            return time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"replicas never back in sync: {lagging}"
        await asyncio.sleep(1)


def first_acknowledged_after(run: Run, moment: float, partitions: set[int]) -> float:
    """Seconds from ``moment`` to the first 2xx of a report sent after it to ``partitions``."""
    answered = [
        a.answered
        for a in run.answers
        if a.sent >= moment
        and 200 <= a.status < 300
        and partition_of(report_key(a.report.indicator, a.report.period).encode(), PARTITIONS) in partitions
    ]
    assert answered, f"no report to partitions {partitions} acknowledged after the fault"
    return min(answered) - moment


async def test_reports_over_http_survive_a_leader_the_controller_and_a_worker_dying(
    cluster: StackSettings, tmp_path: Path
) -> None:
    stack = Stack(cluster, report=log.info)
    bootstrap = cluster.kafka_bootstrap
    env = {**service_env(cluster, stack.paths), "DXPULSE_PRODUCE_TIMEOUT_S": str(PRODUCE_TIMEOUT_S)}
    argv = (sys.executable, "-m", "services.ingest")
    stack.start_service("ingest", argv, env, ready_port=cluster.ingest_port, timeout_s=120)
    start_worker(stack, "agg-a", APP_ID, tmp_path)
    start_worker(stack, "agg-b", APP_ID, tmp_path)
    run = Run()
    try:
        await _faults(stack, tmp_path, run)
    finally:
        survived = all_alive(_pids(stack, SERVICES))
        on_topic = await _reports_on_topic(bootstrap)
        stack.stop_services(list(SERVICES))
    log.warning("cluster faults: %s", json.dumps(_summary(run, on_topic), sort_keys=True))

    assert survived, "the ingest or an aggregator worker died during the run"
    statuses = {a.status for a in run.answers}
    assert statuses <= {200, 202, 503}, f"unexpected answers: {statuses}"
    accepted = {a.report.event_id for a in run.answers if a.status in (200, 202)}
    assert accepted == {a.report.event_id for a in run.answers}, "a report was never accepted"
    missing = accepted - on_topic.keys()
    assert not missing, f"{len(missing)} reports answered 2xx are not on the reports topic"
    # 503 only while fewer than min.insync.replicas were in sync; never 2xx meanwhile.
    two_down = run.faults["two_down"]
    unavailable = [a for a in run.answers if a.status == 503]
    early = [a for a in unavailable if a.answered < two_down.killed]
    late = [a for a in unavailable if a.sent > two_down.in_sync + RECONNECT_GRACE_S]
    assert not early, f"{len(early)} answered 503 before fewer than 2 replicas were in sync"
    assert not late, f"{len(late)} answered 503 after the replicas were back in sync"
    acked = [
        a
        for a in run.answers
        if a.status in (200, 202) and a.sent > two_down.killed + 1 and a.answered < two_down.restarted
    ]
    assert not acked, f"{len(acked)} reports acknowledged while fewer than 2 replicas were in sync"
    await settled_on(bootstrap, oracle(on_topic.values()), APP_ID)


SERVICES = ("ingest", "agg-a", "agg-b")


async def _faults(stack: Stack, tmp_path: Path, run: Run) -> None:
    """Send while a leader, a worker, the controller, then two brokers at once die and come back."""
    cluster = stack.settings
    bootstrap = cluster.kafka_bootstrap
    url = f"http://127.0.0.1:{cluster.ingest_port}"
    reporters = {r.reporter for r in sample_reports()}
    async with (
        temporary_tokens(cluster.database_url, reporters, "cluster-faults") as tokens,
        sending(url, tokens, run) as senders,
    ):
        await asyncio.sleep(10)
        # 1. The broker leading the reports topic's busiest partition.
        busiest = await busiest_reports_partition(bootstrap)
        leader = (await _describe(bootstrap, [REPORTS]))[(REPORTS, busiest)][0]
        await _kill_and_restart(stack, run, "leader", [leader])
        # 2. An aggregator worker dies and comes back.
        kill_worker(stack, "agg-b")
        await asyncio.sleep(5)
        await asyncio.to_thread(start_worker, stack, "agg-b", APP_ID, tmp_path)
        # 3. The active controller.
        controller = await asyncio.to_thread(active_controller, cluster)
        await _kill_and_restart(stack, run, "controller", [controller])
        # 4. Two brokers at once: fewer than min.insync.replicas left, and no controller quorum.
        await _kill_and_restart(
            stack, run, "two_down", [node for node in range(1, 4) if node != controller][:2]
        )
        await asyncio.sleep(5)
        senders.restating.clear()
        await senders.drained(timeout_s=180)


async def _kill_and_restart(stack: Stack, run: Run, name: str, nodes: list[int]) -> None:
    """SIGKILL brokers ``nodes``, keep sending for a while, start them again and wait until they
    caught up."""
    bootstrap = stack.settings.kafka_bootstrap
    layout = await _describe(bootstrap, [REPORTS])
    led = {p for (_, p), (leader, _, _) in layout.items() if leader in nodes} & SENT_TO
    killed = time.monotonic()
    for node in nodes:
        assert stack.kill_kafka_broker(node)
    await asyncio.sleep(DOWN_S)
    restarted = time.monotonic()
    # start_kafka starts every broker that does not run, in parallel, and waits until all serve.
    await asyncio.to_thread(stack.start_kafka, 300)
    await every_replica_in_sync(bootstrap)
    run.faults[name] = Fault(nodes, killed, restarted, time.monotonic(), led)


def _pids(stack: Stack, names: Sequence[str]) -> dict[str, int | None]:
    return {name: stack.service_status(name).pid for name in names}


async def _reports_on_topic(bootstrap: str) -> dict[UUID, Report]:
    records = await read_records(bootstrap, REPORTS, timeout_s=120)
    reports = (Report.model_validate_json(record.value) for record in records if record.value is not None)
    return {report.event_id: report for report in reports}


def _summary(run: Run, on_topic: dict[UUID, Report]) -> dict[str, object]:
    """The figures of a run: requests, reports, answers, and per fault how the ingest fared."""
    summary: dict[str, object] = {
        "requests": len(run.answers),
        "reports_sent": len({a.report.event_id for a in run.answers}),
        "answered_2xx": sum(a.status in (200, 202) for a in run.answers),
        "answered_503": sum(a.status == 503 for a in run.answers),
        "reports_on_topic": len(on_topic),
    }
    for name, fault in run.faults.items():
        during = [a for a in run.answers if fault.killed <= a.answered <= fault.in_sync + RECONNECT_GRACE_S]
        acked = [a.answered - a.sent for a in during if a.status in (200, 202)]
        summary[name] = {
            "brokers": fault.nodes,
            "answered_503": sum(a.status == 503 for a in during),
            "slowest_2xx_s": round(max(acked, default=0.0), 1),
            "first_2xx_of_led_partitions_s": round(first_acknowledged_after(run, fault.killed, fault.led), 1)
            if fault.led
            else None,
            "restart_to_in_sync_s": round(fault.in_sync - fault.restarted, 1),
        }
    return summary

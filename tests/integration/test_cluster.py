"""A three-broker cluster: topics with 3 replicas, starts refused on a wrong layout, a broker killed -9."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from dxpulse.kafka.subscriber import read_records
from dxpulse.kafka.topics import (
    TOPICS,
    Replication,
    TopicLayoutError,
    TopicSpec,
    ensure_topics,
    min_insync_replicas,
)
from dxpulse.stack import Stack, StackSettings
from dxpulse.stack.testing import running_stack

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    with running_stack(tmp_path_factory.mktemp("cluster"), kafka_brokers=3) as settings:
        yield settings


@pytest.fixture
async def admin(cluster: StackSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> list[dict[str, Any]]:
    (described,) = await admin.describe_topics([topic])
    partitions: list[dict[str, Any]] = described["partitions"]
    return partitions


async def test_the_stack_topics_have_three_replicas_two_in_sync(
    cluster: StackSettings, admin: AIOKafkaAdminClient
) -> None:
    assert len((await admin.describe_cluster())["brokers"]) == 3
    for spec in TOPICS:
        assert {len(p["replicas"]) for p in await _partitions(admin, spec.name)} == {3}, spec.name
    names = [spec.name for spec in TOPICS]
    assert await min_insync_replicas(admin, names) == dict.fromkeys(names, 2)


async def test_a_topic_with_one_replica_refuses_a_start_that_asks_for_three(cluster: StackSettings) -> None:
    single = TopicSpec("cluster-test.single-replica")
    assert await ensure_topics(cluster.kafka_bootstrap, 6, extra=(single,)) == [single.name]  # RF 1
    with pytest.raises(TopicLayoutError) as refused:
        await ensure_topics(cluster.kafka_bootstrap, 6, extra=(single,), replication=Replication(3, 2))
    assert str(refused.value).splitlines()[0] == (
        f"topic {single.name} has replication factor 1 but DXPULSE_REPLICATION_FACTOR is 3: increase it"
        " with kafka-reassign-partitions.sh or recreate the topic"
    )


async def test_more_replicas_than_brokers_refuses_a_start(cluster: StackSettings) -> None:
    new = TopicSpec("cluster-test.four-replicas")
    with pytest.raises(TopicLayoutError) as refused:
        await ensure_topics(cluster.kafka_bootstrap, 6, extra=(new,), replication=Replication(4, 2))
    assert str(refused.value).splitlines()[0] == (
        "the Kafka cluster has 3 live brokers but DXPULSE_REPLICATION_FACTOR is 4: start more brokers or"
        " lower DXPULSE_REPLICATION_FACTOR"
    )


def test_a_worker_refuses_to_start_naming_the_problem(cluster: StackSettings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DXPULSE_KAFKA_BOOTSTRAP": cluster.kafka_bootstrap,
        "DXPULSE_DATABASE_URL": cluster.database_url,
        "DXPULSE_STATE_DIR": str(tmp_path),
        "DXPULSE_REPLICATION_FACTOR": "4",
        "DXPULSE_MIN_INSYNC_REPLICAS": "2",
    }
    worker = subprocess.run(
        [sys.executable, "-m", "services.history"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert worker.returncode == 1, worker.stderr
    lines = worker.stderr.splitlines()
    assert (
        "dxpulse-history refuses to start: the Kafka cluster has 3 live brokers but"
        " DXPULSE_REPLICATION_FACTOR is 4: start more brokers or lower DXPULSE_REPLICATION_FACTOR"
    ) in lines
    assert f"topic {TOPICS[0].name} has replication factor 3 but DXPULSE_REPLICATION_FACTOR is 4:" in (
        worker.stderr
    )
    assert "Traceback" not in worker.stderr


async def test_a_broker_killed_and_restarted_loses_no_acknowledged_write(
    cluster: StackSettings, admin: AIOKafkaAdminClient
) -> None:
    stack = Stack(cluster, report=log.info)
    topic = "cluster-test.replicated"
    await ensure_topics(cluster.kafka_bootstrap, 3, extra=(TopicSpec(topic),), replication=Replication(3, 2))
    # A dead broker's partitions wait for the controller to fence it (9 s by default): the request
    # timeout covers that, and acks=all waits for the 2 replicas left in sync.
    bootstrap = cluster.kafka_bootstrap
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, request_timeout_ms=30_000
    )
    await producer.start()
    try:
        sent = [f"before-{n}".encode() for n in range(60)]
        await asyncio.gather(*[await producer.send(topic, value, key=value) for value in sent])
        victim = (await _partitions(admin, topic))[0]["leader"]
        await asyncio.to_thread(stack.kill_kafka_broker, victim)
        assert not stack.broker_statuses()[victim - 1].running
        killed = time.monotonic()
        during = [f"during-{n}".encode() for n in range(60)]
        await asyncio.gather(*[await producer.send(topic, value, key=value) for value in during])
        log.info("writes acknowledged %.1f s after broker %d died", time.monotonic() - killed, victim)
        sent += during
    finally:
        await producer.stop()

    received = [record.value for record in await read_records(cluster.kafka_bootstrap, topic)]
    assert sorted(received) == sorted(sent)

    await asyncio.to_thread(stack.start_kafka_broker, victim)
    deadline = time.monotonic() + 60
    while not all(victim in p["isr"] for p in await _partitions(admin, topic)):
        assert time.monotonic() < deadline, f"broker {victim} did not rejoin the ISR of {topic}"
        await asyncio.sleep(0.5)
    assert stack.kafka_status().ready

"""The ingest's Kafka producer: connected in the background, so the API starts while Kafka is down."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from typing import Any, TypeAlias

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner, murmur2

log = logging.getLogger(__name__)

PRODUCE_LINGER_MS = 5
"""How long the producer waits to fill a batch: adds at most this to a single report's latency."""
PRODUCE_BATCH_BYTES = 256 * 1024


@functools.lru_cache(maxsize=1 << 16)
def _key_index(key: bytes, partitions: int) -> int:
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def keyed_partition(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default partitioner (murmur2, as the Java client and aiokafka), remembering each
    key's partition: reports are keyed ``indicator|period``, a few keys sent again and again, and
    aiokafka's pure-Python murmur2 was 7% of a batch's CPU."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[_key_index(key, len(all_partitions))]


class PartitionTurns:
    """Whose turn it is to hand a record batch to each partition, first come first served.

    aiokafka queues one batch per partition, and ``send_batch`` waits for the queued one to be
    drained in a loop whose timeout shrinks by the whole time waited on every wake: with dozens of
    requests waking together on each drain, they timed out within seconds (aiokafka 0.14). Taking
    turns here leaves one waiter per partition in that loop.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    def of(self, topic: str, partition: int) -> asyncio.Lock:
        return self._locks.setdefault((topic, partition), asyncio.Lock())


Handed: TypeAlias = "asyncio.Future[Any] | KafkaError | None"
"""Per message: the future of the batch carrying it, why it was not handed over, or None (not yet)."""


async def send_as_batches(
    producer: AIOKafkaProducer,
    topic: str,
    messages: Sequence[tuple[bytes, bytes]],
    turns: PartitionTurns,
    handed: list[Handed],
) -> None:
    """Hand many messages to the producer as one record batch per partition, built here.

    ``handed[i]`` becomes message i's batch future (done once Kafka acknowledged the whole batch)
    or why it was not handed over, as it happens: a caller whose wait ends early (a timeout) still
    knows which messages Kafka has. aiokafka's ``send`` builds a future, looks up metadata and
    partitions for every message: a third of a 500-report batch's CPU, and as much as the rest of
    the request. Keys go to the partitions ``send`` would choose (``keyed_partition``), in order.
    """
    try:
        partitions = sorted(await producer.partitions_for(topic))
    except KafkaError as error:  # the topic unknown or not allowed: none can go
        handed[:] = [error] * len(messages)
        return
    by_partition: dict[int, list[int]] = {}
    for index, (key, _) in enumerate(messages):
        by_partition.setdefault(partitions[_key_index(key, len(partitions))], []).append(index)
    for partition, indexes in by_partition.items():
        builder = producer.create_batch()
        in_builder: list[int] = []
        for index in indexes:
            key, value = messages[index]
            if len(key) + len(value) >= PRODUCE_BATCH_BYTES:
                # Too large to share a batch: alone, where aiokafka checks it against
                # max_request_size, after the batch before it (a partition's batches go in order).
                if in_builder:
                    await _submit(producer, topic, partition, builder, in_builder, handed, turns)
                    builder, in_builder = producer.create_batch(), []
                try:
                    handed[index] = await producer.send(topic, key=key, value=value, partition=partition)
                except KafkaError as error:
                    handed[index] = error
                continue
            if builder.append(key=key, value=value, timestamp=None) is None:  # full: send it
                await _submit(producer, topic, partition, builder, in_builder, handed, turns)
                builder, in_builder = producer.create_batch(), []
                builder.append(key=key, value=value, timestamp=None)  # a builder takes its first
            in_builder.append(index)
        if in_builder:
            await _submit(producer, topic, partition, builder, in_builder, handed, turns)


async def _submit(
    producer: AIOKafkaProducer,
    topic: str,
    partition: int,
    builder: Any,
    indexes: list[int],
    handed: list[Handed],
    turns: PartitionTurns,
) -> None:
    builder.close()  # nothing else joins it: its future answers for these messages only
    outcome: asyncio.Future[Any] | KafkaError
    try:
        async with turns.of(topic, partition):
            outcome = await producer.send_batch(builder, topic, partition=partition)
    except KafkaError as error:
        outcome = error
    for index in indexes:
        handed[index] = outcome


class KafkaLink:
    """Keeps trying to start a producer (acks=all, idempotent) until it is up.

    Once started, aiokafka reconnects by itself when the broker comes back; until the first
    start, ``producer`` is None and the API answers 503.
    """

    def __init__(self, bootstrap: str, request_timeout_s: float, retry_interval_s: float) -> None:
        self._bootstrap = bootstrap
        self._request_timeout_ms = int(request_timeout_s * 1000)
        self._retry_interval_s = retry_interval_s
        self.producer: AIOKafkaProducer | None = None
        self.turns = PartitionTurns()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="kafka-connect")

    async def _connect(self) -> None:
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=self._request_timeout_ms,
                # aiokafka keeps one produce request in flight per broker: with its defaults (no
                # linger, 16 KiB per partition) a batch of 500 reports waited for several round
                # trips. As bench's raw producer, the baseline ingest is measured against.
                linger_ms=PRODUCE_LINGER_MS,
                max_batch_size=PRODUCE_BATCH_BYTES,
                partitioner=keyed_partition,
            )
            starting = asyncio.ensure_future(producer.start())
            try:
                await asyncio.shield(starting)
            except (KafkaError, OSError) as error:
                log.warning("Kafka at %s not reachable (%r); retrying", self._bootstrap, error)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(self._retry_interval_s)
                continue
            except asyncio.CancelledError:
                # Shut down while connecting. A start cancelled mid-bootstrap leaves aiokafka's
                # bootstrap connection open with nothing to close it (aiokafka#715): let the start
                # end (within the request timeout), then close what it opened.
                with contextlib.suppress(Exception):
                    await starting
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            log.info("connected to Kafka at %s", self._bootstrap)
            self.producer = producer
            return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

"""Many messages to Kafka as one record batch per partition, built here rather than message by message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeAlias

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from dxpulse.kafka.topics import partition_of

BATCH_BYTES = 256 * 1024
"""A message at least this large (key and value) is sent alone rather than in a shared batch."""


def keyed_partition(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default partitioner (murmur2, as the Java client and aiokafka), each key's partition
    remembered (``partition_of``): aiokafka's own partitioner computes murmur2 for every message."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[partition_of(key, len(all_partitions))]


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


Message: TypeAlias = "tuple[bytes, bytes | None]"
"""A message's key and value (None: a tombstone, which compaction takes to delete the key)."""


async def send_as_batches(
    producer: AIOKafkaProducer,
    topic: str,
    messages: Sequence[Message],
    turns: PartitionTurns,
    handed: list[Handed],
    *,
    partitions: Sequence[int] | None = None,
) -> None:
    """Hand many messages to the producer as one record batch per partition, built here.

    ``handed[i]`` becomes message i's batch future (done once Kafka acknowledged the whole batch)
    or why it was not handed over, as it happens: a caller whose wait ends early (a timeout) still
    knows which messages Kafka has. aiokafka's ``send`` builds a future, looks up metadata and
    partitions for every message: a third of a 500-report batch's CPU, and as much as the rest of
    the request. Message i goes to ``partitions[i]`` if given, else to the partition ``send`` would
    choose for its key (``keyed_partition``); each partition's messages in order.
    """
    by_partition: dict[int, list[int]] = {}
    if partitions is None:
        try:
            known = sorted(await producer.partitions_for(topic))
        except KafkaError as error:  # the topic unknown or not allowed: none can go
            handed[:] = [error] * len(messages)
            return
        for index, (key, _) in enumerate(messages):
            by_partition.setdefault(known[partition_of(key, len(known))], []).append(index)
    else:
        for index, partition in enumerate(partitions):
            by_partition.setdefault(partition, []).append(index)
    for partition, indexes in by_partition.items():
        await _send_partition(producer, topic, partition, messages, indexes, handed, turns)


async def _send_partition(
    producer: AIOKafkaProducer,
    topic: str,
    partition: int,
    messages: Sequence[Message],
    indexes: list[int],
    handed: list[Handed],
    turns: PartitionTurns,
) -> None:
    """One partition's messages, in order. Once one is refused, the rest get the same error and are
    not handed over: a later message must never reach Kafka without an earlier one (a changelog's
    deletes without the records replacing them)."""

    def refuse_from(position: int, error: KafkaError) -> None:
        for index in indexes[position:]:
            handed[index] = error

    builder = producer.create_batch()
    in_builder: list[int] = []
    for position, index in enumerate(indexes):
        key, value = messages[index]
        if len(key) + len(value or b"") >= BATCH_BYTES:
            # Too large to share a batch: alone, where aiokafka checks it against
            # max_request_size, after the batch before it (a partition's batches go in order).
            if in_builder:
                refused = await _submit(producer, topic, partition, builder, in_builder, handed, turns)
                if refused is not None:
                    return refuse_from(position, refused)
                builder, in_builder = producer.create_batch(), []
            try:
                handed[index] = await producer.send(topic, key=key, value=value, partition=partition)
            except KafkaError as error:
                return refuse_from(position, error)
            continue
        if builder.append(key=key, value=value, timestamp=None) is None:  # full: send it
            refused = await _submit(producer, topic, partition, builder, in_builder, handed, turns)
            if refused is not None:
                return refuse_from(position, refused)
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
) -> KafkaError | None:
    """Hand a record batch over; its messages get its future, or the error (also returned)."""
    builder.close()  # nothing else joins it: its future answers for these messages only
    outcome: asyncio.Future[Any] | KafkaError
    try:
        async with turns.of(topic, partition):
            outcome = await producer.send_batch(builder, topic, partition=partition)
    except KafkaError as error:
        outcome = error
    for index in indexes:
        handed[index] = outcome
    return outcome if isinstance(outcome, KafkaError) else None

"""Reading a compacted topic as a new subscriber does, in chunks, paced, on the real Kafka."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dxpulse.kafka.subscriber import Pacer, latest_values, read_records, record_chunks
from dxpulse.stack.settings import StackSettings

pytestmark = pytest.mark.integration


async def _topic_with(bootstrap: str, messages: list[tuple[bytes, bytes | None]]) -> str:
    """A new three-partition topic holding ``messages`` (key, value or None for a tombstone)."""
    topic = f"subscriber-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, key=key, value=value) for key, value in messages])
    finally:
        await producer.stop()
    return topic


def _messages() -> list[tuple[bytes, bytes | None]]:
    """300 values over 20 keys; k3 ends deleted, k7 is deleted and then set again."""
    messages: list[tuple[bytes, bytes | None]] = [
        (f"k{i % 20}".encode(), f"v{i}".encode()) for i in range(300)
    ]
    messages.insert(250, (b"k7", None))
    messages.append((b"k3", None))
    return messages


async def test_latest_values_keeps_each_keys_last_value_and_drops_deleted_keys(
    pipeline: StackSettings,
) -> None:
    messages = _messages()
    topic = await _topic_with(pipeline.kafka_bootstrap, messages)
    rested: list[float] = []

    async def sleep(seconds: float) -> None:
        rested.append(seconds)

    paced = Pacer(0.25, sleep=sleep)
    latest = await latest_values(record_chunks(pipeline.kafka_bootstrap, topic, pacer=paced, chunk=20))

    expected: dict[bytes, bytes] = {}
    for key, value in messages:
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value
    assert latest == expected
    assert b"k3" not in latest
    assert latest[b"k7"] == b"v287"
    # 302 messages, at most 20 a chunk: a rest after each of at least 16 chunks.
    assert len(rested) >= 16
    assert all(seconds > 0 for seconds in rested)


async def test_chunks_are_bounded_and_together_are_the_whole_topic_in_order_per_partition(
    pipeline: StackSettings,
) -> None:
    messages = _messages()
    topic = await _topic_with(pipeline.kafka_bootstrap, messages)
    chunks = [chunk async for chunk in record_chunks(pipeline.kafka_bootstrap, topic, chunk=20)]
    assert all(0 < len(chunk) <= 20 for chunk in chunks)
    whole = await read_records(pipeline.kafka_bootstrap, topic)
    chunked = [r for chunk in chunks for r in chunk]
    for partition in range(3):
        assert [r.offset for r in chunked if r.partition == partition] == [
            r.offset for r in whole if r.partition == partition
        ]
    assert len(chunked) == len(whole) == len(messages)
    assert Counter((r.key, r.value) for r in whole) == Counter(messages)

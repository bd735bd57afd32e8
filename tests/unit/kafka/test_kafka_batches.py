"""send_as_batches: record batches per partition, in order, and what a caller learns when they fail."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from dxpulse.kafka.batches import Handed, PartitionTurns, keyed_partition, send_as_batches


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_keyed_partition_is_kafkas_default_partitioner(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    expected = DefaultPartitioner()(key, all_partitions, all_partitions)
    assert keyed_partition(key, all_partitions, all_partitions) == expected
    assert keyed_partition(key, all_partitions, []) == expected  # again, from the cache


class _Builder:
    """A record batch builder holding at most ``room`` messages."""

    def __init__(self, room: int = 1_000) -> None:
        self.messages: list[bytes | None] = []
        self.room = room

    def append(self, *, key: bytes, value: bytes | None, timestamp: None) -> object | None:
        if len(self.messages) == self.room:
            return None
        self.messages.append(value)
        return object()

    def close(self) -> None:
        pass


class _StuckAfterOneBatch:
    """A producer whose first record batch is handed over and every later one waits forever."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[bytes | None]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    def create_batch(self) -> _Builder:
        return _Builder()

    async def send_batch(self, batch: _Builder, topic: str, *, partition: int) -> asyncio.Future[None]:
        if self.batches:
            await asyncio.Event().wait()
        self.batches.append((partition, batch.messages))
        return asyncio.get_running_loop().create_future()


async def test_record_batches_handed_over_are_known_when_the_wait_ends_early() -> None:
    # A timeout while a later partition waits must not hide the batches Kafka already has: their
    # reports would be answered unavailable, sent again by the client, and published twice.
    keys = [b"a|2024", b"b|2024", b"c|2024", b"d|2024"]
    assert len({keyed_partition(k, [0, 1], [0, 1]) for k in keys}) == 2
    producer = _StuckAfterOneBatch()
    handed: list[Handed] = [None] * len(keys)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await send_as_batches(producer, "t", [(k, k) for k in keys], PartitionTurns(), handed)
    [(_, sent)] = producer.batches
    for key, outcome in zip(keys, handed, strict=True):
        if key in sent:
            assert isinstance(outcome, asyncio.Future), key
        else:
            assert outcome is None, key
    assert 0 < len(sent) < len(keys)


async def test_a_topic_kafka_refuses_refuses_every_message() -> None:
    class Refusing(_StuckAfterOneBatch):
        async def partitions_for(self, topic: str) -> set[int]:
            raise TopicAuthorizationFailedError()

    handed: list[Handed] = [None, None]
    await send_as_batches(Refusing(), "t", [(b"k", b"v"), (b"l", b"w")], PartitionTurns(), handed)
    assert all(isinstance(outcome, TopicAuthorizationFailedError) for outcome in handed)


class _RefusingPartitionOne(_StuckAfterOneBatch):
    """Batches of two; partition 1's first batch is refused, everything else is handed over."""

    def create_batch(self) -> _Builder:
        return _Builder(room=2)

    async def send_batch(self, batch: _Builder, topic: str, *, partition: int) -> asyncio.Future[None]:
        if partition == 1 and not any(p == 1 for p, _ in self.batches):
            self.batches.append((-1, batch.messages))  # refused: remembered apart
            raise KafkaTimeoutError()
        self.batches.append((partition, batch.messages))
        return asyncio.get_running_loop().create_future()


async def test_after_a_refusal_a_partition_hands_nothing_more_over() -> None:
    # The aggregator's changelog: a period record, buckets, then tombstones for the records they
    # replace. Were the first batch refused and a later one sent, Kafka would hold the deletes
    # without what replaces them.
    messages: list[tuple[bytes, bytes | None]] = [
        (b"p", b"period"),
        (b"p|#0", b"bucket 0"),
        (b"p|#1", b"bucket 1"),
        (b"p|old", None),
        (b"q", b"other partition"),
    ]
    producer = _RefusingPartitionOne()
    handed: list[Handed] = [None] * len(messages)
    await send_as_batches(producer, "t", messages, PartitionTurns(), handed, partitions=[1, 1, 1, 1, 0])
    assert producer.batches == [(-1, [b"period", b"bucket 0"]), (0, [b"other partition"])]
    assert all(isinstance(outcome, KafkaTimeoutError) for outcome in handed[:4])
    assert isinstance(handed[4], asyncio.Future)


async def test_named_partitions_take_the_place_of_the_keys() -> None:
    producer = _StuckAfterOneBatch()
    handed: list[Handed] = [None, None]
    await send_as_batches(
        producer, "t", [(b"a", b"1"), (b"b", None)], PartitionTurns(), handed, partitions=[1, 1]
    )
    assert producer.batches == [(1, [b"1", None])]
    assert handed[0] is handed[1]

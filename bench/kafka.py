"""Raw Kafka clients of the benchmarks: offsets, pre-loading, the raw baselines and a rollup watcher."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from dxpulse.kafka.security import security_from_environment
from dxpulse.kafka.topics import ROLLUPS
from schemas import Report

Advance = Callable[[int], None]


def _nothing(_: int) -> None:
    return None


@functools.cache
def security() -> dict[str, Any]:
    """TLS and SASL arguments of every bench client: ``DXPULSE_KAFKA_*``, PLAINTEXT unless set."""
    return security_from_environment().client_kwargs()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition → offset the next message will get."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **security())
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))  # fetches the topic's metadata
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **security())
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def commit_offsets(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Make consumer group ``group`` start at ``offsets``: a fresh worker skips earlier scenarios' data."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **security()
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in offsets])
        await consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
    finally:
        await consumer.stop()


def new_producer(bootstrap: str) -> AIOKafkaProducer:
    """The producer ingest uses: acks=all, idempotent."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=262_144,
        **security(),
    )


async def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes, bytes]], advance: Advance = _nothing
) -> tuple[int, float]:
    """Send every (key, value) with acks=all; returns (messages, seconds until the last ack)."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        count = 0
        pending: list[asyncio.Future[object]] = []
        started = time.perf_counter()
        for key, value in messages:
            pending.append(await producer.send(topic, value=value, key=key))
            count += 1
            if len(pending) >= 2_000:
                await asyncio.gather(*pending)
                advance(len(pending))
                pending.clear()
        await asyncio.gather(*pending)
        advance(len(pending))
        return count, time.perf_counter() - started
    finally:
        await producer.stop()


async def read_batches(
    bootstrap: str, topic: str, start: dict[int, int], count: int, batch: int
) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
    """Raw aiokafka: ``count`` messages of ``topic`` from ``start``, in lists of at most ``batch``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **security())
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in start])
        for p, offset in start.items():
            consumer.seek(TopicPartition(topic, p), offset)
        seen = 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1_000, max_records=batch)
            records = [record for records in batches.values() for record in records]
            if records:
                seen += len(records)
                yield records
    finally:
        await consumer.stop()


async def consume_and_decode(
    bootstrap: str, topic: str, start: dict[int, int], count: int, advance: Advance = _nothing
) -> float:
    """The aggregator's raw baseline: read ``count`` reports from ``start`` and decode each; seconds."""
    started: float | None = None
    async for records in read_batches(bootstrap, topic, start, count, 10_000):
        started = started or time.perf_counter()
        for record in records:
            Report.model_validate_json(record.value)
        advance(len(records))
    return time.perf_counter() - (started or time.perf_counter())


@dataclass
class Seen:
    """What the watcher saw of one rollup key."""

    revision: str
    latest_observed_at: str | None
    published_ms: int


@dataclass
class RollupWatcher:
    """Follows the rollups topic from given offsets, keeping every rollup with its publish time."""

    bootstrap: str
    start: dict[int, int]
    latest: dict[str, Seen] = field(default_factory=dict)
    history: list[tuple[str, Seen]] = field(default_factory=list)
    first_received: float | None = None
    keep_history: bool = False
    _consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> RollupWatcher:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20, **security()
        )
        await self._consumer.start()
        self._consumer.assign([TopicPartition(ROLLUPS, p) for p in self.start])
        for p, offset in self.start.items():
            self._consumer.seek(TopicPartition(ROLLUPS, p), offset)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self, timeout_ms: int = 200) -> int:
        """Read what has arrived; returns how many rollups."""
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=10_000)
        received = 0
        for records in batches.values():
            for record in records:
                if self.first_received is None:
                    self.first_received = time.perf_counter()
                body = json.loads(record.value)
                seen = Seen(body["revision"], body["latest_observed_at"], record.timestamp)
                key = record.key.decode()
                self.latest[key] = seen
                if self.keep_history:
                    self.history.append((key, seen))
                received += 1
        return received

    def missing(self, expected: dict[str, str]) -> int:
        """How many rollup keys do not show their expected revision yet."""
        return sum(
            1 for key, rev in expected.items() if (s := self.latest.get(key)) is None or s.revision != rev
        )

    async def until(self, expected: dict[str, str], deadline_s: float, advance: Advance = _nothing) -> float:
        """Poll until every key shows its expected revision; returns perf_counter() at that moment."""
        give_up = time.perf_counter() + deadline_s
        left = self.missing(expected)
        while left:
            if time.perf_counter() > give_up:
                raise TimeoutError(
                    f"{left} of {len(expected)} rollups still missing or not yet correct after"
                    f" {deadline_s:.0f} s; see the worker log"
                )
            await self.poll()
            now_left = self.missing(expected)
            advance(left - now_left)
            left = now_left
        return time.perf_counter()

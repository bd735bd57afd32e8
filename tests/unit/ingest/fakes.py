"""In-memory stand-ins for the ingest's Kafka producer and PostgreSQL store, for tests without servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from dxpulse.kafka.batches import keyed_partition
from services.ingest.kafka import KafkaLink
from services.ingest.store import EventKey


@dataclass(frozen=True)
class Produced:
    """A message Kafka acknowledged."""

    topic: str
    partition: int
    key: bytes
    value: bytes | None


class FakeBatch:
    """A record batch being built, as aiokafka's ``BatchBuilder``: full at ``capacity`` messages."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.messages: list[tuple[bytes, bytes | None]] = []
        self.closed = False

    def append(self, *, key: bytes, value: bytes | None, timestamp: int | None) -> int | None:
        if self.closed or len(self.messages) >= self.capacity:
            return None
        self.messages.append((key, value))
        return len(self.messages)

    def close(self) -> None:
        self.closed = True


class FakeCluster:
    """The producer's metadata, as ``KafkaLink.observe`` reads it."""

    def __init__(self, partitions: list[int]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.partitions)


class FakeSender:
    """aiokafka's sender, which ``KafkaLink`` asks whether it still runs (None: not started, alive)."""

    sender_task: asyncio.Task[None] | None = None


class FakeClient:
    def __init__(self, partitions: list[int]) -> None:
        self.cluster = FakeCluster(partitions)


class FakeProducer:
    """The parts of ``AIOKafkaProducer`` the ingest uses: ``send``, ``partitions_for``, ``create_batch``
    and ``send_batch``. Records what Kafka acknowledged in ``produced``.

    A partition in ``failing`` fails every batch sent to it once handed over (as aiokafka fails a
    batch it gave up on); one in ``refusing`` refuses the hand-over itself. While ``hold`` is on, no
    batch is acknowledged until ``release``.
    """

    def __init__(self, partitions: int = 6, batch_capacity: int = 1_000) -> None:
        self.partitions = list(range(partitions))
        self.batch_capacity = batch_capacity
        self.produced: list[Produced] = []
        self.failing: set[int] = set()
        self.refusing: set[int] = set()
        self.handed_batches = 0
        self.client = FakeClient(self.partitions)
        self._sender = FakeSender()
        self._holding = False
        self._held: list[tuple[asyncio.Future[Any], list[Produced]]] = []

    def partition_of(self, key: bytes) -> int:
        """The partition aiokafka's ``send`` (and ``send_as_batches``) puts ``key`` on."""
        return keyed_partition(key, self.partitions, self.partitions)

    async def partitions_for(self, topic: str) -> set[int]:
        return set(self.partitions)

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.batch_capacity)

    async def send(
        self, topic: str, *, key: bytes, value: bytes | None, partition: int | None = None
    ) -> asyncio.Future[Any]:
        chosen = self.partition_of(key) if partition is None else partition
        return self._hand_over(topic, chosen, [(key, value)])

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        return self._hand_over(topic, partition, batch.messages)

    def hold(self) -> None:
        """Acknowledge nothing until ``release``: sends stay in flight."""
        self._holding = True

    def release(self) -> None:
        self._holding = False
        held, self._held = self._held, []
        for future, messages in held:
            self._settle(future, messages)

    @property
    def in_flight(self) -> int:
        """Batches handed over and held, not acknowledged yet."""
        return len(self._held)

    def values(self) -> list[bytes | None]:
        return [message.value for message in self.produced]

    def _hand_over(
        self, topic: str, partition: int, messages: Iterable[tuple[bytes, bytes | None]]
    ) -> asyncio.Future[Any]:
        if partition in self.refusing:
            raise KafkaConnectionError(f"fake: partition {partition} refuses the hand-over")
        self.handed_batches += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        carried = [Produced(topic, partition, key, value) for key, value in messages]
        if self._holding:
            self._held.append((future, carried))
        else:
            self._settle(future, carried)
        return future

    def _settle(self, future: asyncio.Future[Any], carried: list[Produced]) -> None:
        if future.done():
            return
        partition = carried[0].partition
        if partition in self.failing:
            future.set_exception(KafkaTimeoutError(f"fake: partition {partition} fails its batches"))
        else:
            self.produced.extend(carried)
            future.set_result(None)


class FakeKafkaLink(KafkaLink):
    """A ``KafkaLink`` whose producer is a ``FakeProducer`` from the start, and that never connects:
    per-partition health and readiness are the real ones."""

    def __init__(self, producer: FakeProducer | None = None, *, request_timeout_s: float = 10.0) -> None:
        super().__init__("fake-kafka:9092", request_timeout_s=request_timeout_s, retry_interval_s=60.0)
        self.fake = producer if producer is not None else FakeProducer()
        self.producer = self.fake
        self.started = False
        self.stopped = False

    def disconnect(self) -> None:
        """As while Kafka is unreachable: no producer."""
        self.producer = None

    def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


class FakeStore:
    """Tokens and accepted event ids in memory, as ``services.ingest.store.Store`` keeps them in
    PostgreSQL; while ``down``, every call raises as a PostgreSQL that is down does."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self.tokens = dict(tokens or {})
        """Subject of each live token."""
        self.accepted_keys: set[EventKey] = set()
        self.recorded: list[list[EventKey]] = []
        self.lookups = 0
        self.pruned_before: list[datetime] = []
        self.down = False
        self.closed = False

    async def subject(self, token: str) -> str | None:
        self._check()
        self.lookups += 1
        return self.tokens.get(token)

    async def accepted(self, keys: Iterable[EventKey]) -> set[EventKey]:
        self._check()
        return self.accepted_keys.intersection(keys)

    async def record(self, keys: Iterable[EventKey]) -> None:
        self._check()
        mine = list(keys)
        if mine:
            self.recorded.append(mine)
            self.accepted_keys.update(mine)

    async def prune_accepted(self, before: datetime) -> int:
        self._check()
        self.pruned_before.append(before)
        return 0

    async def close(self) -> None:
        self.closed = True

    def _check(self) -> None:
        if self.down:
            raise ConnectionRefusedError("fake: PostgreSQL is down")

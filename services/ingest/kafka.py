"""The ingest's Kafka producer: connected in the background, watched per partition, replaced when broken."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTxnState,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.structs import TopicPartition

from dxpulse.faust_engine.clients import abandon, sender_alive
from dxpulse.faust_engine.versions import check_pinned_versions
from dxpulse.kafka.batches import BATCH_BYTES, Handed, PartitionTurns, keyed_partition
from dxpulse.kafka.security import KafkaSecurity
from dxpulse.kafka.topics import REPORTS

log = logging.getLogger(__name__)

PRODUCE_LINGER_MS = 5
"""How long the producer waits to fill a batch: adds at most this to a single report's latency."""
PRODUCE_BATCH_BYTES = BATCH_BYTES

FATAL_ERRORS: tuple[type[KafkaError], ...] = (
    OutOfOrderSequenceNumber,
    ProducerFenced,
    InvalidProducerEpoch,
    UnknownProducerId,
    InvalidProducerIdMapping,
    InvalidTxnState,
)
"""Errors after which the producer's id, epoch or sequence numbers no longer match the broker's."""

NOT_THE_PARTITION: tuple[type[KafkaError], ...] = (MessageSizeTooLargeError, ProducerClosed)
"""Refusals before a message is queued that say nothing of its partition: too large a message (the
sender's), or a producer stopped under the request (a replacement)."""

STUCK_AFTER_FAILURES = 3
"""Failed sends in a row, besides ``stuck_after_s``, before a partition counts as stuck."""


class Outcome(enum.IntEnum):
    """How sends to a partition ended, the worst last: a request's outcome on a partition is its worst."""

    SUCCEEDED = 0
    FAILED = 1
    """Not acknowledged in time, or refused at hand-over: Kafka down or slow, or the partition stuck."""
    FATAL = 2
    """A batch failed for good, or a fatal error: the partition is refused until the producer is replaced."""


@dataclass
class _Streak:
    """A partition's failed sends in a row with the current producer."""

    since: float
    failures: int = 0


class ProducerHealth:
    """Per partition, how the current producer's sends end: which partitions cannot be produced to,
    and when the producer must be replaced.

    aiokafka 0.14's idempotent producer retries every retriable error itself, for ever, and fails a
    batch only for good: a non-retriable broker error (OutOfOrderSequenceNumber, ...), or no leader
    known for the partition once the batch is older than the request timeout (after a Kafka restart).
    That batch already had its sequence numbers, which the broker never saw, so every later batch to
    the partition is refused OutOfOrderSequenceNumber, for as long as the process runs. Only a new
    producer (a new producer id, sequences from 0) sends there again. So a failed batch, a fatal
    error, or a partition whose sends keep failing while others succeed (``stuck_after_s``) ask for a
    new producer. A Kafka that is down fails every partition: that waits for Kafka, not a new producer.
    """

    def __init__(
        self,
        stuck_after_s: float,
        stuck_after_failures: int = STUCK_AFTER_FAILURES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stuck_after_s = stuck_after_s
        self.stuck_after_failures = stuck_after_failures
        self._clock = clock
        self._streaks: dict[int, _Streak] = {}
        self._succeeded_at: dict[int, float] = {}
        self._failed_at: dict[int, float] = {}

    def record(self, partition: int, outcome: Outcome) -> bool:
        """Take how a send to ``partition`` ended; True when the producer must be replaced."""
        now = self._clock()
        if outcome is Outcome.SUCCEEDED:
            self._streaks.pop(partition, None)
            self._failed_at.pop(partition, None)
            self._succeeded_at[partition] = now
            return False
        self._failed_at[partition] = now
        streak = self._streaks.setdefault(partition, _Streak(now))
        streak.failures += 1
        if outcome is Outcome.FATAL:
            return True
        return (
            streak.failures >= self.stuck_after_failures
            and now - streak.since >= self.stuck_after_s
            and any(at > streak.since for p, at in self._succeeded_at.items() if p != partition)
        )

    def replaced(self) -> None:
        """A new producer: what the old one did says nothing of it. The partitions stay failing (not
        ready) until a send to them succeeds, or ``clear`` says they answer."""
        self._streaks.clear()
        self._succeeded_at.clear()

    def failing(self) -> list[int]:
        """The partitions whose last send failed."""
        return sorted(self._failed_at)

    def quiet_for(self, partition: int) -> float:
        """Seconds since a send to ``partition`` last failed (infinite if it is not failing)."""
        failed = self._failed_at.get(partition)
        return math.inf if failed is None else self._clock() - failed

    def clear(self, partition: int) -> None:
        """``partition`` answers again (its leader is reachable), though no send has proved it yet."""
        self._failed_at.pop(partition, None)


def outcome_of(handed: Handed, sender_alive: bool = True) -> Outcome | None:
    """What a message's send says of its partition, from what it was handed as (see ``Handed``), once
    the request stopped waiting; None when nothing (a refusal of the message itself, a cancellation)."""
    if handed is None:
        return Outcome.FAILED  # not even handed over in time
    if isinstance(handed, KafkaError):
        if isinstance(handed, NOT_THE_PARTITION):
            return None
        if isinstance(handed, FATAL_ERRORS) or not sender_alive:
            return Outcome.FATAL
        return Outcome.FAILED
    if not handed.done():
        return Outcome.FAILED
    if handed.cancelled():
        return None
    # aiokafka fails a batch only once it has given up on it, after giving it its sequence numbers.
    return Outcome.FATAL if handed.exception() is not None else Outcome.SUCCEEDED


class KafkaLink:
    """Keeps a producer (acks=all, idempotent) to ``topic`` that can produce to every partition.

    Until the first producer starts, and while a broken one is replaced with Kafka unreachable,
    ``producer`` is None and the API answers 503. aiokafka reconnects by itself when the broker comes
    back; a producer it cannot bring back (see ``ProducerHealth``) is replaced by a new one here, and
    the old one gets the request timeout to deliver what it holds, then is stopped.
    """

    def __init__(
        self,
        bootstrap: str,
        request_timeout_s: float,
        retry_interval_s: float,
        *,
        topic: str = REPORTS,
        security: KafkaSecurity | None = None,
    ) -> None:
        check_pinned_versions()  # dxpulse.faust_engine.clients reaches into aiokafka's producer
        self._bootstrap = bootstrap
        self._security = security or KafkaSecurity()
        self._request_timeout_s = request_timeout_s
        self._retry_interval_s = retry_interval_s
        self.topic = topic
        self.producer: AIOKafkaProducer | None = None
        self.turns = PartitionTurns()
        self.health = ProducerHealth(stuck_after_s=request_timeout_s)
        self.reachable = True
        """Whether Kafka answered the last metadata request (``_probe``) or send."""
        self._replace = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_producer(), name="kafka-producer")
        self._prober = asyncio.create_task(self._probe(), name="kafka-probe")

    async def stop(self) -> None:
        for task in (self._prober, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await self._retire(producer, grace_s=self._request_timeout_s)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    @property
    def replacing(self) -> bool:
        """Whether the producer in use is to be replaced (a new one is starting, or Kafka is awaited)."""
        return self._replace.is_set()

    def not_ready(self) -> dict[str, Any] | None:
        """Why not every report can be accepted now (the body of /readyz's 503), or None if it can."""
        if self.producer is None:
            return {"status": "waiting for Kafka", "reason": f"not connected to Kafka at {self._bootstrap}"}
        if not self.reachable:
            return {"status": "not ready", "reason": f"Kafka at {self._bootstrap} does not answer"}
        failing = self.health.failing()
        if failing:
            return {
                "status": "not ready",
                "reason": "Kafka does not acknowledge reports sent to these partitions",
                "topic": self.topic,
                "failing_partitions": failing,
            }
        return None

    def observe(self, producer: AIOKafkaProducer, keys: Sequence[bytes], handed: Sequence[Handed]) -> None:
        """Take what became of sending messages keyed ``keys`` to ``topic`` with ``producer``, as the
        request answers: ``handed[i]`` is message i's (see ``Handed``). A batch still unacknowledged
        is counted as failed now, and again when it ends."""
        if not self._in_use(producer):
            return  # a retired producer's troubles are over
        partitions = producer.client.cluster.partitions_for_topic(self.topic)
        if not partitions:
            return
        known = sorted(partitions)
        alive = sender_alive(producer)
        worst: dict[int, Outcome] = {}
        later: dict[asyncio.Future[Any], int] = {}
        for key, outcome in zip(keys, handed, strict=True):
            partition = keyed_partition(key, known, known)
            found = outcome_of(outcome, alive)
            if found is not None:
                worst[partition] = max(found, worst.get(partition, Outcome.SUCCEEDED))
            if isinstance(outcome, asyncio.Future) and not outcome.done():
                later[outcome] = partition
        for partition, found in worst.items():
            self._record(partition, found)
        for future, partition in later.items():
            future.add_done_callback(functools.partial(self._ended, producer, partition))

    def _in_use(self, producer: AIOKafkaProducer) -> bool:
        return producer is self.producer

    def _ended(self, producer: AIOKafkaProducer, partition: int, future: asyncio.Future[Any]) -> None:
        found = outcome_of(future)
        if found is not None and self._in_use(producer):
            self._record(partition, found)

    def _record(self, partition: int, outcome: Outcome) -> None:
        if outcome is Outcome.SUCCEEDED:
            self.reachable = True
        if self.health.record(partition, outcome) and not self._replace.is_set():
            how = "refuses" if outcome is Outcome.FATAL else "keeps failing on"
            log.warning(
                "the Kafka producer %s partition %d of %s: replacing it with a new one",
                how,
                partition,
                self.topic,
            )
            self._replace.set()

    async def _keep_producer(self) -> None:
        """Start a producer, and another whenever the one in use must be replaced."""
        while True:
            producer = await self._new_producer()
            if producer is None:
                # Kafka unreachable: a producer that had to be replaced is of no more use meanwhile,
                # and without one requests are answered 503 at once rather than after the timeout.
                # It goes at once: it can deliver nothing, and aiokafka's sender spins through
                # metadata requests while a partition it holds batches for has no leader.
                if self.producer is not None:
                    self._retire_later(self.producer, grace_s=0)
                    self.producer = None
                await asyncio.sleep(self._retry_interval_s)
                continue
            old, self.producer = self.producer, producer
            self.health.replaced()
            self.reachable = True
            self._replace.clear()
            if old is None:
                log.info("connected to Kafka at %s", self._bootstrap)
            else:
                log.info("replaced the Kafka producer")
                self._retire_later(old, grace_s=self._request_timeout_s)
            await self._replace.wait()

    async def _new_producer(self) -> AIOKafkaProducer | None:
        """A started producer, or None if Kafka is not reachable."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            **self._security.client_kwargs(),
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(self._request_timeout_s * 1000),
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
            return None
        except asyncio.CancelledError:
            # Shut down while connecting. A start cancelled mid-bootstrap leaves aiokafka's
            # bootstrap connection open with nothing to close it (aiokafka#715): let the start
            # end (within the request timeout), then close what it opened.
            with contextlib.suppress(Exception):
                await starting
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        return producer

    def _retire_later(self, producer: AIOKafkaProducer, grace_s: float) -> None:
        task = asyncio.create_task(self._retire(producer, grace_s), name="kafka-producer-retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, producer: AIOKafkaProducer, grace_s: float) -> None:
        """Stop a producer no longer handed reports, once it has delivered what it holds or ``grace_s``
        has passed (the request timeout: the requests waiting for its batches have given up by then)."""
        stopping = asyncio.ensure_future(producer.stop())
        done, _ = await asyncio.wait([stopping], timeout=grace_s)
        if not done:
            # Kafka takes none of its batches (down, or refusing them), and aiokafka's stop waits
            # for all of them. Its sender stops (with its requests in flight), then the batches it
            # holds fail: their requests were answered 503, and stop returns.
            await abandon(producer, "the producer was replaced")
        try:
            await stopping
        except Exception as error:  # stopped all the same: nothing more to do with it
            log.debug("stopping a replaced Kafka producer: %r", error)

    async def _probe(self) -> None:
        """Every retry interval, ask Kafka for metadata with the producer's connection.

        A Kafka that does not answer makes the ingest not ready even with no report to send. A failing
        partition whose leader answers, and whose last failed send is a request timeout old, counts
        as working again: a load balancer sends no request to a not-ready ingest to prove it.
        """
        while True:
            await asyncio.sleep(self._retry_interval_s)
            producer = self.producer
            if producer is None:
                continue
            try:
                async with asyncio.timeout(self._request_timeout_s):
                    answered = bool(await producer.client.force_metadata_update())
            except (TimeoutError, KafkaError, OSError):
                answered = False
            if not self._in_use(producer):
                continue
            self.reachable = answered
            if not answered:
                continue
            for partition in self.health.failing():
                if self.health.quiet_for(partition) < self._request_timeout_s:
                    continue
                leader = producer.client.cluster.leader_for_partition(TopicPartition(self.topic, partition))
                if leader is not None and leader >= 0 and await producer.client.ready(leader):
                    self.health.clear(partition)

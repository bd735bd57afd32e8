"""The ingest's view of its producer per partition: what a send's end says, readiness, when to replace it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)

from dxpulse.kafka.batches import keyed_partition
from services.ingest.kafka import KafkaLink, Outcome, ProducerHealth, outcome_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_fatal_failure_asks_for_a_new_producer_at_once(clock: Clock) -> None:
    health = ProducerHealth(stuck_after_s=10, clock=clock)
    assert health.record(3, Outcome.FATAL)
    assert health.failing() == [3]


def test_kafka_down_fails_every_partition_and_waits_for_kafka_not_a_new_producer(clock: Clock) -> None:
    health = ProducerHealth(stuck_after_s=10, clock=clock)
    for _ in range(20):
        for partition in range(6):
            assert not health.record(partition, Outcome.FAILED)
        clock.now += 5
    assert health.failing() == list(range(6))


def test_a_partition_failing_while_others_succeed_is_stuck_after_a_while_and_a_few_failures(
    clock: Clock,
) -> None:
    health = ProducerHealth(stuck_after_s=10, stuck_after_failures=3, clock=clock)
    assert not health.record(2, Outcome.FAILED)
    clock.now += 1
    health.record(1, Outcome.SUCCEEDED)
    assert not health.record(2, Outcome.FAILED)
    clock.now += 20
    assert health.record(2, Outcome.FAILED)  # third failure, 21 s after the first, 1 working since


def test_not_stuck_before_enough_failures_or_time(clock: Clock) -> None:
    health = ProducerHealth(stuck_after_s=10, stuck_after_failures=3, clock=clock)
    health.record(2, Outcome.FAILED)
    health.record(1, Outcome.SUCCEEDED)
    clock.now += 1
    assert not health.record(2, Outcome.FAILED)
    assert not health.record(2, Outcome.FAILED)  # three failures, but within 1 s
    clock.now += 30
    health.record(2, Outcome.SUCCEEDED)
    assert not health.record(2, Outcome.FAILED)  # a success ended that streak


def test_a_success_before_the_streak_says_nothing_of_the_producer_now(clock: Clock) -> None:
    health = ProducerHealth(stuck_after_s=10, stuck_after_failures=3, clock=clock)
    health.record(1, Outcome.SUCCEEDED)
    clock.now += 1
    for _ in range(3):
        assert not health.record(2, Outcome.FAILED)
        clock.now += 10


def test_a_success_ends_the_failing(clock: Clock) -> None:
    health = ProducerHealth(stuck_after_s=10, clock=clock)
    health.record(4, Outcome.FAILED)
    health.record(5, Outcome.FATAL)
    health.record(4, Outcome.SUCCEEDED)
    assert health.failing() == [5]


def test_a_new_producer_starts_afresh_but_failing_partitions_stay_until_proved(clock: Clock) -> None:
    health = ProducerHealth(stuck_after_s=10, stuck_after_failures=2, clock=clock)
    health.record(1, Outcome.SUCCEEDED)
    clock.now += 1
    health.record(2, Outcome.FAILED)
    clock.now += 20
    health.replaced()
    assert health.failing() == [2]
    assert not health.record(2, Outcome.FAILED)  # a new streak, and no partition has worked since


def test_quiet_for_and_clear(clock: Clock) -> None:
    health = ProducerHealth(stuck_after_s=10, clock=clock)
    assert health.quiet_for(0) == float("inf")
    health.record(0, Outcome.FAILED)
    clock.now += 7
    assert health.quiet_for(0) == 7
    health.clear(0)
    assert health.failing() == []


@pytest.mark.parametrize(
    ("handed", "sender_alive", "expected"),
    [
        (None, True, Outcome.FAILED),
        (KafkaTimeoutError(), True, Outcome.FAILED),
        (KafkaError("any"), True, Outcome.FAILED),
        (KafkaError("the sender died"), False, Outcome.FATAL),
        (OutOfOrderSequenceNumber(), True, Outcome.FATAL),
        (ProducerFenced(), True, Outcome.FATAL),
        (UnknownProducerId(), True, Outcome.FATAL),
        (MessageSizeTooLargeError(), True, None),
        (ProducerClosed(), True, None),
    ],
)
def test_what_a_refusal_at_hand_over_says(handed: Any, sender_alive: bool, expected: Outcome | None) -> None:
    assert outcome_of(handed, sender_alive) is expected


async def test_what_a_batch_future_says() -> None:
    loop = asyncio.get_running_loop()
    pending, acked, failed, cancelled = (loop.create_future() for _ in range(4))
    acked.set_result(None)
    # A batch expired with no leader known, after getting its sequence numbers.
    failed.set_exception(LeaderNotAvailableError())
    cancelled.cancel()
    assert outcome_of(pending) is Outcome.FAILED
    assert outcome_of(acked) is Outcome.SUCCEEDED
    assert outcome_of(failed) is Outcome.FATAL
    assert outcome_of(cancelled) is None


def _fake_producer(partitions: int, sender_task: Any = None) -> Any:
    """As much of an AIOKafkaProducer as ``KafkaLink.observe`` reads."""
    cluster = SimpleNamespace(partitions_for_topic=lambda topic: set(range(partitions)))
    return SimpleNamespace(
        client=SimpleNamespace(cluster=cluster), _sender=SimpleNamespace(sender_task=sender_task)
    )


def _key_for(partition: int, partitions: int) -> bytes:
    for n in range(1000):
        key = f"indicator|{n}".encode()
        if keyed_partition(key, list(range(partitions)), []) == partition:
            return key
    raise AssertionError(partition)


async def test_the_link_is_not_ready_without_a_producer_nor_while_a_partition_fails() -> None:
    link = KafkaLink("127.0.0.1:1", request_timeout_s=10, retry_interval_s=1)
    assert link.not_ready() == {
        "status": "waiting for Kafka",
        "reason": "not connected to Kafka at 127.0.0.1:1",
    }
    producer = link.producer = _fake_producer(6)
    loop = asyncio.get_running_loop()
    acked, late = loop.create_future(), loop.create_future()
    acked.set_result(None)
    link.observe(producer, [_key_for(0, 6), _key_for(4, 6)], [acked, late])
    assert link.not_ready() == {
        "status": "not ready",
        "reason": "Kafka does not acknowledge reports sent to these partitions",
        "topic": "dxpulse.reports.v1",
        "failing_partitions": [4],
    }
    assert not link.replacing
    # The batch the request stopped waiting for fails for good later: the producer is replaced.
    late.set_exception(OutOfOrderSequenceNumber())
    await asyncio.sleep(0)
    assert link.replacing


async def test_the_link_ignores_what_a_replaced_producer_did() -> None:
    link = KafkaLink("127.0.0.1:1", request_timeout_s=10, retry_interval_s=1)
    old = _fake_producer(6)
    link.producer = _fake_producer(6)
    link.observe(old, [_key_for(1, 6)], [OutOfOrderSequenceNumber()])
    assert link.not_ready() is None
    assert not link.replacing


async def test_a_dead_sender_asks_for_a_new_producer() -> None:
    loop = asyncio.get_running_loop()
    dead = loop.create_future()
    dead.set_result(None)
    link = KafkaLink("127.0.0.1:1", request_timeout_s=10, retry_interval_s=1)
    producer = link.producer = _fake_producer(6, sender_task=dead)
    link.observe(producer, [_key_for(2, 6)], [KafkaError("Unexpected error during batch delivery")])
    assert link.replacing

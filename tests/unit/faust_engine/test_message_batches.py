"""MessageBatches: a batch is what arrived while the previous one was processed, acked only once processed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP, ConsumerMessage, Message

from dxpulse.faust_engine.batches import MessageBatches, behind_on, start_inline
from dxpulse.faust_engine.support import _held_offsets, raw_topic, take_batches

TOPIC = "dxpulse.reports.v1"
REPORTS = TP(TOPIC, 0)


def message(offset: int, generation: int = 0) -> Message:
    """A report message as faust's aiokafka driver makes it: its final ack is the consumer's."""
    value = str(offset).encode()
    return ConsumerMessage(
        TOPIC, 0, offset, 0.0, 0, None, b"k", value, None, tp=REPORTS, generation_id=generation
    )


@pytest.fixture
async def app(app: faust.App) -> faust.App:
    """The unit tests' worker app (conftest), with flow resumed as at the end of a rebalance:
    faust starts suspended. Async, as conftest's: a sync fixture here made the batch tests hang
    once another module had made an app on a loop of its own."""
    app.flow_control.resume()
    return app


class Worker:
    """Takes batches as an aggregator does; each batch is held until the test releases it."""

    def __init__(self, batches: MessageBatches) -> None:
        self.batches = batches
        self.taken: list[list[int]] = []
        self.unacked_when_taken: list[bool] = []
        self.release = asyncio.Event()
        self.release.set()
        self.grew = asyncio.Event()
        self.fail_next = False
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with contextlib.aclosing(aiter(self.batches)) as taken:  # as the aggregator does
            await self._take(taken)

    async def _take(self, taken: AsyncIterator[list[Message]]) -> None:
        async for batch in taken:
            self.taken.append([m.offset for m in batch])
            self.unacked_when_taken.append(not any(m.acked for m in batch))
            self.grew.set()
            await self.release.wait()
            if self.fail_next:
                raise RuntimeError("processing failed")

    async def holding_first(self, batches: MessageBatches) -> None:
        """Deliver message 0 and return once its batch is taken and held."""
        self.release.clear()
        batches.deliver(message(0))
        await self.until(1)

    def values(self) -> list[int]:
        return [offset for batch in self.taken for offset in batch]

    async def until(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.values()) < count:
                self.grew.clear()
                await self.grew.wait()


async def running(batches: MessageBatches) -> AsyncIterator[Worker]:
    worker = Worker(batches)
    worker.task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.task.cancel()
        await asyncio.gather(worker.task, return_exceptions=True)


def batches_of(
    app: faust.App, max_: int, linger_s: float = 0.0, behind: Callable[[], bool] = lambda: False
) -> MessageBatches:
    return take_batches(app, raw_topic(app, TOPIC), max_, linger_s=linger_s, behind=behind)


async def test_the_topic_is_subscribed_and_acked_as_an_agents(app: faust.App) -> None:
    batches_of(app, 10)
    conductor: Any = app.topics
    await conductor._update_indices()  # what the conductor does when it subscribes
    assert TOPIC in conductor._topic_name_index
    assert app.topics.acks_enabled_for(TOPIC)
    with pytest.raises(ValueError, match="already taken"):
        batches_of(app, 10)


async def test_an_idle_worker_takes_a_lone_message_at_once(app: faust.App) -> None:
    batches = batches_of(app, 500)
    async for worker in running(batches):
        batches.deliver(message(1))
        await worker.until(1)
        assert worker.taken == [[1]]


async def test_messages_that_arrive_during_a_batch_form_the_next_one_acked_after_it(app: faust.App) -> None:
    batches = batches_of(app, 500)
    await app.topics._update_indices()  # type: ignore[attr-defined]  # subscribed: acks count
    first, later = message(0), [message(offset) for offset in (1, 2, 3)]
    async for worker in running(batches):
        worker.release.clear()
        batches.deliver(first)
        await worker.until(1)
        assert first in app.consumer.unacked, "tracked while its batch is processed"
        for each in later:
            batches.deliver(each)
        await asyncio.sleep(0.05)
        assert not first.acked, "not acked while its batch is processed"
        worker.release.set()
        await worker.until(4)
        assert first.acked
        assert first not in app.consumer.unacked
    assert worker.taken == [[0], [1, 2, 3]]
    assert all(worker.unacked_when_taken)


async def test_a_batch_is_never_larger_than_max_and_the_consumer_waits_for_room(app: faust.App) -> None:
    batches = batches_of(app, 3)
    async for worker in running(batches):
        await worker.holding_first(batches)
        assert [batches.deliver(message(offset)) for offset in (1, 2, 3)] == [True, True, False]
        room = asyncio.create_task(batches.room())
        await asyncio.sleep(0.05)
        assert not room.done(), "max messages wait: the drain loop waits"
        worker.release.set()
        async with asyncio.timeout(5):
            await room
        await worker.until(4)
    assert worker.taken == [[0], [1, 2, 3]]


async def test_a_batch_whose_processing_fails_is_never_acked_nor_waited_for(app: faust.App) -> None:
    batches = batches_of(app, 10)
    failed = message(7)
    async for worker in running(batches):
        worker.fail_next = True
        batches.deliver(failed)
        await worker.until(1)
        assert worker.task is not None
        with pytest.raises(RuntimeError):
            await worker.task
    assert not failed.acked
    # Untracked: faust's stop (and a rebalance) waits until every tracked message is acked.
    assert failed not in app.consumer.unacked


async def test_a_rebalance_drops_what_waits_and_messages_of_an_older_generation(app: faust.App) -> None:
    batches = batches_of(app, 10)
    async for worker in running(batches):
        await worker.holding_first(batches)
        batches.deliver(message(1))
        batches.deliver(message(2))
        assert [m.offset for m in batches.waiting()] == [1, 2]
        app.flow_control.clear()  # what faust does when partitions are revoked
        assert batches.waiting() == []
        stale = message(3, generation=app.consumer_generation_id - 1)
        batches.deliver(stale)
        batches.deliver(message(4))
        worker.release.set()
        await worker.until(2)
    assert worker.taken == [[0], [4]]
    assert not stale.acked, "read again after the seek"
    assert stale not in app.consumer.unacked


async def test_the_stall_watchdog_sees_what_waits(app: faust.App) -> None:
    batches = batches_of(app, 10)
    batches.deliver(message(5))
    assert _held_offsets(app, app.consumer) == {(TOPIC, 0): {5}}


@pytest.mark.parametrize(
    ("options", "taken"),
    [
        pytest.param({"max_": 500, "linger_s": 0.5}, [[0, 1, 2, 3]], id="linger waits for more"),
        pytest.param({"max_": 4, "behind": lambda: True}, [[0, 1, 2, 3]], id="behind: fills to max"),
        pytest.param({"max_": 4, "behind": lambda: False}, [[0], [1], [2], [3]], id="caught up: at once"),
    ],
)
async def test_messages_that_trickle_in(
    app: faust.App, options: dict[str, Any], taken: list[list[int]]
) -> None:
    batches = batches_of(app, **options)
    async for worker in running(batches):
        for offset in range(4):
            batches.deliver(message(offset))
            await asyncio.sleep(0.02)
        await worker.until(4)
    assert worker.taken == taken


async def test_filling_stops_once_the_worker_has_caught_up(app: faust.App) -> None:
    unread = [2]  # messages in Kafka the worker has not read yet
    batches = batches_of(app, 500, behind=lambda: unread[0] > 0)
    async for worker in running(batches):
        batches.deliver(message(0))
        await asyncio.sleep(0.05)
        assert worker.taken == [], "still filling: Kafka holds more"
        batches.deliver(message(1))
        unread[0] = 0
        await worker.until(2)
        batches.deliver(message(2))
        await worker.until(3)
    assert worker.taken == [[0, 1], [2]]


def consumer_at(read: dict[TP, int | None], ends: dict[TP, int]) -> Any:
    consumer = SimpleNamespace(
        assignment=lambda: set(ends),
        _read_offset=read,
        highwater=lambda tp: ends[tp],
    )
    return SimpleNamespace(_consumer=consumer)


def test_behind_when_kafka_holds_more_than_was_read() -> None:
    reports, other = TP("reports", 0), TP("changelog", 0)
    assert behind_on(consumer_at({reports: 8, other: 0}, {reports: 10, other: 1}), "reports")()
    assert not behind_on(consumer_at({reports: 9, other: 0}, {reports: 10, other: 50}), "reports")()


def test_not_behind_before_anything_was_read_or_without_a_consumer() -> None:
    reports = TP("reports", 0)
    # Nothing read since the start: the committed offset may well be the end already.
    assert not behind_on(consumer_at({}, {reports: 10}), "reports")()
    assert not behind_on(SimpleNamespace(_consumer=None), "reports")()  # type: ignore[arg-type]


async def test_a_delivery_that_does_not_wait_finishes_inline() -> None:
    done: list[int] = []

    async def deliver() -> None:
        done.append(1)

    assert start_inline(deliver()) is None
    assert done == [1]


async def test_a_delivery_that_waits_goes_on_where_it_stopped() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def deliver() -> int:
        steps.append("before")
        got = await gate
        steps.append("after")
        await asyncio.sleep(0)
        return got * 2

    rest = start_inline(deliver())
    assert rest is not None
    assert steps == ["before"]
    task = asyncio.ensure_future(rest)
    await asyncio.sleep(0.01)
    assert not task.done()
    gate.set_result(21)
    assert await task == 42
    assert steps == ["before", "after"]


async def test_an_error_before_any_wait_is_raised_inline() -> None:
    async def fails_at_once() -> None:
        raise ValueError("at once")

    with pytest.raises(ValueError, match="at once"):
        start_inline(fails_at_once())


@pytest.mark.parametrize(
    ("settle", "expected"),
    [
        pytest.param(lambda gate: gate.set_exception(KeyError("gate")), KeyError, id="set on its future"),
        pytest.param(lambda gate: gate.set_result(None), ValueError, id="raised after the wait"),
    ],
)
async def test_an_error_after_a_wait_reaches_whoever_awaits_the_rest(
    settle: Callable[[asyncio.Future[None]], None], expected: type[Exception]
) -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def deliver() -> None:
        await gate
        raise ValueError("after the wait")

    rest = start_inline(deliver())
    assert rest is not None
    settle(gate)
    with pytest.raises(expected):
        await rest


async def test_cancelling_the_rest_cancels_the_delivery_where_it_waits() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned: list[str] = []

    async def deliver() -> None:
        try:
            await gate
        finally:
            cleaned.append("finally")

    rest = start_inline(deliver())
    assert rest is not None
    task = asyncio.ensure_future(rest)
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally"]
    assert gate.cancelled(), "the future it waited on is cancelled, as a task's await would be"


async def test_the_drain_loop_hands_batch_topics_over_and_delivers_others_inline(app: faust.App) -> None:
    batches = batches_of(app, 10)
    consumer: Any = app.consumer
    other = TP("dxpulse.rollups.v1", 0)
    other_message = Message(other.topic, 0, 3, 0.0, 0, None, b"k", b"v", None, tp=other)
    delivered: list[Message] = []

    async def callback(each: Message) -> None:
        delivered.append(each)

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (faust's)
        for each in (message(0), message(1), other_message):
            yield each.tp, each
        consumer._stopped.set()  # one fetch, then the loop ends

    consumer.callback, consumer.getmany = callback, getmany
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    async with asyncio.timeout(5):
        await consumer._drain_messages(fetcher)
    assert [m.offset for m in batches.waiting()] == [0, 1]
    assert delivered == [other_message]
    assert consumer._read_offset[REPORTS] == 1
    assert consumer._read_offset[other] == 3


async def test_an_agent_reading_the_same_topic_gets_its_messages_and_both_ack_before_a_commit(
    app: faust.App,
) -> None:
    batches = batches_of(app, 10)
    conductor: Any = app.topics
    await conductor._update_indices()
    await conductor.on_partitions_assigned({REPORTS})
    assert not conductor.streams_read(REPORTS), "batches only: the conductor is not asked"
    agents_channel: Any = raw_topic(app, TOPIC).clone(is_iterator=True)  # what an agent registers
    conductor.add(agents_channel)
    await conductor._update_indices()
    await conductor.on_partitions_assigned({REPORTS})
    assert conductor.streams_read(REPORTS)
    both = message(0)
    batches.reserve(both)  # what the drain loop does: counted, the agent's delivery, the batches
    await conductor.on_message(both)
    batches.deliver(both)
    assert agents_channel.queue.qsize() == 1, "the agent gets it from the conductor"
    batch_channel = next(iter(conductor.batch_channels))
    assert batch_channel.queue.qsize() == 0, "the batches' channel never does"
    async for worker in running(batches):
        await worker.until(1)
        await asyncio.sleep(0.02)
    assert not both.acked, "the agent has not acked it yet: not committable"
    both.ack(app.consumer)  # the agent's stream acks it
    assert both.acked


async def test_the_batches_get_a_message_only_once_an_agent_on_the_topic_has_it(app: faust.App) -> None:
    # faust's delivery to an agent can wait (flow control, the producer's buffer). Handed to the
    # batches first, a report could be processed, acked and committed before the agent had it.
    batches = batches_of(app, 10)
    conductor: Any = app.topics
    conductor.add(raw_topic(app, TOPIC).clone(is_iterator=True))  # an agent reading reports too
    await conductor._update_indices()
    await conductor.on_partitions_assigned({REPORTS})
    consumer: Any = app.consumer
    waiting = message(0)

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (faust's)
        yield waiting.tp, waiting
        consumer._stopped.set()

    consumer.getmany = getmany
    async with conductor._tp_to_callback_lock:  # the agent's delivery waits
        drained = asyncio.create_task(consumer._drain_messages(SimpleNamespace(_stopped=asyncio.Event())))
        await asyncio.sleep(0.05)
        assert batches.waiting() == [], "not before the agent's delivery"
        assert waiting.refcount == 1, "but counted already"
    async with asyncio.timeout(5):
        await drained
    assert batches.waiting() == [waiting]
    assert waiting.refcount == 2


async def test_the_drain_loop_hands_reports_on_while_a_commit_waits(app: faust.App) -> None:
    # A commit flushes the producer first: seconds under steady load. faust awaited it in this loop,
    # so no report was handed on meanwhile; it now runs beside the loop, one at a time.
    batches = batches_of(app, 10)
    consumer: Any = app.consumer
    released = asyncio.Event()
    commits: list[int] = []

    async def commit() -> bool:
        commits.append(len(batches.waiting()))
        await released.wait()
        return True

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (faust's)
        for offset in range(4):
            consumer._n_acked = consumer._commit_every  # as if enough acks came in meanwhile
            yield REPORTS, message(offset)
        consumer._stopped.set()

    consumer.commit, consumer.getmany = commit, getmany
    async with asyncio.timeout(5):
        await consumer._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
    await asyncio.sleep(0.01)
    assert [m.offset for m in batches.waiting()] == [0, 1, 2, 3], "handed on while the commit waits"
    assert len(commits) == 1, "one commit at a time: the running one covers the later acks"
    released.set()
    async with asyncio.timeout(5):
        await asyncio.gather(*consumer._futures)

"""take_ready: a batch is what arrived while the previous one was processed, acked only once processed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from dxpulse.faust_support import behind_on, take_ready


class Recorder:
    """An agent taking batches with take_ready; each batch is held until the test releases it."""

    def __init__(self, max_: int, linger_s: float = 0.0, behind: Callable[[], bool] = lambda: False) -> None:
        self.app = faust.App("unit-take-ready", broker="kafka://localhost:1", store="memory://")
        self.batches: list[list[int]] = []
        self.unacked_when_taken: list[bool] = []
        self.acked_before: list[bool] = []
        self.release = asyncio.Event()
        self.release.set()
        self.taken = asyncio.Event()
        self.grew = asyncio.Event()
        previous: list[Any] = []

        self.stream: Any = None
        self.delivered = 0  # reports the stream handed to take_ready's buffer so far
        self.delivered_more = asyncio.Event()

        async def count(value: Any) -> Any:
            # Runs just before take_ready's own processor, in the same step: once counted, buffered.
            self.delivered += 1
            self.delivered_more.set()
            return value

        async def record(stream: Any) -> AsyncIterator[None]:
            nonlocal previous
            stream.add_processor(count)
            async for events in take_ready(stream, max_, linger_s, behind):
                self.batches.append([event.value for event in events])
                self.grew.set()
                self.unacked_when_taken.append(all(not event.message.acked for event in events))
                self.acked_before.append(all(event.message.acked for event in previous))
                previous = list(events)
                self.taken.set()
                self.stream = stream
                await self.release.wait()
                yield None

        self.agent: Any = self.app.agent(name="record")(record)

    def close(self) -> None:
        # The consumer's Kafka thread has a loop of its own, made but never run (nothing here
        # talks to Kafka).
        consumer: Any = self.app._consumer
        if consumer is not None:
            consumer._thread.thread_loop.close()

    async def until_delivered(self, count: int) -> None:
        async with asyncio.timeout(5):
            while self.delivered < count:
                self.delivered_more.clear()
                await self.delivered_more.wait()

    def values(self) -> list[int]:
        return [value for batch in self.batches for value in batch]

    async def until(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.values()) < count:
                self.grew.clear()
                await self.grew.wait()


async def trickle(recorder: Recorder, count: int, gap_s: float) -> None:
    """Send reports 0..count-1 to the recorder's agent ``gap_s`` apart; return once all were taken."""
    async with recorder.agent.test_context() as agent:
        for value in range(count):
            await agent.put(value, wait=False)
            await asyncio.sleep(gap_s)
        await recorder.until(count)


async def send_during_first_batch(recorder: Recorder, later: range) -> int:
    """Send report 0, then ``later`` while batch [0] is held, and release it once they settled.
    Returns how many were still waiting in the agent's channel then; returns once all were taken."""
    recorder.release.clear()
    async with recorder.agent.test_context() as agent:
        await agent.put(0, wait=False)
        async with asyncio.timeout(5):
            await recorder.taken.wait()
        for value in later:
            await agent.put(value, wait=False)
        await asyncio.sleep(0.05)
        waiting = int(recorder.stream.channel.queue.qsize())
        recorder.release.set()
        await recorder.until(1 + len(later))
    return waiting


@pytest.fixture
def recorders() -> Iterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    for recorder in made:
        recorder.close()


async def test_an_idle_worker_takes_a_lone_report_at_once(recorders: list[Recorder]) -> None:
    recorder = Recorder(max_=500)
    recorders.append(recorder)
    async with recorder.agent.test_context() as agent:
        await agent.put(1, wait=False)
        await recorder.until(1)
    assert recorder.batches == [[1]]


async def test_reports_that_arrive_during_a_batch_are_buffered_and_form_the_next_one(
    recorders: list[Recorder],
) -> None:
    recorder = Recorder(max_=500)
    recorders.append(recorder)
    # Already taken off the channel into the next batch (faust's take_events leaves them there
    # until the batch is done, then waits up to `within` for more).
    assert await send_during_first_batch(recorder, range(1, 4)) == 0
    assert recorder.batches == [[0], [1, 2, 3]]


async def test_a_batch_is_never_larger_than_max(recorders: list[Recorder]) -> None:
    recorder = Recorder(max_=5)
    recorders.append(recorder)
    await send_during_first_batch(recorder, range(1, 9))
    assert recorder.batches[:2] == [[0], [1, 2, 3, 4, 5]]
    assert recorder.values() == list(range(9)), "every report once, in order"
    assert all(len(batch) <= 5 for batch in recorder.batches)


async def test_events_are_acked_only_after_their_batch_was_processed(recorders: list[Recorder]) -> None:
    recorder = Recorder(max_=3)
    recorders.append(recorder)
    await trickle(recorder, 10, gap_s=0.001)
    assert len(recorder.batches) > 1
    assert all(recorder.unacked_when_taken), "a batch is handed over before any of it is acked"
    assert all(recorder.acked_before), "the previous batch is acked before the next is taken"


@pytest.mark.parametrize(
    ("recorder_args", "batches"),
    [
        pytest.param({"max_": 500, "linger_s": 0.5}, [[0, 1, 2, 3]], id="linger waits for more"),
        pytest.param({"max_": 4, "behind": lambda: True}, [[0, 1, 2, 3]], id="behind: fills to max"),
        pytest.param({"max_": 4, "behind": lambda: False}, [[0], [1], [2], [3]], id="caught up: at once"),
    ],
)
async def test_reports_that_trickle_in(
    recorders: list[Recorder], recorder_args: dict[str, Any], batches: list[list[int]]
) -> None:
    recorder = Recorder(**recorder_args)
    recorders.append(recorder)
    await trickle(recorder, 4, gap_s=0.02)
    assert recorder.batches == batches


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


async def test_filling_stops_once_the_worker_has_caught_up(recorders: list[Recorder]) -> None:
    unread = [2]  # reports in Kafka the worker has not read yet
    recorder = Recorder(max_=500, behind=lambda: unread[0] > 0)
    recorders.append(recorder)
    async with recorder.agent.test_context() as agent:
        await agent.put(0, wait=False)
        await asyncio.sleep(0.05)
        assert recorder.batches == [], "still filling: Kafka holds more"
        await agent.put(1, wait=False)
        await recorder.until_delivered(2)  # in the batch still filling, before the worker catches up
        unread[0] = 0
        await recorder.until(2)
        await agent.put(2, wait=False)
        await recorder.until(3)
    assert recorder.batches == [[0, 1], [2]]

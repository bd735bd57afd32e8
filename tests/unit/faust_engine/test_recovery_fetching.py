"""A restart reads changelogs with short fetches, loses no report fetched meanwhile, and starts at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import Fetcher, FetchResult
from faust.tables.recovery import Recovery
from faust.types import TP

from dxpulse.faust_engine.support import (
    FETCH_WAIT_MS,
    RECOVERY_FETCH_WAIT_MS,
    DxpulseTableManager,
    FromStartConsumer,
    OnlyThese,
    SeekThenResumeRecovery,
)

STREAM = TopicPartition("dxpulse.reports.v1", 0)
CHANGELOG = TopicPartition("app-period-state-changelog", 0)
REPORTS = TP(STREAM.topic, STREAM.partition)


class _Records:
    """What aiokafka's FetchResult iterates: messages and the offset after them."""

    def __init__(self, offsets: list[int]) -> None:
        self._messages = iter([SimpleNamespace(offset=offset) for offset in offsets])
        self.next_fetch_offset = offsets[-1] + 1

    def __iter__(self) -> Iterator[Any]:
        return self._messages


class _Position:
    def __init__(self, position: int) -> None:
        self.position, self.paused = position, False

    def consumed_to(self, offset: int) -> None:
        self.position = offset


def _fetcher_holding(offsets: list[int]) -> tuple[Any, _Position]:
    """aiokafka's fetcher state with ``offsets`` of the stream partition fetched and not yet taken."""
    # aiokafka checks a result against the partition's position: it must still be where it was fetched.
    position = _Position(offsets[-1] + 1)
    assignment = SimpleNamespace(active=True, state_value=lambda tp: position)
    result = FetchResult(STREAM, assignment=assignment, partition_records=_Records(offsets), backoff=0)
    fetcher = SimpleNamespace(
        _subscriptions=SimpleNamespace(reassignment_in_progress=False, is_assigned=lambda tp: True),
        _records={STREAM: result},
        _notify=lambda future: None,
        _wait_consume_future=None,
    )
    return fetcher, position


async def _taken(fetcher: Any, partitions: Any) -> dict[Any, list[Any]]:
    """What aiokafka's own ``fetched_records`` hands faust for ``partitions``, without waiting."""
    taken: dict[Any, list[Any]] = await Fetcher.fetched_records(fetcher, partitions, timeout=0)
    return taken


async def test_aiokafka_reads_an_empty_set_as_every_partition() -> None:
    # The premise: faust's active set, emptied while the consumer thread waits, gave away the
    # records of a paused stream partition, and faust then skipped them as not active.
    fetcher, position = _fetcher_holding([40, 41, 42])
    assert list(await _taken(fetcher, set())) == [STREAM]
    assert position.position == 43


async def test_no_records_of_a_partition_outside_an_emptied_active_set_are_taken() -> None:
    active = {CHANGELOG}
    view = OnlyThese(active)
    active.discard(CHANGELOG)  # the changelogs read to their end are paused; the streams still are
    fetcher, _ = _fetcher_holding([40, 41, 42])
    assert await _taken(fetcher, view) == {}
    # Once the stream partition resumes, the same view hands its records over, from the first.
    active.add(STREAM)
    assert [m.offset for m in (await _taken(fetcher, view))[STREAM]] == [40, 41, 42]


def test_only_these_is_a_live_view() -> None:
    active: set[TP] = set()
    view = OnlyThese(active)
    assert view
    assert STREAM not in view
    active.add(REPORTS)
    assert STREAM in view


async def test_the_consumer_thread_gets_the_view_of_the_live_active_set(app: faust.App) -> None:
    consumer = app.consumer
    assert isinstance(consumer, FromStartConsumer)
    asked: list[Any] = []

    async def getmany(partitions: Any, timeout: float) -> dict[Any, Any]:  # noqa: ASYNC109
        asked.append(partitions)
        return {}

    consumer._thread.getmany = getmany  # type: ignore[method-assign,assignment]
    active: set[TP] = set()
    await consumer._getmany(active, 1.0)
    await consumer._getmany(None, 1.0)  # a client-only app: faust's "every partition" stays so
    assert isinstance(asked[0], OnlyThese)
    assert asked[0]._tps is active
    assert asked[1] is None


def _recovering(app: faust.App) -> tuple[Any, SeekThenResumeRecovery]:
    """The app's aiokafka fetcher (a stand-in holding its wait) and its recovery, once started."""
    fetcher = SimpleNamespace(_fetch_max_wait_ms=1500)  # faust's own
    consumer: Any = app.consumer
    consumer._thread._consumer = SimpleNamespace(_fetcher=fetcher)
    manager = app.tables
    assert isinstance(manager, DxpulseTableManager)
    recovery = manager.recovery
    assert isinstance(recovery, SeekThenResumeRecovery)
    recovery._set_recovery_started()
    return fetcher, recovery


async def test_fetches_are_short_while_tables_recover_and_held_at_most_300_ms_once_streams_resume(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetcher, recovery = _recovering(app)
    assert fetcher._fetch_max_wait_ms == RECOVERY_FETCH_WAIT_MS

    resumed: list[set[TP]] = []

    async def faust_completion(self: Recovery, generation_id: int = 0) -> None:
        # Short until the stream partitions resume: the seek's reports must not wait 1.5 s.
        assert fetcher._fetch_max_wait_ms == RECOVERY_FETCH_WAIT_MS
        self.app.consumer.resume_partitions({REPORTS})

    monkeypatch.setattr(Recovery, "on_recovery_completed", faust_completion)
    monkeypatch.setattr(FromStartConsumer, "resume_partitions", lambda self, tps: resumed.append(set(tps)))
    await recovery.on_recovery_completed(app.consumer_generation_id)
    # The stream partitions resume once, after faust's completion (SeekThenResumeRecovery).
    assert [tps for tps in resumed if tps] == [{REPORTS}]
    assert fetcher._fetch_max_wait_ms == FETCH_WAIT_MS == 300


async def test_the_table_manager_starts_recovery_without_faust_s_one_second_pause(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = app.tables
    assert isinstance(manager, DxpulseTableManager)
    steps: list[str] = []

    async def paused(seconds: float) -> None:
        steps.append(f"sleep {seconds}")

    async def update_channels() -> None:
        steps.append("channels")

    async def start_recovery() -> None:
        steps.append("recovery")

    monkeypatch.setattr(manager, "sleep", paused)
    monkeypatch.setattr(manager, "_update_channels", update_channels)
    monkeypatch.setattr(manager.recovery, "start", start_recovery)
    await manager.on_start()
    assert steps == ["channels", "recovery"]


async def test_a_fetch_loop_with_no_active_partition_reads_as_soon_as_one_resumes(app: faust.App) -> None:
    consumer = app.consumer
    assert isinstance(consumer, FromStartConsumer)
    consumer._set_active_tps(set())
    asked: list[set[TP]] = []

    async def getmany(partitions: Any, timeout: float) -> dict[Any, Any]:  # noqa: ASYNC109
        asked.append({tp for tp in [REPORTS] if tp in partitions})
        return {}

    consumer._thread.getmany = getmany  # type: ignore[method-assign,assignment]
    waiting = asyncio.create_task(consumer._wait_next_records(1.0))
    await asyncio.sleep(0.05)
    assert not asked  # nothing to read yet
    consumer.resume_partitions({REPORTS})
    # Read in this same call: faust slept its full second here and returned nothing.
    await asyncio.wait_for(waiting, timeout=0.9)
    assert asked == [{REPORTS}]


async def test_a_fetch_loop_with_no_active_partition_still_returns_after_a_second(app: faust.App) -> None:
    consumer = app.consumer
    assert isinstance(consumer, FromStartConsumer)
    consumer._set_active_tps(set())
    records, active = await consumer._wait_next_records(1.0)
    assert records == {}
    assert active == set()


def test_resuming_wakes_a_wait_for_records_on_the_consumer_thread(app: faust.App) -> None:
    # aiokafka ends such a wait only when new records arrive, not for records it already holds for
    # a partition that just resumed: those waited out faust's whole second after every restart.
    consumer = app.consumer
    assert isinstance(consumer, FromStartConsumer)
    thread: Any = consumer._thread
    waiting = thread.thread_loop.create_future()
    fetcher = SimpleNamespace(_fetch_waiters={waiting}, _notify=lambda future: Fetcher._notify(None, future))
    thread._consumer = SimpleNamespace(_fetcher=fetcher)
    consumer.resume_partitions({REPORTS})
    assert not waiting.done()  # woken on the consumer thread's own loop, not from this one
    thread.thread_loop.run_until_complete(asyncio.sleep(0))
    assert waiting.done()


async def test_the_steady_fetch_wait_comes_back_when_the_completion_fails(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetcher, recovery = _recovering(app)

    async def failing_completion(self: Recovery, generation_id: int = 0) -> None:
        raise RuntimeError("the seek timed out")

    monkeypatch.setattr(Recovery, "on_recovery_completed", failing_completion)
    with pytest.raises(RuntimeError):
        await recovery.on_recovery_completed(app.consumer_generation_id)
    assert fetcher._fetch_max_wait_ms == FETCH_WAIT_MS

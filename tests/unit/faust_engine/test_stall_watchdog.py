"""StallWatchdog: reports a partition whose next message was dropped, never one a commit is moving."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import faust
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from dxpulse.faust_engine.support import StallWatchdog, add_metrics_page, add_stall_watchdog

TOPIC = "dxpulse.reports.v1"
REPORTS = TP(TOPIC, 0)


class Partition:
    """One report partition as faust's consumer keeps it; ``during_position`` runs while the
    watchdog awaits the fetch position, as anything on the worker's loop may then."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        # faust's own consumer, its Kafka-facing methods replaced (Any: mypy would narrow an
        # attribute to ConsumerT on assignment, and those are methods and private fields).
        consumer: Any = app.consumer
        self.consumer = consumer
        self.position = 0
        self.during_position: Callable[[], None] = lambda: None
        self.sought: list[int] = []
        consumer.assignment = lambda: {REPORTS}
        consumer.highwater = lambda tp: 1_000
        consumer.position = self._position
        consumer.perform_seek = self._seek
        consumer._commit_fut = None

    async def _position(self, tp: TP) -> int:
        await asyncio.sleep(0)
        self.during_position()
        return self.position

    async def _seek(self) -> None:
        self.sought.append(self.consumer._committed_offset[REPORTS])

    def state(self, committed: int, acked: list[int], position: int) -> None:
        self.consumer._committed_offset[REPORTS] = committed
        self.consumer._acked[REPORTS] = list(acked)
        self.position = position

    def commit_starts(self) -> None:
        """What faust's commit does first: takes the acked offsets it commits out of the acked
        ones; the committed offset moves only once the producer has flushed."""
        self.consumer._commit_fut = asyncio.get_running_loop().create_future()
        self.consumer._acked[REPORTS] = []

    def commit_finishes(self, offset: int) -> None:
        self.consumer._acked[REPORTS] = []
        self.consumer._committed_offset[REPORTS] = offset
        self.consumer._commit_fut = None


@pytest.fixture
async def partition(app: faust.App) -> Partition:
    app.flow_control.resume()
    return Partition(app)


async def twice(partition: Partition, between: Callable[[], None]) -> list[list[tuple[str, int]]]:
    """What one watchdog reports on two looks, with ``between`` run between them."""
    watchdog = StallWatchdog(partition.app)
    first = await watchdog.check()
    between()
    return [first, await watchdog.check()]


async def test_a_dropped_head_is_reported_on_the_second_look_and_not_sought_back(
    partition: Partition,
) -> None:
    # Offset 10 was fetched (position 13) and is neither acked, unacked nor waiting anywhere.
    partition.state(committed=10, acked=[11, 12], position=13)
    assert await twice(partition, lambda: None) == [[], [(TOPIC, 0)]]
    assert partition.sought == []


async def test_a_commit_that_starts_while_positions_are_awaited_is_not_a_drop(
    partition: Partition,
) -> None:
    # Processed and acked up to 11; a commit takes 10 and 11 out of the acked ones mid-look.
    partition.state(committed=10, acked=[10, 11], position=12)
    partition.during_position = partition.commit_starts

    def next_round() -> None:
        partition.commit_finishes(12)
        partition.state(committed=12, acked=[12, 13], position=14)

    assert await twice(partition, next_round) == [[], []]
    assert partition.sought == []


async def test_a_commit_that_finishes_while_positions_are_awaited_is_not_a_drop(
    partition: Partition,
) -> None:
    partition.state(committed=10, acked=[10, 11], position=12)
    partition.during_position = lambda: partition.commit_finishes(12)

    def next_round() -> None:
        partition.state(committed=12, acked=[12, 13], position=14)

    assert await twice(partition, next_round) == [[], []]
    assert partition.sought == []


async def test_heads_in_passing_are_not_a_drop(partition: Partition) -> None:
    # Each look finds the next message between the fetch and the batches, but never the same one:
    # the partition progresses.
    partition.state(committed=10, acked=[], position=12)

    def next_round() -> None:
        partition.state(committed=12, acked=[], position=14)

    assert await twice(partition, next_round) == [[], []]
    assert partition.sought == []


async def test_a_drop_seen_across_a_commit_is_still_reported(partition: Partition) -> None:
    partition.state(committed=10, acked=[11, 12], position=13)
    watchdog = StallWatchdog(partition.app)
    assert await watchdog.check() == []
    partition.during_position = partition.commit_starts  # this look is skipped, not forgotten
    assert await watchdog.check() == []
    partition.during_position = lambda: None
    partition.consumer._commit_fut = None
    partition.state(committed=10, acked=[11, 12], position=13)
    assert await watchdog.check() == [(TOPIC, 0)]


async def test_what_the_watchdog_finds_is_counted_on_the_metrics_page(partition: Partition) -> None:
    registry = CollectorRegistry()
    add_stall_watchdog(partition.app)
    add_metrics_page(partition.app, registry)
    watchdog = partition.app.stall_watchdog  # type: ignore[attr-defined]

    def found(kind: str) -> float | None:
        labels = {"app": partition.app.conf.id, "kind": kind}
        return registry.get_sample_value("dxpulse_stalled_partitions_total", labels)

    assert (found("dropped"), found("idle")) == (0, 0)
    partition.state(committed=10, acked=[11, 12], position=13)
    assert await watchdog.check() == []
    assert await watchdog.check() == [(TOPIC, 0)]
    assert (found("dropped"), found("idle")) == (1, 0)
    assert partition.sought == []

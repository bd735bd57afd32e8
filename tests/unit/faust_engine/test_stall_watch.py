"""The stall watchdog's decisions: a dropped head message, or lag with no commit progress for the patience."""

from __future__ import annotations

from dxpulse.monitoring import PartitionLag, lost_heads, stalled_partitions

P0 = ("dxpulse.rollups.v1", 0)
P1 = ("dxpulse.rollups.v1", 1)


def test_lag_without_progress_for_the_patience_is_a_stall() -> None:
    lags = [PartitionLag(*P0, lag=5), PartitionLag(*P1, lag=5)]
    since, stalled = stalled_partitions({}, lags, {P0: 10, P1: 10}, now=0.0, patience_s=30)
    assert stalled == []
    # P1 makes progress; P0 does not.
    since, stalled = stalled_partitions(since, lags, {P0: 10, P1: 12}, now=20.0, patience_s=30)
    assert stalled == []
    since, stalled = stalled_partitions(since, lags, {P0: 10, P1: 12}, now=31.0, patience_s=30)
    assert stalled == [P0]


def test_no_lag_is_never_a_stall_however_long_it_idles() -> None:
    since, stalled = stalled_partitions({}, [PartitionLag(*P0, lag=0)], {P0: 10}, now=0.0, patience_s=30)
    since, stalled = stalled_partitions(since, [PartitionLag(*P0, lag=0)], {P0: 10}, now=500.0, patience_s=30)
    assert stalled == []


def test_a_never_committed_partition_with_lag_stalls_too() -> None:
    lags = [PartitionLag(*P0, lag=3)]
    since, _ = stalled_partitions({}, lags, {P0: None}, now=0.0, patience_s=30)
    _, stalled = stalled_partitions(since, lags, {P0: None}, now=30.0, patience_s=30)
    assert stalled == [P0]


def test_a_fetched_head_held_nowhere_was_dropped() -> None:
    # Offsets 1 and 2 were fetched (position 3), and the worker holds neither: seen after a restart.
    assert lost_heads({P0: (1, 3)}, {}) == [P0]
    assert lost_heads({P0: (1, 3)}, {P0: {2}}) == [P0]


def test_a_head_still_held_or_not_fetched_yet_is_not_dropped() -> None:
    assert lost_heads({P0: (1, 3)}, {P0: {1}}) == []  # buffered, being processed, or acked
    assert lost_heads({P0: (1, 1)}, {}) == []  # the fetch has not got there yet
    assert lost_heads({P0: (1, 3), P1: (4, 4)}, {P0: {1, 2}}) == []

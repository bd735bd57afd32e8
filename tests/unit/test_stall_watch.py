"""The stall watchdog's decision: lag with no commit progress for the patience, and nothing else."""

from __future__ import annotations

from dxpulse.monitoring import PartitionLag, stalled_partitions

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

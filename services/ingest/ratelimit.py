"""Per-reporter rate limiting with a token bucket, as a pure function over plain data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    """A reporter's bucket: ``tokens`` available at time ``at`` (monotonic seconds)."""

    tokens: float
    at: float


def take(bucket: Bucket | None, cost: float, now: float, rate: float, burst: float) -> tuple[Bucket, float]:
    """Try to spend ``cost`` tokens at ``now``; returns the new bucket and 0, or the unchanged
    (refilled) bucket and the seconds until ``cost`` tokens will be there.

    The bucket refills at ``rate`` per second up to ``burst``; a new reporter starts full.
    """
    tokens = burst if bucket is None else min(burst, bucket.tokens + max(0.0, now - bucket.at) * rate)
    if cost <= tokens:
        return Bucket(tokens - cost, now), 0.0
    return Bucket(tokens, now), (min(cost, burst) - tokens) / rate

"""Per-reporter rate limiting with a token bucket: a pure function over plain data, and every bucket."""

from __future__ import annotations

import time
from collections.abc import Callable
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


class RateLimiter:
    """Each reporter's bucket, refilling at ``rate`` per second up to ``burst`` (see ``take``)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}

    def wait(self, reporter: str, cost: float) -> float:
        """Spend ``cost`` tokens of ``reporter``'s bucket and return 0; or, spending nothing, the
        seconds until there will be enough."""
        bucket, wait = take(self._buckets.get(reporter), cost, self._clock(), self.rate, self.burst)
        self._buckets[reporter] = bucket
        return wait

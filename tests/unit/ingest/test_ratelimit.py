"""RateLimiter: a bucket per reporter, spent whole or not at all."""

from __future__ import annotations

import pytest

from services.ingest.ratelimit import RateLimiter


def test_each_reporter_has_a_bucket_of_its_own_that_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=10.0, clock=lambda: now[0])
    assert limiter.wait("province:79", 10) == 0
    assert limiter.wait("province:79", 4) == pytest.approx(2.0)
    assert limiter.wait("province:01", 10) == 0, "another reporter's bucket is full"
    now[0] = 1.0
    assert limiter.wait("province:79", 4) == pytest.approx(1.0), "a refused request spends nothing"
    now[0] = 2.0
    assert limiter.wait("province:79", 4) == 0
    assert limiter.wait("province:79", 1) == pytest.approx(0.5)

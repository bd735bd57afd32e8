"""A paced read rests after each step for what keeps it to its share of the loop's time."""

from __future__ import annotations

import pytest

from dxpulse.kafka.subscriber import Pacer


class FakeTime:
    """A clock that only moves when told, and a sleep that records and advances it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_a_step_is_followed_by_a_rest_that_leaves_it_its_share() -> None:
    time = FakeTime()
    pacer = Pacer(0.2, sleep=time.sleep, clock=time.clock)
    for busy in (0.010, 0.050, 0.001):
        time.now += busy
        await pacer.rest()
    assert time.slept == pytest.approx([0.040, 0.200, 0.004])
    # Busy 61 ms of 305: a fifth.
    assert 0.061 / (0.061 + sum(time.slept)) == pytest.approx(0.2)


async def test_a_rest_counts_from_the_end_of_the_previous_one() -> None:
    time = FakeTime()
    pacer = Pacer(0.5, sleep=time.sleep, clock=time.clock)
    time.now += 0.3  # before the first step: counted, the pacer was made then
    await pacer.rest()
    await pacer.rest()  # nothing done since: no rest
    assert time.slept == pytest.approx([0.3])


async def test_a_whole_share_never_rests() -> None:
    time = FakeTime()
    pacer = Pacer(1.0, sleep=time.sleep, clock=time.clock)
    time.now += 5
    await pacer.rest()
    assert time.slept == []


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="busy_share"):
        Pacer(share)

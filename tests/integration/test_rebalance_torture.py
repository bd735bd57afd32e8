"""Rebalance after rebalance while reports stream: no stall found, and every final rollup exact.

Two aggregators share the reports; in turn one is killed with SIGKILL and restarted, or a third
joins and leaves. ``DXPULSE_TORTURE_ROUNDS`` rounds make twice as many rebalances (the suite runs 3;
the design page records a run of 25). The stall watchdogs only report, so their counters must stay
at 0, and the figures must equal the batch recomputation of everything sent.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest

from dxpulse.domain.scenario import sample_reports
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack
from schemas import Report
from tests.integration.test_exactness import (
    group_stable_with,
    kafka_only,
    kill_worker,
    oracle,
    produce,
    restated,
    settled_on,
    start_worker,
)
from tests.integration.test_rebalance_drop import stalled_partitions

pytestmark = pytest.mark.integration

__all__ = ["kafka_only"]  # the fixture, imported to be used here

GROUP = "agg-torture"
ROUNDS = int(os.environ.get("DXPULSE_TORTURE_ROUNDS", "3"))


class Stream:
    """EMC restatements from random reporters, a batch every 0.2 s, all of them kept for the oracle."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.sent: list[Report] = list(sample_reports())
        self.emc = [r for r in self.sent if r.indicator == "emc_connection"]
        self.minutes = 0
        self._stop = asyncio.Event()
        self._random = random.Random(7)

    async def run(self) -> None:
        await produce(self.bootstrap, self.sent)
        while not self._stop.is_set():
            self.minutes += 1
            batch = [
                restated(report, connected=self._random.random() < 0.9, minutes=self.minutes)
                for report in self._random.sample(self.emc, 20)
            ]
            await produce(self.bootstrap, batch)
            self.sent += batch
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()


async def test_rebalances_under_a_stream_need_no_heal_and_stay_exact(
    kafka_only: tuple[StackSettings, Stack], tmp_path: Path
) -> None:
    settings, stack = kafka_only
    bootstrap = settings.kafka_bootstrap
    ports = {"agg-a": start_worker(stack, "agg-a", GROUP, tmp_path)}
    ports["agg-b"] = start_worker(stack, "agg-b", GROUP, tmp_path)
    stream = Stream(bootstrap)
    streaming = asyncio.create_task(stream.run())
    rebalances = 0
    started = time.monotonic()
    try:
        await group_stable_with(bootstrap, GROUP, 2)
        for round_ in range(ROUNDS):
            if round_ % 2 == 0:  # a crash and a restart
                assert stalled_partitions(ports["agg-b"]) == 0
                kill_worker(stack, "agg-b")
                await group_stable_with(bootstrap, GROUP, 1)
                ports["agg-b"] = start_worker(stack, "agg-b", GROUP, tmp_path / f"b{round_}")
            else:  # a third worker joins and leaves
                ports["agg-c"] = start_worker(stack, "agg-c", GROUP, tmp_path / f"c{round_}")
                await group_stable_with(bootstrap, GROUP, 3)
                assert stalled_partitions(ports["agg-c"]) == 0
                stack.stop_service("agg-c")
            await group_stable_with(bootstrap, GROUP, 2)
            rebalances += 2
        stream.stop()
        await streaming
        await settled_on(bootstrap, oracle(stream.sent), GROUP)
        assert stalled_partitions(ports["agg-a"]) == 0
        assert stalled_partitions(ports["agg-b"]) == 0
    finally:
        stream.stop()
        await asyncio.gather(streaming, return_exceptions=True)
        for name in ("agg-a", "agg-b", "agg-c"):
            stack.stop_service(name)
    print(f"{rebalances} rebalances, {len(stream.sent)} reports, {time.monotonic() - started:.0f} s: exact")

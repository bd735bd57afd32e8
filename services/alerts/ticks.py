"""Re-evaluation: ticks that make every rollup be judged again as time passes (docs/design/alerts.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.clock import Clock
from dxpulse.domain.rules import due_keys
from dxpulse.kafka.topics import ROLLUPS, partition_of


def tick_topics(app: faust.App, name: str, partitions: int) -> tuple[faust.TopicT, faust.TopicT]:
    """The ticks topic ``name``, and the judge's input: the rollup topic and the ticks.

    Ticks share the rollup topic's keys and partition count, so a tick reaches the worker that owns
    the rollup's state; faust only lets a table change inside stream iteration.
    """
    ticks = app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=True,
        partitions=partitions,
    )
    inputs = app.topic(
        ROLLUPS,
        ticks.get_topic_name(),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    return ticks, inputs


class Reevaluation:
    """Sends a tick for every rollup with an alert state, and for every due period nobody has
    reported for on this worker's partitions."""

    def __init__(
        self,
        states: Mapping[str, Any],
        send_tick: Callable[[bytes], Awaitable[Any]],
        owned: Callable[[], set[int] | None],
        catalog: Catalog,
        clock: Clock,
        partitions: int,
    ) -> None:
        self.states = states
        self.send_tick = send_tick
        self.owned = owned
        self.catalog = catalog
        self.clock = clock
        self.partitions = partitions

    async def tick(self) -> None:
        for rollup_key in list(self.states.keys()):
            await self.send_tick(rollup_key.encode())
        # Due periods nobody has reported for have no state (no rollup ever came): tick them too,
        # those on this worker's partitions only, as their ticks reach this worker alone.
        owned = self.owned() or set()
        for rollup_key in due_keys(self.catalog, self.clock()):
            key = rollup_key.encode()
            if rollup_key not in self.states and partition_of(key, self.partitions) in owned:
                await self.send_tick(key)

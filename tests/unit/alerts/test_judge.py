"""The alerts worker's judging, publishing and re-evaluation, on a dict state and recording sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from faust.types import Message
from prometheus_client import CollectorRegistry

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Registry
from dxpulse.domain.rollup import Snapshot, compute_rollups
from dxpulse.domain.rules import AlertState, due_keys
from dxpulse.kafka.dead_letters import DeadLetters
from dxpulse.kafka.topics import partition_of
from schemas import AlertEvent, DeadLetter, FlagValue, Rollup
from services.alerts.alertmanager import AlertmanagerPusher
from services.alerts.judge import TICK, AlertJudge, AlertPublisher
from services.alerts.metrics import AlertsMetrics
from services.alerts.ticks import Reevaluation

AFTER_DEADLINE = datetime(2025, 2, 1, tzinfo=UTC)
PARTITIONS = 8


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Sent:
    """Records what a ``dead_letters.Send`` sends, and the state table as it was at each send."""

    def __init__(self, states: dict[str, Any] | None = None) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []
        self.states_then: list[dict[str, Any]] = []
        self.states = states

    async def __call__(self, key: bytes | None, value: bytes) -> None:
        self.records.append((key, value))
        if self.states is not None:
            self.states_then.append(dict(self.states))


class Notified:
    """Stands in for the Alertmanager pusher: records what it is told."""

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    def notify(self, event: AlertEvent) -> None:
        self.events.append(event)


def emc_national(registry: Registry, catalog: Catalog, not_connected: set[str]) -> Rollup:
    """The national EMC rollup for 2024-H1 with every expected reporter connected but these."""
    indicator = catalog["emc_connection"]
    period = parse_period("2024-H1")
    latest = {
        r: Snapshot(datetime(2024, 6, 30, tzinfo=UTC), f"e-{r}", FlagValue(value=r not in not_connected))
        for r in registry.expected(indicator.groups, period.end)
    }
    rollups = compute_rollups(indicator, period, latest, registry, AFTER_DEADLINE)
    return next(r for r in rollups if r.scope == "national")


def message(key: bytes | None, value: bytes | None, offset: int = 7) -> Message:
    return Message("dxpulse.rollups.v1", 2, offset, 0.0, 0, None, key, value, None)


def judge_of(states: dict[str, Any], catalog: Catalog, registry: Registry, clock: Clock) -> AlertJudge:
    return AlertJudge(
        states, catalog, registry, clock, hold_down=timedelta(0), resolve_hold_down=timedelta(0)
    )


class Publishing:
    """An AlertPublisher on a dict state, with everything it sends and notifies recorded."""

    def __init__(self, catalog: Catalog, registry: Registry) -> None:
        self.states: dict[str, Any] = {}
        self.clock = Clock(AFTER_DEADLINE)
        self.judge = judge_of(self.states, catalog, registry, self.clock)
        self.published, self.lettered, self.notified = Sent(self.states), Sent(), Notified()
        self.metrics = AlertsMetrics(self.judge.firing)
        dead_letters = DeadLetters(self.lettered, CollectorRegistry(), self.clock)
        pusher = cast(AlertmanagerPusher, self.notified)
        self.publisher = AlertPublisher(self.judge, self.published, dead_letters, self.metrics, pusher)

    async def handle(self, rollup: Rollup) -> None:
        await self.publisher.handle(message(rollup.key.encode(), rollup.model_dump_json().encode()))


@pytest.fixture
def publishing(catalog: Catalog, registry: Registry) -> Publishing:
    return Publishing(catalog, registry)


def test_a_rollup_below_target_fires_once_and_the_state_is_kept(catalog: Catalog, registry: Registry) -> None:
    states: dict[str, Any] = {}
    judge = judge_of(states, catalog, registry, Clock(AFTER_DEADLINE))
    rollup = emc_national(registry, catalog, {"province:79"})

    first = judge.judge(rollup.key.encode(), rollup.model_dump_json().encode())
    assert [(a.rule, a.status) for a in first.transitions] == [("below_target", "firing")]
    assert states == {}  # judging changes nothing until the judgement is saved
    judge.save(first)
    assert AlertState.from_json(states[rollup.key]) == first.new_state
    assert [a.rule for a in judge.firing()] == ["below_target"]

    again = judge.judge(rollup.key.encode(), TICK)
    assert again.transitions == []
    assert again.new_state == again.state


async def test_a_transition_is_published_before_its_state_is_saved(
    publishing: Publishing, catalog: Catalog, registry: Registry
) -> None:
    rollup = emc_national(registry, catalog, {"province:79"})

    await publishing.handle(rollup)

    [(key, value)] = publishing.published.records
    event = AlertEvent.model_validate_json(value)
    assert (key, event.rule, event.status) == (event.fingerprint.encode(), "below_target", "firing")
    assert publishing.published.states_then == [{}]  # nothing saved while the send was under way
    assert rollup.key in publishing.states
    assert publishing.notified.events == [event]
    assert publishing.lettered.records == []
    labels = {"rule": "below_target", "status": "firing"}
    assert publishing.metrics.registry.get_sample_value("dxpulse_alert_transitions_total", labels) == 1


async def test_a_message_that_is_not_a_rollup_is_dead_lettered_and_changes_nothing(
    publishing: Publishing,
) -> None:
    await publishing.publisher.handle(message(b"emc_connection|2024-H1|national", b"{not json", offset=41))
    await publishing.publisher.handle(message(b"\xff\xfe", b"{}", offset=42))

    letters = [DeadLetter.model_validate_json(value) for _, value in publishing.lettered.records]
    assert [(d.reason, d.source_offset) for d in letters] == [("invalid-rollup", 41), ("invalid-rollup", 42)]
    assert letters[0].detail.startswith("not judged for alerts: ")
    assert (publishing.published.records, publishing.notified.events, publishing.states) == ([], [], {})


async def test_a_judgement_that_raises_is_dead_lettered_as_a_processing_failure(
    publishing: Publishing, catalog: Catalog, registry: Registry
) -> None:
    rollup = emc_national(registry, catalog, {"province:79"})
    corrupt: dict[str, Any] = {"active": {"below_target": {}}}
    publishing.states[rollup.key] = corrupt

    await publishing.handle(rollup)

    [(key, value)] = publishing.lettered.records
    assert (key, DeadLetter.model_validate_json(value).reason) == (rollup.key.encode(), "processing-failed")
    assert publishing.published.records == []
    assert publishing.states == {rollup.key: corrupt}


async def test_a_figure_back_on_target_resolves_its_alert(
    publishing: Publishing, catalog: Catalog, registry: Registry
) -> None:
    below = emc_national(registry, catalog, {"province:79"})
    met = emc_national(registry, catalog, set())

    await publishing.handle(below)
    publishing.clock.now += timedelta(minutes=5)
    await publishing.handle(met)

    statuses = [AlertEvent.model_validate_json(value).status for _, value in publishing.published.records]
    assert statuses == ["firing", "resolved"]
    assert [e.status for e in publishing.notified.events] == ["firing", "resolved"]
    assert publishing.judge.firing() == []
    # The state survives the table's JSON round trip.
    assert json.loads(json.dumps(publishing.states[met.key])) == publishing.states[met.key]


class Ticks:
    def __init__(self) -> None:
        self.keys: list[bytes] = []

    async def __call__(self, key: bytes) -> None:
        self.keys.append(key)


async def test_every_known_rollup_is_ticked_and_unreported_due_periods_on_owned_partitions(
    catalog: Catalog,
) -> None:
    clock = Clock(AFTER_DEADLINE)
    due = due_keys(catalog, clock())
    assert len(due) > 2
    known = due[0]
    states: dict[str, Any] = {known: {}, "emc_connection|2019-H1|national": {}}
    owned = {partition_of(due[1].encode(), PARTITIONS)}
    ticks = Ticks()

    await Reevaluation(states, ticks, lambda: owned, catalog, clock, PARTITIONS).tick()

    unreported = [k for k in due if k not in states and partition_of(k.encode(), PARTITIONS) in owned]
    assert ticks.keys == [k.encode() for k in [*states, *unreported]]
    assert due[1].encode() in ticks.keys

    unassigned = Ticks()
    await Reevaluation(states, unassigned, lambda: None, catalog, clock, PARTITIONS).tick()
    assert unassigned.keys == [k.encode() for k in states]  # no consumer yet: known keys only

"""Judging each rollup (or tick) against the alert state of its key, and publishing the transitions."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from faust.types import Message
from pydantic import ValidationError

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.clock import Clock
from dxpulse.domain.registry import Registry
from dxpulse.domain.rules import AlertState, firing_alerts, judge_key
from dxpulse.faust_engine.support import as_refused
from dxpulse.kafka.dead_letters import DeadLetters, Send
from schemas import AlertEvent, Rollup
from services.alerts.alertmanager import AlertmanagerPusher
from services.alerts.metrics import AlertsMetrics

log = logging.getLogger(__name__)

TICK = b"tick"
"""Value of the internal messages that make a rollup be judged again as time passes. A tick for a
key with no state yet is a due period nobody has reported for (see ``rules.due_keys``)."""

INVALID_ROLLUP = "invalid-rollup"
"""Dead-letter reason of a rollup-topic message that is not a rollup (only the aggregator writes it)."""
PROCESSING_FAILED = "processing-failed"


@dataclass(frozen=True)
class Judgement:
    """A rollup's key, its alert state before and after judging, and the transitions to publish."""

    key: str
    state: AlertState
    new_state: AlertState
    transitions: list[AlertEvent]


class AlertJudge:
    """Judges rollups and ticks against the alert state kept per rollup key in ``states``.

    ``states`` maps a rollup key to ``AlertState.to_json()``: the worker's changelog-backed table,
    or a dict in tests.
    """

    def __init__(
        self,
        states: MutableMapping[str, Any],
        catalog: Catalog,
        registry: Registry,
        clock: Clock,
        *,
        hold_down: timedelta,
        resolve_hold_down: timedelta,
    ) -> None:
        self.states = states
        self.catalog = catalog
        self.registry = registry
        self.clock = clock
        self.hold_down = hold_down
        self.resolve_hold_down = resolve_hold_down

    def judge(self, key: bytes | None, value: bytes | None) -> Judgement:
        """The judgement of one message of the rollup or tick topic; raises on one it cannot read."""
        rollup_key = (key or b"").decode()
        state = AlertState.from_json(self.states.get(rollup_key))
        rollup = None if value == TICK else Rollup.model_validate_json(value or b"")
        new_state, events = judge_key(
            state,
            rollup_key,
            rollup,
            self.clock(),
            self.catalog,
            self.registry,
            self.hold_down,
            self.resolve_hold_down,
        )
        return Judgement(rollup_key, state, new_state, events)

    def save(self, judgement: Judgement) -> None:
        """Keep the judgement's new state (a table write only when it changed)."""
        if judgement.new_state != judgement.state:
            self.states[judgement.key] = judgement.new_state.to_json()

    def firing(self) -> list[AlertEvent]:
        """The alerts firing now, with the figures as they are now."""
        # Read-only, from the event loop: the table's local copy holds this worker's partitions.
        now = self.clock()
        return [
            a for raw in list(self.states.values()) for a in firing_alerts(AlertState.from_json(raw), now)
        ]


class AlertPublisher:
    """Handles each message of the rollup and tick topics: judges it, publishes its transitions,
    then saves the state (docs/design/alerts.md); a message it cannot judge is dead-lettered."""

    def __init__(
        self,
        judge: AlertJudge,
        send: Send,
        dead_letters: DeadLetters,
        metrics: AlertsMetrics,
        pusher: AlertmanagerPusher | None,
    ) -> None:
        self.judge = judge
        self.send = send
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.pusher = pusher

    async def run(self, stream: Any) -> AsyncIterator[None]:
        """The faust agent: every message in turn, acknowledged once handled."""
        async for event in stream.events():
            await self.handle(event.message)
            yield None

    async def handle(self, message: Message) -> None:
        try:
            judgement = self.judge.judge(message.key, message.value)
        except Exception as error:  # one message must not stop the worker (docs/design/dead-letters.md)
            unreadable = isinstance(error, ValidationError | UnicodeDecodeError)
            if not unreadable:
                log.exception("judging %s %s@%s failed", message.topic, message.partition, message.offset)
            await self.dead_letters.send(
                as_refused(message),
                INVALID_ROLLUP if unreadable else PROCESSING_FAILED,
                f"not judged for alerts: {error}".replace("\n", " "),
            )
            return
        for alert in judgement.transitions:
            log.info("alert %s %s: %s", alert.status, alert.transition_id, alert.summary)
            self.metrics.transitions.labels(rule=alert.rule, status=alert.status).inc()
            # Acknowledged before the state recording it is saved: the table write and this send
            # are separate producer sends, so a crash between them can only publish it again
            # (with the same transition_id) once the input is redelivered, never lose it.
            await self.send(alert.fingerprint.encode(), alert.model_dump_json().encode())
        self.judge.save(judgement)
        if self.pusher is not None:
            for alert in judgement.transitions:
                self.pusher.notify(alert)

"""The alerts faust app: rollups in, alert state per rollup in a table, alert transitions out."""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ValidationError

from dxpulse.domain.catalog import Catalog, Severity, default_catalog
from dxpulse.domain.clock import Clock, utcnow
from dxpulse.domain.registry import Registry, default_registry
from dxpulse.domain.rules import RULES, AlertState, due_keys, firing_alerts, judge_key
from dxpulse.faust_engine.support import (
    add_history_writer,
    add_metrics_page,
    assigned_partitions,
    json_table,
    new_faust_app,
    raw_topic,
)
from dxpulse.kafka.dead_letters import DeadLetters, Refused
from dxpulse.kafka.topics import ALERTS, DEAD_LETTERS, ROLLUPS, TopicSpec, changelog, partition_of
from schemas import AlertEvent, Rollup
from services.alerts.alertmanager import AlertmanagerPusher
from services.alerts.settings import AlertsSettings

log = logging.getLogger(__name__)


TICK = b"tick"
"""Value of the internal messages that make a rollup be judged again as time passes. A tick for a
key with no state yet is a due period nobody has reported for (see ``rules.due_keys``)."""


STATE_TABLE = "alert-state"

INVALID_ROLLUP = "invalid-rollup"
"""Dead-letter reason of a rollup-topic message that is not a rollup (only the aggregator writes it)."""
INVALID_EVENT = "invalid-event"
"""Dead-letter reason of an alerts-topic message that is not an alert event."""
PROCESSING_FAILED = "processing-failed"

Judged = tuple[str, AlertState, AlertState, list[AlertEvent]]
"""A rollup's key, its alert state before and after judging, and the transitions to publish."""

SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")

INSERT_HISTORY = """
INSERT INTO alert_history (fingerprint, status, changed_at, body, rule, indicator, period, scope,
    severity, starts_at, transition_id)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT DO NOTHING
"""


def history_row(alert: AlertEvent) -> tuple[Any, ...]:
    """The alert_history row of a transition; one per transition_id (and per fingerprint, status,
    starts_at), so a replay of the alerts topic, or a transition sent again after a crash, is stored
    once, even when judged again at another time."""
    return (
        alert.fingerprint,
        alert.status,
        alert.changed_at,
        alert.model_dump_json(),
        alert.rule,
        alert.indicator,
        alert.period,
        alert.scope,
        alert.severity,
        alert.starts_at,
        alert.transition_id,
    )


class FiringCollector(Collector):
    """``dxpulse_alerts_firing{rule,severity}``, counted from the alert state at scrape time."""

    def __init__(self, firing: Callable[[], list[AlertEvent]]) -> None:
        self.firing = firing

    def collect(self) -> Iterator[Metric]:
        counts = Tally((a.rule, a.severity) for a in self.firing())
        gauge = GaugeMetricFamily(
            "dxpulse_alerts_firing", "Alerts firing now, by rule and severity", labels=["rule", "severity"]
        )
        # Every combination, so a dashboard shows 0 rather than no data.
        for rule in RULES:
            for severity in SEVERITIES:
                gauge.add_metric([rule, severity], counts[(rule, severity)])
        yield gauge


class AlertsMetrics:
    """The alerts worker's Prometheus metrics (names are a contract with the dashboards)."""

    def __init__(self, firing: Callable[[], list[AlertEvent]]) -> None:
        self.registry = CollectorRegistry()
        self.transitions = Counter(
            "dxpulse_alert_transitions",
            "Alert transitions published, by rule and status",
            ["rule", "status"],
            registry=self.registry,
        )
        self.pushes = Counter(
            "dxpulse_alertmanager_pushes",
            "Pushes to Alertmanager, by outcome (ok, error)",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(FiringCollector(firing))


def ticks_topic_name(settings: AlertsSettings) -> str:
    return f"{settings.alerts_app_id}-ticks"


def worker_topics(settings: AlertsSettings) -> tuple[TopicSpec, ...]:
    """Topics the alerts worker needs beyond the shared ones: its changelog and its ticks."""
    return (
        changelog(settings.alerts_app_id, STATE_TABLE),
        TopicSpec(ticks_topic_name(settings), configs={"retention.ms": str(24 * 3600 * 1000)}),
    )


def create_app(
    settings: AlertsSettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = utcnow,
) -> faust.App:
    """Build the alerts worker (start it with ``app.main()``)."""
    catalog = catalog or default_catalog()
    registry = registry or default_registry()
    hold_down = timedelta(seconds=settings.hold_down_s)
    resolve_hold_down = timedelta(seconds=settings.resolve_hold_down_s)

    def firing() -> list[AlertEvent]:
        # Read-only, from the event loop: the table's local copy holds this worker's partitions.
        now = clock()
        return [a for raw in list(states.values()) for a in firing_alerts(AlertState.from_json(raw), now)]

    metrics = AlertsMetrics(firing)
    app = new_faust_app(settings.alerts_app_id, settings, web_port=settings.alerts_web_port)
    # Standby copies would make the timer below judge partitions another worker owns.
    app.conf.table_standby_replicas = 0
    add_metrics_page(app, metrics.registry)

    @app.page("/alerts")
    async def current_alerts(web: Any, request: Any) -> Any:
        """The alerts firing now, with the figures as they are now (the topic has them as they fired)."""
        return web.json([alert.model_dump(mode="json") for alert in firing()])

    alerts_topic = raw_topic(app, ALERTS)
    # Ticks share the rollup topic's keys and partition count, so a tick reaches the worker that
    # owns the rollup's state; faust only lets a table change inside stream iteration.
    ticks = app.topic(
        ticks_topic_name(settings),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=True,
        partitions=settings.topic_partitions,
    )
    inputs = app.topic(
        ROLLUPS,
        ticks.get_topic_name(),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    states = json_table(app, STATE_TABLE, settings.topic_partitions)
    pusher = (
        AlertmanagerPusher(
            settings.alertmanager_url,
            firing,
            metrics.pushes,
            resend_s=settings.alertmanager_resend_s,
            timeout_s=settings.alertmanager_timeout_s,
            max_backoff_s=settings.alertmanager_max_backoff_s,
            clock=clock,
        )
        if settings.alertmanager_url
        else None
    )

    dead_letters_topic = raw_topic(app, DEAD_LETTERS)

    async def send_dead_letter(key: bytes | None, value: bytes) -> None:
        await (await dead_letters_topic.send(key=key, value=value))

    dead_letters = DeadLetters(
        send_dead_letter, metrics.registry, clock, reasons=(INVALID_ROLLUP, INVALID_EVENT, PROCESSING_FAILED)
    )

    def judged(
        key: bytes | None, value: bytes | None
    ) -> tuple[str, AlertState, AlertState, list[AlertEvent]]:
        rollup_key = (key or b"").decode()
        state = AlertState.from_json(states.get(rollup_key))
        rollup = None if value == TICK else Rollup.model_validate_json(value or b"")
        new_state, events = judge_key(
            state, rollup_key, rollup, clock(), catalog, registry, hold_down, resolve_hold_down
        )
        return rollup_key, state, new_state, events

    @app.agent(inputs)
    async def judge(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            try:
                rollup_key, state, new_state, events = judged(message.key, message.value)
            except Exception as error:  # one message must not stop the worker (docs/design/dead-letters.md)
                unreadable = isinstance(error, ValidationError | UnicodeDecodeError)
                if not unreadable:
                    log.exception("judging %s %s@%s failed", message.topic, message.partition, message.offset)
                await dead_letters.send(
                    Refused(message.key, message.value, message.topic, message.partition, message.offset),
                    INVALID_ROLLUP if unreadable else PROCESSING_FAILED,
                    f"not judged for alerts: {error}".replace("\n", " "),
                )
                yield None
                continue
            for alert in events:
                log.info("alert %s %s: %s", alert.status, alert.transition_id, alert.summary)
                metrics.transitions.labels(rule=alert.rule, status=alert.status).inc()
                # Acknowledged before the state recording it is saved: the table write and this send
                # are separate producer sends, so a crash between them can only publish it again
                # (with the same transition_id) once the input is redelivered, never lose it.
                delivery = await alerts_topic.send(
                    key=alert.fingerprint.encode(), value=alert.model_dump_json().encode()
                )
                await delivery
            if new_state != state:
                states[rollup_key] = new_state.to_json()
            if pusher is not None:
                for alert in events:
                    pusher.notify(alert)
            yield None

    # faust's timer decorator is untyped; the function itself is fully typed.
    @app.timer(settings.reevaluate_interval_s)  # type: ignore[untyped-decorator]
    async def reevaluate() -> None:
        for rollup_key in list(states.keys()):
            await ticks.send(key=rollup_key.encode(), value=TICK)
        # Due periods nobody has reported for have no state (no rollup ever came): tick them too,
        # those on this worker's partitions only, as their ticks reach this worker alone.
        owned = assigned_partitions(app, ROLLUPS) or set()
        for rollup_key in due_keys(catalog, clock()):
            key = rollup_key.encode()
            if rollup_key not in states and partition_of(key, settings.topic_partitions) in owned:
                await ticks.send(key=key, value=TICK)

    if pusher is not None:
        # faust's task decorator is untyped; the function itself is fully typed.
        @app.task  # type: ignore[untyped-decorator]
        async def push_to_alertmanager() -> None:
            await pusher.run()

    if settings.history_enabled:
        add_history_writer(
            app,
            alerts_topic,
            settings.database_url,
            INSERT_HISTORY,
            lambda value: history_row(AlertEvent.model_validate_json(value)),
            dead_letters=dead_letters,
        )

    return app

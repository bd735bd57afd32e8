"""The alerts faust app: rollups in, alert state per rollup in a table, alert transitions out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter

from dxpulse.catalog import Catalog, default_catalog
from dxpulse.faust_support import add_metrics_page, json_table, new_faust_app, raw_topic
from dxpulse.rules import AlertState, evaluate
from dxpulse.topics import ALERTS, ROLLUPS, TopicSpec, changelog
from schemas import Rollup
from services.alerts.settings import AlertsSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

TICK = b"tick"
"""Value of the internal messages that make a rollup be judged again as time passes."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


STATE_TABLE = "alert-state"


def ticks_topic_name(settings: AlertsSettings) -> str:
    return f"{settings.alerts_app_id}-ticks"


def worker_topics(settings: AlertsSettings) -> tuple[TopicSpec, ...]:
    """Topics the alerts worker needs beyond the shared ones: its changelog and its ticks."""
    return (
        changelog(settings.alerts_app_id, STATE_TABLE),
        TopicSpec(ticks_topic_name(settings), configs={"retention.ms": str(24 * 3600 * 1000)}),
    )


def create_app(
    settings: AlertsSettings, *, catalog: Catalog | None = None, clock: Clock = _utcnow
) -> faust.App:
    """Build the alerts worker (start it with ``app.main()``)."""
    catalog = catalog or default_catalog()
    hold_down = timedelta(seconds=settings.hold_down_s)
    metrics_registry = CollectorRegistry()
    transitions = Counter(
        "dxpulse_alerts_transitions",
        "Alert transitions published, by rule and status",
        ["rule", "status"],
        registry=metrics_registry,
    )
    app = new_faust_app(
        settings.alerts_app_id,
        settings,
        web_port=settings.alerts_web_port,
        data_dir=settings.state_dir,
        session_timeout_s=settings.session_timeout_s,
    )
    # Standby copies would make the timer below judge partitions another worker owns.
    app.conf.table_standby_replicas = 0
    add_metrics_page(app, metrics_registry)
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

    @app.agent(inputs)
    async def judge(stream: Any) -> AsyncIterator[None]:
        async for key, value in stream.items():
            rollup_key = key.decode()
            state = AlertState.from_json(states.get(rollup_key))
            rollup = None if value == TICK else Rollup.model_validate_json(value)
            current = rollup or state.last
            indicator = catalog.get(current.indicator) if current else None
            if indicator is None:
                yield None
                continue
            new_state, events = evaluate(state, indicator, rollup, clock(), hold_down)
            if new_state != state:
                states[rollup_key] = new_state.to_json()
            for alert in events:
                log.info("alert %s %s: %s", alert.status, alert.fingerprint, alert.summary)
                transitions.labels(rule=alert.rule, status=alert.status).inc()
                await alerts_topic.send(
                    key=alert.fingerprint.encode(), value=alert.model_dump_json().encode()
                )
            yield None

    # faust's timer decorator is untyped; the function itself is fully typed.
    @app.timer(settings.reevaluate_interval_s)  # type: ignore[untyped-decorator]
    async def reevaluate() -> None:
        for rollup_key in list(states.keys()):
            await ticks.send(key=rollup_key.encode(), value=TICK)

    return app

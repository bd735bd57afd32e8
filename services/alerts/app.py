"""The alerts faust app: rollups in, alert state per rollup in a table, alert transitions out."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import faust

from dxpulse.business_data import business_data
from dxpulse.domain.catalog import Catalog
from dxpulse.domain.clock import Clock, utcnow
from dxpulse.domain.registry import Registry
from dxpulse.faust_engine.support import (
    add_history_writer,
    add_metrics_page,
    assigned_partitions,
    json_table,
    new_faust_app,
    raw_topic,
    send_and_wait,
)
from dxpulse.kafka.dead_letters import DeadLetters
from dxpulse.kafka.topics import ALERTS, DEAD_LETTERS, ROLLUPS, TopicSpec, changelog
from services.alerts.alertmanager import alertmanager_pusher
from services.alerts.history import INSERT_HISTORY, INVALID_EVENT, event_row
from services.alerts.judge import INVALID_ROLLUP, PROCESSING_FAILED, TICK, AlertJudge, AlertPublisher
from services.alerts.metrics import AlertsMetrics
from services.alerts.settings import AlertsSettings
from services.alerts.ticks import Reevaluation, tick_topics

STATE_TABLE = "alert-state"

JUDGE_AGENT = "services.alerts.app.judge"
"""The name faust knows the judging agent by, in its logs and statistics."""


def ticks_topic_name(settings: AlertsSettings) -> str:
    return f"{settings.alerts_app_id}-ticks"


def worker_topics(settings: AlertsSettings) -> tuple[TopicSpec, ...]:
    """Topics the alerts worker needs beyond the shared ones: its changelog and its ticks."""
    return (
        changelog(settings.alerts_app_id, STATE_TABLE),
        TopicSpec(ticks_topic_name(settings), configs={"retention.ms": str(24 * 3600 * 1000)}),
    )


def add_alerts_page(app: faust.App, judge: AlertJudge) -> None:
    """Serve ``judge``'s alerts firing now at /alerts, as JSON."""

    @app.page("/alerts")
    async def current_alerts(web: Any, request: Any) -> Any:
        """The alerts firing now, with the figures as they are now (the topic has them as they fired)."""
        return web.json([alert.model_dump(mode="json") for alert in judge.firing()])


def create_app(
    settings: AlertsSettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = utcnow,
) -> faust.App:
    """Build the alerts worker (start it with ``app.main()``)."""
    catalog, registry = business_data(settings, catalog, registry)
    app = new_faust_app(settings.alerts_app_id, settings, web_port=settings.alerts_web_port)
    # Standby copies would make the re-evaluation judge partitions another worker owns.
    app.conf.table_standby_replicas = 0
    states = json_table(app, STATE_TABLE, settings.topic_partitions)
    judge = AlertJudge(
        states,
        catalog,
        registry,
        clock,
        hold_down=timedelta(seconds=settings.hold_down_s),
        resolve_hold_down=timedelta(seconds=settings.resolve_hold_down_s),
    )
    metrics = AlertsMetrics(judge.firing)
    add_metrics_page(app, metrics.registry)
    add_alerts_page(app, judge)
    alerts_topic = raw_topic(app, ALERTS)
    ticks, inputs = tick_topics(app, ticks_topic_name(settings), settings.topic_partitions)
    pusher = alertmanager_pusher(settings, judge.firing, metrics.pushes, clock, catalog)
    dead_letters = DeadLetters(
        partial(send_and_wait, raw_topic(app, DEAD_LETTERS)),
        metrics.registry,
        clock,
        reasons=(INVALID_ROLLUP, INVALID_EVENT, PROCESSING_FAILED),
    )
    publisher = AlertPublisher(judge, partial(send_and_wait, alerts_topic), dead_letters, metrics, pusher)
    app.agent(inputs, name=JUDGE_AGENT)(publisher.run)
    reevaluation = Reevaluation(
        states,
        lambda key: ticks.send(key=key, value=TICK),
        partial(assigned_partitions, app, ROLLUPS),
        catalog,
        clock,
        settings.topic_partitions,
    )
    app.timer(settings.reevaluate_interval_s)(reevaluation.tick)
    if pusher is not None:
        app.task(pusher.run)
    if settings.history_enabled:
        add_history_writer(
            app,
            alerts_topic,
            settings.database_url,
            INSERT_HISTORY,
            event_row,
            migrate=settings.migrate_at_start,
            dead_letters=dead_letters,
        )
    return app

"""The aggregator's faust app: reports in, latest value per reporter in a table, rollups out."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import ValidationError

from dxpulse.catalog import Catalog, default_catalog
from dxpulse.faust_support import (
    add_metrics_page,
    assigned_partitions,
    json_table,
    new_faust_app,
    raw_topic,
)
from dxpulse.monitoring import RollupGauges
from dxpulse.registry import Registry, default_registry
from dxpulse.rollup import PeriodState, step
from dxpulse.subscriber import latest_rollups
from dxpulse.topics import DEAD_LETTERS, REPORTS, ROLLUPS, TopicSpec, changelog
from dxpulse.validation import Problem, validate_report
from schemas import DeadLetter, Report, Rollup
from schemas.events import report_key
from services.aggregate.history import register_history
from services.aggregate.settings import AggregateSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AggregateMetrics:
    """The aggregator's Prometheus metrics (names fixed by the contract in dxpulse.monitoring)."""

    def __init__(self, gauges: RollupGauges) -> None:
        self.registry = CollectorRegistry()
        self.processed = Counter(
            "dxpulse_aggregate_reports_processed",
            "Reports consumed, by outcome (changed, unchanged, dead_letter)",
            ["outcome"],
            registry=self.registry,
        )
        self.published = Counter(
            "dxpulse_aggregate_rollups_published", "Rollups published", registry=self.registry
        )
        self.dead_letters = Counter(
            "dxpulse_dead_letters", "Reports dead-lettered, by reason", ["reason"], registry=self.registry
        )
        self.end_to_end = Histogram(
            "dxpulse_end_to_end_seconds",
            "From the report's Kafka timestamp (set at ingest) until its rollups were published",
            buckets=END_TO_END_BUCKETS,
            registry=self.registry,
        )
        self.gauges = gauges
        self.registry.register(gauges)

    def report_done(self, event: Any, rollups: list[Rollup], now: float, *, changed: bool) -> None:
        """Count a processed report; time and keep (for the business gauges) the rollups it published."""
        self.published.inc(len(rollups))
        self.processed.labels(outcome="changed" if changed else "unchanged").inc()
        if not rollups:
            return
        if event.message.timestamp is not None:
            self.end_to_end.observe(max(0.0, now - event.message.timestamp))
        self.gauges.observe(rollups, event.message.partition)


# Reports queue behind outages and rebalances, so the tail reaches well past a minute.
END_TO_END_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


STATE_TABLE = "period-state"


def worker_topics(settings: AggregateSettings) -> tuple[TopicSpec, ...]:
    """Topics the aggregator needs beyond the shared ones: its table's changelog."""
    return (changelog(settings.aggregate_app_id, STATE_TABLE),)


def create_app(
    settings: AggregateSettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = _utcnow,
) -> faust.App:
    """Build the aggregator worker (start it with ``app.main()`` or ``faust -A``)."""
    catalog = catalog or default_catalog()
    registry = registry or default_registry()
    app = new_faust_app(
        settings.aggregate_app_id,
        settings,
        web_port=settings.aggregate_web_port,
        data_dir=settings.state_dir,
        session_timeout_s=settings.session_timeout_s,
    )
    metrics = AggregateMetrics(
        RollupGauges(
            settings.rollup_gauge_periods,
            settings.topic_partitions,
            lambda: assigned_partitions(app, REPORTS),
        )
    )
    add_metrics_page(app, metrics.registry)
    reports_topic = raw_topic(app, REPORTS)
    rollups_topic = raw_topic(app, ROLLUPS)
    dead_letters = raw_topic(app, DEAD_LETTERS)
    # One record per (indicator, period): the latest snapshot of every reporter and what was
    # published. One write per report keeps the two consistent across a crash.
    states = json_table(app, STATE_TABLE, settings.topic_partitions)

    async def dead_letter(event: Any, reason: str, detail: str) -> None:
        message = event.message
        letter = DeadLetter(
            reason=reason,
            detail=detail,
            original=base64.b64encode(message.value or b"").decode(),
            original_key=message.key.decode(errors="replace") if message.key else None,
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            failed_at=clock(),
        )
        metrics.processed.labels(outcome="dead_letter").inc()
        metrics.dead_letters.labels(reason=reason).inc()
        log.warning("dead-lettered %s@%s: %s", message.partition, message.offset, detail)
        await dead_letters.send(key=message.key, value=letter.model_dump_json().encode())

    async def process(event: Any) -> None:
        try:
            report = Report.model_validate_json(event.value)
        except ValidationError as error:
            await dead_letter(event, "invalid-report", str(error).replace("\n", " "))
            return
        verdict = validate_report(report, catalog, registry, clock())
        if isinstance(verdict, Problem):
            await dead_letter(event, verdict.type, verdict.detail)
            return
        key = report_key(report.indicator, report.period)
        if event.key is None or event.key.decode(errors="replace") != key:
            # The table is partitioned by this key: a report on another partition would start a
            # second, disagreeing state for the same (indicator, period).
            await dead_letter(event, "wrong-key", f"reports must be keyed {key!r} (indicator|period)")
            return
        state = PeriodState.from_json(states.get(key))
        new_state, rollups = step(
            state, report, catalog[report.indicator], verdict.period, registry, clock(), event.message.offset
        )
        if new_state is not state:
            states[key] = new_state.to_json()
        for rollup in rollups:
            await rollups_topic.send(key=rollup.key.encode(), value=rollup.model_dump_json().encode())
        metrics.report_done(event, rollups, time.time(), changed=new_state is not state)

    @app.agent(reports_topic)
    async def aggregate(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            await process(event)
            yield None

    # The gauges of figures that did not change since a (re)start come from the compacted rollup
    # topic, re-read whenever this worker's partitions change.
    gauges_stale = asyncio.Event()

    @app.on_partitions_assigned.connect
    async def mark_gauges_stale(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        gauges_stale.set()

    async def refresh_gauges() -> None:
        while True:
            await gauges_stale.wait()
            gauges_stale.clear()
            try:
                current = await latest_rollups(settings.kafka_bootstrap)
            except Exception as error:  # Kafka hiccup: gauges stay as they are, try again shortly
                log.warning("could not re-read rollups for the gauges: %r", error)
                await asyncio.sleep(5)
                gauges_stale.set()
                continue
            metrics.gauges.observe(current.values())

    app.task(refresh_gauges)

    if settings.history_enabled:
        register_history(
            app,
            settings,
            reports_topic=reports_topic,
            rollups_topic=rollups_topic,
            catalog=catalog,
            registry=registry,
            clock=clock,
        )

    return app

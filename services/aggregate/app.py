"""The aggregator's faust app: reports in, latest value per reporter in a table, rollups out."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from dxpulse.catalog import Catalog, default_catalog
from dxpulse.faust_support import add_metrics_page, json_table, new_faust_app, raw_topic
from dxpulse.registry import Registry, default_registry
from dxpulse.rollup import PeriodState, step
from dxpulse.topics import DEAD_LETTERS, REPORTS, ROLLUPS, TopicSpec, changelog
from dxpulse.validation import Problem, validate_report
from schemas import DeadLetter, Report
from schemas.events import report_key
from services.aggregate.history import register_history
from services.aggregate.settings import AggregateSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AggregateMetrics:
    """The aggregator's Prometheus metrics."""

    def __init__(self) -> None:
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
    metrics = AggregateMetrics()
    app = new_faust_app(
        settings.aggregate_app_id,
        settings,
        web_port=settings.aggregate_web_port,
        data_dir=settings.state_dir,
        session_timeout_s=settings.session_timeout_s,
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
        metrics.published.inc(len(rollups))
        metrics.processed.labels(outcome="unchanged" if new_state is state else "changed").inc()

    @app.agent(reports_topic)
    async def aggregate(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            await process(event)
            yield None

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

"""A faust worker that only takes and decodes reports: what faust itself allows one aggregator here."""

from __future__ import annotations

import time

import faust
from prometheus_client import CollectorRegistry, Counter, Gauge

from dxpulse.faust_engine.support import add_metrics_page, new_faust_app, raw_topic, take_batches
from dxpulse.kafka.topics import REPORTS
from schemas import Report
from services.aggregate.settings import AggregateSettings

DECODED = "bench_ceiling_reports_decoded"
FIRST_BATCH = "bench_ceiling_first_batch"
FIRST_AT = "bench_ceiling_first_batch_at_seconds"
LAST_AT = "bench_ceiling_last_batch_at_seconds"


def create_ceiling_app(settings: AggregateSettings) -> faust.App:
    """The aggregator's faust app, consumer and batching without its work: no table, no rollups.

    Its /metrics count the reports decoded and stamp the first and latest batch, so the bench times
    the consuming alone, not the worker's start-up and rebalance.
    """
    app = new_faust_app(settings.aggregate_app_id, settings, web_port=settings.aggregate_web_port)
    registry = CollectorRegistry()
    decoded = Counter(DECODED, "Reports taken and decoded", registry=registry)
    first_batch = Gauge(FIRST_BATCH, "Reports in the first batch (not timed)", registry=registry)
    first_at = Gauge(FIRST_AT, "Unix time the first batch was decoded", registry=registry)
    last_at = Gauge(LAST_AT, "Unix time the latest batch was decoded", registry=registry)
    add_metrics_page(app, registry)
    batches = take_batches(
        app, raw_topic(app, REPORTS), settings.aggregate_batch_max, linger_s=settings.aggregate_batch_within_s
    )

    async def decode() -> None:
        started = False
        async for messages in batches:  # an error here ends the bench run: no aclosing needed
            for message in messages:
                Report.model_validate_json(message.value or b"")
            now = time.time()
            if not started:
                started = True
                first_batch.set(len(messages))
                first_at.set(now)
            last_at.set(now)
            decoded.inc(len(messages))

    app.task(decode)
    return app

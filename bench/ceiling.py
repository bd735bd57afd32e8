"""A faust worker that only takes and decodes reports: what faust itself allows one aggregator here."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Gauge

from dxpulse.faust_support import add_metrics_page, behind_on, new_faust_app, raw_topic, take_ready
from dxpulse.topics import REPORTS
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

    @app.agent(raw_topic(app, REPORTS))
    async def decode(stream: Any) -> AsyncIterator[None]:
        batches = take_ready(
            stream,
            settings.aggregate_batch_max,
            settings.aggregate_batch_within_s,
            behind=behind_on(app, REPORTS),
        )
        started = False
        async for events in batches:
            for event in events:
                Report.model_validate_json(event.value)
            now = time.time()
            if not started:
                started = True
                first_batch.set(len(events))
                first_at.set(now)
            last_at.set(now)
            decoded.inc(len(events))
            yield None

    return app

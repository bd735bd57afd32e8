"""The history writer's faust app: rollups into rollup_history, reports into reporter_latest."""

from __future__ import annotations

from functools import partial

import faust

from dxpulse.business_data import business_data
from dxpulse.domain.catalog import Catalog
from dxpulse.domain.clock import Clock, utcnow
from dxpulse.domain.registry import Registry
from dxpulse.faust_engine.support import (
    add_metrics_page,
    new_faust_app,
    raw_topic,
    send_and_wait,
    take_batches,
)
from dxpulse.kafka.dead_letters import DeadLetters
from dxpulse.kafka.topics import DEAD_LETTERS, REPORTS, ROLLUPS, partition_of
from dxpulse.postgres.migrations import open_pool
from dxpulse.postgres.retry import RETRY_DELAYS_S
from services.history.core import BATCH, write_latest, write_rollups
from services.history.metrics import HistoryMetrics
from services.history.settings import HistorySettings
from services.history.writers import (
    WRITE_FAILED,
    BatchWriter,
    ReporterLatestWriter,
    RollupHistoryWriter,
)


def create_app(
    settings: HistorySettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = utcnow,
    retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
) -> faust.App:
    """Build the history writer (start it with ``app.main()``, or ``python -m services.history``).

    A process and consumer group of its own, apart from the aggregator (docs/design/history.md).
    Each event is acknowledged (its offset committed) only after its batch is committed to
    PostgreSQL, so a crash redelivers it and the idempotent writes absorb the repeat. While
    PostgreSQL is unreachable a batch is tried again until it is written.
    """
    catalog, registry = business_data(settings, catalog, registry)
    app = new_faust_app(settings.history_app_id, settings, web_port=settings.history_web_port)
    metrics = HistoryMetrics()
    add_metrics_page(app, metrics.registry)
    # Batches straight from the consumer (dxpulse.faust_engine.batches), not agents: faust's
    # per-message streams hold the writer to a fraction of what PostgreSQL takes
    # (docs/design/history.md). A batch is acked, so committed, once its transaction is.
    rollup_batches = take_batches(app, raw_topic(app, ROLLUPS), BATCH)
    report_batches = take_batches(app, raw_topic(app, REPORTS), BATCH)
    dead_letters = DeadLetters(
        partial(send_and_wait, raw_topic(app, DEAD_LETTERS)), metrics.registry, clock, reasons=(WRITE_FAILED,)
    )
    connect = partial(open_pool, settings.database_url, migrate=settings.migrate_at_start)
    rollups = RollupHistoryWriter(
        rollup_batches,
        BatchWriter("rollup_history", write_rollups, connect, dead_letters, metrics, retry_delays_s),
        metrics,
    )
    latest = ReporterLatestWriter(
        report_batches,
        BatchWriter("reporter_latest", write_latest, connect, dead_letters, metrics, retry_delays_s),
        metrics,
        catalog,
        registry,
        clock,
        partial(partition_of, partitions=settings.topic_partitions),
    )
    app.task(rollups.run)
    app.task(latest.run)
    return app

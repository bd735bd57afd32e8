"""The history writer's faust app: rollups into rollup_history, reports into reporter_latest.

A process and consumer group of its own, apart from the aggregator: PostgreSQL's pace, or an
outage, never holds back the rollups, and the aggregator's throughput is the same with history on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
import faust
from faust.types import Message
from prometheus_client import CollectorRegistry, Counter, Histogram

from dxpulse.domain.catalog import Catalog, default_catalog
from dxpulse.domain.clock import Clock, utcnow
from dxpulse.domain.registry import Registry, default_registry
from dxpulse.faust_engine.support import add_metrics_page, new_faust_app, raw_topic, take_batches
from dxpulse.kafka.dead_letters import DeadLetters, Refused
from dxpulse.kafka.topics import DEAD_LETTERS, REPORTS, ROLLUPS
from dxpulse.postgres.migrations import open_pool
from dxpulse.postgres.retry import RETRY_DELAYS_S, until_done
from schemas import Report
from services.history.core import (
    BATCH,
    accepted_report,
    parse_published,
    write_latest,
    write_rollups,
)
from services.history.settings import HistorySettings

log = logging.getLogger(__name__)

T = TypeVar("T")


WRITE_FAILED = "history-write-failed"
"""Dead-letter reason of a message PostgreSQL refused to store (not an outage: those are waited out)."""

TABLES = ("rollup_history", "reporter_latest")
"""The tables the writer's metrics are labelled with."""


class HistoryMetrics:
    """The history writer's Prometheus metrics (its consumer lag is added by ``add_metrics_page``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rollups = Counter(
            "dxpulse_history_rollups_read",
            "Rollup messages read, by outcome (added: a new revision; known: a repeat or replay;"
            " unreadable: not a rollup, logged)",
            ["outcome"],
            registry=self.registry,
        )
        self.reports = Counter(
            "dxpulse_history_reports_read",
            "Report messages read, by outcome (recorded: upserted into reporter_latest; refused: one"
            " the aggregator refuses too)",
            ["outcome"],
            registry=self.registry,
        )
        self.write_seconds = Histogram(
            "dxpulse_history_write_seconds",
            "Duration of one batch's transaction, by table",
            ["table"],
            registry=self.registry,
        )
        self.write_failures = Counter(
            "dxpulse_history_write_failures",
            "Writes (or connections for them) that failed with PostgreSQL unreachable and were tried"
            " again, by table",
            ["table"],
            registry=self.registry,
        )
        # Every series exists from the start at 0, so a dashboard shows it and increase() sees
        # the first failure (Prometheus does not count the first sample of a new series).
        for outcome in ("added", "known", "unreadable"):
            self.rollups.labels(outcome=outcome)
        for outcome in ("recorded", "refused"):
            self.reports.labels(outcome=outcome)
        for table in TABLES:
            self.write_seconds.labels(table=table)
            self.write_failures.labels(table=table)


def create_app(
    settings: HistorySettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = utcnow,
    retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
) -> faust.App:
    """Build the history writer (start it with ``app.main()``, or ``python -m services.history``).

    Each event is acknowledged (its offset committed) only after its batch is committed to
    PostgreSQL, so a crash redelivers it and the idempotent writes absorb the repeat. While
    PostgreSQL is unreachable a batch is tried again until it is written.
    """
    catalog = catalog or default_catalog()
    registry = registry or default_registry()
    app = new_faust_app(settings.history_app_id, settings, web_port=settings.history_web_port)
    metrics = HistoryMetrics()
    add_metrics_page(app, metrics.registry)

    async def connected(table: str) -> asyncpg.Pool:
        return await until_done(
            lambda: open_pool(settings.database_url),
            f"opening the database for {table}",
            failed=lambda error: metrics.write_failures.labels(table=table).inc(),
            delays_s=retry_delays_s,
        )

    async def written(
        pool: asyncpg.Pool,
        table: str,
        write: Callable[[Any, Sequence[T]], Awaitable[int]],
        items: Sequence[T],
    ) -> int:
        async def attempt() -> int:
            async with pool.acquire() as conn:
                started = time.perf_counter()
                count = await write(conn, items)
                metrics.write_seconds.labels(table=table).observe(time.perf_counter() - started)
                return count

        return await until_done(
            attempt,
            f"writing {table}",
            failed=lambda error: metrics.write_failures.labels(table=table).inc(),
            delays_s=retry_delays_s,
        )

    # Batches straight from the consumer (dxpulse.faust_engine.batches), not agents: faust's per-message
    # streams held the writer to ~7,500 reports/s here, PostgreSQL taking ~40,000 rows/s
    # (BENCHMARKS.md, session 11). A batch is acked, so committed, once its transaction is.
    rollup_batches = take_batches(app, raw_topic(app, ROLLUPS), BATCH)
    report_batches = take_batches(app, raw_topic(app, REPORTS), BATCH)

    dead_letters_topic = raw_topic(app, DEAD_LETTERS)

    async def send_dead_letter(key: bytes | None, value: bytes) -> None:
        await (await dead_letters_topic.send(key=key, value=value))

    dead_letters = DeadLetters(send_dead_letter, metrics.registry, clock, reasons=(WRITE_FAILED,))

    async def written_or_dead_lettered(
        pool: asyncpg.Pool,
        table: str,
        write: Callable[[Any, Sequence[T]], Awaitable[int]],
        pairs: Sequence[tuple[Message, T]],
    ) -> int:
        """``written``, leaving out and dead-lettering what PostgreSQL refuses (an outage is waited
        out by ``written``; any other error is about the data): a bad row must not stop history."""
        try:
            return await written(pool, table, write, [item for _, item in pairs])
        except Exception:
            if not pairs:
                raise
            log.exception("writing %d rows to %s failed; writing each alone", len(pairs), table)
        count = 0
        for message, item in pairs:
            try:
                count += await written(pool, table, write, [item])
            except Exception as error:
                await dead_letters.send(
                    Refused(message.key, message.value, message.topic, message.partition, message.offset),
                    WRITE_FAILED,
                    f"not written to {table}: {error!r}",
                )
        return count

    async def record_history() -> None:
        pool = await connected("rollup_history")
        try:
            async with contextlib.aclosing(aiter(rollup_batches)) as taken:
                async for batch in taken:
                    pairs = [
                        (message, m)
                        for message in batch
                        if (m := parse_published(message.partition, message.offset, message.value))
                        is not None
                    ]
                    added = await written_or_dead_lettered(pool, "rollup_history", write_rollups, pairs)
                    metrics.rollups.labels(outcome="added").inc(added)
                    metrics.rollups.labels(outcome="known").inc(len(pairs) - added)
                    metrics.rollups.labels(outcome="unreadable").inc(len(batch) - len(pairs))
        finally:
            await pool.close()

    async def record_latest() -> None:
        pool = await connected("reporter_latest")
        try:
            async with contextlib.aclosing(aiter(report_batches)) as taken:
                async for batch in taken:
                    now = clock()
                    reports = [(message, r) for message in batch if (r := judged(message, now)) is not None]
                    recorded = await written_or_dead_lettered(pool, "reporter_latest", write_latest, reports)
                    metrics.reports.labels(outcome="recorded").inc(recorded)
                    metrics.reports.labels(outcome="refused").inc(len(batch) - recorded)
        finally:
            await pool.close()

    def judged(message: Message, now: datetime) -> Report | None:
        try:
            return accepted_report(message.key, message.value or b"", catalog, registry, now)
        except Exception:  # the aggregator dead-letters such a report (processing-failed)
            log.exception("judging report %s@%s failed; not recorded", message.partition, message.offset)
            return None

    app.task(record_history)
    app.task(record_latest)

    return app

"""The history writer's two tables, each written a batch per transaction by one shared BatchWriter."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from faust.types import Message

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.clock import Clock
from dxpulse.domain.registry import Registry
from dxpulse.faust_engine.support import as_refused
from dxpulse.kafka.dead_letters import DeadLetters
from dxpulse.postgres.retry import RETRY_DELAYS_S, until_done
from schemas import Report
from services.history.core import Published, accepted_report, parse_published
from services.history.metrics import HistoryMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")

WRITE_FAILED = "history-write-failed"
"""Dead-letter reason of a message PostgreSQL refused to store (not an outage: those are waited out)."""

Write = Callable[[Any, Sequence[T]], Awaitable[int]]
"""Writes items in one transaction on a connection and returns how many it wrote (``core.write_*``)."""


class Batches(Protocol):
    """Batches of a topic's messages, as ``take_batches`` hands them over."""

    def __aiter__(self) -> AsyncGenerator[list[Message], None]: ...


class BatchWriter(Generic[T]):
    """Writes one table, a batch per transaction, from batches of messages.

    While PostgreSQL is unreachable a connection or a batch is tried again until it succeeds
    (``dxpulse.postgres.retry``). A batch PostgreSQL refuses for its data is written row by row, and
    the rows it refuses are dead-lettered (docs/design/dead-letters.md): a bad row must not stop history.
    """

    def __init__(
        self,
        table: str,
        write: Write[T],
        connect: Callable[[], Awaitable[asyncpg.Pool]],
        dead_letters: DeadLetters,
        metrics: HistoryMetrics,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        self.table = table
        self.write = write
        self.connect = connect
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.retry_delays_s = retry_delays_s
        self.pool: asyncpg.Pool | None = None
        """Open while ``run`` runs."""

    async def run(self, batches: Batches, record: Callable[[list[Message]], Awaitable[None]]) -> None:
        """Open the table's pool, then hand every batch to ``record`` (which calls ``written``)."""
        pool = await until_done(
            self.connect,
            f"opening the database for {self.table}",
            failed=self._failed,
            delays_s=self.retry_delays_s,
        )
        self.pool = pool
        try:
            async with contextlib.aclosing(aiter(batches)) as taken:
                async for batch in taken:
                    await record(batch)
        finally:
            await pool.close()

    async def written(self, pairs: Sequence[tuple[Message, T]]) -> int:
        """Write the items of ``pairs`` (each with the message it came from) in one transaction;
        when that fails, each alone, dead-lettering the message of every item PostgreSQL refuses.
        Returns how many were written."""
        try:
            return await self._transaction([item for _, item in pairs])
        except Exception:
            if not pairs:
                raise
            log.exception("writing %d rows to %s failed; writing each alone", len(pairs), self.table)
        count = 0
        for message, item in pairs:
            try:
                count += await self._transaction([item])
            except Exception as error:
                await self.dead_letters.send(
                    as_refused(message), WRITE_FAILED, f"not written to {self.table}: {error!r}"
                )
        return count

    async def _transaction(self, items: Sequence[T]) -> int:
        return await until_done(
            lambda: self._attempt(items),
            f"writing {self.table}",
            failed=self._failed,
            delays_s=self.retry_delays_s,
        )

    async def _attempt(self, items: Sequence[T]) -> int:
        assert self.pool is not None, "written only while run runs"
        async with self.pool.acquire() as conn:
            started = time.perf_counter()
            count = await self.write(conn, items)
            self.metrics.write_seconds.labels(table=self.table).observe(time.perf_counter() - started)
            return count

    def _failed(self, error: BaseException) -> None:
        self.metrics.write_failures.labels(table=self.table).inc()


class TableWriter(Generic[T]):
    """Feeds one topic's batches to ``record``, which makes them rows for ``writer``'s table."""

    def __init__(self, batches: Batches, writer: BatchWriter[T], metrics: HistoryMetrics) -> None:
        self.batches = batches
        self.writer = writer
        self.metrics = metrics

    async def run(self) -> None:
        """The writer's task: until the worker stops."""
        await self.writer.run(self.batches, self.record)

    async def record(self, batch: list[Message]) -> None:
        raise NotImplementedError


class RollupHistoryWriter(TableWriter[Published]):
    """rollup_history and rollup_current, from the rollup topic (docs/design/history.md)."""

    async def record(self, batch: list[Message]) -> None:
        pairs = [
            (message, m)
            for message in batch
            if (m := parse_published(message.partition, message.offset, message.value)) is not None
        ]
        added = await self.writer.written(pairs)
        self.metrics.rollups.labels(outcome="added").inc(added)
        self.metrics.rollups.labels(outcome="known").inc(len(pairs) - added)
        self.metrics.rollups.labels(outcome="unreadable").inc(len(batch) - len(pairs))


class ReporterLatestWriter(TableWriter[Report]):
    """reporter_latest, from the reports the aggregator accepts (docs/design/history.md)."""

    def __init__(
        self,
        batches: Batches,
        writer: BatchWriter[Report],
        metrics: HistoryMetrics,
        catalog: Catalog,
        registry: Registry,
        clock: Clock,
        home_partition: Callable[[bytes], int],
    ) -> None:
        """``home_partition``: the partition of the reports topic a key belongs on, as the aggregator
        checks it (``services.aggregate.processing.WRONG_PARTITION``)."""
        super().__init__(batches, writer, metrics)
        self.catalog = catalog
        self.registry = registry
        self.clock = clock
        self.home_partition = home_partition

    async def record(self, batch: list[Message]) -> None:
        now = self.clock()
        reports = [(message, r) for message in batch if (r := self.accepted(message, now)) is not None]
        recorded = await self.writer.written(reports)
        self.metrics.reports.labels(outcome="recorded").inc(recorded)
        self.metrics.reports.labels(outcome="refused").inc(len(batch) - recorded)

    def accepted(self, message: Message, now: datetime) -> Report | None:
        if message.key is not None and message.partition != self.home_partition(message.key):
            return None  # the aggregator dead-letters it (wrong-partition)
        try:
            return accepted_report(message.key, message.value or b"", self.catalog, self.registry, now)
        except Exception:  # the aggregator dead-letters such a report (processing-failed)
            where = {"key": message.key.decode(errors="replace") if message.key else None}
            log.exception(
                "judging report %s@%s failed; not recorded", message.partition, message.offset, extra=where
            )
            return None

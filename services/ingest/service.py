"""The ingest's parts in one object, held on ``app.state.ingest``; the routes reach it through api/deps.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from dxpulse.domain.catalog import Catalog
from services.ingest.auth import TokenCache
from services.ingest.items import Item
from services.ingest.judge import Judge
from services.ingest.kafka import KafkaLink
from services.ingest.metrics import IngestMetrics
from services.ingest.publisher import Publisher
from services.ingest.ratelimit import RateLimiter
from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore, Pruner


@dataclass
class Ingest:
    """Everything a request needs past HTTP: tokens, rate limits, judging, publishing, metrics."""

    settings: IngestSettings
    catalog: Catalog
    metrics: IngestMetrics
    tokens: TokenCache
    rate_limiter: RateLimiter
    judge: Judge
    publisher: Publisher
    kafka: KafkaLink
    store: IngestStore
    pruner: Pruner

    async def process(self, subject: str, items: list[Item]) -> None:
        """Judge a request's parsed reports, publish the valid ones, and count every outcome."""
        self.judge.judge(subject, items)
        await self.publisher.publish(items)
        self.metrics.tally(subject, items)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Kafka connected, and old accepted ids pruned, in the background while the API serves."""
        self.kafka.start()
        pruner = asyncio.create_task(self.pruner.run(), name="prune-accepted-ids")
        try:
            yield
        finally:
            pruner.cancel()
            await asyncio.gather(pruner, return_exceptions=True)
            await self.publisher.records.drain()
            await self.kafka.stop()
            await self.store.close()

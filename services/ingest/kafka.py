"""The ingest's Kafka producer: connected in the background, so the API starts while Kafka is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from dxpulse.kafka_batches import BATCH_BYTES, PartitionTurns, keyed_partition

log = logging.getLogger(__name__)

PRODUCE_LINGER_MS = 5
"""How long the producer waits to fill a batch: adds at most this to a single report's latency."""
PRODUCE_BATCH_BYTES = BATCH_BYTES


class KafkaLink:
    """Keeps trying to start a producer (acks=all, idempotent) until it is up.

    Once started, aiokafka reconnects by itself when the broker comes back; until the first
    start, ``producer`` is None and the API answers 503.
    """

    def __init__(self, bootstrap: str, request_timeout_s: float, retry_interval_s: float) -> None:
        self._bootstrap = bootstrap
        self._request_timeout_ms = int(request_timeout_s * 1000)
        self._retry_interval_s = retry_interval_s
        self.producer: AIOKafkaProducer | None = None
        self.turns = PartitionTurns()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="kafka-connect")

    async def _connect(self) -> None:
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=self._request_timeout_ms,
                # aiokafka keeps one produce request in flight per broker: with its defaults (no
                # linger, 16 KiB per partition) a batch of 500 reports waited for several round
                # trips. As bench's raw producer, the baseline ingest is measured against.
                linger_ms=PRODUCE_LINGER_MS,
                max_batch_size=PRODUCE_BATCH_BYTES,
                partitioner=keyed_partition,
            )
            starting = asyncio.ensure_future(producer.start())
            try:
                await asyncio.shield(starting)
            except (KafkaError, OSError) as error:
                log.warning("Kafka at %s not reachable (%r); retrying", self._bootstrap, error)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(self._retry_interval_s)
                continue
            except asyncio.CancelledError:
                # Shut down while connecting. A start cancelled mid-bootstrap leaves aiokafka's
                # bootstrap connection open with nothing to close it (aiokafka#715): let the start
                # end (within the request timeout), then close what it opened.
                with contextlib.suppress(Exception):
                    await starting
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            log.info("connected to Kafka at %s", self._bootstrap)
            self.producer = producer
            return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

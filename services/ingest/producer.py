"""Reports to Kafka with acks=all: a lone report through aiokafka's ``send``, more as record batches."""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from dxpulse.kafka.batches import Handed, Message, send_as_batches
from dxpulse.kafka.topics import REPORTS
from schemas import Report
from schemas.events import report_key
from services.ingest.kafka import KafkaLink
from services.ingest.metrics import IngestMetrics


class ReportProducer:
    """Hands reports to the producer ``KafkaLink`` keeps, and says which Kafka acknowledged in time.

    A lone report goes through aiokafka's ``send``, which gathers concurrent requests' reports into
    shared batches; more go as one record batch per partition (``send_as_batches``: a ``send`` per
    report costs a third of a batch's CPU). docs/design/ingest.md says why.
    """

    def __init__(self, kafka: KafkaLink, metrics: IngestMetrics, timeout_s: float) -> None:
        self.kafka = kafka
        self.metrics = metrics
        self.timeout_s = timeout_s

    async def produce(self, reports: list[Report]) -> list[BaseException | None]:
        """Hand every report to the producer, then wait for Kafka's acks=all on all of them together:
        per report, None once acknowledged, or why not."""
        producer = self.kafka.producer
        if producer is None:
            return [ConnectionError("not connected to Kafka yet")] * len(reports)
        started = time.perf_counter()
        messages: list[Message] = [
            # The serializer's bytes as they are: model_dump_json() decodes them to a str first.
            (
                report_key(report.indicator, report.period).encode(),
                report.__pydantic_serializer__.to_json(report),
            )
            for report in reports
        ]
        handed: list[Handed] = [None] * len(messages)
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._hand_over(producer, messages, handed)
                batches = {o for o in handed if isinstance(o, asyncio.Future)}
                if batches:
                    await asyncio.wait(batches)
        except TimeoutError:
            pass  # the reports not acknowledged by now are answered unavailable
        # Per partition, for readiness and to replace a producer that can no longer send there.
        self.kafka.observe(producer, [key for key, _ in messages], handed)
        # One future per record batch, observed once per report it carries; the callback also reads
        # a failure (aiokafka leaves that to the future's holder), of a batch still unacknowledged too.
        carried = collections.Counter(o for o in handed if isinstance(o, asyncio.Future))
        for future, count in carried.items():
            future.add_done_callback(functools.partial(self._acknowledged, started, count))
        return [self._error(outcome) for outcome in handed]

    async def _hand_over(
        self, producer: AIOKafkaProducer, messages: list[Message], handed: list[Handed]
    ) -> None:
        if len(messages) == 1:
            [(key, value)] = messages
            try:
                handed[0] = await producer.send(REPORTS, key=key, value=value)
            except KafkaError as error:
                handed[0] = error
        else:
            await send_as_batches(producer, REPORTS, messages, self.kafka.turns, handed)

    def _error(self, outcome: Handed) -> BaseException | None:
        """Why a report was not acknowledged, from what it was handed as; None if it was."""
        if outcome is None:
            return TimeoutError("not handed to Kafka in time")
        if isinstance(outcome, BaseException):
            return outcome  # refused at hand-over
        if not outcome.done():
            return TimeoutError(f"no acks=all within {self.timeout_s} s")
        if isinstance(outcome.exception(), KafkaError):
            return outcome.exception()
        outcome.result()  # anything but Kafka's own errors is a bug: let it raise
        return None

    def _acknowledged(self, started: float, reports: int, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.metrics.acknowledged(time.perf_counter() - started, reports)

"""Reading dxpulse topics as a downstream subscriber does: from the start to the current end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel

from dxpulse.faust_engine.clients import refresh_metadata
from dxpulse.kafka.security import PLAINTEXT, KafkaSecurity
from dxpulse.kafka.topics import ALERTS, ROLLUPS
from schemas import AlertEvent, Rollup

Event = TypeVar("Event", bound=BaseModel)


class Pacer:
    """Keeps a background read to a share of its event loop's time, so that the loop's own work
    (an aggregator's batches) waits for it a little at a time.

    ``rest()`` after each step sleeps long enough that the time since the previous rest is at most
    ``busy_share`` of the time between the two rests. That time counts any wait inside the step as
    busy too, so the read takes at most its share, and sometimes less.
    """

    def __init__(
        self,
        busy_share: float,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not 0 < busy_share <= 1:
            raise ValueError(f"busy_share must be in (0, 1], not {busy_share}")
        self.busy_share = busy_share
        self._sleep = sleep
        self._clock = clock
        self._since = clock()

    async def rest(self) -> None:
        busy = self._clock() - self._since
        if self.busy_share < 1 and busy > 0:
            await self._sleep(busy * (1 - self.busy_share) / self.busy_share)
        self._since = self._clock()


READ_CHUNK = 500
"""Records taken from the consumer at a time: the step between two rests of a paced read."""


async def record_chunks(
    bootstrap: str,
    topic: str,
    *,
    timeout_s: float = 30.0,
    pacer: Pacer | None = None,
    chunk: int = READ_CHUNK,
    security: KafkaSecurity = PLAINTEXT,
) -> AsyncGenerator[list[ConsumerRecord[bytes, bytes]], None]:
    """Every message on ``topic`` from its first offset up to its end when called, in order per
    partition, a chunk of at most ``chunk`` at a time; ``pacer`` rests after each chunk.

    Raises TimeoutError when no message arrives for ``timeout_s`` while some are still due: a large
    topic read slowly (or paced) is not an error, a stuck one is.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security.client_kwargs(),
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()  # else aiokafka warns of an unclosed consumer when Kafka is down
        raise
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await refresh_metadata(consumer)  # a new consumer may not know the topic yet
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        loop = asyncio.get_running_loop()
        progressed = loop.time()
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=500, max_records=chunk)
            records: list[ConsumerRecord[bytes, bytes]] = []
            for tp, messages in batches.items():
                records.extend(messages)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            if records:
                yield records
                if pacer is not None:
                    await pacer.rest()
                progressed = loop.time()
            elif pending and loop.time() - progressed > timeout_s:
                raise TimeoutError(
                    f"nothing read from {topic} for {timeout_s:g} s, {len(pending)} partitions still due"
                )
    finally:
        await consumer.stop()


async def read_records(
    bootstrap: str, topic: str, *, timeout_s: float = 30.0, security: KafkaSecurity = PLAINTEXT
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message on ``topic`` from its first offset up to its end when called, in order per
    partition (``record_chunks``, all at once)."""
    chunks = record_chunks(bootstrap, topic, timeout_s=timeout_s, security=security)
    return [record async for records in chunks for record in records]


async def latest_values(chunks: AsyncIterable[list[ConsumerRecord[bytes, bytes]]]) -> dict[bytes, bytes]:
    """Each key's latest value in ``chunks`` of a compacted topic (``record_chunks``), as a new
    subscriber sees it once the topic is compacted: a tombstone (no value) removes its key.

    Holds one value per key while reading, never the whole topic: its open segment is not
    compacted, and may hold weeks of figures.
    """
    latest: dict[bytes, bytes] = {}
    async for records in chunks:
        for record in records:
            if record.key is None:
                continue
            if record.value is None:
                latest.pop(record.key, None)
            else:
                latest[record.key] = record.value
    return latest


async def read_topic(
    bootstrap: str,
    topic: str,
    parse: Callable[[bytes], Event | None],
    *,
    timeout_s: float = 30.0,
    security: KafkaSecurity = PLAINTEXT,
) -> list[tuple[str, Event]]:
    """Every (key, event) on ``topic`` from its first offset up to its end when called, in order.

    Messages ``parse`` turns into None are skipped.
    """
    records = await read_records(bootstrap, topic, timeout_s=timeout_s, security=security)
    return [
        (r.key.decode(), event)
        for r in records
        if r.value is not None and r.key is not None and (event := parse(r.value)) is not None
    ]


async def latest_rollups(
    bootstrap: str,
    *,
    timeout_s: float = 30.0,
    pacer: Pacer | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[str, Rollup]:
    """The current rollup per key (``indicator|period|scope``), as a new subscriber sees it.

    Only each key's latest rollup is parsed (``latest_values``); ``pacer`` rests between reading
    chunks and between parsing them, for a worker reading this beside its own work.
    """
    chunks = record_chunks(bootstrap, ROLLUPS, timeout_s=timeout_s, pacer=pacer, security=security)
    latest = await latest_values(chunks)
    rollups: dict[str, Rollup] = {}
    for key, value in latest.items():
        rollups[key.decode()] = Rollup.model_validate_json(value)
        if pacer is not None and len(rollups) % READ_CHUNK == 0:
            await pacer.rest()
    return rollups


async def alert_events(
    bootstrap: str, *, timeout_s: float = 30.0, security: KafkaSecurity = PLAINTEXT
) -> list[AlertEvent]:
    """Every alert transition published so far, in order per fingerprint."""
    parse = AlertEvent.model_validate_json
    events = await read_topic(bootstrap, ALERTS, parse, timeout_s=timeout_s, security=security)
    return [event for _, event in events]

"""Reading dxpulse topics as a downstream subscriber does: from the start to the current end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, ValidationError

from dxpulse.catalog import Catalog
from dxpulse.registry import Registry
from dxpulse.topics import ALERTS, REPORTS, ROLLUPS
from dxpulse.validation import Problem, validate_report
from schemas import AlertEvent, Report, Rollup

Event = TypeVar("Event", bound=BaseModel)


async def read_records(
    bootstrap: str, topic: str, *, timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message on ``topic`` from its first offset up to its end when called, in order per partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()  # else aiokafka warns of an unclosed consumer when Kafka is down
        raise
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()  # a new consumer may not know the topic yet
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(timeout_s):
            while pending:
                batches = await consumer.getmany(*pending, timeout_ms=500)
                for tp, messages in batches.items():
                    records.extend(messages)
                    if messages and messages[-1].offset + 1 >= ends[tp]:
                        pending.discard(tp)
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
        return records
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str, topic: str, parse: Callable[[bytes], Event | None], *, timeout_s: float = 30.0
) -> list[tuple[str, Event]]:
    """Every (key, event) on ``topic`` from its first offset up to its end when called, in order.

    Messages ``parse`` turns into None are skipped.
    """
    records = await read_records(bootstrap, topic, timeout_s=timeout_s)
    return [
        (r.key.decode(), event)
        for r in records
        if r.value is not None and r.key is not None and (event := parse(r.value)) is not None
    ]


async def latest_rollups(bootstrap: str, *, timeout_s: float = 30.0) -> dict[str, Rollup]:
    """The current rollup per key (``indicator|period|scope``), as a new subscriber sees it.

    Only each key's latest rollup is parsed: the topic's open segment is not compacted yet, and a
    worker that just worked through a backlog leaves several rollups of ~40 KB per key there.
    """
    latest: dict[bytes, bytes] = {}
    for record in await read_records(bootstrap, ROLLUPS, timeout_s=timeout_s):
        if record.key is not None and record.value is not None:
            latest[record.key] = record.value
    return {key.decode(): Rollup.model_validate_json(value) for key, value in latest.items()}


async def alert_events(bootstrap: str, *, timeout_s: float = 30.0) -> list[AlertEvent]:
    """Every alert transition published so far, in order per fingerprint."""
    events = await read_topic(bootstrap, ALERTS, AlertEvent.model_validate_json, timeout_s=timeout_s)
    return [event for _, event in events]


async def valid_reports(
    bootstrap: str, catalog: Catalog, registry: Registry, *, timeout_s: float = 60.0
) -> list[Report]:
    """Every report on the raw report topic that the pipeline accepts (what the aggregator counted)."""
    now = datetime.now(UTC)

    def parse(raw: bytes) -> Report | None:
        try:
            report = Report.model_validate_json(raw)
        except ValidationError:
            return None
        return None if isinstance(validate_report(report, catalog, registry, now), Problem) else report

    return [report for _, report in await read_topic(bootstrap, REPORTS, parse, timeout_s=timeout_s)]

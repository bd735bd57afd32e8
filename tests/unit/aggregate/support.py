"""An in-memory table and report messages for testing the aggregator's processing without Kafka."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.registry import default_registry
from dxpulse.domain.rollup import step_many
from dxpulse.kafka.topics import REPORTS, partition_of
from schemas import Report
from schemas.events import report_key
from services.aggregate.processing import (
    BatchAggregator,
    BatchOutcome,
    ChangelogWrite,
    RawReport,
    ReportMessage,
    StepMany,
)
from tests.unit.conftest import COMPUTED_AT


class MemoryTable:
    """A ``TableView`` over a dict, holding what the worker's faust table (a memory store) holds."""

    def __init__(self, records: dict[str, Any] | None = None) -> None:
        self.records: dict[str, Any] = dict(records or {})

    def get(self, key: str) -> Any:
        return self.records.get(key)

    def items(self) -> Iterable[tuple[str, Any]]:
        return self.records.items()

    def set(self, key: str, value: Any) -> None:
        self.records[key] = value

    def delete(self, key: str) -> None:
        self.records.pop(key, None)


def recovered(writes: Iterable[ChangelogWrite]) -> MemoryTable:
    """The table a restarted worker recovers from a changelog of ``writes``: each key's last value,
    decoded from JSON as faust's table serializer does, a tombstone removing its key."""
    table = MemoryTable()
    for write in writes:
        if write.value is None:
            table.delete(write.key)
        else:
            encoded = write.value if isinstance(write.value, bytes) else json.dumps(write.value)
            table.set(write.key, json.loads(encoded))
    return table


PARTITIONS = 6
"""The reports topic's partitions in these tests, as in the local stack."""


def home_partition(key: bytes) -> int:
    """The partition a report keyed ``key`` belongs on."""
    return partition_of(key, PARTITIONS)


def aggregator(table: MemoryTable, step: StepMany = step_many) -> BatchAggregator:
    """An aggregator over ``table`` whose clock always reads ``COMPUTED_AT``."""
    return BatchAggregator(
        table,
        default_catalog(),
        default_registry(),
        lambda: COMPUTED_AT,
        home_partition=home_partition,
        step=step,
    )


def message_of(report: Report, offset: int, partition: int | None = None) -> RawReport:
    """``report`` as read from the reports topic, keyed as the ingest keys it, on its key's partition
    unless ``partition`` says otherwise."""
    key = report_key(report.indicator, report.period).encode()
    where = home_partition(key) if partition is None else partition
    return RawReport(key, report.model_dump_json().encode(), REPORTS, where, offset, timestamp=1.0)


def messages_of(reports: Sequence[Report], first_offset: int = 0) -> list[RawReport]:
    return [message_of(report, first_offset + index) for index, report in enumerate(reports)]


def run(processor: BatchAggregator, messages: Sequence[ReportMessage]) -> BatchOutcome:
    """One batch processed, outside any event loop."""
    return asyncio.run(processor.process(messages))

"""The history writer's batch writing on a fake table: outages waited out, refused rows dead-lettered."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import pytest
from faust.types import Message
from prometheus_client import CollectorRegistry

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.registry import Registry
from dxpulse.kafka.dead_letters import DeadLetters
from dxpulse.kafka.topics import partition_of
from schemas import DeadLetter, Report
from schemas.events import report_key
from services.history.core import Published
from services.history.metrics import HistoryMetrics
from services.history.writers import BatchWriter, ReporterLatestWriter, RollupHistoryWriter
from tests.unit.conftest import NOW, feed, flag, make_report


class FakePool:
    """Stands in for an asyncpg pool: hands out one connection, and remembers being closed."""

    def __init__(self) -> None:
        self.connection = object()
        self.closed = False

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[object]:
        yield self.connection

    async def close(self) -> None:
        self.closed = True


class FakeTable:
    """A table's write function: records each transaction's items, refuses a whole transaction
    holding a refused item (as PostgreSQL does with a DataError), and is away for ``outages`` tries."""

    def __init__(self, refused: Sequence[Any] = (), outages: int = 0) -> None:
        self.refused = list(refused)
        self.outages = outages
        self.transactions: list[list[Any]] = []

    async def write(self, conn: object, items: Sequence[Any]) -> int:
        if self.outages:
            self.outages -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        if any(item in self.refused for item in items):
            raise asyncpg.DataError("invalid input for query argument $6")
        self.transactions.append(list(items))
        return len(items)

    @property
    def rows(self) -> list[Any]:
        return [item for items in self.transactions for item in items]


class Letters:
    """A dead-letter topic: the letters sent to it."""

    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []

    async def __call__(self, key: bytes | None, value: bytes) -> None:
        self.sent.append(DeadLetter.model_validate_json(value))


class FakeBatches:
    """Batches as ``take_batches`` hands them over, from a list."""

    def __init__(self, *batches: list[Message]) -> None:
        self.batches = batches

    async def __aiter__(self) -> AsyncGenerator[list[Message], None]:
        for batch in self.batches:
            yield batch


def message(
    offset: int, value: bytes | None = b"{}", key: bytes | None = None, partition: int = 3
) -> Message:
    return Message("dxpulse.rollups.v1", partition, offset, 0.0, 0, None, key, value, None)


def writer_of(
    table: FakeTable, letters: Letters, metrics: HistoryMetrics, pool: FakePool | None = None
) -> BatchWriter[Any]:
    opened = pool or FakePool()

    async def connect() -> asyncpg.Pool:
        return cast(asyncpg.Pool, opened)

    dead_letters = DeadLetters(letters, CollectorRegistry(), lambda: NOW)
    return BatchWriter("rollup_history", table.write, connect, dead_letters, metrics, retry_delays_s=(0.0,))


async def _write_all(writer: BatchWriter[Any], pairs: list[tuple[Message, Any]]) -> list[int]:
    """``written`` for one batch, inside ``run`` as the writer does it."""
    counts: list[int] = []

    async def record(batch: list[Message]) -> None:
        counts.append(await writer.written(pairs))

    await writer.run(FakeBatches([m for m, _ in pairs]), record)
    return counts


def _sample(metrics: HistoryMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_a_batch_is_written_in_one_transaction() -> None:
    table, letters, metrics = FakeTable(), Letters(), HistoryMetrics()
    pairs = [(message(offset), f"row {offset}") for offset in range(10, 13)]

    assert await _write_all(writer_of(table, letters, metrics), pairs) == [3]

    assert table.transactions == [["row 10", "row 11", "row 12"]]
    assert letters.sent == []
    assert _sample(metrics, "dxpulse_history_write_seconds_count", table="rollup_history") == 1


async def test_a_row_postgresql_refuses_is_dead_lettered_and_the_others_written() -> None:
    table, letters, metrics = FakeTable(refused=["row 11"]), Letters(), HistoryMetrics()
    pairs = [(message(offset, key=b"k"), f"row {offset}") for offset in range(10, 13)]

    assert await _write_all(writer_of(table, letters, metrics), pairs) == [2]

    assert table.transactions == [["row 10"], ["row 12"]]
    [letter] = letters.sent
    assert (letter.reason, letter.source_topic, letter.source_partition, letter.source_offset) == (
        "history-write-failed",
        "dxpulse.rollups.v1",
        3,
        11,
    )
    assert letter.detail.startswith("not written to rollup_history: DataError(")
    assert letter.original_key == "k"
    # Refusals are about the data, not an outage: nothing was tried again.
    assert _sample(metrics, "dxpulse_history_write_failures_total", table="rollup_history") == 0


async def test_an_outage_is_waited_out_and_counted_never_dead_lettered() -> None:
    table, letters, metrics = FakeTable(outages=2), Letters(), HistoryMetrics()
    pairs = [(message(offset), f"row {offset}") for offset in range(2)]

    assert await _write_all(writer_of(table, letters, metrics), pairs) == [2]

    assert table.transactions == [["row 0", "row 1"]]
    assert letters.sent == []
    assert _sample(metrics, "dxpulse_history_write_failures_total", table="rollup_history") == 2


async def test_the_pool_opens_through_an_outage_and_closes_after_the_last_batch() -> None:
    table, letters, metrics, pool = FakeTable(), Letters(), HistoryMetrics(), FakePool()
    tries: list[int] = []

    async def connect() -> asyncpg.Pool:
        tries.append(1)
        if len(tries) < 3:
            raise OSError("no route to host")
        return cast(asyncpg.Pool, pool)

    dead_letters = DeadLetters(letters, CollectorRegistry(), lambda: NOW)
    writer = BatchWriter("reporter_latest", table.write, connect, dead_letters, metrics, (0.0,))
    seen: list[list[Message]] = []

    async def record(batch: list[Message]) -> None:
        assert not pool.closed
        seen.append(batch)

    await writer.run(FakeBatches([message(1)], [message(2), message(3)]), record)

    assert [[m.offset for m in batch] for batch in seen] == [[1], [2, 3]]
    assert (len(tries), pool.closed) == (3, True)
    assert _sample(metrics, "dxpulse_history_write_failures_total", table="reporter_latest") == 2


async def test_an_empty_batch_that_fails_is_not_hidden() -> None:
    table, letters, metrics = FakeTable(refused=[]), Letters(), HistoryMetrics()
    writer = writer_of(table, letters, metrics)

    async def refusing(conn: object, items: Sequence[Any]) -> int:
        raise asyncpg.DataError("a bug, whatever the rows")

    writer.write = refusing
    with pytest.raises(asyncpg.DataError):
        await _write_all(writer, [])


async def test_rollups_are_counted_added_known_or_unreadable() -> None:
    _, published = feed([make_report("province:79", flag(True))], "emc_connection", "2024-H1")
    rollups = [r for batch in published for r in batch]
    table, letters, metrics = FakeTable(refused=[]), Letters(), HistoryMetrics()
    writer = writer_of(table, letters, metrics)

    async def first_is_new(conn: object, items: Sequence[Published]) -> int:
        table.transactions.append(list(items))
        return 1

    writer.write = first_is_new
    batch = [message(10 + n, r.model_dump_json().encode()) for n, r in enumerate(rollups)]
    batch.append(message(99, b"not a rollup"))
    history = RollupHistoryWriter(FakeBatches(batch), writer, metrics)

    await history.run()

    [written] = table.transactions
    assert [(p.offset, p.rollup) for p in written] == [(10 + n, r) for n, r in enumerate(rollups)]
    read = {o: _sample(metrics, "dxpulse_history_rollups_read_total", outcome=o) for o in ("added", "known")}
    assert read == {"added": 1, "known": len(rollups) - 1}
    assert _sample(metrics, "dxpulse_history_rollups_read_total", outcome="unreadable") == 1


async def test_only_reports_the_aggregator_accepts_reach_reporter_latest(
    catalog: Catalog, registry: Registry
) -> None:
    good = make_report("province:79", flag(True))
    retired_reporter = make_report("province:99", flag(True))
    table, letters, metrics = FakeTable(), Letters(), HistoryMetrics()
    writer = cast(BatchWriter[Report], writer_of(table, letters, metrics))
    key = report_key("emc_connection", "2024-H1").encode()
    home = partition_of(key, 6)
    other = make_report("province:01", flag(True))
    batch = [
        message(1, good.model_dump_json().encode(), key, home),
        message(2, retired_reporter.model_dump_json().encode(), key, home),
        message(3, good.model_dump_json().encode(), b"wrong|key", home),
        message(4, b"{"),
        message(5, other.model_dump_json().encode(), key, (home + 1) % 6),  # wrong-partition
    ]
    latest = ReporterLatestWriter(
        FakeBatches(batch),
        writer,
        metrics,
        catalog,
        registry,
        lambda: NOW,
        functools.partial(partition_of, partitions=6),
    )

    await latest.run()

    assert table.rows == [good]
    assert _sample(metrics, "dxpulse_history_reports_read_total", outcome="recorded") == 1
    assert _sample(metrics, "dxpulse_history_reports_read_total", outcome="refused") == 4

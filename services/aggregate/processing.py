"""The aggregator's work on a batch of reports, without faust: what to dead-letter, write and publish."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dxpulse.domain.catalog import Catalog, Indicator
from dxpulse.domain.clock import Clock
from dxpulse.domain.periods import Period
from dxpulse.domain.poison import apply_isolating
from dxpulse.domain.registry import Registry
from dxpulse.domain.rollup import PeriodState, step_many
from dxpulse.domain.state_records import (
    StoredRecords,
    StoredSnapshots,
    Write,
    group_snapshot_records,
    snapshot_key,
    snapshots_in,
    stored_records,
    writes_of,
)
from dxpulse.domain.validation import Accepted, Problem, ReportJudge, parse_report
from schemas import Report, Rollup
from schemas.events import report_key

log = logging.getLogger(__name__)

INVALID_REPORT = "invalid-report"
PROCESSING_FAILED = "processing-failed"
"""Dead-letter reason of a report whose judging or rolling up raised."""
WRONG_KEY = "wrong-key"
WRONG_PARTITION = "wrong-partition"
"""Dead-letter reason of a report keyed right but written to another partition than its key's."""
DEAD_LETTER_REASONS = (INVALID_REPORT, PROCESSING_FAILED)
"""The reasons exported at 0 from the start (the others are the validation's problem slugs)."""


class ReportMessage(Protocol):
    """A message of the reports topic, as the aggregator reads it (faust's ``Message`` is one)."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> float | None: ...


def _where(message: ReportMessage) -> dict[str, str | None]:
    """The message's key, as a field of a JSON log line (dxpulse.log_format)."""
    return {"key": message.key.decode(errors="replace") if message.key is not None else None}


@dataclass(frozen=True)
class RawReport:
    """A report message read other than through faust (tests, tools)."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float | None = None


class TableView(Protocol):
    """The aggregator's table: str keys, JSON values (see ``dxpulse.domain.state_records``).

    A bucket or delta record this worker wrote is held as it went to the changelog (JSON bytes); one
    recovered from the changelog, decoded. ``set`` and ``delete`` change the table here only: the
    changelog records are sent with the batch (``BatchOutcome.changelog``).
    """

    def get(self, key: str) -> Any: ...
    def items(self) -> Iterable[tuple[str, Any]]: ...
    def set(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> None: ...


StepMany = Callable[
    [PeriodState, Sequence[Report], Indicator, Period, Registry, datetime, Sequence[int | None]],
    tuple[PeriodState, list[Rollup], int],
]
"""How a batch of one (indicator, period)'s reports is rolled up: ``step_many``'s signature."""


@dataclass(frozen=True)
class Refusal:
    """A message to dead-letter, and why."""

    message: ReportMessage
    reason: str
    detail: str


@dataclass(frozen=True)
class ChangelogWrite:
    """One record of the table's changelog: ``value`` None is a tombstone (compaction drops the key),
    bytes a bucket record already encoded; ``partition`` that of the reports it follows."""

    key: str
    value: Any
    partition: int


@dataclass(frozen=True)
class KeyDone:
    """One (indicator, period)'s reports of a batch, the rollups they made, and how many of them
    changed its state: what its metrics count once the batch is sent."""

    messages: list[ReportMessage]
    rollups: list[Rollup]
    changed: int


@dataclass
class BatchOutcome:
    """What a batch makes, each list in the order it is to be sent."""

    dead_letters: list[Refusal] = field(default_factory=list)
    changelog: list[ChangelogWrite] = field(default_factory=list)
    rollups: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Each rollup as its record (key, JSON), encoded as its (indicator, period) is rolled up: between
    the pauses of ``BatchAggregator.process``, not all at once after them."""
    done: list[KeyDone] = field(default_factory=list)


@dataclass(frozen=True)
class Decoded:
    """An (indicator, period)'s state as decoded from the table, and what its records there are."""

    state: PeriodState
    stored: StoredRecords = field(default_factory=StoredRecords)


Item = tuple[ReportMessage, Report, Period]

Stepped = tuple[list[Item], PeriodState, list[Rollup], int, tuple[list[Write], StoredRecords]]
"""A batch's reports of one (indicator, period), the new state, its rollups, how many reports
changed it, and the changelog writes that take the table there (``writes_of``)."""


class BatchAggregator:
    """Rolls up batches of reports over the table, keeping each (indicator, period)'s decoded state.

    Per (indicator, period) and batch: one period record, the changed reporters' records and at
    most one rollup per scope. Decoded states are built from the table on first use after each
    recovery (``forget``), when the table may hold other records.
    """

    def __init__(
        self,
        table: TableView,
        catalog: Catalog,
        registry: Registry,
        clock: Clock,
        *,
        home_partition: Callable[[bytes], int],
        step: StepMany = step_many,
    ) -> None:
        """``home_partition``: the partition of the reports topic a key belongs on (Kafka's default
        partitioner over its partitions, ``dxpulse.kafka.topics.partition_of``)."""
        self._table = table
        self._home_partition = home_partition
        self._catalog = catalog
        self._registry = registry
        self._clock = clock
        self._step = step
        self._judge = ReportJudge(catalog, registry)
        self._decoded: dict[str, Decoded] = {}
        self._snapshot_records: dict[str, StoredSnapshots] | None = None

    def forget(self) -> None:
        """The table was recovered: decode it again."""
        self._decoded.clear()
        self._snapshot_records = None

    def state_of(self, key: str) -> PeriodState:
        """The state of an (indicator, period) ("indicator|period"), as the next batch starts from."""
        return self._load(key).state

    async def process(self, messages: Sequence[ReportMessage]) -> BatchOutcome:
        """What ``messages`` make; the table and the decoded states already hold it."""
        now = self._clock()  # one instant per batch: its reports are judged, and its rollups computed, at it
        out = BatchOutcome()
        by_key: dict[str, list[Item]] = {}
        for message in messages:
            valid = self._accepted(message, now, out.dead_letters)
            if valid is not None:
                key, report, period = valid
                by_key.setdefault(key, []).append((message, report, period))
        for key, found in by_key.items():
            if not self._roll_up(key, found, now, out):
                continue
            # Let the drain loop take what the consumer fetched. aiokafka asks Kafka for more only
            # once its fetched records are taken; after 100 ms it asks for the other partitions
            # alone, and Kafka holds a fetch finding nothing new up to FETCH_WAIT_MS. A batch
            # computed in one go starves the worker of reports for over a second at a time and
            # doubles the latency at 800 reports/s (docs/design/aggregator-batches.md).
            await asyncio.sleep(0)
        return out

    def _accepted(
        self, message: ReportMessage, now: datetime, letters: list[Refusal]
    ) -> tuple[str, Report, Period] | None:
        """The table key, report and period of a valid message; None once a refused one is in ``letters``."""
        try:
            verdict = self._judged(message.value, now)
        # A report no check foresaw must not stop the worker (docs/design/dead-letters.md).
        except Exception as error:
            log.exception("judging %s@%s failed", message.partition, message.offset, extra=_where(message))
            letters.append(Refusal(message, PROCESSING_FAILED, f"judging the report failed: {error!r}"))
            return None
        if isinstance(verdict, Problem):
            letters.append(Refusal(message, verdict.type, verdict.detail))
            return None
        report = verdict.report
        key = report_key(report.indicator, report.period)
        if message.key is None or message.key.decode(errors="replace") != key:
            # The table is partitioned by this key: a report on another partition would start a
            # second, disagreeing state for the same (indicator, period).
            letters.append(Refusal(message, WRONG_KEY, f"reports must be keyed {key!r} (indicator|period)"))
            return None
        home = self._home_partition(message.key)
        if message.partition != home:
            # The same danger as a wrong key: this partition's worker would hold a second state.
            letters.append(
                Refusal(
                    message,
                    WRONG_PARTITION,
                    f"reports keyed {key!r} belong on partition {home}, not {message.partition}: produce"
                    " with Kafka's default partitioner (murmur2, as the Java client and aiokafka do;"
                    " librdkafka clients set partitioner=murmur2_random) and no explicit partition",
                )
            )
            return None
        return key, report, verdict.period

    def _judged(self, value: bytes | None, now: datetime) -> Accepted | Problem:
        parsed = parse_report(value or b"")
        if isinstance(parsed, Problem):
            return parsed
        return self._judge(parsed, now)

    def _roll_up(self, key: str, found: list[Item], now: datetime, out: BatchOutcome) -> bool:
        """Add one (indicator, period)'s reports of the batch to ``out``; False if none was applied."""
        held = self._load(key)
        # Rolling up is pure: a report that raises is left out and dead-lettered
        # (docs/design/dead-letters.md).
        isolated = apply_isolating(found, functools.partial(self._stepped, held, now=now))
        for (message, report, _), error in isolated.failed:
            log.error(
                "rolling up %s@%s failed: %r",
                message.partition,
                message.offset,
                error,
                extra={**_where(message), "event_id": str(report.event_id)},
            )
            out.dead_letters.append(
                Refusal(message, PROCESSING_FAILED, f"rolling the report up failed: {error!r}")
            )
        if isolated.result is None:
            return False
        items, new_state, rollups, changed, (writes, stored) = isolated.result
        if new_state is not held.state:
            partition = items[0][0].partition
            # In order (see writes_of): the period record, then snapshot records, then deletions.
            for name, value in writes:
                self._write(out, partition, key if name is None else snapshot_key(key, name), value)
            self._decoded[key] = Decoded(new_state, stored)
        out.rollups.extend((rollup.key.encode(), rollup.model_dump_json().encode()) for rollup in rollups)
        out.done.append(KeyDone([message for message, _, _ in items], rollups, changed))
        return True

    def _stepped(self, held: Decoded, items: list[Item], now: datetime) -> Stepped:
        _, first, period = items[0]
        reports = [report for _, report, _ in items]
        new_state, rollups, changed = self._step(
            held.state,
            reports,
            self._catalog[first.indicator],
            period,
            self._registry,
            now,
            [message.offset for message, _, _ in items],
        )
        writes = writes_of(held.state, new_state, [r.reporter for r in reports], held.stored)
        return items, new_state, rollups, changed, writes

    def _load(self, key: str) -> Decoded:
        known = self._decoded.get(key)
        if known is not None:
            return known
        if self._snapshot_records is None:  # one pass over the table per recovery, not one per key
            self._snapshot_records = group_snapshot_records(self._table.items())
        period = self._table.get(key)
        stored = self._snapshot_records.pop(key, None) or StoredSnapshots()
        known = Decoded(
            PeriodState.from_records(period, snapshots_in(stored.buckets.values(), stored.singles)),
            stored_records(period, stored.buckets, stored.singles),
        )
        self._decoded[key] = known
        return known

    def _write(self, out: BatchOutcome, partition: int, key: str, value: Any) -> None:
        # The changelog must follow the report's partition, and a batch's records go out together
        # (``BatchSender``), not one by one as ``table[key] = value`` would send them.
        out.changelog.append(ChangelogWrite(key, value, partition))
        if value is None:
            self._table.delete(key)
        else:
            self._table.set(key, value)

"""The aggregator's faust app: reports in, latest value per reporter in a table, rollups out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from faust.types import Message
from prometheus_client import CollectorRegistry, Counter, Histogram

from dxpulse.domain.catalog import Catalog, default_catalog
from dxpulse.domain.clock import Clock, utcnow
from dxpulse.domain.periods import Period
from dxpulse.domain.poison import apply_isolating
from dxpulse.domain.registry import Registry, default_registry
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
from dxpulse.domain.validation import Accepted, Problem, parse_report, validate_report
from dxpulse.faust_engine.support import (
    JSON_TABLE_SERIALIZER,
    add_metrics_page,
    assigned_partitions,
    json_table,
    new_faust_app,
    raw_topic,
    take_batches,
)
from dxpulse.kafka.batches import Handed, PartitionTurns, send_as_batches
from dxpulse.kafka.batches import Message as KafkaMessage
from dxpulse.kafka.dead_letters import DeadLetters, Refused
from dxpulse.kafka.subscriber import Pacer, latest_rollups
from dxpulse.kafka.topics import DEAD_LETTERS, REPORTS, ROLLUPS, TopicSpec, changelog
from dxpulse.monitoring import RollupGauges
from schemas import Report, Rollup
from schemas.events import report_key
from services.aggregate.settings import AggregateSettings

log = logging.getLogger(__name__)


class AggregateMetrics:
    """The aggregator's Prometheus metrics (names fixed by the contract in dxpulse.monitoring)."""

    def __init__(self, gauges: RollupGauges) -> None:
        self.registry = CollectorRegistry()
        self.processed = Counter(
            "dxpulse_aggregate_reports_processed",
            "Reports consumed, by outcome (changed, unchanged, dead_letter)",
            ["outcome"],
            registry=self.registry,
        )
        self.published = Counter(
            "dxpulse_aggregate_rollups_published", "Rollups published", registry=self.registry
        )
        self.end_to_end = Histogram(
            "dxpulse_end_to_end_seconds",
            "From the report's Kafka timestamp (set at ingest) until Kafka acknowledged its rollups",
            buckets=END_TO_END_BUCKETS,
            registry=self.registry,
        )
        self.gauges_reread = Histogram(
            "dxpulse_rollup_gauges_reread_seconds",
            "How long re-reading the rollup topic for the business gauges took after an assignment"
            " (paced: at most GAUGE_REREAD_SHARE of the worker's time); growing means a topic that"
            " is not compacting",
            buckets=REREAD_BUCKETS,
            registry=self.registry,
        )
        self.gauges = gauges
        self.registry.register(gauges)

    def batch_done(self, messages: list[Message], rollups: list[Rollup], now: float, *, changed: int) -> None:
        """Count one (indicator, period)'s reports of a batch (``changed`` of them changed its state);
        time each against the rollups they waited for, and keep those for the business gauges."""
        self.published.inc(len(rollups))
        self.processed.labels(outcome="changed").inc(changed)
        self.processed.labels(outcome="unchanged").inc(len(messages) - changed)
        if not rollups:
            return
        for message in messages:
            if message.timestamp is not None:
                self.end_to_end.observe(max(0.0, now - message.timestamp))
        self.gauges.observe(rollups, messages[-1].partition)


# Reports queue behind outages and rebalances, so the tail reaches well past a minute.
END_TO_END_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


# The re-read is paced, so a large uncompacted rollup topic takes minutes.
REREAD_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


STATE_TABLE = "period-state"

INVALID_REPORT = "invalid-report"
PROCESSING_FAILED = "processing-failed"
"""Dead-letter reason of a report that passed validation but raised while being rolled up."""

Stepped = tuple[
    list[tuple[Message, Report, Period]], PeriodState, list[Rollup], int, tuple[list[Write], StoredRecords]
]
"""A batch's reports of one (indicator, period), the new state, its rollups, how many reports
changed it, and the changelog writes that take the table there (``writes_of``)."""


@dataclass(frozen=True)
class Decoded:
    """An (indicator, period)'s state as decoded from the table, and what its records there are."""

    state: PeriodState
    stored: StoredRecords = field(default_factory=StoredRecords)


@dataclass
class Outgoing:
    """What one batch sends, in order: changelog records (each on the partition of the reports it
    follows) and rollups (on their key's partition)."""

    changelog: list[KafkaMessage] = field(default_factory=list)
    changelog_partitions: list[int] = field(default_factory=list)
    rollups: list[KafkaMessage] = field(default_factory=list)


GAUGE_REREAD_SHARE = 0.2
"""The most of the worker's event loop the gauges' re-read of the rollup topic takes.

The re-read comes with every (re)assignment, when the worker is busiest, and reads every rollup
the topic still holds uncompacted (~90,000 after 30 s at 2,000 reports/s). Unpaced, it took the
loop for 2.5 s after a start and the reports waited: p99 latency 255-305 ms at 2,000 reports/s,
74 ms without it (BENCHMARKS.md, session 13). Paced, the gauges of unchanged figures come a few
seconds later; the figures a batch changes are exported at once either way.
"""


def worker_topics(settings: AggregateSettings) -> tuple[TopicSpec, ...]:
    """Topics the aggregator needs beyond the shared ones: its table's changelog."""
    return (changelog(settings.aggregate_app_id, STATE_TABLE),)


def create_app(
    settings: AggregateSettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = utcnow,
) -> faust.App:
    """Build the aggregator worker (start it with ``app.main()`` or ``faust -A``)."""
    catalog = catalog or default_catalog()
    registry = registry or default_registry()
    app = new_faust_app(settings.aggregate_app_id, settings, web_port=settings.aggregate_web_port)
    metrics = AggregateMetrics(
        RollupGauges(
            settings.rollup_gauge_periods,
            settings.topic_partitions,
            lambda: assigned_partitions(app, REPORTS),
        )
    )
    add_metrics_page(app, metrics.registry)
    reports_topic = raw_topic(app, REPORTS)
    dead_letters_topic = raw_topic(app, DEAD_LETTERS)
    # Per (indicator, period): a record of what was published and the offset of the last change,
    # and bucket and delta records of the reporters' latest snapshots
    # (dxpulse.domain.state_records.writes_of).
    states = json_table(app, STATE_TABLE, settings.topic_partitions)

    async def send_dead_letter(key: bytes | None, value: bytes) -> None:
        # Acknowledged before the report is: a batch's reports are acked once Kafka has what they made.
        await (await dead_letters_topic.send(key=key, value=value))

    dead_letters = DeadLetters(
        send_dead_letter,
        metrics.registry,
        clock,
        reasons=(INVALID_REPORT, PROCESSING_FAILED),
        on_letter=lambda reason: metrics.processed.labels(outcome="dead_letter").inc(),
    )

    async def dead_letter(message: Message, reason: str, detail: str) -> None:
        refused = Refused(message.key, message.value, message.topic, message.partition, message.offset)
        await dead_letters.send(refused, reason, detail)

    async def accepted(message: Message, now: datetime) -> tuple[str, Report, Period] | None:
        """The table key, report and period of a valid message; None once a refused one is dead-lettered."""
        try:
            verdict = judged(message.value, now)
        # A report no check foresaw must not stop the worker (docs/design/dead-letters.md).
        except Exception as error:
            log.exception("judging %s@%s failed", message.partition, message.offset)
            await dead_letter(message, PROCESSING_FAILED, f"judging the report failed: {error!r}")
            return None
        if isinstance(verdict, Problem):
            await dead_letter(message, verdict.type, verdict.detail)
            return None
        report = verdict.report
        key = report_key(report.indicator, report.period)
        if message.key is None or message.key.decode(errors="replace") != key:
            # The table is partitioned by this key: a report on another partition would start a
            # second, disagreeing state for the same (indicator, period).
            await dead_letter(message, "wrong-key", f"reports must be keyed {key!r} (indicator|period)")
            return None
        return key, report, verdict.period

    def judged(value: bytes | None, now: datetime) -> Accepted | Problem:
        parsed = parse_report(value or b"")
        if isinstance(parsed, Problem):
            return parsed
        return validate_report(parsed, catalog, registry, now)

    # The table holds one small record per (indicator, period) and its snapshots in bucket and
    # delta records (see dxpulse.domain.state_records.writes_of). Decoded states per (indicator, period)
    # are kept here, built from the table on first use after each recovery, when the table may hold
    # other records.
    decoded: dict[str, Decoded] = {}
    snapshot_records: dict[str, StoredSnapshots] | None = None

    @states.on_recover
    async def forget_decoded() -> None:
        nonlocal snapshot_records
        decoded.clear()
        snapshot_records = None

    def load(key: str) -> Decoded:
        nonlocal snapshot_records
        known = decoded.get(key)
        if known is not None:
            return known
        if snapshot_records is None:  # one pass over the table per recovery, not one per key
            snapshot_records = group_snapshot_records(states.data.items())
        period = states.get(key)
        stored = snapshot_records.pop(key, None) or StoredSnapshots()
        known = Decoded(
            PeriodState.from_records(period, snapshots_in(stored.buckets.values(), stored.singles)),
            stored_records(period, stored.buckets, stored.singles),
        )
        decoded[key] = known
        return known

    changelog_topic = states.changelog_topic
    changelog_name = changelog_topic.get_topic_name()
    turns = PartitionTurns()

    def write(out: Outgoing, partition: int, key: str, value: Any) -> None:
        # What ``states[key] = value`` does, with the partition named (batches have no current
        # event to take it from, and the changelog must follow the report's partition), the record
        # sent with the batch's others rather than one by one through faust's producer buffer.
        # A value already encoded (bytes: a bucket record) goes out as it is.
        encoded_key, _ = changelog_topic.prepare_key(key, JSON_TABLE_SERIALIZER)
        encoded_value, _ = changelog_topic.prepare_value(value, JSON_TABLE_SERIALIZER)
        out.changelog.append((encoded_key, encoded_value))
        out.changelog_partitions.append(partition)
        states.data[key] = value

    def delete(out: Outgoing, partition: int, key: str) -> None:
        # What ``del states[key]`` does, with the partition named: a tombstone (compaction drops the key).
        encoded_key, _ = changelog_topic.prepare_key(key, JSON_TABLE_SERIALIZER)
        out.changelog.append((encoded_key, None))
        out.changelog_partitions.append(partition)
        states.data.pop(key, None)

    async def send(out: Outgoing) -> None:
        """Hand a batch's changelog records, then its rollups, to Kafka as one record batch per
        partition, and wait until Kafka has them all: only then are the batch's reports acked."""
        producer = cast(Any, app.producer)._ensure_producer()  # faust's own, started with the app
        handed: list[Handed] = [None] * len(out.changelog)
        await send_as_batches(
            producer, changelog_name, out.changelog, turns, handed, partitions=out.changelog_partitions
        )
        if not any(isinstance(outcome, KafkaError) for outcome in handed):  # else no figure without its state
            handed_rollups: list[Handed] = [None] * len(out.rollups)
            await send_as_batches(producer, ROLLUPS, out.rollups, turns, handed_rollups)
            handed += handed_rollups
        batches = {id(outcome): outcome for outcome in handed if isinstance(outcome, asyncio.Future)}
        # Every batch is waited for, so that none fails unobserved, before the first error is raised.
        results = await asyncio.gather(*batches.values(), return_exceptions=True)
        for outcome in (*handed, *results):
            if isinstance(outcome, BaseException):
                raise outcome

    async def process(messages: Sequence[Message]) -> None:
        # One period record, the changed reporters' records and at most one rollup per scope per
        # (indicator, period) and batch.
        now = clock()  # one instant per batch: its reports are judged, and its rollups computed, at it
        by_key: dict[str, list[tuple[Message, Report, Period]]] = {}
        for message in messages:
            valid = await accepted(message, now)
            if valid is not None:
                key, report, period = valid
                by_key.setdefault(key, []).append((message, report, period))
        out = Outgoing()
        done: list[tuple[list[Message], list[Rollup], int]] = []
        for key, found in by_key.items():
            held = load(key)
            # Rolling up is pure: a report that raises is left out and dead-lettered
            # (docs/design/dead-letters.md).
            isolated = apply_isolating(found, functools.partial(stepped, held, now=now))
            for (message, _, _), error in isolated.failed:
                log.error("rolling up %s@%s failed: %r", message.partition, message.offset, error)
                await dead_letter(message, PROCESSING_FAILED, f"rolling the report up failed: {error!r}")
            if isolated.result is None:
                continue
            items, new_state, rollups, changed, (writes, stored) = isolated.result
            first_message = items[0][0]
            if new_state is not held.state:
                partition = first_message.partition
                # In order (see writes_of): the period record, then snapshot records, then deletions.
                for name, value in writes:
                    if name is None:
                        write(out, partition, key, value)
                    elif value is None:
                        delete(out, partition, snapshot_key(key, name))
                    else:
                        write(out, partition, snapshot_key(key, name), value)
                decoded[key] = Decoded(new_state, stored)
            out.rollups.extend((rollup.key.encode(), rollup.model_dump_json().encode()) for rollup in rollups)
            done.append(([message for message, _, _ in items], rollups, changed))
            # Let the drain loop take what the consumer fetched. aiokafka asks Kafka for more only
            # once its fetched records are taken; after 100 ms it asks for the other partitions
            # alone, and Kafka holds a fetch finding nothing new up to FETCH_WAIT_MS (faust's 1.5 s
            # when this was measured). Without this, a batch computed in one go (no send to wait
            # on any more) starved the worker of reports for 1.2-1.5 s at a time and doubled the
            # latency at 800 reports/s.
            await asyncio.sleep(0)
        await send(out)
        sent = time.time()
        for key_messages, rollups, changed in done:
            metrics.batch_done(key_messages, rollups, sent, changed=changed)

    def stepped(held: Decoded, items: list[tuple[Message, Report, Period]], now: datetime) -> Stepped:
        _, first, period = items[0]
        reports = [report for _, report, _ in items]
        new_state, rollups, changed = step_many(
            held.state,
            reports,
            catalog[first.indicator],
            period,
            registry,
            now,
            [message.offset for message, _, _ in items],
        )
        writes = writes_of(held.state, new_state, [r.reporter for r in reports], held.stored)
        return items, new_state, rollups, changed, writes

    # Batches: one state write and one rollup per scope per (indicator, period) and batch; a batch
    # is what arrived while the previous one was processed (dxpulse.faust_engine.batches.MessageBatches).
    batches = take_batches(
        app, reports_topic, settings.aggregate_batch_max, linger_s=settings.aggregate_batch_within_s
    )

    async def aggregate() -> None:
        # Closed on an error too, so that the failed batch is untracked (see MessageBatches).
        async with contextlib.aclosing(aiter(batches)) as taken:
            async for messages in taken:
                await process(messages)
                del messages  # not kept while the next batch is awaited (see MessageBatches)

    app.task(aggregate)

    # The gauges of figures that did not change since a (re)start come from the compacted rollup
    # topic, re-read whenever this worker's partitions change.
    gauges_stale = asyncio.Event()

    @app.on_partitions_assigned.connect
    async def mark_gauges_stale(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        gauges_stale.set()

    async def refresh_gauges() -> None:
        while True:
            await gauges_stale.wait()
            gauges_stale.clear()
            started = time.perf_counter()
            try:
                current = await latest_rollups(settings.kafka_bootstrap, pacer=Pacer(GAUGE_REREAD_SHARE))
            except Exception as error:  # Kafka hiccup: gauges stay as they are, try again shortly
                log.warning("could not re-read rollups for the gauges: %r", error)
                await asyncio.sleep(5)
                gauges_stale.set()
                continue
            metrics.gauges.observe(current.values())
            metrics.gauges_reread.observe(time.perf_counter() - started)

    app.task(refresh_gauges)

    return app

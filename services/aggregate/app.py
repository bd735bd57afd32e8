"""The aggregator's faust app: reports in, latest value per reporter in a table, rollups out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import faust
from aiokafka.errors import KafkaError

from dxpulse.business_data import business_data
from dxpulse.domain.catalog import Catalog
from dxpulse.domain.clock import Clock, utcnow
from dxpulse.domain.registry import Registry
from dxpulse.faust_engine.batches import MessageBatches
from dxpulse.faust_engine.support import (
    JSON_TABLE_SERIALIZER,
    add_metrics_page,
    assigned_partitions,
    json_table,
    kafka_producer,
    new_faust_app,
    raw_topic,
    send_and_wait,
    take_batches,
)
from dxpulse.kafka.batches import Handed, PartitionTurns, send_as_batches
from dxpulse.kafka.batches import Message as KafkaMessage
from dxpulse.kafka.dead_letters import DeadLetters, Refused
from dxpulse.kafka.security import KafkaSecurity, kafka_security
from dxpulse.kafka.subscriber import Pacer, latest_rollups
from dxpulse.kafka.topics import DEAD_LETTERS, REPORTS, ROLLUPS, TopicSpec, changelog, partition_of
from dxpulse.monitoring import RollupGauges
from services.aggregate.metrics import AggregateMetrics
from services.aggregate.processing import (
    DEAD_LETTER_REASONS,
    BatchAggregator,
    BatchOutcome,
    ChangelogWrite,
    ReportMessage,
)
from services.aggregate.settings import AggregateSettings

log = logging.getLogger(__name__)

STATE_TABLE = "period-state"

GAUGE_REREAD_SHARE = 0.2
"""The most of the worker's event loop the gauges' re-read of the rollup topic takes.

The re-read comes with every (re)assignment, when the worker is busiest, and reads every rollup
the topic still holds uncompacted (~90,000 after 30 s at 2,000 reports/s). Unpaced, it holds the
loop for 2.5 s after a start while the reports wait: the p99 latency at 2,000 reports/s is
255-305 ms with it against 74 ms without (docs/design/metrics.md). Paced, the gauges of unchanged
figures come a few seconds later; the figures a batch changes are exported at once either way.
"""

Table = faust.types.TableT[str, Any]


def worker_topics(settings: AggregateSettings) -> tuple[TopicSpec, ...]:
    """Topics the aggregator needs beyond the shared ones: its table's changelog."""
    return (changelog(settings.aggregate_app_id, STATE_TABLE),)


class FaustTableView:
    """The faust table as ``BatchAggregator``'s ``TableView``: reads through faust (its sensors
    count them), writes into its store alone (``BatchSender`` sends the changelog records)."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, key: str) -> Any:
        return self._table.get(key)

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._table.data.items()

    def set(self, key: str, value: Any) -> None:
        self._table.data[key] = value

    def delete(self, key: str) -> None:
        self._table.data.pop(key, None)


class BatchSender:
    """Sends what a batch made: its dead letters, then its changelog records and rollups."""

    def __init__(self, app: faust.App, table: Table, metrics: AggregateMetrics, clock: Clock) -> None:
        self._app = app
        self._changelog_topic = table.changelog_topic
        self._changelog_name = self._changelog_topic.get_topic_name()
        # A letter is acknowledged before its report is: a batch's reports are acked once Kafka has
        # what they made.
        self._dead_letters = DeadLetters(
            functools.partial(send_and_wait, raw_topic(app, DEAD_LETTERS)),
            metrics.registry,
            clock,
            reasons=DEAD_LETTER_REASONS,
            on_letter=metrics.dead_lettered,
        )
        self._turns = PartitionTurns()

    async def send(self, outcome: BatchOutcome) -> None:
        """Send ``outcome`` and wait until Kafka has it all: only then are the batch's reports acked."""
        for refusal in outcome.dead_letters:
            message = refusal.message
            refused = Refused(message.key, message.value, message.topic, message.partition, message.offset)
            await self._dead_letters.send(refused, refusal.reason, refusal.detail)
        await self._send_records(
            [self.changelog_record(write) for write in outcome.changelog],
            [write.partition for write in outcome.changelog],
            outcome.rollups,
        )

    def changelog_record(self, write: ChangelogWrite) -> KafkaMessage:
        """``write`` encoded by the table's changelog topic, as faust's own writes are, so that
        recovery reads it the same. A value already encoded (bytes: a bucket record) goes as it is."""
        key, _ = self._changelog_topic.prepare_key(write.key, JSON_TABLE_SERIALIZER)
        if write.value is None:  # a tombstone
            return key, None
        value, _ = self._changelog_topic.prepare_value(write.value, JSON_TABLE_SERIALIZER)
        return key, value

    async def _send_records(
        self, changelog: Sequence[KafkaMessage], partitions: Sequence[int], rollups: Sequence[KafkaMessage]
    ) -> None:
        """Hand the changelog records, then the rollups, to Kafka as one record batch per partition,
        and wait for every batch."""
        producer = kafka_producer(self._app)
        handed: list[Handed] = [None] * len(changelog)
        await send_as_batches(
            producer, self._changelog_name, changelog, self._turns, handed, partitions=partitions
        )
        if not any(isinstance(outcome, KafkaError) for outcome in handed):  # else no figure without its state
            handed_rollups: list[Handed] = [None] * len(rollups)
            await send_as_batches(producer, ROLLUPS, rollups, self._turns, handed_rollups)
            handed += handed_rollups
        batches = {id(outcome): outcome for outcome in handed if isinstance(outcome, asyncio.Future)}
        # Every batch is waited for, so that none fails unobserved, before the first error is raised.
        results = await asyncio.gather(*batches.values(), return_exceptions=True)
        for outcome in (*handed, *results):
            if isinstance(outcome, BaseException):
                raise outcome


class AggregateTask:
    """The worker's main task: each batch of reports processed, sent, then counted."""

    def __init__(
        self,
        batches: MessageBatches,
        aggregator: BatchAggregator,
        sender: BatchSender,
        metrics: AggregateMetrics,
    ) -> None:
        self._batches = batches
        self._aggregator = aggregator
        self._sender = sender
        self._metrics = metrics

    async def run(self) -> None:
        # Closed on an error too, so that the failed batch is untracked (see MessageBatches).
        async with contextlib.aclosing(aiter(self._batches)) as taken:
            async for messages in taken:
                await self.process(messages)
                del messages  # not kept while the next batch is awaited (see MessageBatches)

    async def process(self, messages: Sequence[ReportMessage]) -> None:
        outcome = await self._aggregator.process(messages)
        await self._sender.send(outcome)
        sent = time.time()
        for done in outcome.done:
            self._metrics.batch_done(done.messages, done.rollups, sent, changed=done.changed)

    async def forget_decoded(self) -> None:
        """The table was recovered (faust's ``on_recover``): its states are decoded again."""
        self._aggregator.forget()


class GaugeRefresher:
    """Refills the gauges of figures that did not change since a (re)start from the compacted
    rollup topic, re-read whenever this worker's partitions change."""

    def __init__(self, bootstrap: str, metrics: AggregateMetrics, security: KafkaSecurity) -> None:
        self._bootstrap = bootstrap
        self._metrics = metrics
        self._security = security
        self._stale = asyncio.Event()

    async def mark_stale(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Receives faust's ``on_partitions_assigned``."""
        self._stale.set()

    async def refresh_gauges(self) -> None:
        while True:
            await self._stale.wait()
            self._stale.clear()
            started = time.perf_counter()
            try:
                current = await latest_rollups(
                    self._bootstrap, pacer=Pacer(GAUGE_REREAD_SHARE), security=self._security
                )
            except Exception as error:  # Kafka hiccup: gauges stay as they are, try again shortly
                log.warning("could not re-read rollups for the gauges: %r", error)
                await asyncio.sleep(5)
                self._stale.set()
                continue
            self._metrics.gauges.observe(current.values())
            self._metrics.gauges_reread.observe(time.perf_counter() - started)


def create_app(
    settings: AggregateSettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = utcnow,
) -> faust.App:
    """Build the aggregator worker (start it with ``app.main()`` or ``faust -A``)."""
    app = new_faust_app(settings.aggregate_app_id, settings, web_port=settings.aggregate_web_port)
    catalog, registry = business_data(settings, catalog, registry)
    metrics = AggregateMetrics(
        RollupGauges(
            settings.rollup_gauge_periods,
            settings.topic_partitions,
            lambda: assigned_partitions(app, REPORTS),
        ),
        catalog,
    )
    add_metrics_page(app, metrics.registry)
    reports_topic = raw_topic(app, REPORTS)
    # Per (indicator, period): a record of what was published and the offset of the last change,
    # and bucket and delta records of the reporters' latest snapshots
    # (dxpulse.domain.state_records.writes_of).
    states = json_table(app, STATE_TABLE, settings.topic_partitions)
    sender = BatchSender(app, states, metrics, clock)
    aggregator = BatchAggregator(
        FaustTableView(states),
        catalog,
        registry,
        clock,
        home_partition=functools.partial(partition_of, partitions=settings.topic_partitions),
    )
    # Batches: one state write and one rollup per scope per (indicator, period) and batch; a batch
    # is what arrived while the previous one was processed (dxpulse.faust_engine.batches.MessageBatches).
    batches = take_batches(
        app, reports_topic, settings.aggregate_batch_max, linger_s=settings.aggregate_batch_within_s
    )
    task = AggregateTask(batches, aggregator, sender, metrics)
    states.on_recover(task.forget_decoded)
    app.task(task.run)
    # The gauges of figures that did not change since a (re)start come from the compacted rollup
    # topic, re-read whenever this worker's partitions change.
    refresher = GaugeRefresher(settings.kafka_bootstrap, metrics, kafka_security(settings))
    app.on_partitions_assigned.connect(refresher.mark_stale)
    app.task(refresher.refresh_gauges)
    return app

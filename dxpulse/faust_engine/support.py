"""What every dxpulse faust app shares: broker URL, tuned timeouts, and a Prometheus page."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import aiokafka
import faust
from aiokafka import TopicPartition
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.conductor import Conductor
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list
from faust.transport.producer import ProducerBuffer
from faust.types import TP, Message
from faust.types.transports import ConductorT, ConsumerCallback, ConsumerT, ProducerT
from faust.types.tuples import FutureMessage
from faust.web.base import Web
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from dxpulse.faust_engine.batches import MessageBatches, start_inline
from dxpulse.faust_engine.versions import check_pinned_versions
from dxpulse.gc_tuning import tune_gc
from dxpulse.kafka.dead_letters import DeadLetters, Refused
from dxpulse.kafka.security import kafka_security
from dxpulse.kafka.topics import (
    COMPACTED,
    Replication,
    TopicLayoutError,
    TopicSpec,
    ensure_topics,
    leader_topic,
)
from dxpulse.log_format import LogFormat, configure_logging
from dxpulse.monitoring import (
    ConsumerLagCollector,
    PartitionLag,
    consumer_lag,
    lost_heads,
    stalled_partitions,
)
from dxpulse.postgres.migrations import open_pool
from dxpulse.postgres.retry import until_done
from dxpulse.settings import WorkerSettings

log = logging.getLogger(__name__)


def faust_broker_url(bootstrap: str) -> str:
    """faust's broker URL for a Kafka bootstrap list ("a:9092,b:9092" → "kafka://a:9092;b:9092")."""
    return "kafka://" + ";".join(host.strip() for host in bootstrap.split(",") if host.strip())


FETCH_WAIT_MS = 300
"""How long the broker may hold a worker's fetch that finds nothing new, once its tables recovered.

faust fixes 1,500 ms. aiokafka keeps one fetch in flight per broker and, while records it fetched
wait to be taken, fetches only the other partitions (faust's leader topic, partitions read to
their end); Kafka holds such a fetch the whole wait, and the reports behind it wait too. A worker
then took nothing for up to 1.5 s with a backlog: a 1.5 s p99 at 800 reports/s. 300 ms bounds
that at no cost in throughput (docs/design/faust-consumer.md; 100 ms cost 10-25%, with
faust's streams).
"""

RECOVERY_FETCH_WAIT_MS = 100
"""The same while tables recover: see :func:`set_fetch_wait`."""


def set_fetch_wait(app: faust.types.AppT, wait_ms: int) -> None:
    """Make the broker hold ``app``'s next fetches at most ``wait_ms`` when it has nothing new.

    aiokafka keeps one fetch in flight per broker, and asks again for a partition only after its
    records were taken. While the changelogs are read, the partitions already read to their end make
    up a fetch that the broker holds faust's full 1.5 s, and every partition still being read waits
    behind it, so reading took whole multiples of 1.5 s (4.5 to 7.5 s at full size;
    docs/design/faust-consumer.md).
    After recovery the wait is ``FETCH_WAIT_MS``.
    """
    fetcher = aiokafka_fetcher(app.consumer)
    if fetcher is not None:
        fetcher._fetch_max_wait_ms = wait_ms


def aiokafka_fetcher(consumer: Any) -> Any | None:
    """The aiokafka fetcher under a faust consumer, once its thread has started (else None).

    faust creates the aiokafka consumer when its thread starts and gives no handle on the fetcher.
    """
    aiokafka_consumer = consumer._thread._consumer
    return None if aiokafka_consumer is None else aiokafka_consumer._fetcher


class SeekThenResumeRecovery(Recovery):
    """faust's table recovery, but stream partitions resume only once their buffers were cleared.

    faust-streaming 0.15.3 ``Recovery.on_recovery_completed`` resumes the stream partitions, then awaits
    ``consumer.perform_seek()`` (a broker round trip per partition), then calls
    ``app.flow_control.resume()``, which empties every stream buffer. Flow is already running at that
    point (resumed earlier for the changelogs), so reports fetched during the seek reach the agent's
    buffer and are thrown away after the consumer counted them as read: they are never processed nor
    fetched again, and the offset commit stops at the gap (faust-streaming #596). Under CPU load
    the seek takes long enough for a whole batch to be lost, and the rollups never complete.

    Here the stream partitions stay paused through the seek and the clearing, and resume right after.
    This is what keeps the first batch after a recovery; nothing seeks it back later. It can go once
    faust resumes them after ``flow_control.resume()`` itself (its ``_resume_streams``, for apps
    without tables, has the same order, harmless there: flow is stopped, or the fetcher not started,
    until after the clearing).

    Fetches are short while the changelogs are read (:func:`set_fetch_wait`); ``FETCH_WAIT_MS``
    comes back once the stream partitions resume.
    """

    def _set_recovery_started(self) -> None:
        super()._set_recovery_started()
        set_fetch_wait(self.app, RECOVERY_FETCH_WAIT_MS)

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        resume = consumer.resume_partitions
        held: set[TP] = set()

        def hold_streams(tps: Any) -> None:
            tps = set(tps)
            held.update(tp for tp in tps if not self._is_changelog_tp(tp))
            resume({tp for tp in tps if self._is_changelog_tp(tp)})

        consumer.resume_partitions = hold_streams  # type: ignore[method-assign]
        try:
            await super().on_recovery_completed(generation_id)
        finally:
            del consumer.resume_partitions
            # Also when the completion fails: the next recovery shortens the fetches again.
            set_fetch_wait(self.app, FETCH_WAIT_MS)
        # A newer rebalance pauses and resumes the partitions itself.
        if held and self.app.consumer_generation_id == generation_id:
            resume(held)


class DxpulseTableManager(TableManager):
    """faust's table manager with :class:`SeekThenResumeRecovery`, starting without a pause."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekThenResumeRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery

    async def on_start(self) -> None:
        # faust sleeps 1 s here first, for tables declared while the app starts. dxpulse declares
        # every table in its app factory, before the start (a table declared later still fails
        # loudly: faust refuses it once the tables are finalized), and a restart pays that second.
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class OnlyThese:
    """A live view of faust's active partitions for aiokafka's fetcher, in which none means none.

    faust hands aiokafka its own set of active partitions, which it keeps changing from the main
    thread while the consumer thread waits up to a second for records in ``fetched_records``.
    aiokafka reads an empty set as "every partition". So when the last active partitions were
    paused during that wait (the changelogs, once read to their end), the records the broker had
    sent for the paused stream partitions were taken out of aiokafka, moving their positions past
    them, and then skipped by faust as not active: lost, since the seek that ends recovery had
    already passed. It happened in every restart once fetches during recovery were short (see
    :func:`set_fetch_wait`), and now and then before.
    """

    def __init__(self, tps: set[TP]) -> None:
        self._tps = tps

    def __bool__(self) -> bool:
        return True

    def __contains__(self, tp: object) -> bool:
        return tp in self._tps


class FromStartConsumer(AIOKafkaConsumer):
    """faust's Kafka consumer, but it never commits past a message it did not process.

    faust drops fetched messages in several places during a rebalance (buffers cleared while flow
    is suspended, a fetch cut short by a new generation, records of a partition not active yet)
    and relies on the seek to the committed offsets at the end of the rebalance to read them again.
    Two holes in that, both seen losing reports under load (docs/design/faust-consumer.md):

    - aiokafka's ``seek_to_committed`` leaves a partition without a committed offset wherever its
      fetch position happens to be, so what was dropped there is never read again. Here such
      partitions (and those whose committed offset retention has deleted) are sought to their
      first offset; re-reading is safe because processing is idempotent.
    - faust's check before a commit lets the commit pass over offsets it takes for holes in the
      log: the one at the committed offset, everything before the first processed message when
      nothing was committed yet, and any "gap" between two messages it read. On a topic that is
      never compacted and never written in transactions (all of dxpulse's own, see
      ``dxpulse.kafka.topics``) the log has no holes, so such a gap is a message faust skipped: here a
      commit on those topics only ever covers a contiguous run of processed offsets from the
      committed one. A skipped message then stops the commits instead of being lost: the stall
      watchdog reports the partition, and a restart reads it again.
    """

    @functools.cached_property
    def _resumed(self) -> asyncio.Event:
        """Set when partitions resume: ends the wait of a fetch loop that had none to read."""
        return asyncio.Event()

    def resume_partitions(self, tps: Any) -> None:
        super().resume_partitions(tps)
        self._resumed.set()
        self._wake_fetch_waiters()

    def _wake_fetch_waiters(self) -> None:
        """Make a wait for records on the consumer thread look again at what aiokafka holds.

        aiokafka ends that wait only when new records arrive. Records it already holds for a
        partition that just resumed (the reports fetched while a restart recovered) otherwise
        waited out faust's whole second.
        """
        thread: Any = self._thread
        fetcher = aiokafka_fetcher(self)
        if fetcher is None or thread.thread_loop.is_closed():  # not started, or stopped
            return

        def wake() -> None:
            for waiter in list(fetcher._fetch_waiters):
                fetcher._notify(waiter)

        thread.thread_loop.call_soon_threadsafe(wake)

    async def _wait_next_records(self, timeout: float) -> Any:  # noqa: ASYNC109 (faust's signature)
        if not self.flow_active:  # as faust does first, so a resume while flow was stopped counts
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]  # as faust
        self._resumed.clear()
        if self.flow_active and not self.app.client_only and not self._get_active_partitions():
            # faust sleeps 1 s when no partition is active: during a rebalance, and after a restart
            # between the changelogs read to their end and the report partitions resuming. So the
            # reports already in Kafka waited up to that second. Here the wait ends when any resume.
            await self.wait_for_stopped(self._resumed, timeout=1.0)  # type: ignore[arg-type]  # as faust
            if not self._get_active_partitions():
                return {}, self._get_active_partitions()
        return await super()._wait_next_records(timeout)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:  # noqa: ASYNC109 (faust's signature)
        # None is faust's "every partition" (a client-only app); an empty set must not become it.
        view = None if active_partitions is None else OnlyThese(active_partitions)
        thread: Any = self._thread  # typed for a set; aiokafka only tests truth and membership
        return await thread.getmany(view, timeout)

    async def _drain_messages(self, fetcher: Any) -> None:
        """faust's loop handing fetched messages on (faust 0.15.3's own), with three changes:

        - the messages of a topic taken with :class:`MessageBatches` go there, and through
          faust's conductor and streams only if an agent reads that topic too (see
          :class:`BatchAwareConductor`);
        - any other message's delivery starts inline (``start_inline``) and is raced against a
          flow suspension only if it has to wait, instead of always running as a task in
          ``wait_first``: most of faust's per-message cost on the bench machine;
        - the commit every ``broker_commit_every`` acks runs beside the loop, not in it. A commit
          first flushes the producer and, if the timer's commit is under way, waits for that one:
          seconds under steady load, during which no report was handed on
          (docs/design/faust-consumer.md). One still starts every ``broker_commit_every`` acks
          unless one is running.

        Everything else (read offsets, gaps, yielding to the loop every 100 messages, errors) is
        faust's, line for line.
        """
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        batches: Mapping[str, MessageBatches] = getattr(self.app, "message_batches", {})
        conductor: Any = self.app.topics
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        committing: asyncio.Future[Any] | None = None
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)  # as faust: getmany may answer at once, again and again
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                # One at a time: acks after a running commit fixed its offsets wait
                                # for the next count or the commit timer.
                                if committing is None or committing.done():
                                    committing = self.add_future(self.commit())
                            taken_in = batches.get(tp.topic)
                            if taken_in is not None:
                                taken_in.reserve(message)  # before an agent on the topic gets it
                            if taken_in is None or conductor.streams_read(tp):
                                rest = start_inline(callback(message))
                                if rest is not None:
                                    await self.wait_first(rest, self.suspend_flow.wait())
                            if taken_in is not None and not taken_in.deliver(message):
                                await self.wait_first(taken_in.room(), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    def _gapless(self, tp: TP) -> bool:
        """Whether every offset of ``tp``'s log holds a message (no compaction, no transactions)."""
        return tp.topic not in COMPACTED and tp.topic not in self.app.tables.changelog_topics

    async def perform_seek(self) -> None:
        await super().perform_seek()
        acked = [tp for tp in self.assignment() if self.app.topics.acks_enabled_for(tp.topic)]
        if not acked:
            return
        earliest = await self._log_starts(acked)
        starts = {}
        for tp in acked:
            first, committed = earliest.get(tp), self._committed_offset.get(tp)
            if first is not None and (not committed or committed < first):
                starts[tp] = first
        if not starts:
            return
        # On the consumer's own thread (``seek`` would call aiokafka from this one).
        await self.seek_wait(starts)
        # The start becomes the offset the check before a commit counts from (faust keeps 0 as
        # None, which would turn it off). Not on a compacted topic: there the first offset may
        # have been compacted away, and nothing would ever be committed on that partition.
        self._committed_offset.update({tp: offset for tp, offset in starts.items() if self._gapless(tp)})

    async def _log_starts(self, tps: Sequence[TP]) -> dict[TP, int]:
        """The first offset still in the log of each of ``tps``, asked on a connection of its own.

        Not with ``earliest_offsets``: Kafka answers a connection's requests in order, and the
        consumer's connection usually has a fetch in flight that the broker holds up to faust's
        fixed 1.5 s when nothing new was written, so the lookup waited that long at the end of every
        recovery (1.4 s of a 12 s restart at full size).
        """
        transport: Any = self.transport
        conf = self.app.conf
        lookup = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=server_list(transport.url, transport.default_port),
            client_id=f"{conf.broker_client_id}-log-starts",
            enable_auto_commit=False,
            request_timeout_ms=int(conf.broker_request_timeout * 1000),
            # The same credentials and TLS as faust's own consumer.
            **credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
        )
        try:
            # Inside: a recovery cancelled during the start (a new rebalance) must close it too.
            await lookup.start()
            found = await lookup.beginning_offsets([TopicPartition(tp.topic, tp.partition) for tp in tps])
        finally:
            await lookup.stop()
        return {TP(tp.topic, tp.partition): offset for tp, offset in found.items()}

    def _new_offset(self, tp: TP) -> int | None:
        if self._gapless(tp):
            # No holes in this log: what faust recorded as a gap is messages it skipped.
            self._gap.pop(tp, None)
            acked = self._acked[tp]
            committed = self._committed_offset.get(tp)
            if acked and committed is not None and min(acked) < committed:
                # Acks of messages a commit already covers: read again after a seek back, or
                # finished while a commit was under way. Left in, they would hold the head below the
                # committed offset, and no commit would ever pass the check below again.
                stale = {offset for offset in acked if offset < committed}
                acked[:] = [offset for offset in acked if offset >= committed]
                self._acked_index[tp].difference_update(stale)
            if acked and committed is not None and min(acked) != committed:
                return None
            if acked and committed is None:
                # Unknown here only between faust forgetting a revoked partition's offset and the
                # revoke's commit (``perform_seek`` sets one for every partition it assigns): with
                # nothing to count from, faust would commit from the first ack, over a message an
                # agent reading the same topic has not acked. The next owner reads it again.
                return None
        new_offset: int | None = super()._new_offset(tp)
        return new_offset


class BatchAwareConductor(Conductor):
    """faust's conductor, but the channels ``take_batches`` registers get no messages from it.

    They are registered so that their topic is subscribed and acked as an agent's would be; their
    messages go to :class:`MessageBatches` from the drain loop. If an agent reads the same topic
    (the history writer reads reports beside the aggregator), its messages still go through here
    to that agent, and each message is committed only once both have acked it (its refcount).
    """

    @functools.cached_property
    def batch_channels(self) -> set[Any]:
        """The channels registered by ``take_batches``."""
        return set()

    @functools.cached_property
    def _streamed(self) -> set[TP]:
        return set()

    def streams_read(self, tp: TP) -> bool:
        """Whether a faust stream (an agent) reads ``tp`` besides its batches."""
        return tp in self._streamed

    def _build_handler(self, tp: TP, channels: Any) -> ConsumerCallback:
        streams = {channel for channel in channels if channel not in self.batch_channels}
        if streams:
            self._streamed.add(tp)
        else:
            self._streamed.discard(tp)
        return super()._build_handler(tp, streams)


class FlushWhatIsBuffered(ProducerBuffer):
    """faust's producer buffer, whose ``flush`` waits for the messages buffered when it is called.

    faust's own returns only once the buffer is empty, or once nothing was sent for 0.1 s. A
    worker that keeps writing its changelog never empties it (the alerts worker; the aggregator
    until it sent its records as record batches of its own). faust's commit flushes first, so
    a commit waited for as long as reports kept coming (25 s in a 30 s bench run), and the drain
    loop, which commits every ``broker_commit_every`` acks, delivered nothing meanwhile: reports
    waited 3 to 5 s, the end-to-end p99 (docs/design/faust-consumer.md). A commit needs what was sent
    for the offsets it commits, which is what was buffered before it: the buffer is sent in order,
    and the aiokafka producer's flush that follows waits for everything handed to it by then.
    """

    _newest: FutureMessage | None = None

    def put(self, fut: FutureMessage) -> None:
        super().put(fut)
        self._newest = fut

    def newest(self) -> asyncio.Future[Any] | None:
        """The message buffered last, unless done: done once it, and so everything buffered before
        it, was handed over in turn and acknowledged (or failed). Remembered when put rather than
        read from the queue, which no longer holds a message while it is being handed over."""
        newest = self._newest
        return newest if newest is not None and not newest.done() else None

    async def flush(self) -> None:
        if self.should_stop or (self.app is not None and self.app.conf.producer_threaded):
            # Stopping or crashed, nothing is sent any more and a wait would never end; and the
            # threaded producer keeps a queue of its own. faust's flush returns or raises at once.
            await super().flush()
            return
        newest = self.newest()
        if newest is not None:
            # Until it is sent and acknowledged, or failed: not raising, as faust's flush never did.
            # Given up if the buffer stops or crashes, since nothing is sent any more.
            await self.wait_first(asyncio.wait([newest]))


class DxpulseWeb(AiohttpWeb):
    """faust's aiohttp web server without its index page, ``{"status": "OK"}`` at /.

    faust serves that page whenever its statistics page (at / too) is off: with
    ``DXPULSE_WORKER_DEBUG_PAGES`` off a worker serves only dxpulse's own pages.
    """

    production_blueprints = ()


class DxpulseApp(faust.App):
    """A faust app whose consumer is :class:`FromStartConsumer` and web server :class:`DxpulseWeb`."""

    log_format: LogFormat = "text"
    """How its worker writes log lines (DXPULSE_LOG_FORMAT); ``worker_logging`` applies it."""

    def _new_web(self) -> Web:
        # faust picks the driver named by its ``web`` setting, aiohttp's unless set, and dxpulse
        # never sets it.
        return DxpulseWeb(self)

    def _new_producer(self) -> ProducerT:
        producer = super()._new_producer()
        # Swapped before the producer starts, which is when it adds its buffer as a dependency.
        buffer = FlushWhatIsBuffered(loop=producer.loop, beacon=producer.beacon)
        buffer.app = self
        cast(Any, producer).buffer = buffer
        return producer

    def _new_conductor(self) -> ConductorT:
        return BatchAwareConductor(app=self, beacon=None)  # as faust's transport makes its own

    @functools.cached_property
    def message_batches(self) -> dict[str, MessageBatches]:
        """Topics whose messages the consumer hands to :class:`MessageBatches` (``take_batches``)."""
        return {}

    def _new_consumer(self) -> ConsumerT:
        return FromStartConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.transport.loop,
        )


CONSUMER_FETCH_BYTES = 4 * 1024**2
"""Most bytes one fetch brings per partition (faust's ``consumer_max_fetch_size``, 1 MiB by default)."""
PRODUCER_BATCH_BYTES = 512 * 1024
"""Most bytes of one partition's records aiokafka sends as one batch (faust's 16 KiB by default).

A district-level rollup is ~40 KB, so with 16 KiB every rollup went in a batch of its own, and the
producer's sender was a quarter of the aggregator (docs/design/aggregator-batches.md). Below Kafka's 1 MB
default ``message.max.bytes``, which a batch must fit.
"""


def new_faust_app(app_id: str, settings: WorkerSettings, *, web_port: int) -> faust.App:
    """A faust app with the settings every dxpulse worker needs."""
    check_pinned_versions()
    session_timeout_s = settings.session_timeout_s
    app = DxpulseApp(
        app_id,
        broker=faust_broker_url(settings.kafka_bootstrap),
        store="memory://",
        datadir=str(settings.state_dir / app_id),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        broker_credentials=kafka_security(settings).faust_credentials(),
        # faust's 60 s default makes a restarted worker wait two minutes for its old session to
        # expire before it gets partitions back (docs/operations/troubleshooting.md).
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=min(3.0, session_timeout_s / 3),
        broker_rebalance_timeout=session_timeout_s * 2,
        consumer_auto_offset_reset="earliest",
        # faust's 1 MiB per partition made a worker that has caught up with a backlog wait for the
        # next fetch ~40% of the time (the ceiling bench: 17,000 reports/s; 4 MiB: 20,000-22,800).
        consumer_max_fetch_size=CONSUMER_FETCH_BYTES,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        producer_acks=-1,
        # Without it a worker loses the reports fetched while it finishes a rebalance.
        TableManager=DxpulseTableManager,
        # Throttles repeated log lines (dxpulse.log_throttle).
        Worker="dxpulse.faust_engine.worker_logging:ThrottledWorker",
        web_enabled=True,
        # faust listens on web_bind (0.0.0.0 by default); web_host is only the name it advertises.
        web_bind=settings.worker_web_host,
        web_host=settings.worker_web_host,
        web_port=web_port,
        web_in_thread=False,
        # faust's own pages are unauthenticated and show what a worker holds: /table the tables'
        # keys and values (every reporter's figures), /router and the statistics the cluster's
        # workers and partitions. Off unless an operator turns them on to debug.
        web_tables_enabled=settings.worker_debug_pages,
        web_router_enabled=settings.worker_debug_pages,  # dxpulse uses no table_route
        web_stats_enabled=settings.worker_debug_pages,
        web_graph_enabled=settings.worker_debug_pages,
        web_metrics_enabled=settings.worker_debug_pages,
    )
    app.log_format = settings.log_format
    add_stall_watchdog(app)
    return app


def _committed_offsets(consumer: Any, tps: Mapping[tuple[str, int], TP]) -> dict[tuple[str, int], int | None]:
    # faust keeps the offsets it committed (and those found at assignment) here; no public accessor.
    offsets: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
    return {key: offsets.get(tp) for key, tp in tps.items()}


def faust_consumer_lag(app: faust.App) -> list[PartitionLag]:
    """Lag of every partition the app's consumer is assigned, table changelogs excepted.

    Changelog partitions are read to rebuild tables, never committed, so they would show
    their whole length as lag. Empty while the worker's consumer is not running.
    """
    lags, _ = _lag_and_committed(app)
    return lags


def _lag_and_committed(app: faust.App) -> tuple[list[PartitionLag], dict[tuple[str, int], int | None]]:
    # app.consumer would create a consumer: a worker that has none yet has no lag to show.
    consumer = app._consumer
    if consumer is None:
        return [], {}
    try:
        # Also left out: faust's leader-election topic, assigned to one worker, never work.
        skip = app.tables.changelog_topics | set(getattr(consumer, "randomly_assigned_topics", ()))
        assigned = {(tp.topic, tp.partition): tp for tp in consumer.assignment() if tp.topic not in skip}
        highwaters = {key: consumer.highwater(tp) for key, tp in assigned.items()}
    except Exception:  # not started yet, or stopping: a scrape must not fail for that
        log.debug("consumer lag unavailable", exc_info=True)
        return [], {}
    committed = _committed_offsets(consumer, assigned)
    return consumer_lag(assigned, highwaters, committed), committed


STALL_PATIENCE_S = 30.0
"""How long a partition may have lag and no commit progress before the watchdog reports it."""


def add_stall_watchdog(app: faust.App, patience_s: float = STALL_PATIENCE_S) -> None:
    """Report partitions that have lag but make no progress; every 5 s, ``StallWatchdog.check``.

    An alarm, not a healer (docs/design/faust-consumer.md): it seeks nothing back. The drop it
    watches for (the first batch after a recovery, fetched during faust's seek and cleared after
    it) does not happen, since ``SeekThenResumeRecovery`` keeps the stream partitions paused through
    that seek and clearing; ``tests/integration/test_rebalance_drop.py`` shows the drop with faust's
    own order. A seek back while the partitions are active would repeat that pattern: reports
    fetched before the seek are handed on after it and move faust's read offset past the ones
    fetched again, and buffers cleared after it lose what came in between. Each partition found is
    counted in ``dxpulse_stalled_partitions_total`` (``add_metrics_page``).
    """
    watchdog = StallWatchdog(app, patience_s)
    app.stall_watchdog = watchdog  # type: ignore[attr-defined]

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def report_stalled_partitions() -> None:
        await watchdog.check()


class StallWatchdogCollector(Collector):
    """``dxpulse_stalled_partitions_total{app,kind}``: partitions the stall watchdog found, by kind
    (dropped: its next message was fetched and is held nowhere; idle: lag and no progress)."""

    def __init__(self, app_id: str, watchdog: StallWatchdog) -> None:
        self.app_id = app_id
        self.watchdog = watchdog

    def collect(self) -> Iterator[Metric]:
        found = CounterMetricFamily(
            "dxpulse_stalled_partitions",
            "Partitions the stall watchdog found making no progress, by kind; it seeks none back",
            labels=["app", "kind"],
        )
        found.add_metric([self.app_id, "dropped"], self.watchdog.found_dropped)
        found.add_metric([self.app_id, "idle"], self.watchdog.found_idle)
        yield found


class StallWatchdog:
    """Finds partitions that make no progress, and logs and counts them:

    - a partition whose next message to commit was fetched but is nowhere, neither processed nor
      being processed nor buffered, on two checks in a row (``monitoring.lost_heads``), the same
      message both times;
    - a partition with lag, no commit progress for ``patience_s`` and no message held at all.

    Each is logged as a warning with the consumer's view of those partitions and what every task
    waits on. A restart reads them again from the committed offset (processing is idempotent).
    """

    def __init__(self, app: faust.App, patience_s: float = STALL_PATIENCE_S) -> None:
        self.app = app
        self.patience_s = patience_s
        self.since: dict[tuple[str, int], tuple[int | None, float]] = {}
        self.lost_before: set[tuple[tuple[str, int], int]] = set()
        self.found_dropped = 0
        self.found_idle = 0

    async def check(self) -> list[tuple[str, int]]:
        """One look at every assigned partition; returns those found stuck."""
        app = self.app
        consumer: Any = app._consumer
        if consumer is None or app.rebalancing or not getattr(consumer, "flow_active", True):
            self.since, self.lost_before = {}, set()
            return []
        lags, _ = _lag_and_committed(app)
        tps = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        positions: dict[tuple[str, int], int] = {}
        for lag in lags:
            key = (lag.topic, lag.partition)
            if lag.lag > 0 and key in tps:
                try:
                    position = await asyncio.wait_for(consumer.position(tps[key]), timeout=5)
                except Exception as error:  # no valid position right now (a reset under way)
                    log.debug("no fetch position for %s yet: %r", key, error)
                    continue
                if position is not None:
                    positions[key] = position
        # From here to the decision nothing awaits, so the commit state, the committed offsets
        # and the held ones are one instant's. A commit that started while the positions were
        # awaited has taken its offsets out of the acked ones without moving the committed
        # offset yet (it waits for the producer to flush, seconds under load), and one that
        # finished has moved it: read any earlier, the head looks dropped. Under steady load
        # that happened on two checks in a row, and the needless seek back re-read thousands
        # of reports (the bench's latency p99 at 2,000/s: 385 ms).
        if getattr(consumer, "_commit_fut", None) is not None or app.rebalancing:
            return []  # judged next time, once the commit's bookkeeping is done
        lags, committed = _lag_and_committed(app)
        self.since, stalled = stalled_partitions(
            self.since, lags, committed, time.monotonic(), self.patience_s
        )
        # Nothing committed yet: the next message is the partition's first (compaction never
        # moves a log's start, and a commit follows the first processed message within seconds).
        heads = {key: (committed.get(key) or 0, position) for key, position in positions.items()}
        if not heads and not stalled:  # nothing to judge: no need to scan every buffer
            self.lost_before = set()
            return []
        held = _held_offsets(app, consumer)
        # The same head twice: a dropped message holds its partition's committed offset where it
        # is, while a head merely in passing (a batch handed between loops) is gone 5 s later.
        lost = {(key, heads[key][0]) for key in lost_heads(heads, held)}
        confirmed = {key for key, _ in lost & self.lost_before}
        self.lost_before = lost
        # A partition still holding messages is slow, not stuck (its next message, if dropped, is
        # found above).
        idle = {key for key in stalled if not held.get(key)}
        found = sorted(idle | confirmed)
        if not found:
            return []
        self.found_dropped += len(confirmed)
        self.found_idle += len(idle - confirmed)
        stuck = [tps[key] for key in found if key in tps]
        log.warning(
            "partitions make no progress (%s dropped, %s idle for %.0f s)\n%s",
            sorted(confirmed),
            sorted(idle),
            self.patience_s,
            await consumer_diagnostics(app, stuck),
        )
        self.since, self.lost_before = {}, set()
        return found


def _held_offsets(app: faust.App, consumer: Any) -> dict[tuple[str, int], set[int]]:
    """Offsets per partition the worker still holds: acked, being processed, or in a stream buffer."""
    held: dict[tuple[str, int], set[int]] = {}

    def hold(tp: TP, offset: int) -> None:
        held.setdefault((tp.topic, tp.partition), set()).add(offset)

    for tp, offsets in list(consumer._acked.items()):
        for offset in offsets:
            hold(tp, offset)
    for message in list(consumer._unacked_messages):
        hold(message.tp, message.offset)
    # faust's conductor delivers every message to its channels' queues; an agent takes from there.
    conductor: Any = app.topics
    for channel in list(conductor._topics):
        queue = getattr(channel, "_queue", None)
        for event in list(getattr(queue, "_queue", None) or ()):
            message = getattr(event, "message", None)
            if message is not None:
                hold(message.tp, message.offset)
    # Topics taken in batches skip the conductor: their messages wait in MessageBatches instead.
    for batches in list(getattr(app, "message_batches", {}).values()):
        for message in batches.waiting():
            hold(message.tp, message.offset)
    return held


async def consumer_diagnostics(app: faust.App, tps: Sequence[TP]) -> str:
    """What faust's consumer knows of ``tps``, its flow state, and where every task waits."""
    consumer: Any = app._consumer
    lines = []
    thread_consumer = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    try:
        paused = {(tp.topic, tp.partition) for tp in thread_consumer.paused()} if thread_consumer else set()
    except Exception as error:  # diagnostics must never be what fails
        paused = {("?", -1)}
        log.debug("paused partitions unavailable: %r", error)
    active = consumer._active_partitions
    unacked = [message.tp for message in consumer._unacked_messages]
    for tp in tps:
        try:
            position: Any = await asyncio.wait_for(consumer.position(tp), timeout=5)
        except Exception as error:
            position = repr(error)
        acked = consumer._acked.get(tp) or []
        gaps = sorted((gap.begin, gap.end) for gap in consumer._gap.get(tp, ()))[:3]
        lines.append(
            f"  {tp.topic}[{tp.partition}]: committed={consumer._committed_offset.get(tp)}"
            f" read={consumer._read_offset.get(tp)} position={position} highwater={consumer.highwater(tp)}"
            f" acked={len(acked)} (first {min(acked) if acked else None}) gaps={gaps}"
            f" unacked={unacked.count(tp)} paused={(tp.topic, tp.partition) in paused}"
            f" active={active is None or tp in active} buffered={tp in consumer._buffered_partitions}"
        )
    lines.append(
        f"  flow_active={consumer.flow_active} flow_control_active={app.flow_control.is_active()}"
        f" rebalancing={app.rebalancing} generation={app.consumer_generation_id}"
    )
    for task in asyncio.all_tasks():
        lines.append(f"  task {task.get_name()}: {' <- '.join(_awaiting(task.get_coro()))}")
    return "\n".join(lines)


def _awaiting(coro: Any) -> list[str]:
    """The chain of coroutines ``coro`` is suspended in, outermost first (file:line function)."""
    chain: list[str] = []
    while coro is not None and len(chain) < 12:
        frame = (
            getattr(coro, "cr_frame", None)
            or getattr(coro, "ag_frame", None)
            or getattr(coro, "gi_frame", None)
        )
        if frame is None:
            chain.append(type(coro).__name__)
            break
        chain.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} {frame.f_code.co_name}")
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "ag_await", None)
            or getattr(coro, "gi_yieldfrom", None)
        )
    return chain


def kafka_producer(app: faust.App) -> aiokafka.AIOKafkaProducer:
    """The aiokafka producer under the app's faust producer, which starts it with the app.

    For record batches built by the caller (``dxpulse.kafka.batches.send_as_batches``); faust's
    producer offers none, and no public handle on its aiokafka producer.
    """
    producer: aiokafka.AIOKafkaProducer = cast(Any, app.producer)._ensure_producer()
    return producer


def assigned_partitions(app: faust.App, topic: str) -> set[int] | None:
    """Partitions of ``topic`` the app's consumer is assigned now; None while it has no consumer."""
    consumer = app._consumer
    if consumer is None:
        return None
    try:
        return {tp.partition for tp in consumer.assignment() if tp.topic == topic}
    except Exception:  # not started yet, or stopping
        return None


FAUST_METRICS_PREFIX = "faust"
"""Prefix of faust's own sensor metrics (``faust_messages_received_total``, ...): the same names on
every worker, told apart by the scrape job, and apart from the dxpulse_* contract."""


class CachedLabels:
    """A labelled prometheus_client metric whose series are looked up once per label values.

    faust's Prometheus sensor calls ``labels()`` for every message received and every message sent,
    and prometheus_client checks the values and takes a lock each time: 6.5% of the aggregator's
    samples. Removing or clearing series (faust does at every rebalance) forgets the
    looked-up ones, so a series removed from the registry is never written to again.
    """

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._series: dict[tuple[Any, ...], Any] = {}
        # faust removes series from its consumer thread (a rebalance starting) while the main
        # thread looks them up: a series looked up as it is removed must not stay cached.
        self._lock = threading.Lock()

    def labels(self, *values: Any, **labels: Any) -> Any:
        key = (values, tuple(labels.items()))
        series = self._series.get(key)
        if series is None:
            with self._lock:
                series = self._series[key] = self._metric.labels(*values, **labels)
        return series

    def remove(self, *values: Any) -> None:
        with self._lock:
            self._metric.remove(*values)
            self._series.clear()

    def clear(self) -> None:
        with self._lock:
            self._metric.clear()
            self._series.clear()

    def __getattr__(self, name: str) -> Any:  # collect(), describe(), ...: the metric's own
        return getattr(self._metric, name)


def cached_labels(metrics: FaustMetrics) -> FaustMetrics:
    """faust's sensor metrics, the labelled ones wrapped in :class:`CachedLabels`."""
    wrapped: dict[str, Any] = {
        name: CachedLabels(metric) for name, metric in metrics._asdict().items() if metric._labelnames
    }
    return metrics._replace(**wrapped)


class BatchPrometheusMonitor(PrometheusMonitor):
    """faust's Prometheus sensor, which also counts a batch of messages at once (``BatchSensor``).

    The same counters, gauges and attributes as ``on_message_in``/``on_message_out`` for each
    message, with one metric update per batch rather than per message.
    """

    def on_messages_in(self, messages: Sequence[Message]) -> None:
        now = self.time()
        read: dict[TP, int] = {}
        for message in messages:
            message.time_in = now
            read[message.tp] = message.offset  # a partition's messages come in order: the last wins
        count = len(messages)
        self.messages_received_total += count
        self.messages_active += count
        self.tp_read_offsets.update(read)
        metrics = self._metrics
        metrics.messages_received.inc(count)
        metrics.active_messages.inc(count)
        topics = collections.Counter(message.topic for message in messages)
        for topic, received in topics.items():
            self.messages_received_by_topic[topic] += received
            metrics.messages_received_per_topics.labels(topic=topic).inc(received)
        for tp, offset in read.items():
            metrics.messages_received_per_topics_partition.labels(topic=tp.topic, partition=tp.partition).set(
                offset
            )

    def on_messages_out(self, messages: Sequence[Message]) -> None:
        now = self.time()
        for message in messages:
            message.time_out = now
            if message.time_in is not None:
                message.time_total = now - message.time_in
        self.messages_active -= len(messages)
        self._metrics.active_messages.dec(len(messages))


def add_metrics_page(app: faust.App, registry: CollectorRegistry) -> None:
    """Serve ``registry`` on the faust web server's /metrics, with the app's consumer lag and faust's
    Prometheus sensor (the worker's internals: messages in and out, commits, sends, rebalances) added."""
    registry.register(ConsumerLagCollector(app.conf.id, lambda: faust_consumer_lag(app)))
    watchdog = getattr(app, "stall_watchdog", None)
    if watchdog is not None:
        registry.register(StallWatchdogCollector(app.conf.id, watchdog))
    # What faust.sensors.prometheus.setup_prometheus_sensors does, into this registry and page
    # rather than the process-wide one, so several apps in one process (tests, bench) do not clash.
    app.monitor = BatchPrometheusMonitor(
        metrics=cached_labels(FaustMetrics.create(registry, FAUST_METRICS_PREFIX))
    )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def run_worker(
    app: faust.App, settings: WorkerSettings, topics: tuple[TopicSpec, ...], loglevel: str = "info"
) -> None:
    """Create the worker's topics, then run ``app`` as a worker in this process.

    Exits with one line per problem when the existing topics or the cluster do not match the
    replication and partition settings (``dxpulse.kafka.topics.layout_problems``).
    """
    # Until faust's worker sets up its own handlers (worker_logging), in the same format.
    configure_logging(app.conf.id, settings.log_format)
    ensure = ensure_topics(
        settings.kafka_bootstrap,
        settings.topic_partitions,
        extra=(*topics, leader_topic(app.conf.id)),
        replication=Replication.of(settings),
        security=kafka_security(settings),
    )
    try:
        asyncio.run(ensure)
    except TopicLayoutError as error:
        # No traceback: the fix is in the settings or the cluster, and the message names it.
        raise SystemExit(f"{app.conf.id} refuses to start: {error}") from None
    # faust fails with FileNotFoundError on a state folder that does not exist yet.
    Path(app.conf.datadir).mkdir(parents=True, exist_ok=True)
    sys.argv = worker_argv(app, loglevel, settings.log_format)
    tune_gc(settings.gc_thresholds)
    app.main()


def worker_argv(app: faust.App, loglevel: str, log_format: LogFormat) -> list[str]:
    """The command line ``app.main()`` runs the worker with: the app's web server settings (the
    worker command's own --web-host/--web-port defaults would override them), and with JSON logs
    --quiet, which keeps faust's banner, not a log line, off stdout."""
    quiet = ["--quiet"] if log_format == "json" else []
    return [
        sys.argv[0],
        *quiet,
        "worker",
        "--loglevel",
        loglevel,
        "--web-bind",
        str(app.conf.web_bind),
        "--web-host",
        str(app.conf.web_host),
        "--web-port",
        str(app.conf.web_port),
    ]


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic whose keys and values stay bytes; dxpulse parses them itself with pydantic."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


async def send_and_wait(topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
    """Send a record to ``topic`` and return once Kafka acknowledged it (a ``dead_letters.Send``)."""
    await (await topic.send(key=key, value=value))


def as_refused(message: Message) -> Refused:
    """``message`` as a dead letter keeps it: its key and value, and where it was read."""
    return Refused(message.key, message.value, message.topic, message.partition, message.offset)


def take_batches(
    app: faust.App,
    topic: faust.TopicT,
    max_: int,
    *,
    linger_s: float = 0.0,
    behind: Callable[[], bool] | None = None,
) -> MessageBatches:
    """Batches of ``topic``'s messages, handed over by the consumer without faust's streams.

    For a worker's main input only: iterate the result in one task (``app.task``). The topic is
    subscribed as an agent's would be; see :class:`MessageBatches` for batching and acks.
    """
    if not isinstance(app, DxpulseApp):
        raise TypeError("take_batches needs an app made by new_faust_app (its consumer delivers the batches)")
    (name,) = topic.topics
    if name in app.message_batches:
        raise ValueError(f"{name} is already taken in batches")
    batches = MessageBatches(app, name, max_, linger_s=linger_s, behind=behind)
    app.message_batches[name] = batches
    # Subscribed, and acked, as an agent's topic is (what iterating a topic registers); the
    # conductor delivers it nothing.
    channel = cast(faust.TopicT, topic.clone(is_iterator=True))
    conductor = app.topics
    assert isinstance(conductor, BatchAwareConductor)  # DxpulseApp's
    conductor.batch_channels.add(channel)
    conductor.add(channel)
    return batches


JSON_TABLE_SERIALIZER = "json"
"""The serializer of a ``json_table``'s keys and values, in its changelog too."""


def json_table(app: faust.App, name: str, partitions: int) -> faust.types.TableT[str, Any]:
    """A changelog-backed table of str keys and JSON values (faust's default table serializers).

    Both must stay JSON: a table whose keys were written as raw bytes cannot be recovered.
    """
    app.conf.table_key_serializer = JSON_TABLE_SERIALIZER
    app.conf.table_value_serializer = JSON_TABLE_SERIALIZER
    return app.Table(name, default=None, key_type=str, value_type=None, partitions=partitions)


def add_history_writer(
    app: faust.App,
    topic: faust.TopicT,
    database_url: str,
    insert: str,
    row: Callable[[bytes], Sequence[Any]],
    name: str = "record_history",
    *,
    migrate: bool,
    dead_letters: DeadLetters | None = None,
) -> None:
    """An agent writing every message of ``topic`` to PostgreSQL with ``insert``, in batches.

    ``insert`` must be idempotent (ON CONFLICT DO NOTHING on the event's identity), so a replay
    of the topic stores nothing twice. While PostgreSQL is unreachable, or lacks a migration that
    ``migrate`` does not let it apply (``open_pool``), a batch is tried again
    (``dxpulse.postgres.retry``), and its messages are acknowledged only once it is written. A message
    ``row`` cannot read goes to ``dead_letters``.
    """

    async def record_history(stream: Any) -> AsyncIterator[None]:
        pool = await until_done(
            lambda: open_pool(database_url, migrate=migrate), f"{name}: opening the database"
        )
        try:
            async for events in stream.take_events(500, within=1.0):
                rows = []
                for event in events:
                    message = event.message
                    try:
                        rows.append(row(message.value))
                    except Exception as error:  # not an event this topic should hold: never stop on it
                        if dead_letters is None:
                            raise
                        detail = f"not recorded by {name}: {error}"
                        await dead_letters.send(as_refused(message), "invalid-event", detail)
                write = functools.partial(pool.executemany, insert, rows)
                await until_done(write, f"{name}: writing a batch")
                yield None
        finally:
            await pool.close()

    app.agent(topic, name=name)(record_history)


def discard_unstarted(app: faust.App) -> None:
    """Release what building ``app`` took without starting it (tests and tools build apps to read
    their configuration): its consumer's thread event loop, which faust opens as the consumer is
    made and closes only when a started worker stops."""
    consumer: Any = app.consumer
    consumer._thread.thread_loop.close()

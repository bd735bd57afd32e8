"""The dxpulse faust consumer never commits past a message it did not process; its /metrics page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from faust.sensors.prometheus import PrometheusMonitor
from faust.transport.producer import ProducerBuffer
from faust.types import TP, ConsumerMessage, Message
from prometheus_client import CollectorRegistry, generate_latest

from dxpulse.faust_engine.batches import messages_in, messages_out
from dxpulse.faust_engine.support import (
    CONSUMER_FETCH_BYTES,
    PRODUCER_BATCH_BYTES,
    BatchPrometheusMonitor,
    CachedLabels,
    DxpulseApp,
    FlushWhatIsBuffered,
    FromStartConsumer,
    add_metrics_page,
)
from dxpulse.kafka.topics import ROLLUPS

REPORTS_TP = TP("reports", 0)


@pytest.fixture
def made() -> Iterator[FromStartConsumer]:
    """The consumer of an app that never starts (nothing here talks to Kafka)."""
    loop = asyncio.new_event_loop()
    app = DxpulseApp("unit-faust-support", broker="kafka://localhost:1", store="memory://", loop=loop)
    consumer = app.consumer
    assert isinstance(consumer, FromStartConsumer)
    try:
        yield consumer
    finally:
        # The consumer's Kafka thread has a loop of its own, made but never run.
        consumer._thread.thread_loop.close()
        loop.close()


def test_app_is_a_faust_app_with_the_dxpulse_consumer(made: FromStartConsumer) -> None:
    assert isinstance(made.app, faust.App)


def test_no_commit_over_a_head_gap_when_the_committed_offset_is_zero(made: FromStartConsumer) -> None:
    # Offsets 0-4 were fetched but dropped (never acked); 5-9 were processed.
    made._committed_offset[REPORTS_TP] = 0
    made._acked[REPORTS_TP].extend(range(5, 10))
    assert made._new_offset(REPORTS_TP) is None


def test_no_commit_while_the_committed_offset_is_unknown(made: FromStartConsumer) -> None:
    # faust forgets a revoked partition's committed offset before the revoke's commit.
    made._acked[REPORTS_TP].extend(range(101, 150))  # 100 not acked (by the other reader)
    assert made._new_offset(REPORTS_TP) is None


def test_commit_of_contiguous_acks_from_the_start(made: FromStartConsumer) -> None:
    made._committed_offset[REPORTS_TP] = 0
    made._acked[REPORTS_TP].extend([0, 1, 2, 4])
    assert made._new_offset(REPORTS_TP) == 3


def test_commit_after_a_committed_offset_as_before(made: FromStartConsumer) -> None:
    made._committed_offset[REPORTS_TP] = 40
    made._acked[REPORTS_TP].extend(range(40, 45))
    assert made._new_offset(REPORTS_TP) == 45
    made._acked[REPORTS_TP].extend(range(50, 52))
    assert made._new_offset(REPORTS_TP) is None


def test_no_commit_over_one_skipped_message_at_the_committed_offset(made: FromStartConsumer) -> None:
    # faust lets a commit pass over the message at the committed offset; dxpulse's topics have no holes.
    made._committed_offset[REPORTS_TP] = 40
    made._acked[REPORTS_TP].extend(range(41, 45))
    assert made._new_offset(REPORTS_TP) is None


def test_acks_below_the_committed_offset_do_not_stop_the_commits(made: FromStartConsumer) -> None:
    # 38-39 were processed again after a seek back, once a commit had already covered them.
    made._committed_offset[REPORTS_TP] = 40
    made._acked[REPORTS_TP].extend([38, 39, 40, 41])
    made._acked_index[REPORTS_TP].update([38, 39, 40, 41])
    assert made._new_offset(REPORTS_TP) == 42
    assert 38 not in made._acked_index[REPORTS_TP]


def test_acks_below_the_committed_offset_do_not_hide_a_skipped_head(made: FromStartConsumer) -> None:
    made._committed_offset[REPORTS_TP] = 40
    made._acked[REPORTS_TP].extend([39, 41, 42])
    assert made._new_offset(REPORTS_TP) is None


def test_a_gap_faust_recorded_on_a_topic_without_holes_is_not_committed_over(made: FromStartConsumer) -> None:
    # 42-44 were read past without being processed (faust records them as a hole in the log).
    made._committed_offset[REPORTS_TP] = 40
    made._acked[REPORTS_TP].extend([40, 41, 45])
    made._gap[REPORTS_TP].addi(42, 45)
    assert made._new_offset(REPORTS_TP) == 42


def test_holes_of_a_compacted_topic_are_committed_over(made: FromStartConsumer) -> None:
    rollups = TP(ROLLUPS, 0)
    made._committed_offset[rollups] = 40
    made._acked[rollups].extend([40, 41, 45])
    made._gap[rollups].addi(42, 45)  # compacted away
    assert made._new_offset(rollups) == 46


def test_metrics_page_carries_faust_prometheus_sensor(made: FromStartConsumer) -> None:
    registry, app = CollectorRegistry(), made.app
    assert isinstance(app, faust.App)
    add_metrics_page(app, registry)
    # The monitor faust feeds its internals to (messages, commits, sends, rebalances) writes here.
    assert isinstance(app.monitor, PrometheusMonitor)
    app.monitor.on_tp_commit({REPORTS_TP: 7})
    text = generate_latest(registry).decode()
    assert 'faust_topic_partition_offset_commited{partition="0",topic="reports"} 7.0' in text
    assert "# TYPE faust_messages_received_total counter" in text
    assert "# TYPE dxpulse_consumer_lag gauge" in text


def test_faust_sensor_series_are_looked_up_once_and_forgotten_when_removed(made: FromStartConsumer) -> None:
    registry, app = CollectorRegistry(), made.app
    assert isinstance(app, faust.App)
    add_metrics_page(app, registry)
    monitor = app.monitor
    assert isinstance(monitor, PrometheusMonitor)
    received = monitor._metrics.messages_received_per_topics_partition
    assert isinstance(received, CachedLabels)
    looked_up: list[dict[str, Any]] = []
    lookup = received._metric.labels

    def counted(**labels: Any) -> Any:
        looked_up.append(labels)
        return lookup(**labels)

    received._metric.labels = counted
    assert received.labels(topic="reports", partition=0) is received.labels(topic="reports", partition=0)
    assert len(looked_up) == 1, "prometheus_client asked once"
    end_offset = 'faust_topic_partition_end_offset{partition="0",topic="reports"}'
    monitor.track_tp_end_offset(REPORTS_TP, 9)
    assert f"{end_offset} 9.0" in generate_latest(registry).decode()
    monitor._clear_partition_related_metrics()  # what faust does at a rebalance
    assert "faust_topic_partition_end_offset{" not in generate_latest(registry).decode()
    monitor.track_tp_end_offset(REPORTS_TP, 12)  # a fresh series, in the registry again
    assert f"{end_offset} 12.0" in generate_latest(registry).decode()


Monitored = tuple[CollectorRegistry, BatchPrometheusMonitor]


@pytest.fixture
def monitored() -> Iterator[Callable[[], Monitored]]:
    """Fresh apps' Prometheus sensors, each with a registry of its own (the apps never start)."""
    loops: list[asyncio.AbstractEventLoop] = []

    def make() -> Monitored:
        registry, loop = CollectorRegistry(), asyncio.new_event_loop()
        name = f"unit-sensor-{len(loops)}"
        app = DxpulseApp(name, broker="kafka://localhost:1", store="memory://", loop=loop)
        loops.extend((loop, cast(Any, app.consumer)._thread.thread_loop))
        add_metrics_page(app, registry)
        assert isinstance(app.monitor, BatchPrometheusMonitor)
        return registry, app.monitor

    yield make
    for loop in loops:
        loop.close()


def _received(offsets: list[tuple[str, int, int]]) -> list[Message]:
    return [
        ConsumerMessage(topic, partition, offset, 0.0, 0, None, b"k", b"v", None, tp=TP(topic, partition))
        for topic, partition, offset in offsets
    ]


def _state(registry: CollectorRegistry, monitor: BatchPrometheusMonitor) -> tuple[Any, ...]:
    series = [line for line in generate_latest(registry).splitlines() if b"_created" not in line]
    return (
        series,
        monitor.messages_received_total,
        monitor.messages_active,
        dict(monitor.messages_received_by_topic),
        dict(monitor.tp_read_offsets),
    )


def test_a_batch_counts_in_faust_sensors_as_its_messages_one_by_one(
    monitored: Callable[[], Monitored],
) -> None:
    offsets = [("reports", 0, 5), ("reports", 1, 9), ("reports", 0, 6), ("rollups", 2, 1), ("reports", 1, 10)]
    one_by_one, batched = monitored(), monitored()
    singles, batch = _received(offsets), _received(offsets)
    for message in singles:
        one_by_one[1].on_message_in(message.tp, message.offset, message)
    messages_in([batched[1]], batch)
    assert _state(*batched) == _state(*one_by_one)
    assert b"faust_messages_received_total 5.0" in generate_latest(batched[0])
    assert (
        b'faust_messages_received_per_topics_partition{partition="1",topic="reports"} 10.0'
        in generate_latest(batched[0])
    )  # the last offset read, not the first
    assert all(message.time_in is not None for message in batch)
    acked = [0, 2, 3]  # the others are still held by another reader
    for position in acked:
        message = singles[position]
        one_by_one[1].on_message_out(message.tp, message.offset, message)
    messages_out([batched[1]], [batch[position] for position in acked])
    assert _state(*batched) == _state(*one_by_one)
    assert b"faust_active_messages 2.0" in generate_latest(batched[0])
    assert all(batch[position].time_total is not None for position in acked)


def test_a_sensor_without_batches_is_told_of_each_message() -> None:
    told: list[tuple[str, int]] = []
    sensor = SimpleNamespace(
        on_message_in=lambda tp, offset, message: told.append(("in", offset)),
        on_message_out=lambda tp, offset, message: told.append(("out", offset)),
    )
    batch = _received([("reports", 0, 1), ("reports", 0, 2)])
    messages_in([cast(Any, sensor)], batch)
    messages_out([cast(Any, sensor)], batch[1:])
    messages_out([cast(Any, sensor)], [])
    assert told == [("in", 1), ("in", 2), ("out", 2)]


def test_workers_fetch_and_send_in_batches_fit_for_district_rollups(app: faust.App) -> None:
    assert app.conf.consumer_max_fetch_size == CONSUMER_FETCH_BYTES
    assert app.conf.producer_max_batch_size == PRODUCER_BATCH_BYTES
    # A batch must fit in one request, and in Kafka's default message.max.bytes (1 MB).
    assert PRODUCER_BATCH_BYTES <= app.conf.producer_max_request_size <= 1_048_588


async def test_a_flush_waits_for_what_was_buffered_not_for_an_empty_buffer(app: faust.App) -> None:
    """A commit's flush ends once the messages buffered before it are sent, though more keep coming.

    faust's flush waited for an empty buffer: under a steady stream of changelog writes that was
    the whole stream, and commits (and the reports behind them) waited with it.
    """
    assert isinstance(app.producer.buffer, FlushWhatIsBuffered)
    buffer: Any = app.producer.buffer  # fed plain futures below, as faust feeds it FutureMessages
    loop = asyncio.get_running_loop()
    sent: list[asyncio.Future[None]] = []

    async def steady_writer() -> None:  # what faust's _handle_pending and a busy worker do together
        while True:
            buffer.put(loop.create_future())
            head = buffer.pending.get_nowait()
            head.set_result(None)
            sent.append(head)
            buffer.message_sent.set()
            await asyncio.sleep(0.001)

    before = [loop.create_future() for _ in range(5)]
    for future in before:
        buffer.put(future)
    writing = asyncio.create_task(steady_writer())
    try:
        async with asyncio.timeout(2):
            await buffer.flush()
        assert all(f.done() for f in before), "everything buffered before the flush was sent"
        assert buffer.size > 0, "and the buffer was never empty"
    finally:
        writing.cancel()


async def test_the_newest_buffered_message_is_the_one_a_flush_waits_for(app: faust.App) -> None:
    buffer: Any = app.producer.buffer
    assert buffer.newest() is None
    loop = asyncio.get_running_loop()
    first, last = loop.create_future(), loop.create_future()
    buffer.put(first)
    buffer.put(last)
    assert buffer.newest() is last
    flushing = asyncio.create_task(buffer.flush())
    first.set_result(None)
    await asyncio.sleep(0.01)
    assert not flushing.done(), "not before the newest is sent"
    last.set_exception(RuntimeError("not acknowledged"))
    async with asyncio.timeout(1):
        await flushing  # done, and not raising: as faust's flush
    assert isinstance(last.exception(), RuntimeError)  # the send's own future still tells


async def test_with_a_threaded_producer_a_flush_is_fausts_own(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The threaded producer queues messages in its own thread's queue, which ``newest`` never sees.
    fausts: list[object] = []

    async def fausts_flush(self: object) -> None:
        fausts.append(self)

    monkeypatch.setattr(ProducerBuffer, "flush", fausts_flush)
    buffer: Any = app.producer.buffer
    buffer.pending.put_nowait(asyncio.get_running_loop().create_future())  # never done
    monkeypatch.setattr(buffer, "app", SimpleNamespace(conf=SimpleNamespace(producer_threaded=True)))
    async with asyncio.timeout(1):
        await buffer.flush()
    assert fausts == [buffer]


async def test_a_flush_waits_for_a_message_being_handed_over(app: faust.App) -> None:
    # faust's sending loop takes a message off the queue, then waits for aiokafka to take it (a
    # round trip when the partition's batch is full): the queue is empty, the message not yet sent.
    buffer: Any = app.producer.buffer
    in_transit = asyncio.get_running_loop().create_future()
    buffer.put(in_transit)
    assert buffer.pending.get_nowait() is in_transit
    flushing = asyncio.create_task(buffer.flush())
    await asyncio.sleep(0.01)
    assert not flushing.done()
    in_transit.set_result(None)
    async with asyncio.timeout(1):
        await flushing
    assert buffer.newest() is None, "nothing left to wait for"


async def test_a_flush_ends_when_the_buffer_stops(app: faust.App) -> None:
    # Stopped or crashed, the buffer sends nothing more: a flush waiting then (faust's stop flushes
    # the buffer) would never end.
    buffer: Any = app.producer.buffer
    never = asyncio.get_running_loop().create_future()
    buffer.put(never)
    buffer.pending.get_nowait()  # being handed over when the stop comes
    flushing = asyncio.create_task(buffer.flush())
    await asyncio.sleep(0.01)
    buffer._stopped.set()
    async with asyncio.timeout(1):
        await flushing
    async with asyncio.timeout(1):
        await buffer.flush()  # stopped already: faust's own, which returns with nothing queued
    assert not never.done(), "the message's future is left alone, not cancelled"

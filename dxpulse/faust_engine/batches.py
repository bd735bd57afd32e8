"""Batches of a topic's messages handed over by faust's consumer, without faust's per-message streams."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator, Iterable, Sequence
from typing import Any, Protocol, cast, runtime_checkable

import faust
from faust.types import Message
from faust.types.sensors import SensorT
from mode.utils.locks import Event

log = logging.getLogger(__name__)

FILL_AT_MOST_S = 1.0
"""How long a batch keeps filling for a worker that is behind its input."""
FILL_STEP_S = 0.01
"""How often, while filling, the worker checks whether it has caught up."""


class MessageBatches:
    """One topic's messages, taken in batches straight from faust's consumer.

    faust hands every message through its conductor, a channel queue and a stream, with sensors
    and at least one event loop turn per message: about 0.3 ms each on the bench machine, the
    whole "faust ceiling" of the benchmarks (BENCHMARKS.md). A worker that processes reports in
    batches of thousands needs none of it. So ``FromStartConsumer``'s drain loop appends this
    topic's messages here (``deliver``) and iterating yields them as batches:

    - A batch is taken as soon as it has a message, unless ``behind()`` says Kafka already holds
      more: then it fills up to ``max_`` while that stays so, for at most ``FILL_AT_MOST_S``, but
      never waits for new messages. So an idle worker takes a report at once and a busy one takes
      big batches. ``linger_s`` > 0 waits that long after a batch's first message for more.
    - At most ``max_`` messages wait here while a batch is processed; then the drain loop waits
      for room (or for faust to suspend flow for a rebalance), as it does for a full stream.
    - Acks, as a stream's: a message is tracked as unacked when its batch is taken and acked when
      the next batch is asked for, i.e. once its batch was processed. A batch whose processing
      raises is never acked, so a commit never covers a message that was not processed; iterate
      with ``contextlib.aclosing`` so that its messages are then untracked, or faust's stop would
      wait for their acks forever. If an agent reads the topic too, a message is committed once
      both acked it (faust's refcount).
    - Rebalances: faust clears the buffers it manages when partitions are revoked, this one
      included; a message fetched in an older generation, or while flow is suspended, is dropped
      unacked, as a stream skips it. The seek after the rebalance reads it again.
    """

    def __init__(
        self,
        app: faust.App,
        topic: str,
        max_: int,
        *,
        linger_s: float = 0.0,
        behind: Callable[[], bool] | None = None,
    ) -> None:
        if max_ < 1:
            raise ValueError(f"a batch holds at least one message, not {max_}")
        self.app = app
        self.topic = topic
        self.max = max_
        self.linger_s = linger_s
        self.behind = behind if behind is not None else behind_on(app, topic)
        self._waiting: deque[Message] = deque()
        # mode's events: what the app's wait_for_stopped takes.
        self._arrived = Event()
        self._full = Event()
        self._room = Event()
        self._room.set()
        app.flow_control.manage_queue(self)  # type: ignore[arg-type]  # it only calls clear()

    # The consumer's side.

    def reserve(self, message: Message) -> None:
        """Count this reader in ``message``'s references, before any other reader is handed it.

        A message is committed once its references are all acked. Counted only at ``deliver``,
        a batch could process and ack a report before an agent reading the same topic was handed
        it (faust's delivery can wait: flow control, the producer's buffer), and so commit it.
        """
        message.incref()

    def deliver(self, message: Message) -> bool:
        """Take ``message`` in; False once ``max_`` wait (the drain loop then awaits ``room``)."""
        self._waiting.append(message)
        self._arrived.set()
        if len(self._waiting) < self.max:
            return True
        self._full.set()
        self._room.clear()
        return False

    async def room(self) -> None:
        """Wait until fewer than ``max_`` messages wait."""
        await self._room.wait()

    def clear(self) -> None:
        """Drop what waits (faust's flow control calls this when partitions are revoked)."""
        self._waiting.clear()
        self._arrived.clear()
        self._full.clear()
        self._room.set()

    def waiting(self) -> list[Message]:
        """The messages delivered and not yet taken."""
        return list(self._waiting)

    # The worker's side.

    def _take(self) -> list[Message]:
        app = self.app
        consumer = app.consumer
        generation = app.consumer_generation_id
        flowing = app.flow_control.is_active()
        batch: list[Message] = []
        tracked: list[Message] = []
        while self._waiting and len(batch) < self.max:
            message = self._waiting.popleft()
            if flowing and message.generation_id == generation:
                if not message.tracked:  # as a stream does: once, whoever reads it first
                    message.tracked = True
                    tracked.append(message)
                batch.append(message)
        if tracked:
            # What consumer.track_message does for each: unacked until processed; the sensors count them.
            cast(Any, consumer)._unacked_messages.update(tracked)
            messages_in(app.sensors, tracked)
        if not self._waiting:
            self._arrived.clear()
        if len(self._waiting) < self.max:
            self._full.clear()
            self._room.set()
        return batch

    def _untrack(self, batch: list[Message]) -> None:
        # Not processed: never acked, so never committed. No longer waited for either: faust's
        # stop (and rebalance) waits until every tracked message is acked, which would be never.
        unacked = self.app.consumer.unacked
        for message in batch:
            unacked.discard(message)

    def _ack(self, batch: list[Message]) -> None:
        consumer = self.app.consumer
        # The last reader's ack is the consumer's (faust's refcount, as for an agent's stream).
        messages_out(self.app.sensors, [message for message in batch if message.ack(consumer)])

    async def __aiter__(self) -> AsyncGenerator[list[Message], None]:
        app = self.app
        while not app.should_stop:
            await app.wait_for_stopped(self._arrived)
            # Behind: take in what Kafka already holds, up to max_, but never wait for new messages.
            # (mode's wait_for_stopped answers True on a timeout too: should_stop tells.)
            filling_until = time.monotonic() + FILL_AT_MOST_S
            while (
                not app.should_stop
                and len(self._waiting) < self.max
                and self.behind()
                and time.monotonic() < filling_until
            ):
                await app.wait_for_stopped(self._full, timeout=FILL_STEP_S)
            if self.linger_s > 0 and len(self._waiting) < self.max and not app.should_stop:
                await app.wait_for_stopped(self._full, timeout=self.linger_s)
            if app.should_stop:
                break
            batch = self._take()
            if batch:
                try:
                    yield batch
                except BaseException:  # closed while processing it: an error, or the worker stops
                    self._untrack(batch)
                    raise
                self._ack(batch)  # only reached once the batch was processed without an error
                # Its messages must not outlive it here: faust tracks unacked ones in a weak set, and
                # a message another reader never acks (its buffer cleared at a revoke) would hold up
                # a rebalance's wait for the unacked ones for as long as it is referenced.
                del batch


@runtime_checkable
class BatchSensor(Protocol):
    """A faust sensor that can count a batch of messages at once (``BatchPrometheusMonitor``)."""

    def on_messages_in(self, messages: Sequence[Message]) -> None:
        """``on_message_in`` of each message, in order."""

    def on_messages_out(self, messages: Sequence[Message]) -> None:
        """``on_message_out`` of each message, in order."""


def messages_in(sensors: Iterable[SensorT], messages: Sequence[Message]) -> None:
    """Tell every sensor of ``messages`` received: at once where it can take a batch, else one by one.

    faust's sensors take a message at a time: with its Prometheus sensor that cost more per report
    than decoding it (docs/design/metrics.md).
    """
    _tell(sensors, messages, received=True)


def messages_out(sensors: Iterable[SensorT], messages: Sequence[Message]) -> None:
    """Tell every sensor of ``messages`` acked for good (see ``messages_in``)."""
    _tell(sensors, messages, received=False)


def _tell(sensors: Iterable[SensorT], messages: Sequence[Message], *, received: bool) -> None:
    if not messages:
        return
    for sensor in sensors:
        if isinstance(sensor, BatchSensor):
            (sensor.on_messages_in if received else sensor.on_messages_out)(messages)
        else:
            each = sensor.on_message_in if received else sensor.on_message_out
            for message in messages:
                each(message.tp, message.offset, message)


def behind_on(app: faust.App, topic: str) -> Callable[[], bool]:
    """Whether ``app``'s consumer has read less of ``topic`` than Kafka holds on its partitions."""

    def behind() -> bool:
        consumer: Any = app._consumer
        if consumer is None:
            return False
        try:
            for tp in consumer.assignment():
                if tp.topic != topic:
                    continue
                read, end = consumer._read_offset.get(tp), consumer.highwater(tp)
                # Nothing read yet since the (re)start: the committed offset may be the end.
                if read is not None and end is not None and read + 1 < end:
                    return True
        except Exception:  # not started, or stopping: take the batch as it is
            log.debug("consumer position unavailable", exc_info=True)
        return False

    return behind


def start_inline(delivery: Awaitable[Any]) -> Awaitable[Any] | None:
    """Run a coroutine until it first waits: None if it finished, else an awaitable for the rest.

    faust's drain loop runs each message's delivery as a task raced against a flow suspension
    (``wait_first``): four tasks, a wait and three cancellations per message, although delivery
    nearly always finishes without waiting. Started inline, it costs a call; only a delivery that
    does wait (a full queue, flow control, the producer's buffer) goes on as a task.
    Exceptions are raised here as they would be by awaiting ``delivery``. Any other awaitable is
    returned as it is.
    """
    if not isinstance(delivery, Coroutine):
        return delivery
    coro = delivery
    try:
        first = coro.send(None)
    except StopIteration:
        return None
    return _rest(_Resumed(coro, first))


async def _rest(resumed: _Resumed) -> Any:
    return await resumed


class _Resumed:
    """Awaiting this drives a coroutine that already yielded once, as ``await`` would have."""

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._first
        while True:
            try:
                sent = yield yielded  # the future coro waits on, handed to the task that awaits us
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as error:  # a cancellation, or an error set on that future
                try:
                    yielded = coro.throw(error)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value

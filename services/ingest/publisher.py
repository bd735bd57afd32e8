"""Each valid report published once: accepted ids remembered, the same event in flight awaited."""

from __future__ import annotations

import asyncio
import logging

from services.ingest.items import Item
from services.ingest.producer import ReportProducer
from services.ingest.store import STORE_ERRORS, AcceptedIds, EventKey, IngestStore, RecordsBehind

log = logging.getLogger(__name__)


class Publisher:
    """Publishes every valid, not yet accepted report, and records the ids Kafka acknowledged.

    An id is recorded (in memory, ``AcceptedIds``, and in PostgreSQL behind the answer,
    ``RecordsBehind``) only after Kafka's ack, so a 2xx always means Kafka has the report. A report
    whose event is being published by another request (or earlier in the same batch) waits for that
    send and is then a duplicate, or is sent itself if that send failed. docs/design/ingest.md says
    why a report published twice is harmless.
    """

    def __init__(self, producer: ReportProducer, store: IngestStore, accepted_ids: AcceptedIds) -> None:
        self.producer = producer
        self.store = store
        self.accepted_ids = accepted_ids
        self.records = RecordsBehind(store)
        self.in_flight: dict[EventKey, asyncio.Future[None]] = {}
        """The events being published, each with a future done once its send has ended."""

    async def publish(self, items: list[Item]) -> None:
        """Publish the items that have no problem; sets each one's status."""
        valid = [item for item in items if item.problem is None and item.report is not None]
        if not valid:
            return
        fresh = [item.key for item in valid if item.key not in self.accepted_ids]
        try:
            for key in await self.store.accepted(fresh):
                self.accepted_ids.add(key)
        except STORE_ERRORS as error:
            # Without the durable record a resend may be published twice: harmless, as reports
            # are snapshots the aggregator takes once (docs/guide/reporting.md, Idempotency).
            log.warning("cannot read accepted event ids (%s); relying on memory", type(error).__name__)
        # The common case goes to the producer at once; an event sent twice in this batch, or in
        # flight in another request, waits for that send and is then a duplicate (_publish_one).
        at_once: list[Item] = []
        after_others: list[Item] = []
        keys: set[EventKey] = set()
        for item in valid:
            if item.key in self.accepted_ids:
                item.status = "duplicate"
            elif item.key in self.in_flight or item.key in keys:
                after_others.append(item)
            else:
                keys.add(item.key)
                at_once.append(item)
        errors = await self._publish_fresh(at_once) if at_once else []
        if after_others:
            errors += await asyncio.gather(*(self._publish_one(item) for item in after_others))
        failed = [e for e in errors if e is not None]
        if failed:
            log.warning("Kafka did not acknowledge %d report(s): %r", len(failed), failed[0])
        await self.records.record([item.key for item in valid if item.status == "accepted"])

    async def _publish_one(self, item: Item) -> BaseException | None:
        """Publish unless this event was accepted already; waits for a send of the same event in flight."""
        key = item.key
        while True:
            if key in self.accepted_ids:
                item.status = "duplicate"
                return None
            pending = self.in_flight.get(key)
            if pending is None:
                break
            await asyncio.shield(pending)
        [error] = await self._publish_fresh([item])
        return error

    async def _publish_fresh(self, items: list[Item]) -> list[BaseException | None]:
        """Publish reports whose events are neither accepted nor in flight, all at once."""
        # One future for the lot: a request sending one of these events again waits for it, then
        # finds it accepted or not (_publish_one).
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for item in items:
            self.in_flight[item.key] = done
        errors: list[BaseException | None] = [ConnectionError("cancelled")] * len(items)
        try:
            errors = await self.producer.produce([item.report for item in items if item.report is not None])
            for item, error in zip(items, errors, strict=True):
                if error is None:
                    self.accepted_ids.add(item.key)
                    item.status = "accepted"
                else:
                    item.status = "unavailable"
        finally:
            for item in items:
                del self.in_flight[item.key]
            done.set_result(None)
        return errors

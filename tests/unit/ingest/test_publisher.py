"""Publisher: each valid report published once, its id recorded only once Kafka has it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable

import pytest

from dxpulse.domain.validation import Problem
from schemas import Report
from services.ingest.items import Item
from services.ingest.metrics import IngestMetrics
from services.ingest.producer import ReportProducer
from services.ingest.publisher import Publisher
from services.ingest.store import AcceptedIds, EventKey, RecordsBehind
from tests.unit.conftest import flag, make_report
from tests.unit.ingest.fakes import FakeKafkaLink, FakeProducer, FakeStore


@pytest.fixture
def publisher(kafka: FakeKafkaLink, store: FakeStore) -> Publisher:
    return Publisher(ReportProducer(kafka, IngestMetrics(), timeout_s=0.2), store, AcceptedIds(100))


def _report(period: str = "2024-H1", event_id: uuid.UUID | None = None) -> Report:
    return make_report("province:79", flag(True), period=period, event_id=event_id)


def _items(*reports: Report) -> list[Item]:
    return [Item(index, report) for index, report in enumerate(reports)]


async def _until_in_flight(producer: FakeProducer, batches: int) -> None:
    async with asyncio.timeout(5):
        while producer.in_flight < batches:  # noqa: ASYNC110 - the fake producer offers no event
            await asyncio.sleep(0)


async def test_a_report_is_accepted_once_kafka_has_it_and_then_is_a_duplicate(
    publisher: Publisher, producer: FakeProducer, store: FakeStore
) -> None:
    sent = _report()
    first, again = _items(sent), _items(sent)
    await publisher.publish(first)
    await publisher.publish(again)
    await publisher.records.drain()
    assert [item.status for item in first + again] == ["accepted", "duplicate"]
    assert producer.values() == [sent.__pydantic_serializer__.to_json(sent)]
    assert store.recorded == [[("province:79", sent.event_id)]]


async def test_the_same_event_in_two_requests_at_once_is_published_once(
    publisher: Publisher, producer: FakeProducer
) -> None:
    sent = _report()
    producer.hold()
    first = asyncio.create_task(publisher.publish(_items(sent)))
    await _until_in_flight(producer, 1)
    second_items = _items(sent)
    second = asyncio.create_task(publisher.publish(second_items))
    await asyncio.sleep(0.01)
    assert not second.done(), "the second request waits for the first one's send"
    assert set(publisher.in_flight) == {("province:79", sent.event_id)}
    producer.release()
    await asyncio.gather(first, second)
    assert second_items[0].status == "duplicate"
    assert len(producer.produced) == 1
    assert publisher.in_flight == {}


async def test_a_request_waiting_on_a_send_that_failed_sends_the_report_itself(
    publisher: Publisher, producer: FakeProducer
) -> None:
    sent = _report()
    producer.hold()
    first_items, second_items = _items(sent), _items(sent)
    first = asyncio.create_task(publisher.publish(first_items))
    await _until_in_flight(producer, 1)
    second = asyncio.create_task(publisher.publish(second_items))
    await asyncio.sleep(0.01)
    producer.failing.add(producer.partition_of(b"emc_connection|2024-H1"))
    producer.release()  # the first send fails; the second request sends again, held
    producer.hold()
    await _until_in_flight(producer, 1)
    producer.failing.clear()
    producer.release()
    await asyncio.gather(first, second)
    assert (first_items[0].status, second_items[0].status) == ("unavailable", "accepted")
    assert len(producer.produced) == 1


async def test_an_event_twice_in_one_batch_is_published_once(
    publisher: Publisher, producer: FakeProducer
) -> None:
    sent, other = _report(), _report(period="2024-H2")
    items = _items(sent, other, sent)
    await publisher.publish(items)
    assert [item.status for item in items] == ["accepted", "accepted", "duplicate"]
    assert len(producer.produced) == 2


async def test_ids_accepted_before_this_process_are_duplicates(
    publisher: Publisher, producer: FakeProducer, store: FakeStore
) -> None:
    sent = _report()
    store.accepted_keys.add(("province:79", sent.event_id))
    items = _items(sent)
    await publisher.publish(items)
    assert items[0].status == "duplicate"
    assert producer.produced == []


async def test_event_ids_are_unique_per_reporter(publisher: Publisher, producer: FakeProducer) -> None:
    event_id = uuid.uuid4()
    mine = make_report("province:79", flag(True), event_id=event_id)
    theirs = make_report("province:01", flag(True), event_id=event_id)
    items = _items(mine, theirs)
    await publisher.publish(items)
    assert [item.status for item in items] == ["accepted", "accepted"]
    assert len(producer.produced) == 2


async def test_refused_reports_are_not_published(publisher: Publisher, producer: FakeProducer) -> None:
    items = [
        Item(0, _report(), Problem("unknown-indicator", "t", "d")),
        Item(1, None, Problem("x", "t", "d")),
    ]
    await publisher.publish(items)
    assert [item.status for item in items] == ["rejected", "rejected"]
    assert producer.produced == []


async def test_postgresql_down_still_publishes_relying_on_memory(
    publisher: Publisher, producer: FakeProducer, store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.down = True
    sent = _report()
    first, again = _items(sent), _items(sent)
    await publisher.publish(first)
    await publisher.publish(again)
    await publisher.records.drain()
    assert [item.status for item in first + again] == ["accepted", "duplicate"]
    assert len(producer.produced) == 1
    assert "cannot read accepted event ids (ConnectionRefusedError); relying on memory" in caplog.text
    assert "cannot record 1 accepted event ids (ConnectionRefusedError)" in caplog.text


async def test_without_kafka_every_report_is_unavailable_and_nothing_recorded(
    publisher: Publisher, kafka: FakeKafkaLink, store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    kafka.disconnect()
    items = _items(_report(), _report(period="2024-H2"))
    await publisher.publish(items)
    await publisher.records.drain()
    assert [item.status for item in items] == ["unavailable", "unavailable"]
    assert store.recorded == []
    assert (
        "Kafka did not acknowledge 2 report(s): ConnectionError('not connected to Kafka yet')" in caplog.text
    )


class SlowStore(FakeStore):
    """A PostgreSQL whose writes of accepted ids wait until ``writable`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.writable = asyncio.Event()

    async def record(self, keys: Iterable[EventKey]) -> None:
        await self.writable.wait()
        await super().record(keys)


async def test_the_answer_waits_for_kafka_not_for_the_durable_record(producer: FakeProducer) -> None:
    store = SlowStore()
    publisher = Publisher(
        ReportProducer(FakeKafkaLink(producer), IngestMetrics(), timeout_s=0.2), store, AcceptedIds(100)
    )
    sent = _report()
    items = _items(sent)
    async with asyncio.timeout(5):
        await publisher.publish(items)
    assert items[0].status == "accepted"
    assert (store.recorded, publisher.records.pending) == ([], 1)
    resent = _items(sent)
    await publisher.publish(resent)
    assert resent[0].status == "duplicate", "known from memory while its write is behind"
    store.writable.set()
    await publisher.records.drain()
    assert (store.recorded, publisher.records.pending) == ([[("province:79", sent.event_id)]], 0)


async def test_past_the_limit_of_writes_behind_a_request_writes_its_own() -> None:
    store = SlowStore()
    records = RecordsBehind(store, limit=2)
    await records.record([("province:79", uuid.uuid4()), ("province:80", uuid.uuid4())])
    assert records.pending == 2
    third = asyncio.create_task(records.record([("province:81", uuid.uuid4())]))
    await asyncio.sleep(0.01)
    assert not third.done(), "the request waits for its own write"
    store.writable.set()
    async with asyncio.timeout(5):
        await third
        await records.drain()
    assert sorted(len(keys) for keys in store.recorded) == [1, 2]
    assert records.pending == 0


async def test_a_write_behind_that_fails_is_logged_and_given_up(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore()
    store.down = True
    records = RecordsBehind(store)
    await records.record([("province:79", uuid.uuid4())])
    await records.drain()
    assert records.pending == 0
    assert "cannot record 1 accepted event ids (ConnectionRefusedError)" in caplog.text


async def test_a_shutdown_gives_up_writes_postgresql_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = RecordsBehind(SlowStore())
    await records.record([("province:79", uuid.uuid4())])
    async with asyncio.timeout(5):
        await records.drain(timeout_s=0.05)
    assert records.pending == 0
    assert "gave up writing 1 accepted event ids: PostgreSQL did not answer within 0.05 s" in caplog.text

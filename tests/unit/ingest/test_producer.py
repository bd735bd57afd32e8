"""ReportProducer: a lone report through ``send``, more as a record batch per partition; what Kafka
acknowledged in time, and what the partitions' health makes of it."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaError

from dxpulse.kafka.topics import REPORTS
from schemas import Report
from schemas.events import report_key
from services.ingest.metrics import IngestMetrics
from services.ingest.producer import ReportProducer
from tests.unit.conftest import flag, make_report
from tests.unit.ingest.fakes import FakeKafkaLink
from tests.unit.ingest.support import metric

PERIODS = ("2021-H1", "2021-H2", "2022-H1", "2022-H2", "2023-H1", "2023-H2", "2024-H1", "2024-H2")


def _reports(*periods: str) -> list[Report]:
    return [make_report("province:79", flag(True), period=period) for period in periods]


def _key(report: Report) -> bytes:
    return report_key(report.indicator, report.period).encode()


async def test_a_lone_report_goes_through_send_and_is_timed() -> None:
    kafka, metrics = FakeKafkaLink(), IngestMetrics()
    [sent] = _reports("2024-H1")
    assert await ReportProducer(kafka, metrics, timeout_s=1).produce([sent]) == [None]
    [produced] = kafka.fake.produced
    assert (produced.topic, produced.key) == (REPORTS, b"emc_connection|2024-H1")
    assert produced.partition == kafka.fake.partition_of(produced.key)
    assert produced.value == sent.__pydantic_serializer__.to_json(sent)
    await asyncio.sleep(0)  # the acknowledgement's callback
    assert metric(metrics.exposition().decode(), "dxpulse_ingest_produce_seconds_count") == 1


async def test_many_reports_go_as_one_batch_per_partition_on_their_keys_partitions_in_order() -> None:
    kafka, metrics = FakeKafkaLink(), IngestMetrics()
    reports = _reports(*PERIODS, *PERIODS)
    assert await ReportProducer(kafka, metrics, timeout_s=1).produce(reports) == [None] * len(reports)
    partitions = {kafka.fake.partition_of(_key(report)) for report in reports}
    assert kafka.fake.handed_batches == len(partitions) > 1
    for produced in kafka.fake.produced:
        assert produced.partition == kafka.fake.partition_of(produced.key)
    for period in PERIODS:
        mine = [p.value for p in kafka.fake.produced if p.key == f"emc_connection|{period}".encode()]
        assert mine == [r.__pydantic_serializer__.to_json(r) for r in reports if r.period == period]
    await asyncio.sleep(0)
    assert metric(metrics.exposition().decode(), "dxpulse_ingest_produce_seconds_count") == len(reports)


async def test_a_failing_partition_fails_its_reports_only_and_makes_the_ingest_not_ready() -> None:
    kafka = FakeKafkaLink()
    reports = _reports(*PERIODS)
    failing = kafka.fake.partition_of(_key(reports[0]))
    kafka.fake.failing.add(failing)
    errors = await ReportProducer(kafka, IngestMetrics(), timeout_s=1).produce(reports)
    for report, error in zip(reports, errors, strict=True):
        if kafka.fake.partition_of(_key(report)) == failing:
            assert isinstance(error, KafkaError)
        else:
            assert error is None
    assert kafka.not_ready() == {
        "status": "not ready",
        "reason": "Kafka does not acknowledge reports sent to these partitions",
        "topic": REPORTS,
        "failing_partitions": [failing],
    }
    assert kafka.replacing, "a batch that failed for good asks for a new producer"


async def test_a_refused_hand_over_is_the_reports_error() -> None:
    kafka = FakeKafkaLink()
    [sent] = _reports("2024-H1")
    kafka.fake.refusing.add(kafka.fake.partition_of(_key(sent)))
    [error] = await ReportProducer(kafka, IngestMetrics(), timeout_s=1).produce([sent])
    assert isinstance(error, KafkaError)
    assert kafka.fake.produced == []


async def test_reports_not_acknowledged_in_time_time_out() -> None:
    kafka = FakeKafkaLink()
    kafka.fake.hold()
    errors = await ReportProducer(kafka, IngestMetrics(), timeout_s=0.05).produce(
        _reports("2024-H1", "2024-H2")
    )
    assert [repr(error) for error in errors] == ["TimeoutError('no acks=all within 0.05 s')"] * 2


async def test_without_a_producer_nothing_is_handed_over() -> None:
    kafka = FakeKafkaLink()
    kafka.disconnect()
    [error] = await ReportProducer(kafka, IngestMetrics(), timeout_s=1).produce(_reports("2024-H1"))
    assert repr(error) == "ConnectionError('not connected to Kafka yet')"
    assert kafka.not_ready() == {
        "status": "waiting for Kafka",
        "reason": "not connected to Kafka at fake-kafka:9092",
    }

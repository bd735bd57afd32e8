"""``POST /v1/reports``: 202 once Kafka has the report, 200 for a duplicate, a problem otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.unit.ingest.fakes import FakeKafkaLink, FakeProducer
from tests.unit.ingest.support import auth, key_of, metric, report, slug


async def test_accepted_then_duplicate_and_published_once(
    client: httpx.AsyncClient, producer: FakeProducer
) -> None:
    sent = report()
    first = await client.post("/v1/reports", json=sent, headers=auth())
    again = await client.post("/v1/reports", json=sent, headers=auth())
    assert (first.status_code, first.json()) == (202, {"status": "accepted", "event_id": sent["event_id"]})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate", "event_id": sent["event_id"]})
    assert [p.key for p in producer.produced] == [key_of(sent)]
    metrics = (await client.get("/metrics")).text
    assert metric(metrics, "dxpulse_ingest_reports_total", outcome="accepted", group="provinces") == 1
    assert metric(metrics, "dxpulse_ingest_reports_total", outcome="duplicate", group="provinces") == 1


async def test_the_same_event_sent_twice_at_once_is_accepted_once(
    client: httpx.AsyncClient, producer: FakeProducer
) -> None:
    sent = report()
    producer.hold()
    first = asyncio.create_task(client.post("/v1/reports", json=sent, headers=auth()))
    second = asyncio.create_task(client.post("/v1/reports", json=sent, headers=auth()))
    async with asyncio.timeout(5):
        while producer.in_flight < 1:  # noqa: ASYNC110 - the fake producer offers no event
            await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert not first.done()
    assert not second.done()
    producer.release()
    answers = sorted([(await first).status_code, (await second).status_code])
    assert answers == [200, 202]
    assert len(producer.produced) == 1


REFUSED: list[tuple[str, int, str, dict[str, Any]]] = [
    ("forbidden-reporter", 403, "token-79", report("province:01")),
    ("unknown-indicator", 422, "token-79", report(indicator="no_such_indicator")),
    ("unknown-reporter", 422, "token-99", report("province:99")),
    ("wrong-value-kind", 422, "token-79", report(value={"kind": "ratio", "numerator": 1, "denominator": 2})),
    ("future-period", 422, "token-79", report(period="2099-H1")),
    ("invalid-report", 422, "token-79", report(event_id="not-a-uuid")),
    ("unsupported-schema-version", 422, "token-79", report(schema_version=2)),
]


@pytest.mark.parametrize(("expected", "status", "token", "sent"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_a_refused_report_is_a_problem_naming_what_to_fix(
    client: httpx.AsyncClient,
    producer: FakeProducer,
    expected: str,
    status: int,
    token: str,
    sent: dict[str, Any],
) -> None:
    response = await client.post("/v1/reports", json=sent, headers=auth(token))
    assert (response.status_code, slug(response)) == (status, expected)
    assert response.json()["detail"]
    assert producer.produced == []
    metrics = (await client.get("/metrics")).text
    assert metric(metrics, "dxpulse_ingest_reports_total", outcome="rejected", reason=expected) == 1


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/reports", content=b'{"event_id": ', headers=auth())
    assert (response.status_code, slug(response)) == (400, "malformed-json")


async def test_kafka_not_acknowledging_is_503_kafka_unavailable_and_a_resend_goes_through(
    client: httpx.AsyncClient, producer: FakeProducer
) -> None:
    sent = report()
    producer.failing.add(producer.partition_of(key_of(sent)))
    refused = await client.post("/v1/reports", json=sent, headers=auth())
    assert (refused.status_code, slug(refused)) == (503, "kafka-unavailable")
    assert refused.headers["retry-after"] == "5"
    producer.failing.clear()
    assert (await client.post("/v1/reports", json=sent, headers=auth())).status_code == 202
    metrics = (await client.get("/metrics")).text
    assert metric(metrics, "dxpulse_ingest_reports_total", reason="kafka-unavailable", group="provinces") == 1


async def test_without_kafka_it_is_503_at_once(client: httpx.AsyncClient, kafka: FakeKafkaLink) -> None:
    kafka.disconnect()
    refused = await client.post("/v1/reports", json=report(), headers=auth())
    assert (refused.status_code, slug(refused)) == (503, "kafka-unavailable")


async def test_kafka_too_slow_is_503(client: httpx.AsyncClient, producer: FakeProducer) -> None:
    producer.hold()
    refused = await client.post("/v1/reports", json=report(), headers=auth())
    assert (refused.status_code, slug(refused)) == (503, "kafka-unavailable")
    assert producer.produced == []

"""Liveness, readiness (Kafka connected, every partition acknowledging), the catalog and the metrics."""

from __future__ import annotations

import httpx

from dxpulse.kafka.topics import REPORTS
from dxpulse.monitoring import CONTRACT, ServiceMetrics
from tests.unit.ingest.fakes import FakeKafkaLink, FakeProducer
from tests.unit.ingest.support import auth, key_of, report


async def test_healthz_answers_whatever_kafka_does(client: httpx.AsyncClient, kafka: FakeKafkaLink) -> None:
    kafka.disconnect()
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_names_why_not_ready(
    client: httpx.AsyncClient, kafka: FakeKafkaLink, producer: FakeProducer
) -> None:
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    sent = report()
    producer.failing.add(producer.partition_of(key_of(sent)))
    assert (await client.post("/v1/reports", json=sent, headers=auth())).status_code == 503
    failing = await client.get("/readyz")
    assert failing.status_code == 503
    assert failing.headers["retry-after"] == "5"
    assert failing.json() == {
        "status": "not ready",
        "reason": "Kafka does not acknowledge reports sent to these partitions",
        "topic": REPORTS,
        "failing_partitions": [producer.partition_of(key_of(sent))],
    }
    kafka.disconnect()
    waiting = await client.get("/readyz")
    assert (waiting.status_code, waiting.json()) == (
        503,
        {"status": "waiting for Kafka", "reason": "not connected to Kafka at fake-kafka:9092"},
    )


async def test_indicators_lists_the_catalog(client: httpx.AsyncClient) -> None:
    indicators = (await client.get("/v1/indicators")).json()
    assert "emc_connection" in {indicator["id"] for indicator in indicators}
    assert {"id", "kind", "period_type", "groups"} <= set(indicators[0])


async def test_metrics_are_the_contracts_ingest_families(client: httpx.AsyncClient) -> None:
    await client.post("/v1/batches", json={"reports": [report()]}, headers=auth())
    response = await client.get("/metrics")
    assert response.headers["content-type"] == ServiceMetrics.CONTENT_TYPE
    exported = {line.split("{")[0].split()[0] for line in response.text.splitlines() if line[0] != "#"}
    for name in (name for name, services in CONTRACT.items() if "ingest" in services):
        assert {name, f"{name}_count"} & exported, name

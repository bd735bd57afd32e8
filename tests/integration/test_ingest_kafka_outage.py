"""Kafka down: the ingest starts anyway, answers 503 and counts nothing accepted; Kafka back: the same
reports go through, published once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import running_stack
from tests.integration.ingest_support import (
    auth,
    ingest_client,
    ingest_settings,
    metric_value,
    new_token,
    published_event_ids,
    report,
)

pytestmark = pytest.mark.integration


async def _send_until_accepted(client: httpx.AsyncClient, body: dict[str, object], token: str) -> int:
    """Resend (as a client honouring Retry-After would, but faster) until a 2xx; returns the status."""
    deadline = time.monotonic() + 180
    while True:
        response = await client.post("/v1/reports", json=body, headers=auth(token))
        if response.status_code < 300:
            return response.status_code
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, "Kafka came back but reports are still refused"
        await asyncio.sleep(1)


async def test_kafka_outage_gives_503_then_the_same_reports_go_through(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack_settings:
        stack = Stack(stack_settings, report=lambda _: None)
        token = await new_token(stack_settings.database_url, "province:79")
        settings = ingest_settings(stack_settings, produce_timeout_s=3.0)
        before, during, after_start = report(), report(), report()

        # Running with Kafka, then Kafka stops and comes back.
        async with ingest_client(settings) as client:
            assert (await client.post("/v1/reports", json=before, headers=auth(token))).status_code == 202
            stack.stop_kafka()
            down = await client.post("/v1/reports", json=during, headers=auth(token))
            batch = await client.post("/v1/batches", json={"reports": [during]}, headers=auth(token))
            metrics = (await client.get("/metrics")).text
            assert down.status_code == 503, down.text
            assert down.headers["content-type"].startswith("application/problem+json")
            assert down.json()["type"].endswith("/kafka-unavailable")
            assert int(down.headers["retry-after"]) >= 1
            assert batch.status_code == 503
            assert batch.json()["results"][0]["status"] == "unavailable"
            assert metric_value(metrics, "dxpulse_ingest_reports_total", outcome="accepted") == 1
            assert metric_value(metrics, "dxpulse_ingest_reports_total", reason="kafka-unavailable") == 2
            stack.start_kafka()
            assert await _send_until_accepted(client, during, token) == 202

        # Starting while Kafka is down: the API is up (healthz) but not ready, and answers 503.
        stack.stop_kafka()
        async with ingest_client(settings, wait_ready=False) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
            refused = await client.post("/v1/reports", json=after_start, headers=auth(token))
            assert refused.status_code == 503, refused.text
            assert refused.json()["type"].endswith("/kafka-unavailable")
            stack.start_kafka()
            assert await _send_until_accepted(client, after_start, token) == 202
            again = await client.post("/v1/reports", json=during, headers=auth(token))
            assert again.json()["status"] == "duplicate"

        published = await published_event_ids(stack_settings.kafka_bootstrap)
        for sent in (before, during, after_start):
            assert published.count(str(sent["event_id"])) >= 1
        assert published.count(str(before["event_id"])) == 1

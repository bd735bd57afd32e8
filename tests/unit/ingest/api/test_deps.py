"""The report routes' sender: authenticated, its body read within the limit, its rate limit spent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.ingest.app import create_app
from tests.unit.conftest import NOW
from tests.unit.ingest.conftest import offline_settings
from tests.unit.ingest.fakes import FakeKafkaLink, FakeStore
from tests.unit.ingest.support import auth, metric, report, slug


@pytest.mark.parametrize("path", ["/v1/reports", "/v1/batches"])
@pytest.mark.parametrize(
    "headers",
    [{}, auth("no-such-token"), {"authorization": "Basic token-79"}, {"authorization": "Bearer"}],
    ids=["none", "unknown", "basic", "empty"],
)
async def test_without_a_live_token_it_is_401_with_www_authenticate(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await client.post(path, json={"reports": []}, headers=headers)
    assert (response.status_code, slug(response)) == (401, "unauthorized")
    assert response.headers["www-authenticate"] == 'Bearer realm="dxpulse"'
    metrics = (await client.get("/metrics")).text
    assert metric(metrics, "dxpulse_ingest_reports_total", reason="unauthorized", group="unknown") == 1


async def test_a_revoked_token_works_until_its_cache_entry_expires(
    client: httpx.AsyncClient, store: FakeStore
) -> None:
    assert (await client.post("/v1/reports", json=report(), headers=auth())).status_code == 202
    del store.tokens["token-79"]
    assert (await client.post("/v1/reports", json=report(), headers=auth())).status_code == 202
    assert store.lookups == 1, "looked up once within DXPULSE_TOKEN_CACHE_TTL_S"


async def test_postgresql_down_is_503_store_unavailable_with_retry_after(
    client: httpx.AsyncClient, store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.down = True
    response = await client.post("/v1/reports", json=report(), headers=auth())
    assert (response.status_code, slug(response)) == (503, "store-unavailable")
    assert response.headers["retry-after"] == "5"
    assert "token store unavailable: ConnectionRefusedError" in caplog.text
    assert "token-79" not in caplog.text


@pytest.fixture
async def small(kafka: FakeKafkaLink, store: FakeStore) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a body limit of 2,000 bytes and a bucket of 3 reports refilled every 100 s."""
    settings = offline_settings(
        max_body_bytes=2000, rate_limit_per_s=0.01, rate_limit_burst=3, max_batch_items=2
    )
    app: FastAPI = create_app(settings, clock=lambda: NOW, kafka=kafka, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as http:
        yield http


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(small: httpx.AsyncClient) -> None:
    read: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for n in range(10):
            read.append(n)
            yield b"x" * 1000

    declared = await small.post("/v1/reports", content=b"x" * 2001, headers=auth())
    streamed = await small.post("/v1/batches", content=chunks(), headers=auth())
    for response in (declared, streamed):
        assert (response.status_code, slug(response)) == (413, "body-too-large")
        assert response.json()["detail"] == "the body is over the limit of 2000 bytes"
    assert len(read) < 10, "the rest of a body over the limit is not read"
    metrics = (await small.get("/metrics")).text
    assert metric(metrics, "dxpulse_ingest_reports_total", reason="body-too-large", group="provinces") == 2


async def test_past_the_burst_it_is_429_with_retry_after_and_a_malformed_body_costs_nothing(
    small: httpx.AsyncClient,
) -> None:
    malformed = await small.post("/v1/reports", content=b"{", headers=auth())
    assert (malformed.status_code, slug(malformed)) == (400, "malformed-json")
    answers = [await small.post("/v1/reports", json=report(), headers=auth()) for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert slug(answers[-1]) == "rate-limited"
    assert answers[-1].headers["retry-after"] == "100"
    batch = await small.post("/v1/batches", json={"reports": [report(), report()]}, headers=auth())
    assert (batch.status_code, slug(batch)) == (429, "rate-limited")
    other = await small.post("/v1/reports", json=report("province:80"), headers=auth("token-80"))
    assert other.status_code == 202, "each reporter has a bucket of its own"
    metrics = (await small.get("/metrics")).text
    assert metric(metrics, "dxpulse_ingest_reports_total", reason="rate-limited") == 3  # 1, then a batch of 2


async def test_a_batch_spends_one_token_per_report(small: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {"reports": [report(), report(period="2024-H2")]}
    assert (await small.post("/v1/batches", json=body, headers=auth())).status_code == 200
    assert (await small.post("/v1/reports", json=report(), headers=auth())).status_code == 202
    assert (await small.post("/v1/reports", json=report(), headers=auth())).status_code == 429


async def test_an_empty_batch_spends_nothing(small: httpx.AsyncClient) -> None:
    for _ in range(5):
        answer = await small.post("/v1/batches", json={"reports": []}, headers=auth())
        assert answer.json() == {"results": [], "accepted": 0, "duplicate": 0, "rejected": 0}
    assert (await small.post("/v1/reports", json=report(), headers=auth())).status_code == 202

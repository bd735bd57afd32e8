"""The ingest app on a fake Kafka and a fake PostgreSQL, with a fixed clock: no servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.unit.conftest import NOW
from tests.unit.ingest.fakes import FakeKafkaLink, FakeProducer, FakeStore

TOKENS = {
    "token-79": "province:79",
    "token-80": "province:80",
    "token-national": "national:*",
    "token-99": "province:99",
}
"""Live tokens of the fake store, by the subject they were issued for; province:99 is in no registry."""


def offline_settings(**overrides: Any) -> IngestSettings:
    """Settings whose Kafka and PostgreSQL cannot be reached: a test that touches them fails fast."""
    values: dict[str, Any] = {
        "kafka_bootstrap": "127.0.0.1:9",
        "database_url": "postgresql://x:y@127.0.0.1:9/z",
        "produce_timeout_s": 0.2,
        **overrides,
    }
    return IngestSettings(**values)


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer(partitions=6)


@pytest.fixture
def kafka(producer: FakeProducer) -> FakeKafkaLink:
    return FakeKafkaLink(producer, request_timeout_s=0.2)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(TOKENS)


@pytest.fixture
def settings() -> IngestSettings:
    return offline_settings()


@pytest.fixture
def app(settings: IngestSettings, kafka: FakeKafkaLink, store: FakeStore) -> FastAPI:
    return create_app(settings, clock=lambda: NOW, kafka=kafka, store=store)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to ``app`` in-process (the app's lifespan does not run: nothing to connect)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        yield http

"""Helpers for the ingest tests: the app in-process on a real Kafka and PostgreSQL, tokens, reports."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from dxpulse.kafka.subscriber import read_topic
from dxpulse.kafka.topics import REPORTS
from dxpulse.postgres.token_store import create_token
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.testing import free_ports
from schemas import Report
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings


def ingest_settings(stack: StackSettings, **overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap": stack.kafka_bootstrap,
        "database_url": stack.database_url,
        "token_cache_ttl_s": 0.0,
        "kafka_retry_interval_s": 0.5,
        **overrides,
    }
    return IngestSettings(**values)


@asynccontextmanager
async def ingest_client(
    settings: IngestSettings, *, wait_ready: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The ingest app with its lifespan running, and an HTTP client talking to it in-process."""
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            if wait_ready:
                await wait_for_status(client, "/readyz", 200)
            yield client


@contextmanager
def serving(settings: IngestSettings) -> Iterator[str]:
    """The ingest app served over HTTP by uvicorn in a thread of this process, once ready: its URL.

    For what needs a real socket (schemathesis, ``dxpulse send``); ``ingest_client`` needs none.
    """
    port = free_ports(1)[0]
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the ingest server did not become ready"
            time.sleep(0.5)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def wait_for_status(
    client: httpx.AsyncClient, path: str, status: int, timeout_s: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while (await client.get(path)).status_code != status:
        assert time.monotonic() < deadline, f"{path} did not answer {status} in {timeout_s} s"
        await asyncio.sleep(0.5)


async def new_token(dsn: str, subject: str, label: str = "test") -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return (await create_token(conn, subject, label)).secret
    finally:
        await conn.close()


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def report(
    reporter: str = "province:79",
    indicator: str = "emc_connection",
    period: str = "2024-H1",
    value: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A report as JSON data, valid unless told otherwise."""
    return {
        "event_id": str(uuid.uuid4()),
        "reporter": reporter,
        "indicator": indicator,
        "period": period,
        "observed_at": datetime(2024, 6, 30, 10, tzinfo=UTC).isoformat(),
        "value": value if value is not None else {"kind": "flag", "value": True},
        **fields,
    }


async def published_event_ids(bootstrap: str) -> list[str]:
    """Event ids of every report on the raw report topic, in order per partition."""
    events = await read_topic(bootstrap, REPORTS, Report.model_validate_json)
    return [str(event.event_id) for _, event in events]


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith((name + "{", name + " ")):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total

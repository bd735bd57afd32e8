"""Schemathesis against the ingest's OpenAPI document: a real server on a real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from dxpulse.stack.testing import free_ports, running_stack
from services.ingest.app import create_app
from tests.integration.ingest_support import auth, ingest_settings, new_token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ingest_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, token of province:79) of an ingest server running in a thread of this process."""
    with running_stack(Path(tmp_path_factory.mktemp("schemathesis"))) as stack:
        token = asyncio.run(new_token(stack.database_url, "province:79"))
        # A generous rate limit: this run is about server errors, not about 429s.
        app = create_app(ingest_settings(stack, rate_limit_per_s=1e6, rate_limit_burst=1e6))
        port = free_ports(1)[0]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the ingest server did not become ready"
            time.sleep(0.5)
        try:
            yield url, token
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def test_no_answer_is_a_server_error(ingest_api: tuple[str, str]) -> None:
    """Generated requests to every documented operation, with a valid token and without one, never
    get a 5xx (Kafka is up and real, so a 2xx was acknowledged).

    Hypothesis drives schemathesis' strategies directly: schemathesis' lazy pytest integration
    (``from_fixture``) sets ``Node._nodeid``, which pytest 9.2 no longer has.
    """
    url, token = ingest_api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the OpenAPI document has operations schemathesis cannot read"
    assert {(op.method.upper(), op.path) for op in operations} >= {
        ("POST", "/v1/reports"),
        ("POST", "/v1/batches"),
    }
    answered: Counter[int] = Counter()

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: Any) -> None:
            for headers in (auth(token), {}):
                response = case.call(base_url=url, headers=headers)
                answered[response.status_code] += 1
                assert response.status_code < 500, (case.path, response.status_code, response.text[:500])

        call()
    # The run reached past authentication: some requests were judged on their content.
    assert answered[401]
    assert answered[422] or answered[403] or answered[202]

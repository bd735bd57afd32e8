"""Schemathesis against the ingest's OpenAPI document: a real server on a real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from dxpulse.stack.testing import running_stack
from tests.integration.ingest_support import auth, ingest_settings, new_token, serving

pytestmark = pytest.mark.integration

SCHEMA_REFUSALS = ("malformed-json", "invalid-report", "invalid-batch")
"""What a body the document calls valid must never be answered."""


@pytest.fixture(scope="module")
def ingest_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, token of province:79) of an ingest server running in a thread of this process."""
    with running_stack(Path(tmp_path_factory.mktemp("schemathesis"))) as stack:
        token = asyncio.run(new_token(stack.database_url, "province:79"))
        # A generous rate limit: this run is about server errors, not about 429s.
        with serving(ingest_settings(stack, rate_limit_per_s=1e6, rate_limit_burst=1e6)) as url:
            yield url, token


def test_no_answer_is_a_server_error(ingest_api: tuple[str, str]) -> None:
    """Generated requests to every documented operation, with a valid token and without one, never
    get a 5xx (Kafka is up and real, so a 2xx was acknowledged), nor do bodies it forbids (negative
    mode). A body the document allows is never refused as malformed (the document is the contract).

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
    answered: Counter[tuple[GenerationMode, int]] = Counter()
    # Only operations with a body can be called in a way the document forbids.
    runs = [(GenerationMode.POSITIVE, op) for op in operations]
    runs += [(GenerationMode.NEGATIVE, op) for op in operations if op.method.upper() == "POST"]

    def explore(operation: Any, mode: GenerationMode) -> None:
        @given(case=operation.as_strategy(mode))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: Any) -> None:
            for headers in (auth(token), {}):
                response = case.call(base_url=url, headers=headers)
                answered[mode, response.status_code] += 1
                assert response.status_code < 500, (case.path, response.status_code, response.text[:500])
                if mode is GenerationMode.POSITIVE and headers and response.status_code >= 400:
                    slug = str(response.json().get("type", "")).rsplit("/", 1)[-1]
                    assert slug not in SCHEMA_REFUSALS, (case.path, case.body, response.text[:500])

        call()

    for mode, operation in runs:
        explore(operation, mode)
    # The run reached past authentication: some requests were judged on their content.
    assert answered[GenerationMode.POSITIVE, 401]
    assert answered[GenerationMode.POSITIVE, 403] or answered[GenerationMode.POSITIVE, 202]
    assert answered[GenerationMode.NEGATIVE, 422] or answered[GenerationMode.NEGATIVE, 400]

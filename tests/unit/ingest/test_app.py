"""The ingest app as ``create_app`` wires it: its document, refusals needing no Kafka, its lifespan."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Match

from services.ingest.api.routes import reports
from services.ingest.app import create_app
from tests.unit.conftest import NOW
from tests.unit.ingest.conftest import offline_settings
from tests.unit.ingest.fakes import FakeKafkaLink, FakeStore


def test_openapi_documents_every_status_with_problem_json() -> None:
    document = create_app(offline_settings()).openapi()
    single = document["paths"]["/v1/reports"]["post"]
    batch = document["paths"]["/v1/batches"]["post"]
    assert set(single["responses"]) == {"200", "202", "400", "401", "403", "413", "422", "429", "503"}
    assert set(batch["responses"]) == {"200", "400", "401", "413", "422", "429", "503"}
    for status in ("400", "401", "413", "422", "429", "503"):
        assert "application/problem+json" in single["responses"][status]["content"]
    assert "Retry-After" in single["responses"]["503"]["headers"]
    schemas = document["components"]["schemas"]
    assert single["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Report"
    }
    assert schemas["BatchRequest"]["properties"]["reports"]["maxItems"] == 500
    assert {"Report", "ProblemDetails", "BatchResult", "BatchUnavailable"} <= set(schemas)
    assert single["security"] == [{"bearer": []}]
    # The routes read their bodies themselves: the document names no parameter FastAPI would check.
    assert not any(
        "parameters" in operation for item in document["paths"].values() for operation in item.values()
    )


def test_every_route_is_the_apps_own_in_the_documents_order() -> None:
    routes = [route for route in create_app(offline_settings()).routes if isinstance(route, APIRoute)]
    assert [route.path for route in routes] == [
        "/v1/reports",
        "/v1/batches",
        "/v1/indicators",
        "/healthz",
        "/readyz",
        "/metrics",
    ]


async def test_no_token_is_401_with_www_authenticate_and_problem_json(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = httpx.ASGITransport(app=create_app(offline_settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        for path in ("/v1/reports", "/v1/batches"):
            response = await client.post(path, json={})
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer realm="dxpulse"'
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "https://dxpulse.dev/problems/unauthorized"
        token = "dxp_0123456789ab_NeverLoggedEvenWhenTheStoreIsDown"
        unavailable = await client.post("/v1/reports", json={}, headers={"authorization": f"Bearer {token}"})
        assert unavailable.status_code == 503
        assert unavailable.json()["type"] == "https://dxpulse.dev/problems/store-unavailable"
        assert unavailable.headers["retry-after"] == "5"
    # The store's failure is logged, the token it was asked about is not.
    assert "token store unavailable" in caplog.text
    assert "NeverLogged" not in caplog.text


async def test_the_lifespan_connects_kafka_prunes_old_ids_and_closes_everything() -> None:
    kafka, store = FakeKafkaLink(), FakeStore()
    app = create_app(offline_settings(prune_interval_s=3600), clock=lambda: NOW, kafka=kafka, store=store)
    async with app.router.lifespan_context(app):
        assert kafka.started
        async with asyncio.timeout(5):
            while not store.pruned_before:  # noqa: ASYNC110 - the pruner is a task of the lifespan's own
                await asyncio.sleep(0.01)
        assert not kafka.stopped
        assert not store.closed
    # At start, ids accepted more than the 90 days' retention ago.
    assert [(NOW - before).days for before in store.pruned_before] == [90]
    assert kafka.stopped
    assert store.closed


def test_a_single_report_is_served_by_the_plain_route_its_api_route_documents() -> None:
    app = create_app(offline_settings())
    scope = {"type": "http", "method": "POST", "path": "/v1/reports", "root_path": ""}
    matching = [route for route in app.router.routes if route.matches(scope)[0] is Match.FULL]
    assert matching[0] is reports.served
    [documenting] = [route for route in matching if isinstance(route, APIRoute)]
    assert documenting.endpoint is reports.served.endpoint

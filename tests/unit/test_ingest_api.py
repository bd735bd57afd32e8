"""The ingest API without servers: its OpenAPI document and refusals that need no database."""

from __future__ import annotations

import logging

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings

# Unreachable on purpose: these tests must not depend on Kafka or PostgreSQL.
OFFLINE = IngestSettings(kafka_bootstrap="127.0.0.1:9", database_url="postgresql://x:y@127.0.0.1:9/z")


def test_openapi_documents_every_status_with_problem_json() -> None:
    document = create_app(OFFLINE).openapi()
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


async def test_no_token_is_401_with_www_authenticate_and_problem_json(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = httpx.ASGITransport(app=create_app(OFFLINE))
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

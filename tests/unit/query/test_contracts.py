"""The query API serves the AsyncAPI document and the JSON Schemas, byte for byte as committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from dxpulse.kafka.contract import ASYNCAPI_FILE
from services.query.app import create_app
from services.query.settings import QuerySettings

JSON_DIR = Path(__file__).resolve().parents[3] / "schemas" / "json"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The query API with no token and no database: the contract needs neither."""
    transport = httpx.ASGITransport(app=create_app(QuerySettings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        yield client


async def test_every_committed_document_is_served_as_committed(http: httpx.AsyncClient) -> None:
    listing = (await http.get("/v1/contracts")).json()
    assert listing["asyncapi"] == f"/v1/contracts/{ASYNCAPI_FILE}"
    committed = sorted(path.name for path in JSON_DIR.glob("*.json"))
    assert [entry["name"] for entry in listing["files"]] == committed
    for entry in listing["files"]:
        answer = await http.get(entry["url"])
        assert answer.status_code == 200
        assert answer.headers["content-type"] == entry["media_type"]
        assert answer.text == (JSON_DIR / entry["name"]).read_text(encoding="utf-8")


async def test_the_documents_references_resolve_against_its_url(http: httpx.AsyncClient) -> None:
    url = (await http.get("/v1/contracts")).json()["asyncapi"]
    document = (await http.get(url)).json()
    for name, message in document["components"]["messages"].items():
        schema_url = urljoin(url, message["payload"]["schema"]["$ref"])
        schema = (await http.get(schema_url)).json()
        assert schema["$id"] == f"urn:dxpulse:schema:{name}:v1"


async def test_an_unknown_document_is_a_problem_404(http: httpx.AsyncClient) -> None:
    answer = await http.get("/v1/contracts/rollup.v9.schema.json")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "name"
    assert (await http.get("/v1/contracts/..%2Fpyproject.toml")).status_code in (404, 422)


async def test_the_routes_are_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert {"/v1/contracts", "/v1/contracts/{name}"} <= set(paths)

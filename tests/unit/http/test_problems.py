"""The shared problem+json handlers on a small app: 404, 405, 408, 422, 500, disconnects, the document."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Query, Request
from starlette.types import Message

from dxpulse.http.handlers import install_problem_handlers
from dxpulse.http.problems import PROBLEM_BASE, document_problems
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings

PROBLEM_JSON = "application/problem+json"


def _app(body_read_timeout_s: float = 5.0) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def items(limit: Annotated[int, Query(ge=1, le=10)] = 5) -> dict[str, int]:
        return {"limit": limit}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    install_problem_handlers(app, body_read_timeout_s=body_read_timeout_s)
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def _slug(response: httpx.Response) -> str:
    assert response.headers["content-type"] == PROBLEM_JSON, response.text
    body = response.json()
    assert body["status"] == response.status_code
    assert str(body["type"]).startswith(PROBLEM_BASE)
    return str(body["type"]).removeprefix(PROBLEM_BASE)


async def test_unknown_paths_and_methods_are_problems() -> None:
    async with _client(_app()) as client:
        missing = await client.get("/nowhere")
        assert (missing.status_code, _slug(missing)) == (404, "not-found")
        assert "/openapi.json" in missing.json()["detail"]
        wrong = await client.delete("/items")
        assert (wrong.status_code, _slug(wrong)) == (405, "method-not-allowed")
        assert wrong.headers["allow"] == "GET"


async def test_invalid_parameters_are_422_problems_naming_the_field() -> None:
    async with _client(_app()) as client:
        response = await client.get("/items", params={"limit": 9223372036854775808})
    assert (response.status_code, _slug(response)) == (422, "invalid-request")
    body = response.json()
    assert body["field"] == "limit"
    assert body["detail"].startswith("query parameter limit: ")
    assert body["errors"] == [{"in": "query", "field": "limit", "detail": body["errors"][0]["detail"]}]


async def test_a_bug_is_a_500_problem() -> None:
    async with _client(_app()) as client:
        response = await client.get("/boom")
    assert (response.status_code, _slug(response)) == (500, "internal-error")
    assert "a bug" not in response.text


def test_the_document_says_422_is_a_problem() -> None:
    document = _app().openapi()
    invalid = document["paths"]["/items"]["get"]["responses"]["422"]
    assert set(invalid["content"]) == {PROBLEM_JSON}
    assert invalid["content"][PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
    schemas = document["components"]["schemas"]
    assert "ProblemDetails" in schemas
    assert not {"HTTPValidationError", "ValidationError"} & set(schemas)
    assert document_problems(copy.deepcopy(document)) == document


async def test_a_body_that_never_arrives_is_answered_408_and_the_connection_closed() -> None:
    async def stalled() -> AsyncIterator[bytes]:
        yield b'{"a": '
        await asyncio.sleep(3600)
        yield b"1}"

    async with _client(_app(body_read_timeout_s=0.2)) as client:
        response = await asyncio.wait_for(client.post("/echo", content=stalled()), timeout=10)
    assert (response.status_code, _slug(response)) == (408, "body-timeout")
    assert response.headers["connection"] == "close"
    assert "0.2 s" in response.json()["detail"]


async def test_a_body_that_arrives_is_read_whatever_the_timeout() -> None:
    async def slow() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 10
            await asyncio.sleep(0.05)

    async with _client(_app(body_read_timeout_s=1.0)) as client:
        response = await client.post("/echo", content=slow())
    assert response.json() == {"size": 30}


async def _call(app: FastAPI, method: str, path: str, messages: list[Message]) -> list[Message]:
    """Call the ASGI app directly: ``messages`` are what receive() hands out, the last one forever."""
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if len(messages) > 1 else messages[0]

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-length", b"100")],
        "client": ("10.0.0.7", 50123),
        "server": ("test", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return sent


async def test_a_client_that_goes_away_is_one_line_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sent = await _call(
        _app(),
        "POST",
        "/echo",
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}],
    )
    lines = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert "POST /echo from 10.0.0.7:50123" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert sent[0]["status"] == 499  # for the metrics: uvicorn sends nothing to a closed connection


async def test_the_ingest_answers_unknown_paths_and_methods_with_problems() -> None:
    offline = IngestSettings(kafka_bootstrap="127.0.0.1:9", database_url="postgresql://x:y@127.0.0.1:9/z")
    async with _client(create_ingest(offline)) as client:
        missing = await client.get("/v1/report")
        assert (missing.status_code, _slug(missing)) == (404, "not-found")
        wrong = await client.get("/v1/reports")
        assert (wrong.status_code, _slug(wrong)) == (405, "method-not-allowed")
        assert wrong.headers["allow"] == "POST"

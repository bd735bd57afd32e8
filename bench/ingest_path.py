"""``python -m bench.ingest_path``: single-report requests through the ingest app without servers.

Drives the ingest's ASGI app (``create_app``, every route, dependency and handler as served) with
``POST /v1/reports`` requests of benchmark reports, on the unit tests' in-memory Kafka producer and
PostgreSQL store, so what is counted is the app's own work per request: not the HTTP server's, not
aiokafka's, not PostgreSQL's. Wall-clock rates on a shared machine are noise; count instructions
instead, with the warm-up requests left out::

    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python -m bench.ingest_path --callgrind

and divide the "Collected" instructions by the requests measured. ``--app bare`` answers the same
requests from an ASGI app that only reads the body and answers 202 with a small JSON body: the
floor any ASGI app pays per request here. ``--profile FILE`` writes cProfile's statistics of the
measured requests instead, to see where the instructions go.
"""

from __future__ import annotations

import asyncio
import cProfile
import enum
import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.callgrind import Callgrind, instrument
from bench.synthetic import SIZES, Workload
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.unit.ingest.fakes import FakeKafkaLink, FakeProducer, FakeStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class App(enum.StrEnum):
    ingest = "ingest"
    bare = "bare"


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the whole body and answer 202 with a small JSON body: the least an ASGI app does."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"status":"accepted"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _scope(token: str, body: bytes) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/reports",
        "raw_path": b"/v1/reports",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _request(app: Asgi, token: str, body: bytes) -> int:
    """One request through ``app``; its status."""
    delivered = False
    status = 0

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(token, body), receive, send)
    return status


async def _run(
    app: Asgi,
    lifespan: Callable[[], Any],
    requests: list[tuple[str, bytes]],
    warm_up: int,
    measure: Callable[[bool], None],
) -> None:
    async with lifespan():
        for number, (token, body) in enumerate(requests):
            if number == warm_up:
                measure(True)
            status = await _request(app, token, body)
            if status != 202:
                raise SystemExit(f"request {number} answered {status}, not 202: the harness is broken")
        measure(False)


def main(
    requests: Annotated[int, typer.Option(help="Requests sent in all, warm-up included.")] = 3_000,
    warm_up: Annotated[int, typer.Option(help="Requests sent before the measured ones.")] = 1_000,
    app: Annotated[App, typer.Option(help="The ingest, or the least an ASGI app does.")] = App.ingest,
    callgrind: Callgrind = False,
    profile: Annotated[Path | None, typer.Option(help="Write cProfile statistics here.")] = None,
) -> None:
    workload = Workload(SIZES["full"])
    tokens = {f"token-{n}": reporter for n, reporter in enumerate(sorted(workload.reporters))}
    token_of = {reporter: token for token, reporter in tokens.items()}
    bodies = [workload.report(n) for n in range(requests)]
    sent = [(token_of[r.reporter], json.dumps(r.model_dump(mode="json")).encode()) for r in bodies]
    settings = IngestSettings(
        kafka_bootstrap="127.0.0.1:9",
        database_url="postgresql://x:y@127.0.0.1:9/z",
        rate_limit_per_s=1_000_000,
        rate_limit_burst=1_000_000,
    )
    ingest = create_app(
        settings,
        catalog=workload.catalog,
        registry=workload.registry,
        kafka=FakeKafkaLink(FakeProducer()),
        store=FakeStore(tokens),
    )
    served: Asgi = ingest if app is App.ingest else bare_app

    def lifespan() -> Any:
        return ingest.router.lifespan_context(ingest)

    profiler = cProfile.Profile()

    def measure(on: bool) -> None:
        if callgrind:
            instrument(on)
        if profile is not None:
            profiler.enable() if on else profiler.disable()

    asyncio.run(_run(served, lifespan, sent, warm_up, measure))
    if profile is not None:
        profiler.dump_stats(profile)
    typer.echo(f"{app}: {requests - warm_up:,} requests measured after {warm_up:,}")


if __name__ == "__main__":
    typer.run(main)

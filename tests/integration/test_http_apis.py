"""Both HTTP APIs served by uvicorn on a real PostgreSQL: schemathesis against the query API, out-of-range
paging, request bodies that never arrive, and clients that go away."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.rollup import Snapshot, apply, compute_rollups, scopes_of
from dxpulse.domain.scenario import sample_reports
from dxpulse.domain.tokens import READER
from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import free_ports, stack_settings_for_tests
from services.history.core import Published, write_latest, write_rollups
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.query.app import MAX_OFFSET
from services.query.app import create_app as create_query
from services.query.settings import QuerySettings
from tests.integration.ingest_support import new_token

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

BODY_READ_TIMEOUT_S = 2.0
PROBLEM_JSON = "application/problem+json"
WATCHED_LOGGERS = ("uvicorn", "dxpulse.http", "starlette", "fastapi")
"""Where a failed request is logged: uvicorn's "Exception in ASGI application", and the handlers."""


async def _fill_history(dsn: str) -> int:
    """The scenario's reports as the history writer would store them: every figure each rollup had
    as the reports arrived, and the latest value of every reporter. Returns the rollup revisions."""
    catalog, registry = default_catalog(), default_registry()
    reports = sample_reports(catalog, registry)
    latest: dict[tuple[str, str], dict[str, Snapshot]] = {}
    published: list[Published] = []
    computed_at = datetime(2024, 7, 1, tzinfo=UTC)
    for report in reports:
        key = (report.indicator, report.period)
        updated = apply(latest.get(key, {}), report)
        if updated is None:
            continue
        latest[key] = updated
        indicator = catalog[report.indicator]
        period = parse_period(report.period, indicator.period_type)
        for rollup in compute_rollups(indicator, period, updated, registry, computed_at):
            published.append(Published(0, len(published), rollup))
    conn = await asyncpg.connect(dsn)
    try:
        added = await write_rollups(conn, published)
        await write_latest(conn, reports)
    finally:
        await conn.close()
    return added


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL of this module's own (no Kafka: neither API needs it here), migrated and holding
    the scenario's history: its DSN."""
    stack = Stack(stack_settings_for_tests(Path(tmp_path_factory.mktemp("http-apis")) / "stack"), log.info)
    stack.install()
    for folder in (stack.paths.logs, stack.paths.run):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        stack.start_postgres()
        assert asyncio.run(_fill_history(stack.settings.database_url)) > 100
        yield stack.settings.database_url
    finally:
        stack.stop_postgres()


@contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn in a thread, as ``python -m services.*`` serves it: its URL."""
    port = free_ports(1)[0]
    # log_config=None: uvicorn's records go to the loggers the tests watch, not to its own handlers.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /healthz"
            time.sleep(0.2)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def query_api(database: str) -> Iterator[str]:
    """The query API with a public scoreboard: reporters' values need a read token (``read_token``)."""
    settings = QuerySettings(
        database_url=database, query_body_read_timeout_s=BODY_READ_TIMEOUT_S, query_public=True
    )
    with _serving(create_query(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def read_token(database: str) -> str:
    return asyncio.run(new_token(database, READER))


@pytest.fixture(scope="module")
def ingest_api(database: str) -> Iterator[tuple[str, str]]:
    """(URL, token of province:79) of an ingest whose Kafka is down: a body is read before Kafka."""
    settings = IngestSettings(
        database_url=database,
        kafka_bootstrap=f"127.0.0.1:{free_ports(1)[0]}",
        token_cache_ttl_s=0.0,
        body_read_timeout_s=BODY_READ_TIMEOUT_S,
    )
    token = asyncio.run(new_token(database, "province:79"))
    with _serving(create_ingest(settings)) as url:
        yield url, token


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def failures(self) -> list[str]:
        """Records that are a logged failure: a traceback, or ERROR and above."""
        return [r.getMessage() for r in self.records if r.exc_info or r.levelno >= logging.ERROR]


@contextmanager
def _watched_logs() -> Iterator[_Records]:
    """Every record of WATCHED_LOGGERS from INFO up, whatever handlers and levels they had."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=60)


def _head(url: str, method: str, path: str, length: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {urlsplit(url).netloc}", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(sock: socket.socket, timeout_s: float) -> tuple[int, dict[str, str], bytes]:
    """The next response on ``sock``: (status, headers by lower-case name, body)."""
    sock.settimeout(timeout_s)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "the connection closed in the middle of the response body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def _closed_within(sock: socket.socket, timeout_s: float) -> bool:
    """Whether the server closes the connection within ``timeout_s`` (sending nothing more)."""
    sock.settimeout(timeout_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _slug(body: bytes) -> str:
    return str(httpx.Response(200, content=body).json()["type"]).rsplit("/", 1)[-1]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(query_api: str, read_token: str) -> None:
    """Generated requests to every documented operation of the query API, valid ones and ones the
    document forbids, over real history: never a 5xx, and every answer conforms to the document
    (status documented, content type, body and headers as documented). Positive data may still be
    refused where the document cannot say so: 404 for an id that does not exist, 422 invalid-period
    for a period of another type than the indicator's; never as invalid-request.
    """
    schema = schemathesis.openapi.from_url(f"{query_api}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the OpenAPI document has operations schemathesis cannot read"
    assert {op.path for op in operations} >= {
        "/v1/indicators",
        "/v1/indicators/{indicator}",
        "/v1/registry/reporters",
        "/v1/registry/reporters/{reporter}",
        "/v1/registry/groups",
        "/v1/rollups",
        "/v1/rollups/{indicator}/{period}/{scope}/history",
        "/v1/figures/{indicator}/{period}",
        "/v1/series/{indicator}/{scope}",
        "/v1/alerts",
        "/v1/reporting/{indicator}/{period}",
        "/v1/reporters/{reporter}/values",
        "/healthz",
    }
    answered: Counter[tuple[GenerationMode, int]] = Counter()
    known: dict[str, list[dict[str, str] | None]] = defaultdict(lambda: [None], _known_path_parameters())
    runs = [(GenerationMode.POSITIVE, op) for op in operations]
    runs += [(GenerationMode.NEGATIVE, op) for op in operations if list(op.iter_parameters())]

    def explore(operation: Any, mode: GenerationMode) -> None:
        @given(case=operation.as_strategy(mode), ids=st.sampled_from(known[operation.path]))
        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: Any, ids: dict[str, str] | None) -> None:
            if mode is GenerationMode.POSITIVE and ids is not None:
                case.path_parameters = {**(case.path_parameters or {}), **ids}
            # A case whose Authorization header schemathesis left out or garbled is sent as it is:
            # the token added to it would make an invalid request valid, and its 200 a false finding.
            headers = {} if "Authorization" in _mutated(case) else {"Authorization": f"Bearer {read_token}"}
            response = case.call(base_url=query_api, headers=headers)
            answered[mode, response.status_code] += 1
            assert response.status_code < 500, (case.formatted_path, case.query, response.text[:500])
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
            if mode is GenerationMode.POSITIVE and response.status_code >= 400:
                refusal = (response.status_code, _slug(response.content))
                assert refusal in {(404, "not-found"), (422, "invalid-period")}, (case.path, case.query)

        call()

    for mode, operation in runs:
        explore(operation, mode)
    # Valid requests reached the history, near misses were told apart, invalid ones were refused.
    assert answered[GenerationMode.POSITIVE, 200] > 100
    assert answered[GenerationMode.POSITIVE, 404]
    assert answered[GenerationMode.NEGATIVE, 422]


def _mutated(case: Any) -> set[str]:
    """The parameters a negative case made invalid (none for a positive case)."""
    mutations = getattr(case.meta.phase.data, "mutations", ()) if case.meta is not None else ()
    return {mutation.parameter for mutation in mutations if mutation.parameter}


def _known_path_parameters() -> dict[str, list[dict[str, str] | None]]:
    """Path parameters, per operation, naming what the history holds, plus near misses (a period of
    the wrong type, a scope the indicator lacks, an unknown reporter): generated ids are almost never
    real, and valid requests must reach real rows for their answers to be checked too."""
    catalog = default_catalog()
    figures = sorted({(r.indicator, r.period) for r in sample_reports()})
    reporters = sorted({r.reporter for r in sample_reports()})
    history = [{"indicator": i, "period": p, "scope": s} for i, p in figures for s in scopes_of(catalog[i])]
    history += [{"indicator": "emc_connection", "period": "2024", "scope": "national"}]
    history += [{"indicator": "emc_connection", "period": "2024-H1", "scope": "ministries"}]
    return {
        "/v1/rollups/{indicator}/{period}/{scope}/history": [*history, None],
        "/v1/reporting/{indicator}/{period}": [
            *({"indicator": i, "period": p} for i, p in figures),
            {"indicator": "emc_connection", "period": "2024-Q1"},
            None,
        ],
        "/v1/reporters/{reporter}/values": [
            *({"reporter": r} for r in reporters),
            {"reporter": "province:99"},
            None,
        ],
        "/v1/indicators/{indicator}": [*({"indicator": i} for i, _ in figures), None],
        "/v1/registry/reporters/{reporter}": [
            *({"reporter": r} for r in reporters),
            {"reporter": "province:99"},
            None,
        ],
        "/v1/figures/{indicator}/{period}": [
            *({"indicator": i, "period": p} for i, p in figures),
            {"indicator": "emc_connection", "period": "2024"},
            None,
        ],
        "/v1/series/{indicator}/{scope}": [
            *(
                {"indicator": h["indicator"], "scope": h["scope"]}
                for h in history
                if h["period"] == "2024-H1"
            ),
            None,
        ],
    }


def test_an_offset_beyond_bigint_is_422_not_a_database_failure(query_api: str) -> None:
    with _watched_logs() as logs, httpx.Client(base_url=query_api) as http:
        beyond = http.get("/v1/rollups", params={"offset": 9223372036854775808})
        assert beyond.status_code == 422, beyond.text
        assert beyond.headers["content-type"] == PROBLEM_JSON
        assert beyond.json()["field"] == "offset"
        last = http.get("/v1/rollups", params={"offset": MAX_OFFSET, "limit": 500})
        assert last.json() == {"items": [], "limit": 500, "offset": MAX_OFFSET, "next_offset": None}
    assert logs.failures() == []


def test_a_body_that_never_arrives_is_answered_408_and_the_connection_closed(
    ingest_api: tuple[str, str],
) -> None:
    url, token = ingest_api
    with _connect(url) as sock:
        started = time.monotonic()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        sock.sendall(_head(url, "POST", "/v1/reports", 400, headers) + b'{"event_id": ')
        status, answer_headers, body = _response(sock, BODY_READ_TIMEOUT_S + 30)
        waited = time.monotonic() - started
        assert (status, answer_headers["content-type"], _slug(body)) == (408, PROBLEM_JSON, "body-timeout")
        assert BODY_READ_TIMEOUT_S <= waited < BODY_READ_TIMEOUT_S + 20
        assert _closed_within(sock, 10)


def test_the_query_api_answers_without_waiting_for_a_body_and_then_closes(query_api: str) -> None:
    # No query handler reads a body: the answer comes at once, and the connection, left expecting
    # the body's bytes, is closed by uvicorn's keep-alive timeout (5 s) rather than held.
    with _connect(query_api) as sock:
        sock.sendall(_head(query_api, "GET", "/v1/rollups?limit=1", 400))
        status, _, _ = _response(sock, 30)
        assert status == 200
        assert _closed_within(sock, 20)
    with _connect(query_api) as sock:
        sock.sendall(_head(query_api, "POST", "/v1/rollups", 400))
        status, headers, body = _response(sock, 30)
        assert (status, headers["content-type"], _slug(body)) == (405, PROBLEM_JSON, "method-not-allowed")


def _wait_for(what: str, check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_client_going_away_is_one_line_not_a_traceback(ingest_api: tuple[str, str], query_api: str) -> None:
    url, token = ingest_api
    with _watched_logs() as logs:
        # The ingest meets the disconnect while reading the body, after the token was checked.
        with _connect(url) as sock:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            sock.sendall(_head(url, "POST", "/v1/reports", 400, headers) + b'{"event_id": ')
            time.sleep(0.5)
        _wait_for(
            "the ingest to log the disconnect",
            lambda: any("went away" in r.getMessage() for r in logs.records),
        )
        # The query API answers a client that has gone already.
        for path in ("/v1/rollups", "/v1/reporting/emc_connection/2024-H1"):
            with _connect(query_api) as sock:
                sock.sendall(_head(query_api, "GET", path, 0))
        time.sleep(1)
        # Both still answer.
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{query_api}/v1/rollups", params={"limit": 1}).status_code == 200
    went_away = [r for r in logs.records if "went away" in r.getMessage()]
    assert len(went_away) == 1, [r.getMessage() for r in went_away]
    assert went_away[0].levelno == logging.INFO
    assert "POST /v1/reports" in went_away[0].getMessage()
    assert logs.failures() == []

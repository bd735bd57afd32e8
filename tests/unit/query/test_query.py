"""The query API without a database: pagination, who is missing, validation, errors and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Registry
from dxpulse.stack.testing import free_ports
from schemas import FlagValue
from services.query.api.access import require_reader
from services.query.api.deps import MAX_OFFSET
from services.query.app import create_app
from services.query.core import ReporterRef, ReporterValue, page_of, reporting_status, scope_groups
from services.query.settings import QuerySettings


def _value(reporter: str, indicator: str = "emc_connection", period: str = "2024-H1") -> ReporterValue:
    return ReporterValue(
        reporter=reporter,
        indicator=indicator,
        period=period,
        observed_at=datetime(2024, 6, 30, tzinfo=UTC),
        event_id=uuid4(),
        value=FlagValue(value=True),
    )


def test_pages_say_whether_another_follows() -> None:
    rows = [_value(f"province:{n:02d}") for n in range(1, 5)]
    # The handler fetches limit + 1 rows: a fourth row means a next page exists.
    page = page_of(rows, 3, 6)
    assert ([i.reporter for i in page.items], page.next_offset) == (
        ["province:01", "province:02", "province:03"],
        9,
    )
    last = page_of(rows[:3], 3, 9)
    assert (len(last.items), last.next_offset) == (3, None)
    assert page_of([], 3, 0).next_offset is None


def test_missing_reporters_are_the_expected_ones_without_a_value(
    registry: Registry, catalog: Catalog
) -> None:
    emc = catalog["emc_connection"]
    period = parse_period("2024-H1")
    day = period.end
    reported = [*sorted(registry.members("provinces", day))[:60], "ministry:MIC"]
    latest = {r: _value(r) for r in reported}
    # A national-figures body is outside every scope of EMC: never listed.
    latest["national:MPS"] = _value("national:MPS")

    status = reporting_status(emc, period, "national", registry, latest)

    assert status.expected == 84  # 21 ministries with procedures + 63 provinces
    assert [v.reporter for v in status.reported] == sorted(reported)
    missing = {m.reporter for m in status.missing}
    assert len(missing) == 84 - 61
    assert "ministry:GO" not in missing  # the Government Office is not in ministries_with_procedures
    assert missing == registry.expected(emc.groups, day) - set(reported)
    assert (
        ReporterRef(reporter="ministry:MOH", name=registry.reporters["ministry:MOH"].name) in status.missing
    )

    provinces = reporting_status(emc, period, "provinces", registry, latest)
    assert (provinces.expected, len(provinces.reported), len(provinces.missing)) == (63, 60, 3)


def test_missing_reporters_follow_the_registry_of_the_period(registry: Registry, catalog: Catalog) -> None:
    emc = catalog["emc_connection"]
    before = reporting_status(emc, parse_period("2025-H1"), "provinces", registry, {})
    after = reporting_status(emc, parse_period("2025-H2"), "provinces", registry, {})
    assert (before.expected, after.expected) == (63, 34)


def test_scopes_are_the_indicator_groups_and_national(catalog: Catalog) -> None:
    emc = catalog["emc_connection"]
    assert scope_groups(emc, "national") == ("ministries_with_procedures", "provinces")
    assert scope_groups(emc, "provinces") == ("provinces",)
    assert scope_groups(emc, "ministries") is None
    with pytest.raises(ValueError, match="no scope"):
        reporting_status(emc, parse_period("2024-H1"), "ministries", Registry({}, {}), {})


def _offline_app() -> FastAPI:
    """The API pointed at a port where nothing listens: every query fails to connect."""
    (port,) = free_ports(1)
    settings = QuerySettings(
        database_url=f"postgresql://dxpulse:dxpulse@127.0.0.1:{port}/dxpulse",
        query_max_page_size=50,
    )
    app = create_app(settings)
    # Reading the token store needs the database this API cannot reach: test_access.py covers it.
    app.dependency_overrides[require_reader] = _anyone
    return app


async def _anyone() -> None:
    """Stands in for the read-token check."""


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The offline API, lifespan included."""
    app = _offline_app()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://query") as http,
    ):
        yield http


PROBLEM_JSON = "application/problem+json"


def _problem(response: httpx.Response) -> tuple[int, str, str | None]:
    """(status, slug, field) of a problem+json answer."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    body = response.json()
    return response.status_code, body["type"].rsplit("/", 1)[-1], body.get("field")


async def test_openapi_documents_every_endpoint_and_the_page_limit(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert set(spec["paths"]) >= {
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
    limit = next(p for p in spec["paths"]["/v1/rollups"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 50
    assert "at most 50" in spec["info"]["description"]


async def test_requests_are_checked_before_the_database(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/rollups", params={"limit": 51})).status_code == 422
    assert (await client.get("/v1/rollups", params={"offset": -1})).status_code == 422
    unknown = await client.get("/v1/reporting/no_such_indicator/2024-H1")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert (
        await client.get("/v1/reporting/emc_connection/2024-H1", params={"scope": "ministries"})
    ).status_code == 404
    period = await client.get("/v1/rollups/emc_connection/2024/national/history")
    assert (period.status_code, period.json()["type"]) == (422, "https://dxpulse.dev/problems/invalid-period")
    assert (await client.get("/v1/reporters/province:99/values")).status_code == 404


async def test_database_down_is_503_with_retry_after(client: httpx.AsyncClient) -> None:
    for path in ("/v1/rollups", "/v1/reporting/emc_connection/2024-H1", "/healthz"):
        response = await client.get(path)
        assert response.status_code == 503, path
        assert response.headers["retry-after"] == "5"
        assert response.json()["type"] == "https://dxpulse.dev/problems/database-unavailable"


async def test_requests_are_counted_by_route_template_and_status(client: httpx.AsyncClient) -> None:
    await client.get("/v1/rollups", params={"limit": 51})
    await client.get("/v1/reporters/province:99/values")
    await client.get("/v1/reporters/province:98/values")
    await client.get("/no/such/path")
    text = (await client.get("/metrics")).text
    assert 'dxpulse_query_requests_total{endpoint="/v1/rollups",status="422"} 1.0' in text
    assert 'dxpulse_query_requests_total{endpoint="/v1/reporters/{reporter}/values",status="404"} 2.0' in text
    assert 'dxpulse_query_requests_total{endpoint="unmatched",status="404"} 1.0' in text


async def test_out_of_range_paging_is_refused_before_postgresql(client: httpx.AsyncClient) -> None:
    # PostgreSQL is unreachable here: a request reaching it would be answered 503.
    cases: list[tuple[dict[str, int | str], str]] = [
        ({"offset": 9223372036854775808}, "offset"),
        ({"offset": 9223372036854775807}, "offset"),
        ({"offset": MAX_OFFSET + 1}, "offset"),
        ({"offset": -1}, "offset"),
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),
        ({"limit": 2**64}, "limit"),
        ({"limit": "ten"}, "limit"),
    ]
    for params, field in cases:
        for path in ("/v1/rollups", "/v1/reporters/province:79/values"):
            response = await client.get(path, params=params)
            assert _problem(response) == (422, "invalid-request", field), (path, params)
    history = await client.get(
        "/v1/rollups/emc_connection/2024-H1/national/history", params={"offset": 2**63}
    )
    assert _problem(history) == (422, "invalid-request", "offset")


async def test_text_postgresql_cannot_take_is_refused(client: httpx.AsyncClient) -> None:
    for params, field in [
        ({"indicator": "emc\x00connection"}, "indicator"),
        ({"period": "2024-H1\x00"}, "period"),
        ({"scope": "x" * 100}, "scope"),
        ({"period": "2024-H3"}, "period"),
    ]:
        assert _problem(await client.get("/v1/rollups", params=params)) == (422, "invalid-request", field)
    reporter = await client.get("/v1/reporters/province%0079/values")
    assert _problem(reporter) == (422, "invalid-request", "reporter")


async def test_unknown_ids_are_404_naming_the_field(client: httpx.AsyncClient) -> None:
    cases = {
        "/v1/reporting/no_such_indicator/2024-H1": "indicator",
        "/v1/rollups/emc_connection/2024-H1/ministries/history": "scope",
        "/v1/reporters/province:99/values": "reporter",
    }
    for path, field in cases.items():
        assert _problem(await client.get(path)) == (404, "not-found", field), path
    period = await client.get("/v1/reporting/emc_connection/2024-Q1")
    assert _problem(period) == (422, "invalid-period", "period")


async def test_unknown_paths_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    assert _problem(await client.get("/v1/rollup")) == (404, "not-found", None)
    assert _problem(await client.get("/v1/reporters/province:79/x/values")) == (404, "not-found", None)
    wrong = await client.post("/v1/rollups", content=b"{}")
    assert _problem(wrong) == (405, "method-not-allowed", None)
    assert wrong.headers["allow"] == "GET"


class _FailingPool:
    """Stands in for the asyncpg pool: every query raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def fetch(self, *args: Any) -> list[Any]:
        raise self.error

    async def fetchval(self, *args: Any) -> Any:
        raise self.error

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConnectionRefusedError(111, "refused"), 503),
        (TimeoutError(), 503),
        (asyncpg.CannotConnectNowError("the database system is starting up"), 503),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), 503),
        (asyncpg.TooManyConnectionsError("too many clients"), 503),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), 503),
        (asyncpg.UndefinedTableError('relation "rollup_current" does not exist'), 503),
        # Not PostgreSQL being away: bugs, answered 500 and logged with their traceback.
        (asyncpg.DataError("invalid input for query argument $5"), 500),
        (asyncpg.UndefinedColumnError('column "nope" does not exist'), 500),
        (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), 500),
    ],
)
async def test_only_postgresql_being_away_is_503(error: Exception, status: int) -> None:
    app = _offline_app()
    async with app.router.lifespan_context(app):
        await app.state.pool.close()
        app.state.pool = _FailingPool(error)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://query") as http:
            response = await http.get("/v1/rollups")
    slug = "database-unavailable" if status == 503 else "internal-error"
    assert _problem(response) == (status, slug, None)
    assert ("retry-after" in response.headers) == (status == 503)


async def test_openapi_says_what_every_refusal_is(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    problem_schema = {"$ref": "#/components/schemas/ProblemDetails"}
    for path, item in spec["paths"].items():
        responses = item["get"]["responses"]
        for status, entry in responses.items():
            if status not in ("200", "304"):
                (media, body), *others = entry["content"].items()
                assert (media, body["schema"], others) == (PROBLEM_JSON, problem_schema, []), (path, status)
        # The contract's documents are static: no database behind them (test_contracts.py).
        assert ("503" in responses) != path.startswith("/v1/contracts"), path
        assert ("404" in responses) == ("{" in path), path
        assert ("422" in responses) == (path not in ("/healthz", "/v1/contracts")), path
    assert not {"HTTPValidationError", "ValidationError"} & set(spec["components"]["schemas"])
    parameters = {p["name"]: p for p in spec["paths"]["/v1/rollups"]["get"]["parameters"]}
    assert parameters["offset"]["schema"]["maximum"] == MAX_OFFSET < 2**63
    assert parameters["limit"]["schema"]["maximum"] == 50
    assert "pattern" in parameters["indicator"]["schema"]["anyOf"][0]

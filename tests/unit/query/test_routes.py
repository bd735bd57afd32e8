"""The query API's routes on a fake pool: the SQL they send, the pages and answers they make of rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.registry import Registry
from schemas import Rollup
from services.query.api.access import require_reader
from services.query.api.deps import Lookup, Paging
from services.query.api.problems import BadPeriod, NotFound
from services.query.app import create_app
from services.query.settings import QuerySettings
from tests.unit.conftest import feed, flag, make_report


def _rollups() -> list[Rollup]:
    reports = [make_report("province:79", flag(True)), make_report("ministry:MIC", flag(False))]
    _, published = feed(reports, "emc_connection", "2024-H1")
    return [r for batch in published for r in batch]


class FakePool:
    """Stands in for the read-only pool: records every query, answers from the rows it was given."""

    def __init__(self, rollups: list[Rollup], reporters: list[str]) -> None:
        self.rollups = rollups
        self.reporters = reporters
        self.queries: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        self.queries.append((query.split("FROM ")[1].split()[0], args))
        if "rollup_" in query:
            return [{"seq": n + 1, "body": r.model_dump_json()} for n, r in enumerate(self.rollups)]
        return [
            {
                "reporter": reporter,
                "indicator": "emc_connection",
                "period": "2024-H1",
                "observed_at": datetime(2024, 6, 30, tzinfo=UTC),
                "event_id": UUID(int=n),
                "value": json.dumps({"kind": "flag", "value": True}),
            }
            for n, reporter in enumerate(self.reporters)
        ]

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.queries.append((query, args))
        return 1


async def _anyone() -> None:
    """Stands in for the read-token check (test_access.py covers it)."""


@pytest.fixture
def pool() -> FakePool:
    return FakePool(_rollups(), ["province:79", "ministry:MIC", "national:MPS"])


@pytest.fixture
async def http(pool: FakePool) -> AsyncIterator[httpx.AsyncClient]:
    """The API on ``pool``, with pages of 2 by default and 5 at most (its lifespan never runs)."""
    settings = QuerySettings(query_page_size=2, query_max_page_size=5)
    app: FastAPI = create_app(settings)
    app.dependency_overrides[require_reader] = _anyone
    app.state.pool = pool
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        yield client


async def test_current_rollups_are_a_page_fetched_with_one_row_more(
    http: httpx.AsyncClient, pool: FakePool
) -> None:
    page = (await http.get("/v1/rollups", params={"indicator": "emc_connection", "offset": 4})).json()
    assert pool.queries == [("rollup_current", ("emc_connection", None, None, 3, 4))]
    assert ([i["seq"] for i in page["items"]], page["limit"], page["next_offset"]) == ([1, 2], 2, 6)
    assert page["items"][0]["rollup"] == json.loads(pool.rollups[0].model_dump_json())

    last = (await http.get("/v1/rollups", params={"limit": 5})).json()
    assert (len(last["items"]), last["next_offset"]) == (len(pool.rollups), None)


async def test_a_rollup_history_checks_its_names_before_asking_postgresql(
    http: httpx.AsyncClient, pool: FakePool
) -> None:
    path = "/v1/rollups/emc_connection/2024-H1/national/history"
    assert (await http.get(path, params={"limit": 1})).json()["next_offset"] == 1
    assert pool.queries == [("rollup_history", ("emc_connection", "2024-H1", "national", 2, 0))]
    pool.queries.clear()
    refused = {
        "/v1/rollups/no_such/2024-H1/national/history": 404,
        "/v1/rollups/emc_connection/2024-H1/ministries/history": 404,
        "/v1/rollups/emc_connection/2024/national/history": 422,
    }
    for wrong, status in refused.items():
        assert (await http.get(wrong)).status_code == status, wrong
    assert pool.queries == []


async def test_reporting_lists_the_scope_reporters_with_and_without_a_value(
    http: httpx.AsyncClient, pool: FakePool
) -> None:
    status = (await http.get("/v1/reporting/emc_connection/2024-H1", params={"scope": "provinces"})).json()
    assert pool.queries == [("reporter_latest", ("emc_connection", "2024-H1"))]
    assert [r["reporter"] for r in status["reported"]] == ["province:79"]
    assert (status["expected"], len(status["missing"])) == (63, 62)

    national = (await http.get("/v1/reporting/emc_connection/2024-H1")).json()
    # national:MPS reports outside every scope of the indicator: never listed.
    assert [r["reporter"] for r in national["reported"]] == ["ministry:MIC", "province:79"]


async def test_reporter_values_are_paged_and_an_unknown_reporter_is_404(
    http: httpx.AsyncClient, pool: FakePool
) -> None:
    page = (await http.get("/v1/reporters/province:79/values", params={"period": "2024-H1"})).json()
    assert pool.queries == [("reporter_latest", ("province:79", None, "2024-H1", 3, 0))]
    assert (len(page["items"]), page["next_offset"]) == (2, 2)

    pool.queries.clear()
    unknown = await http.get("/v1/reporters/province:99/values")
    assert (unknown.status_code, unknown.json()["field"], pool.queries) == (404, "reporter", [])


async def test_health_asks_postgresql_and_metrics_count_the_answers(
    http: httpx.AsyncClient, pool: FakePool
) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert pool.queries == [("SELECT 1", ())]
    metrics = await http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'dxpulse_query_requests_total{endpoint="/healthz",status="200"} 1.0' in metrics.text


async def test_the_page_bounds_come_from_the_settings(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    for path in ("/v1/rollups", "/v1/reporters/{reporter}/values"):
        limit = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "limit")
        assert (limit["schema"]["maximum"], limit["schema"]["default"]) == (5, 2), path
    assert (await http.get("/v1/rollups", params={"limit": 6})).status_code == 422
    assert Paging.of(QuerySettings(query_page_size=100, query_max_page_size=40)) == Paging(40, 40)


def test_names_are_checked_indicator_then_scope_then_period(catalog: Catalog, registry: Registry) -> None:
    lookup = Lookup(catalog, registry)
    with pytest.raises(NotFound) as indicator:
        lookup.figure("no_such", "2024-Q9", "nowhere")
    with pytest.raises(NotFound) as scope:
        lookup.figure("emc_connection", "2024-Q9", "nowhere")
    with pytest.raises(BadPeriod):
        lookup.figure("emc_connection", "2024-Q1", "provinces")
    assert (indicator.value.field, scope.value.field) == ("indicator", "scope")
    entry, period = lookup.figure("emc_connection", "2024-H1", "national")
    assert (entry.id, period.label) == ("emc_connection", "2024-H1")
    lookup.reporter("province:79")
    with pytest.raises(NotFound):
        lookup.reporter("province:99")

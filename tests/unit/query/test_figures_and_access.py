"""The scoreboard routes on a fake pool: figures on any map, series, alerts, the catalog and registry,
CSV and ETags, and who may read what."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from dxpulse.domain.tokens import READER, hash_token
from schemas import AlertEvent
from services.query.app import create_app
from services.query.settings import QuerySettings
from tests.unit.conftest import OBSERVED, feed, make_report, ratio

INDICATOR, PERIOD = "low_signal_villages_broadband", "2024-H1"
READ_TOKEN, REPORTER_TOKEN = "dxp_read_secret", "dxp_79_secret"


class FakePool:
    """Stands in for the read-only pool: reporters' latest values, rollups, alerts and two tokens."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[float, float]] = {
            "province:56": (10, 40),
            "province:58": (5, 20),
            "province:01": (3, 30),
        }
        reports = [make_report(r, ratio(n, d), indicator=INDICATOR) for r, (n, d) in self.values.items()]
        _, published = feed(reports, INDICATOR, PERIOD)
        self.rollups = [r for batch in published for r in batch if r.scope == "provinces"]
        self.alerts: list[AlertEvent] = []
        self.queries: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        table = query.split("FROM ")[1].split()[0]
        self.queries.append((table, args))
        if table == "reporter_latest":
            return [
                {
                    "reporter": reporter,
                    "indicator": INDICATOR,
                    "period": PERIOD,
                    "observed_at": OBSERVED,
                    "event_id": UUID(int=n),
                    "value": json.dumps({"kind": "ratio", "numerator": num, "denominator": den}),
                }
                for n, (reporter, (num, den)) in enumerate(sorted(self.values.items()))
            ]
        if table == "alert_history":
            return [{"body": a.model_dump_json()} for a in self.alerts]
        return [{"seq": 1, "body": r.model_dump_json()} for r in self.rollups[-1:]]

    async def fetchval(self, query: str, *args: Any) -> Any:
        if not args:
            return 1  # SELECT 1
        self.queries.append(("api_tokens", args))
        return {hash_token(READ_TOKEN): READER, hash_token(REPORTER_TOKEN): "province:79"}.get(args[0])


def _client(pool: FakePool, **settings: Any) -> httpx.AsyncClient:
    app = create_app(QuerySettings(**settings))
    app.state.pool = pool
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://query")


@pytest.fixture
def pool() -> FakePool:
    return FakePool()


@pytest.fixture
async def http(pool: FakePool) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a read token sent on every request."""
    async with _client(pool) as client:
        client.headers["Authorization"] = f"Bearer {READ_TOKEN}"
        yield client


def _units(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["unit"]: u for u in body["units"]}


async def test_2024_on_the_34_province_map_sums_the_merged_provinces(http: httpx.AsyncClient) -> None:
    path = f"/v1/figures/{INDICATOR}/{PERIOD}"
    on_2025 = (await http.get(path, params={"map": "2025-07-01"})).json()
    units = _units(on_2025)
    assert len(units) == 34
    khanh_hoa = units["province:56"]
    assert [p["reporter"] for p in khanh_hoa["predecessors"]] == ["province:56", "province:58"]
    assert (khanh_hoa["name"], khanh_hoa["groups"]) == ("Khanh Hoa", ["provinces"])
    figure = khanh_hoa["rollup"]
    assert (figure["numerator"], figure["denominator"]) == (10 + 5, 40 + 20)
    assert (figure["reporters_reported"], figure["reporters_expected"]) == (2, 2)
    # The units add up to the group's figure, which is the national one (provinces only).
    group = on_2025["groups"][0]["rollup"]
    assert sum(u["rollup"]["numerator"] for u in units.values()) == group["numerator"] == 18
    assert sum(u["rollup"]["denominator"] for u in units.values()) == group["denominator"] == 90
    assert (on_2025["national"]["name"], on_2025["groups"][0]["name"]) == ("National", "Provinces")

    own = _units((await http.get(path)).json())
    assert len(own) == 63
    assert (own["province:58"]["rollup"]["numerator"], own["province:56"]["rollup"]["numerator"]) == (5, 10)
    assert own["province:58"]["name"] == "Ninh Thuan"


async def test_the_group_figures_are_the_ones_the_aggregator_publishes(
    http: httpx.AsyncClient, pool: FakePool
) -> None:
    body = (await http.get(f"/v1/figures/{INDICATOR}/{PERIOD}")).json()
    assert body["groups"][0]["rollup"]["revision"] == pool.rollups[-1].revision


async def test_csv_by_suffix_or_accept_with_numerators_and_denominators(http: httpx.AsyncClient) -> None:
    path = f"/v1/figures/{INDICATOR}/{PERIOD}"
    by_suffix = await http.get(f"{path}.csv", params={"map": "2025-07-01"})
    by_accept = await http.get(path, params={"map": "2025-07-01"}, headers={"Accept": "text/csv"})
    assert by_suffix.headers["content-type"] == "text/csv; charset=utf-8"
    assert by_suffix.text == by_accept.text
    rows = list(csv.DictReader(io.StringIO(by_suffix.text)))
    assert [r["level"] for r in rows[:2]] == ["national", "group"]
    khanh_hoa = next(r for r in rows if r["scope"] == "province:56")
    assert (khanh_hoa["numerator"], khanh_hoa["denominator"], khanh_hoa["predecessors"]) == (
        "15.0",
        "60.0",
        "province:56;province:58",
    )
    rollups = list(csv.DictReader(io.StringIO((await http.get("/v1/rollups.csv")).text)))
    assert rollups[0]["rollup.scope"] == "provinces"
    assert rollups[0]["rollup.numerator"] == "18.0"


async def test_the_etag_answers_304_until_a_value_changes(http: httpx.AsyncClient, pool: FakePool) -> None:
    path = f"/v1/figures/{INDICATOR}/{PERIOD}"
    first = await http.get(path)
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, max-age=30"
    assert "Accept" in first.headers["vary"]
    same = await http.get(path, headers={"If-None-Match": tag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", tag)
    assert (await http.get(f"{path}.csv", headers={"If-None-Match": tag})).status_code == 200

    pool.values["province:58"] = (6, 20)
    changed = await http.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag


async def test_series_and_alerts_pass_their_filters_to_postgresql(
    http: httpx.AsyncClient, pool: FakePool
) -> None:
    series = (await http.get(f"/v1/series/{INDICATOR}/provinces", params={"from": "2024-H1"})).json()
    assert (series["scope_name"], [p["rollup"]["period"] for p in series["points"]]) == (
        "Provinces",
        [PERIOD],
    )
    assert pool.queries[-1] == ("rollup_current", (INDICATOR, "provinces", "2024-H1", None, 1000))
    assert (await http.get(f"/v1/series/{INDICATOR}/provinces", params={"to": "2024"})).status_code == 422
    assert (await http.get(f"/v1/series/{INDICATOR}/ministries")).status_code == 404

    alerts = (await http.get("/v1/alerts", params={"rule": "regression", "status": "firing"})).json()
    assert alerts == {"items": [], "limit": 100, "offset": 0, "next_offset": None}
    alert_query: tuple[str, tuple[Any, ...]] = pool.queries[-1]
    assert alert_query == ("alert_history", (None, None, None, "regression", "firing", 101, 0))
    assert (await http.get("/v1/alerts", params={"rule": "nonsense"})).status_code == 422


async def test_catalog_and_registry_with_names_validity_and_successors(http: httpx.AsyncClient) -> None:
    indicators = (await http.get("/v1/indicators")).json()["indicators"]
    assert INDICATOR in {i["id"] for i in indicators}
    assert (await http.get(f"/v1/indicators/{INDICATOR}")).json()["kind"] == "ratio"
    ninh_thuan = (await http.get("/v1/registry/reporters/province:58")).json()
    assert (ninh_thuan["valid_to"], ninh_thuan["successor"]) == ("2025-06-30", "province:56")
    khanh_hoa = (await http.get("/v1/registry/reporters/province:56")).json()
    assert khanh_hoa["merged_from"] == ["province:56", "province:58"]
    on_2025 = (
        await http.get("/v1/registry/reporters", params={"kind": "province", "on": "2025-07-01"})
    ).json()
    assert len(on_2025["reporters"]) == 34
    groups = (await http.get("/v1/registry/groups", params={"on": "2024-06-30"})).json()["groups"]
    sizes = {g["group"]: len(g["members"]) for g in groups}
    assert (sizes["provinces"], sizes["ministries"], sizes["ministries_with_procedures"]) == (63, 22, 21)
    assert (await http.get("/v1/registry/reporters/province:99")).status_code == 404


async def test_a_read_token_is_needed_by_default(pool: FakePool) -> None:
    async with _client(pool) as anonymous:
        for path in ("/v1/rollups", f"/v1/figures/{INDICATOR}/{PERIOD}", "/v1/reporters/province:79/values"):
            refused = await anonymous.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["type"] == "https://dxpulse.dev/problems/unauthorized"
        reporter = await anonymous.get("/v1/rollups", headers={"Authorization": f"Bearer {REPORTER_TOKEN}"})
        assert reporter.status_code == 401  # a reporter's token sends reports, it does not read
        reader = await anonymous.get("/v1/rollups", headers={"Authorization": f"Bearer {READ_TOKEN}"})
        assert reader.status_code == 200
        assert (await anonymous.get("/healthz")).status_code == 200
        assert (await anonymous.get("/docs")).status_code == 200
        spec = (await anonymous.get("/openapi.json")).json()
    assert spec["paths"]["/v1/rollups"]["get"]["security"] == [{"ReadToken": []}]
    assert "401" in spec["paths"]["/v1/rollups"]["get"]["responses"]


async def test_a_public_scoreboard_still_keeps_reporters_values_behind_a_token(pool: FakePool) -> None:
    async with _client(pool, query_public=True) as anonymous:
        rollups = await anonymous.get("/v1/rollups")
        assert rollups.status_code == 200
        assert rollups.headers["cache-control"] == "public, max-age=30"
        assert (await anonymous.get(f"/v1/figures/{INDICATOR}/{PERIOD}")).status_code == 200
        assert (await anonymous.get("/v1/reporters/province:79/values")).status_code == 401
        assert (await anonymous.get(f"/v1/reporting/{INDICATOR}/{PERIOD}")).status_code == 401
        values = await anonymous.get(
            "/v1/reporters/province:79/values", headers={"Authorization": f"Bearer {READ_TOKEN}"}
        )
        assert (values.status_code, values.headers["cache-control"]) == (200, "private, max-age=30")
        spec = (await anonymous.get("/openapi.json")).json()
    assert "security" not in spec["paths"]["/v1/rollups"]["get"]
    assert spec["paths"]["/v1/reporters/{reporter}/values"]["get"]["security"] == [{"ReadToken": []}]


async def test_rollups_series_and_values_carry_names(http: httpx.AsyncClient) -> None:
    item = (await http.get("/v1/rollups")).json()["items"][0]
    assert (item["indicator_name"], item["scope_name"]) == (
        "Villages with low signal covered by mobile broadband",
        "Provinces",
    )
    point = (await http.get(f"/v1/series/{INDICATOR}/provinces")).json()["points"][0]
    assert point["scope_name"] == "Provinces"
    values = (await http.get("/v1/reporters/province:58/values")).json()["items"]
    names = {"province:01": "Ha Noi", "province:56": "Khanh Hoa", "province:58": "Ninh Thuan"}
    assert {v["reporter"]: v["name"] for v in values} == names  # the fake pool answers every row
    reported = (await http.get(f"/v1/reporting/{INDICATOR}/{PERIOD}")).json()["reported"]
    assert {v["reporter"]: v["name"] for v in reported}["province:56"] == "Khanh Hoa"


async def test_a_day_is_written_yyyy_mm_dd_not_as_a_unix_time(http: httpx.AsyncClient) -> None:
    """pydantic alone takes ``on=1.5`` for 1970-01-01 (found by schemathesis)."""
    for day in ("1.5", "8.4e-135", "20250701", "2024-02-30"):
        for path, name in (("/v1/registry/groups", "on"), (f"/v1/figures/{INDICATOR}/{PERIOD}", "map")):
            refused = await http.get(path, params={name: day})
            assert refused.status_code == 422, (path, day)
            assert refused.json()["field"] == name

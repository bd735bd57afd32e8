"""The analyst's query API on the real stack: 2024 on the 34-province map from PostgreSQL, CSV, ETags,
series, alert history, the registry, read tokens, and ``dxpulse remap`` reading the same history."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from dxpulse.cli.main import app as cli_app
from dxpulse.domain.scenario import sample_reports
from dxpulse.domain.tokens import READER
from dxpulse.postgres.migrations import apply_migrations
from dxpulse.postgres.token_store import temporary_tokens
from dxpulse.stack.settings import StackSettings
from services.history.core import write_latest
from services.query.app import create_app
from services.query.settings import QuerySettings
from tests.integration.test_exactness import emc_reports_2025_h2, restated
from tests.integration.test_history_query import _admin, _eventually, _other_database, _send

pytestmark = pytest.mark.integration

INDICATOR, PERIOD = "low_signal_villages_broadband", "2024-H1"
"""The scenario's figure: every one of the 63 provinces reported, 256/896 villages in all."""
MERGED = ("province:56", "province:58")
"""Khanh Hoa and Ninh Thuan, one province (56) on the 34-province map from 2025-07-01."""


async def _latest(dsn: str) -> dict[str, tuple[float, float]]:
    """(numerator, denominator) per province, straight from reporter_latest."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT reporter, (value->>'numerator')::float AS n, (value->>'denominator')::float AS d"
            " FROM reporter_latest WHERE indicator = $1 AND period = $2",
            INDICATOR,
            PERIOD,
        )
    finally:
        await conn.close()
    return {row["reporter"]: (row["n"], row["d"]) for row in rows}


async def _scenario_stored(settings: StackSettings) -> dict[str, tuple[float, float]]:
    """Send the scenario unless an earlier test has (again, duplicates would change nothing) and wait
    for history to hold its figure."""

    async def stored() -> dict[str, tuple[float, float]] | None:
        latest = await _latest(settings.database_url)
        totals = (sum(n for n, _ in latest.values()), sum(d for _, d in latest.values()))
        return latest if len(latest) == 63 and totals == (256, 896) else None

    if await stored() is None:
        await _send(settings, sample_reports())
    return await _eventually(f"{INDICATOR} {PERIOD} in reporter_latest", stored)


@pytest.fixture
async def reader(pipeline: StackSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The stack's query API (its scoreboard public), with a read token on every request."""
    async with (
        temporary_tokens(pipeline.database_url, [READER], "query-api-test") as tokens,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{pipeline.query_port}",
            timeout=30,
            headers={"Authorization": f"Bearer {tokens[READER]}"},
        ) as http,
    ):
        yield http


async def test_2024_on_the_34_province_map_equals_the_sums_of_the_old_provinces(
    pipeline: StackSettings, reader: httpx.AsyncClient
) -> None:
    latest = await _scenario_stored(pipeline)
    path = f"/v1/figures/{INDICATOR}/{PERIOD}"

    on_2025 = (await reader.get(path, params={"map": "2025-07-01"})).json()
    units = {u["unit"]: u for u in on_2025["units"]}
    assert len(units) == 34
    khanh_hoa = units["province:56"]
    assert [p["reporter"] for p in khanh_hoa["predecessors"]] == list(MERGED)
    assert [p["name"] for p in khanh_hoa["predecessors"]] == ["Khanh Hoa", "Ninh Thuan"]
    figure = khanh_hoa["rollup"]
    assert (figure["numerator"], figure["denominator"]) == (
        latest["province:56"][0] + latest["province:58"][0],
        latest["province:56"][1] + latest["province:58"][1],
    )
    assert (figure["reporters_reported"], figure["reporters_expected"]) == (2, 2)
    assert round(figure["value"], 9) == round(figure["numerator"] / figure["denominator"], 9)
    # Every unit of the map sums its old provinces, and together they are the published figure.
    for unit in units.values():
        olds = [p["reporter"] for p in unit["predecessors"]]
        assert unit["rollup"]["numerator"] == sum(latest[o][0] for o in olds), unit["unit"]
    published = (await reader.get("/v1/rollups", params={"indicator": INDICATOR, "period": PERIOD})).json()
    by_scope = {i["rollup"]["scope"]: i["rollup"] for i in published["items"]}
    assert sum(u["rollup"]["numerator"] for u in units.values()) == by_scope["provinces"]["numerator"] == 256
    assert sum(u["rollup"]["denominator"] for u in units.values()) == by_scope["provinces"]["denominator"]
    assert on_2025["groups"][0]["rollup"]["revision"] == by_scope["provinces"]["revision"]
    assert on_2025["national"]["rollup"]["revision"] == by_scope["national"]["revision"]

    # On its own map the two provinces are apart again.
    own = {u["unit"]: u["rollup"] for u in (await reader.get(path)).json()["units"]}
    assert len(own) == 63
    assert [(own[p]["numerator"], own[p]["denominator"]) for p in MERGED] == [latest[p] for p in MERGED]

    # The same as CSV, with numerators and denominators, and cached by its ETag.
    table = await reader.get(f"{path}.csv", params={"map": "2025-07-01"})
    assert table.headers["content-type"].startswith("text/csv")
    rows = {r["scope"]: r for r in csv.DictReader(io.StringIO(table.text))}
    assert float(rows["province:56"]["numerator"]) == figure["numerator"]
    assert rows["province:56"]["predecessors"] == "province:56;province:58"
    again = await reader.get(
        f"{path}.csv", params={"map": "2025-07-01"}, headers={"If-None-Match": table.headers["etag"]}
    )
    assert (again.status_code, again.headers["etag"]) == (304, table.headers["etag"])
    assert table.headers["cache-control"] == "public, max-age=30"


async def test_series_alerts_and_registry_from_postgresql(
    pipeline: StackSettings, reader: httpx.AsyncClient
) -> None:
    await _scenario_stored(pipeline)
    series = (await reader.get(f"/v1/series/{INDICATOR}/national", params={"to": "2024-H2"})).json()
    assert series["scope_name"] == "National"
    assert PERIOD in [p["rollup"]["period"] for p in series["points"]]
    periods = [p["rollup"]["period"] for p in series["points"]]
    assert periods == sorted(periods)

    conn = await asyncpg.connect(pipeline.database_url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM alert_history")
    finally:
        await conn.close()
    alerts: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = (await reader.get("/v1/alerts", params={"offset": offset, "limit": 50})).json()
        alerts += page["items"]
        offset = page["next_offset"]
    assert len(alerts) >= stored  # the alert tests may add transitions meanwhile
    changed = [a["changed_at"] for a in alerts]
    assert changed == sorted(changed)

    ninh_thuan = (await reader.get("/v1/registry/reporters/province:58")).json()
    assert (ninh_thuan["name"], ninh_thuan["valid_to"], ninh_thuan["successor"]) == (
        "Ninh Thuan",
        "2025-06-30",
        "province:56",
    )


async def test_reporters_values_need_a_read_token_and_by_default_everything_does(
    pipeline: StackSettings,
) -> None:
    await _scenario_stored(pipeline)
    values = f"http://127.0.0.1:{pipeline.query_port}/v1/reporters/province:58/values"
    async with (
        temporary_tokens(pipeline.database_url, [READER, "province:58"], "query-api-test") as tokens,
        httpx.AsyncClient(timeout=30) as http,
    ):
        refused = await http.get(values)
        assert (refused.status_code, refused.headers["content-type"]) == (401, "application/problem+json")
        as_reporter = await http.get(values, headers={"Authorization": f"Bearer {tokens['province:58']}"})
        assert as_reporter.status_code == 401
        as_reader = await http.get(values, headers={"Authorization": f"Bearer {tokens[READER]}"})
        assert as_reader.status_code == 200
        assert as_reader.headers["cache-control"].startswith("private")
        read_token = tokens[READER]
    async with httpx.AsyncClient(timeout=30) as http:
        revoked = await http.get(values, headers={"Authorization": f"Bearer {read_token}"})
    assert revoked.status_code == 401  # revoked when the block above ended

    # The API as deployed by default (this stack sets DXPULSE_QUERY_PUBLIC), on the same PostgreSQL.
    app = create_app(QuerySettings(database_url=pipeline.database_url, query_public=False))
    async with (
        temporary_tokens(pipeline.database_url, [READER], "query-api-test") as tokens,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://query") as http,
    ):
        assert (await http.get("/v1/rollups")).status_code == 401
        authorized = await http.get("/v1/rollups", headers={"Authorization": f"Bearer {tokens[READER]}"})
        assert authorized.status_code == 200
        assert authorized.headers["cache-control"].startswith("private")
        assert (await http.get("/healthz")).status_code == 200


async def test_remap_command_reads_the_history_and_prints_numerators(pipeline: StackSettings) -> None:
    latest = await _scenario_stored(pipeline)
    args = ["remap", INDICATOR, PERIOD, "--map-date", "2025-07-01", "--database-url", pipeline.database_url]
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "province:" in line}
    assert len(rows) == 34
    cells = [cell.strip() for cell in rows["province:56"].split("│")[1:-1]]
    numerator = latest["province:56"][0] + latest["province:58"][0]
    denominator = latest["province:56"][1] + latest["province:58"][1]
    assert cells[:3] == ["province:56", "Khanh Hoa", "56, 58"]
    assert cells[3].startswith(f"{numerator:,.0f}/{denominator:,.0f} = ")


async def test_remap_compares_2024_on_the_2025_map_with_2025_h2(pipeline: StackSettings) -> None:
    """On a database of its own: the history writer's latest values, written as it writes them."""
    khanh_hoa_2025 = next(r for r in emc_reports_2025_h2() if r.reporter == "province:56")
    emc = [r for r in sample_reports() if r.indicator == "emc_connection"]
    ninh_thuan_off = restated(next(r for r in emc if r.reporter == "province:58"), connected=False, minutes=5)
    name = f"remap_{uuid.uuid4().hex[:8]}"
    await _admin(pipeline.database_url, f'CREATE DATABASE "{name}"')
    try:
        dsn = _other_database(pipeline.database_url, name)
        await apply_migrations(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await write_latest(conn, [*emc, ninh_thuan_off, khanh_hoa_2025])
        finally:
            await conn.close()
        args = ["remap", "emc_connection", "2024-H1", "--compare", "2025-H2", "--map-date", "2025-07-01"]
        result = await asyncio.to_thread(CliRunner().invoke, cli_app, [*args, "--database-url", dsn])
    finally:
        await _admin(pipeline.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "province:" in line}
    assert len(rows) == 34
    cells = [cell.strip() for cell in rows["province:56"].split("│")[1:-1]]
    assert cells == ["province:56", "Khanh Hoa", "56, 58", "1/2 = 50.0%", "1/1 = 100.0%"]
    assert [c.strip() for c in rows["province:01"].split("│")[1:-1]][3:] == ["1/1 = 100.0%", "not reported"]

"""The scoreboard's pages over the sample scenario in memory: what they show, escape and link."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
from fastapi import FastAPI

from dxpulse.domain.catalog import Catalog, default_catalog
from dxpulse.domain.registry import Registry
from dxpulse.domain.scenario import sample_reports
from services.query.scoreboard.pages import Scoreboard, next_milestone_text
from services.query.scoreboard.routes import CONTENT_SECURITY_POLICY, get_scoreboard, install_scoreboard
from tests.unit.query.scoreboard_fakes import MemoryReads

TODAY = date(2026, 1, 1)
"""A day on the map of 34 provinces."""


def _client(catalog: Catalog, registry: Registry) -> httpx.AsyncClient:
    app = FastAPI()
    install_scoreboard(app, public=True)
    reads = MemoryReads(catalog, registry, sample_reports(catalog, registry))
    board = Scoreboard(catalog, registry, reads, 5.0, today=lambda: TODAY)  # type: ignore[arg-type]
    app.dependency_overrides[get_scoreboard] = lambda: board
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoreboard")


@pytest.fixture
async def client(catalog: Catalog, registry: Registry) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(catalog, registry) as http:
        yield http


def _row(page: str, indicator: str) -> str:
    found = re.search(rf'<tr class="" data-indicator="{indicator}">(.*?)</tr>', page)
    assert found is not None, indicator
    return re.sub(r"<[^>]+>", " ", found.group(1))


async def test_the_national_page_shows_every_seed_figure_with_its_target(client: httpx.AsyncClient) -> None:
    answer = await client.get("/", params={"period": "2024-H1"})

    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page = answer.text
    assert "97.6%" in _row(page, "emc_connection")
    assert "82/84" in _row(page, "emc_connection")
    assert "100.0% by 2024-12-31" in _row(page, "emc_connection")
    assert "15/22" in _row(page, "gov_reporting_connection")
    assert "42.0%" in _row(page, "online_records_rate")
    assert "256/896" in _row(page, "low_signal_villages_broadband")
    assert "104.9%" in _row(page, "digital_tech_enterprises")
    assert "Target achieved" in _row(page, "digital_tech_enterprises")
    assert "43/53" in _row(page, "essential_public_services")
    # Only its own style sheet and script; no other origin anywhere.
    assert re.findall(r'(?:src|href)="(https?:[^"]*)"', page) == []


async def test_the_period_defaults_to_the_newest_half_with_figures(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    assert '<option value="2024-H1" selected>' in page


async def test_names_from_the_catalog_are_escaped(catalog: Catalog, registry: Registry) -> None:
    hostile = [
        i.model_copy(update={"name": "<script>alert(1)</script>"}) if i.id == "emc_connection" else i
        for i in catalog.indicators
    ]
    async with _client(Catalog(indicators=tuple(hostile)), registry) as http:
        page = (await http.get("/", params={"period": "2024-H1"})).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_the_indicator_page_draws_63_tiles_and_34_on_todays_map(client: httpx.AsyncClient) -> None:
    period_map = (await client.get("/indicators/digital_tech_enterprises", params={"period": "2024-H1"})).text
    today_map = (
        await client.get("/indicators/digital_tech_enterprises", params={"period": "2024-H1", "map": "today"})
    ).text

    assert period_map.count('<g class="tile') == 63
    assert today_map.count('<g class="tile') == 34
    values = {
        unit: float(value)
        for unit, value in re.findall(
            r'data-unit="([^"]+)" data-fill="[^"]+" data-value="([^"]+)"', today_map
        )
    }
    sent = {
        r.reporter: r.value.value
        for r in sample_reports()
        if r.indicator == "digital_tech_enterprises" and r.value.kind == "count"
    }
    assert values["province:79"] == sent["province:74"] + sent["province:77"] + sent["province:79"]
    assert sum(values.values()) == 50_350


async def test_a_unit_formed_later_shows_the_units_it_was_formed_from(client: httpx.AsyncClient) -> None:
    page = (await client.get("/units/ministry:MAE", params={"period": "2024-H1"})).text
    assert "did not exist in 2024-H1" in page
    # Agriculture and Natural Resources were both connected to EMC in the sample.
    assert "100.0% 2/2" in _row(page, "emc_connection")


async def test_unknown_names_are_a_404_page(client: httpx.AsyncClient) -> None:
    answer = await client.get("/indicators/no_such_indicator")
    assert answer.status_code == 404
    assert "no indicator 'no_such_indicator'" in answer.text.replace("&#x27;", "'")
    assert (await client.get("/units/province:00")).status_code == 404


async def test_the_marker_and_the_assets_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/scoreboard/marker")).json() == {"marker": "1"}
    script = await client.get("/scoreboard/assets/scoreboard.js")
    assert script.status_code == 200
    assert "replaceWith" in script.text
    assert (await client.get("/scoreboard/assets/scoreboard.css")).status_code == 200


async def test_a_period_of_another_type_shows_the_indicators_own_period(client: httpx.AsyncClient) -> None:
    page = (await client.get("/indicators/vneid_accounts", params={"period": "2024-H1"})).text
    assert '<option value="2024" selected>' in page
    assert "No figures for this period yet" in page


async def test_2024_pages_name_units_as_they_were_named_then(client: httpx.AsyncClient) -> None:
    page = (await client.get("/indicators/emc_connection", params={"period": "2024-H1"})).text
    # Province 15 was Yên Bái until the 2025 merger made it Lào Cai (with old 10, Lào Cai).
    assert "<title>Yen Bai:" in page
    assert page.count("<title>Lao Cai:") == 1


async def test_todays_map_ranks_todays_provinces_with_the_units_that_formed_them(
    client: httpx.AsyncClient,
) -> None:
    page = (
        await client.get("/indicators/digital_tech_enterprises", params={"period": "2024-H1", "map": "today"})
    ).text
    today = page.split('class="ranking today"')[1].split("</table>")[0]
    assert today.count("<tr class=") == 34
    ho_chi_minh = today.split('data-unit="province:79"')[1].split("</tr>")[0]
    assert "Binh Duong, Ba Ria - Vung Tau, Ho Chi Minh" in ho_chi_minh
    assert "3/3" in ho_chi_minh
    period_map = (await client.get("/indicators/digital_tech_enterprises", params={"period": "2024-H1"})).text
    assert 'class="ranking today"' not in period_map


def test_the_target_cell_names_the_next_milestone_when_another_is_ahead() -> None:
    catalog = default_catalog()
    online = catalog["adults_online_public_services"]
    assert [m.deadline.isoformat() for m in online.milestones] == ["2024-12-31", "2025-12-31"]
    # 2024-H1 is judged against the 2024 milestone; on 2025-03-01 the 2025 one is the next.
    assert next_milestone_text(online, "2024-H1", date(2025, 3, 1)).startswith("next: 50.0% by 2025-12-31")
    # The milestone ahead is the one the period is judged against: nothing to add.
    assert next_milestone_text(online, "2025-H1", date(2025, 3, 1)) == ""
    # Every deadline passed, or a single target in force: nothing either.
    assert next_milestone_text(online, "2024-H1", date(2026, 1, 1)) == ""
    emc = catalog["emc_connection"]
    assert next_milestone_text(emc, "2024-H1", date(2024, 3, 1)) == ""

"""The web scoreboard in a real browser (Debian's chromium) on the real stack with the sample scenario.

Asserts what a reader sees: the six seed-004 figures with their names and targets, the tile map's
colours, 2024 summed onto today's 34 provinces, the alerts, and a page redrawing itself when a
new report arrives. Screenshots go to $DXPULSE_TEST_ARTIFACTS/scoreboard (tests/artifacts by default).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from dxpulse.client import send_as_reporters
from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.scenario import sample_reports
from dxpulse.domain.scoreboard import NO_REPORT_COLOUR, colour, score, unit_value
from dxpulse.postgres.token_store import temporary_tokens
from dxpulse.stack.settings import StackSettings
from schemas import CountValue, RatioValue, Report, Rollup

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("DXPULSE_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))

LIVE_INDICATOR, LIVE_PERIOD, LIVE_REPORTER = "low_signal_villages_broadband", "2023-H2", "province:93"
"""A figure no other test reports: the live-update test sends its first report."""

SEED_004 = {
    # indicator: the texts its row must show (value, fraction, per-group figures, target, attainment)
    "emc_connection": (
        "Procedure systems connected to EMC",
        "97.6%",
        "82/84",
        "19/21",
        "63/63",
        "100.0% by 2024-12-31",
    ),
    "gov_reporting_connection": (
        "Reporting systems connected to the Government reporting system",
        "91.8%",
        "78/85",
        "15/22",
        "63/63",
        "100.0% by 2024-12-31",
    ),
    "online_records_rate": (
        "Administrative procedure records filed online",
        "42.0%",
        "(61.0%)",
        "(17.0%)",
        "50.0% by 2025-12-31",
    ),
    "low_signal_villages_broadband": (
        "Villages with low signal covered by mobile broadband",
        "28.6%",
        "256/896",
        "100.0% by 2025-12-31",
    ),
    "digital_tech_enterprises": (
        "Digital-technology enterprises",
        "50,350",
        "48,000 by 2024-12-31",
        "104.9%",
    ),
    "essential_public_services": (
        "Essential public services deployed (Project 06)",
        "81.1%",
        "43/53",
        "100.0% by 2024-12-31",
    ),
}

T = TypeVar("T")


def _until(what: str, probe: Callable[[], T | None], timeout_s: float = 300.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(1)


def _rgb(hex_colour: str) -> str:
    """A #rrggbb colour as the browser's computed style writes it."""
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


async def _send(pipeline: StackSettings, reports: list[Report]) -> list[str]:
    async with temporary_tokens(pipeline.database_url, {r.reporter for r in reports}, "scoreboard") as tokens:
        sent = await send_as_reporters(f"http://127.0.0.1:{pipeline.ingest_port}", tokens, reports)
    return [outcome.reason for _, outcome in sent if not outcome.ok]


async def _national_figures(pipeline: StackSettings, period: str) -> list[Rollup]:
    """The seed indicators' national figures of ``period`` as the history writer stored them."""
    connection = await asyncpg.connect(pipeline.database_url)
    try:
        rows = await connection.fetch(
            "SELECT body FROM rollup_current WHERE period = $1 AND scope = 'national'", period
        )
    finally:
        await connection.close()
    figures = [Rollup.model_validate_json(row["body"]) for row in rows]
    return [f for f in figures if f.indicator in SEED_004]


@pytest.fixture(scope="module")
def scenario(pipeline: StackSettings) -> str:
    """The sample scenario sent (again: its event ids make that a no-op) and stored by the history
    writer; the scoreboard's base URL."""
    assert asyncio.run(_send(pipeline, sample_reports())) == []

    def settled() -> bool:
        figures = asyncio.run(_national_figures(pipeline, "2024-H1"))
        return len(figures) == 6 and all(
            f.reporters_reported
            == (1 if f.indicator == "essential_public_services" else f.reporters_expected)
            for f in figures
        )

    _until("the scenario's figures in the history tables", settled)
    return f"http://127.0.0.1:{pipeline.query_port}"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    for program in (CHROMIUM, CHROMEDRIVER):
        assert program.exists(), f"no {program}: apt-get install chromium chromium-driver (scripts/bootstrap)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in containers and CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(browser: webdriver.Chrome, name: str) -> Path:
    """The whole page as a PNG in the artifacts folder."""
    folder = ARTIFACTS / "scoreboard"
    folder.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    # The window's frame takes some of its height: 200 px to spare keeps the whole page in the picture.
    browser.set_window_size(1400, min(int(height) + 200, 6000))
    path = folder / f"{name}.png"
    assert browser.save_screenshot(str(path))
    browser.set_window_size(1400, 1000)
    return path


def _tiles(browser: webdriver.Chrome) -> dict[str, dict[str, Any]]:
    """Every tile of the map: its unit, its painted fill and the value it stands for."""
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.tiles g.tile')).map(g => ["
        " g.dataset.unit, getComputedStyle(g.querySelector('rect')).fill, g.dataset.value,"
        " g.querySelector('text.value').textContent])"
    )
    return {unit: {"fill": fill, "value": value, "text": text} for unit, fill, value, text in rows}


def test_national_page_shows_the_six_seed_figures_with_names_and_targets(
    scenario: str, browser: webdriver.Chrome
) -> None:
    browser.get(f"{scenario}/?period=2024-H1")

    for indicator, texts in SEED_004.items():
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-indicator="{indicator}"]')
        for text in texts:
            assert text in row.text, f"{indicator}: {text!r} not in {row.text!r}"
    progress = {
        i: browser.find_element(By.CSS_SELECTOR, f'tr[data-indicator="{i}"] .badge').text
        for i in ("emc_connection", "online_records_rate", "digital_tech_enterprises")
    }
    assert progress == {
        "emc_connection": "On track",
        "online_records_rate": "On track",
        "digital_tech_enterprises": "Target achieved",
    }
    # Air-gapped: everything the page loaded came from the query service itself.
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded
    assert [name for name in loaded if not name.startswith(scenario + "/")] == []
    _screenshot(browser, "national")


def test_indicator_page_colours_each_province_by_its_value(scenario: str, browser: webdriver.Chrome) -> None:
    indicator = default_catalog()["digital_tech_enterprises"]
    sent = {
        r.reporter: unit_value(indicator, r.value) for r in sample_reports() if r.indicator == indicator.id
    }
    largest = max(v for v in sent.values() if v is not None)

    browser.get(f"{scenario}/indicators/{indicator.id}?period=2024-H1")

    tiles = _tiles(browser)
    assert len(tiles) == 63
    expected = {unit: _rgb(colour(score(indicator, value, largest))) for unit, value in sent.items()}
    assert {unit: tile["fill"] for unit, tile in tiles.items()} == expected
    # The scale runs from light to dark: the smallest and the largest count differ.
    assert len(set(expected.values())) > 1
    ranking = browser.find_element(By.CSS_SELECTOR, "table.ranking")
    first = min(sent, key=lambda unit: (-(sent[unit] or 0), unit))  # ties by id, as the ranking
    assert f"{sent[first]:,.0f}" in ranking.find_element(By.CSS_SELECTOR, "tbody tr").text
    _screenshot(browser, "indicator-digital-tech-enterprises")


def test_2024_on_todays_map_sums_the_old_provinces(scenario: str, browser: webdriver.Chrome) -> None:
    registry = default_registry()
    reports = [r for r in sample_reports() if r.indicator == "digital_tech_enterprises"]
    today = datetime.now(UTC).date()
    sums: dict[str, float] = {}
    for report in reports:
        successor = registry.current_successor(report.reporter, today)
        assert successor is not None
        assert isinstance(report.value, CountValue)
        sums[successor] = sums.get(successor, 0) + report.value.value

    browser.get(f"{scenario}/indicators/digital_tech_enterprises?period=2024-H1&map=today")

    tiles = _tiles(browser)
    assert len(tiles) == 34 == len(sums)
    assert {unit: float(tile["value"]) for unit, tile in tiles.items()} == sums
    # Ho Chi Minh City of today is old 74, 77 and 79 taken together.
    old = {r.reporter: r.value.value for r in reports if isinstance(r.value, CountValue)}
    assert (
        float(tiles["province:79"]["value"]) == old["province:74"] + old["province:77"] + old["province:79"]
    )
    assert "on today's map" in browser.find_element(By.CSS_SELECTOR, "section.map h2").text
    _screenshot(browser, "indicator-on-todays-map")


def test_unit_page_shows_one_province_against_the_national_figures(
    scenario: str, browser: webdriver.Chrome
) -> None:
    browser.get(f"{scenario}/units/province:79?period=2024-H1")

    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-indicator="emc_connection"]')
    assert "connected" in row.text
    assert "97.6% 82/84" in row.text
    enterprises = browser.find_element(By.CSS_SELECTOR, 'tr[data-indicator="digital_tech_enterprises"]')
    sent = next(
        r.value.value
        for r in sample_reports()
        if (r.reporter, r.indicator) == ("province:79", "digital_tech_enterprises")
        and isinstance(r.value, CountValue)
    )
    assert f"{sent:,.0f}" in enterprises.text
    assert "50,350" in enterprises.text
    _screenshot(browser, "unit-province-79")


def test_indicator_page_lists_the_alerts_firing_for_it(scenario: str, browser: webdriver.Chrome) -> None:
    # 97.6% after the 2024-12-31 deadline: below_target fires on the national figure.
    browser.get(f"{scenario}/indicators/emc_connection?period=2024-H1")

    def below_target_listed() -> bool:
        browser.refresh()
        tables = browser.find_elements(By.CSS_SELECTOR, "table.alerts")
        return bool(tables) and "below target" in tables[0].text and "2024-H1" in tables[0].text

    _until("a below_target alert on the emc_connection page", below_target_listed)
    _screenshot(browser, "indicator-emc-connection-alerts")


def test_page_redraws_itself_when_a_new_report_arrives(
    pipeline: StackSettings, scenario: str, browser: webdriver.Chrome
) -> None:
    indicator = default_catalog()[LIVE_INDICATOR]
    browser.get(f"{scenario}/indicators/{LIVE_INDICATOR}?period={LIVE_PERIOD}")
    assert "No figures for this period yet" in browser.find_element(By.ID, "headline").text
    assert _tiles(browser)[LIVE_REPORTER]["fill"] == _rgb(NO_REPORT_COLOUR)
    # A reload would drop this; the live update keeps the page and only swaps its content.
    browser.execute_script("window.sameDocument = true")

    report = Report(
        event_id=uuid.uuid4(),
        reporter=LIVE_REPORTER,
        indicator=LIVE_INDICATOR,
        period=LIVE_PERIOD,
        observed_at=datetime.combine(parse_period(LIVE_PERIOD).end, datetime.min.time(), UTC),
        value=RatioValue(numerator=30, denominator=40),
    )
    assert asyncio.run(_send(pipeline, [report])) == []

    def redrawn() -> bool:
        return bool(_tiles(browser)[LIVE_REPORTER]["fill"] != _rgb(NO_REPORT_COLOUR))

    _until("the page redrawn with the new report", redrawn)
    assert browser.execute_script("return window.sameDocument") is True
    assert int(browser.execute_script("return document.body.dataset.redraws")) >= 1
    assert _tiles(browser)[LIVE_REPORTER]["fill"] == _rgb(colour(score(indicator, 0.75, None)))
    assert "75.0%" in browser.find_element(By.ID, "headline").text
    assert _tiles(browser)["province:01"]["fill"] == _rgb(NO_REPORT_COLOUR)
    _screenshot(browser, "live-update")

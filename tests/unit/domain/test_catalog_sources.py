"""The packaged catalog against its sources: every indicator names seed reports, and the reference page
maps every indicator to the seed figures it carries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dxpulse.domain.catalog import Catalog

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "reference" / "catalog.md"
SEEDS = ROOT.parent / "shared" / "seeds"
"""Where the seed reports sit beside a checkout of the repository."""

SOURCE = re.compile(r"seeds? (?P<numbers>\d{3}(?:, \d{3})*): \S")
"""How an indicator's ``source`` starts: "seed 004: ..." or "seeds 000, 002: ..."."""


def seed_files() -> dict[str, str]:
    """Seed number → file name, as the page lists them (`000_540388bee86d548a.txt`)."""
    return {name[:3]: name for name in re.findall(r"`(\d{3}_[0-9a-f]{16}\.txt)`", PAGE.read_text())}


def mapped_indicators() -> list[str]:
    """The indicator column of the page's table of seed figures, row by row."""
    section = PAGE.read_text().split("## Seed figures and their indicators", 1)[1]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| 0")]
    return [match[1] for row in rows if (match := re.fullmatch(r"\s*`([a-z0-9_]+)`\s*", row[3]))]


def test_every_indicator_names_seeds_the_page_lists(catalog: Catalog) -> None:
    listed = seed_files()
    assert sorted(listed) == ["000", "001", "002", "003", "004"]
    wrong = {}
    for indicator in catalog.indicators:
        match = SOURCE.match(indicator.source)
        numbers = match["numbers"].split(", ") if match else []
        if not numbers or any(number not in listed for number in numbers):
            wrong[indicator.id] = indicator.source
    assert wrong == {}


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"no seed reports at {SEEDS}")
def test_the_seed_files_the_page_lists_exist() -> None:
    assert sorted(seed_files().values()) == sorted(path.name for path in SEEDS.glob("*.txt"))


def test_the_page_maps_every_indicator_once(catalog: Catalog) -> None:
    mapped = mapped_indicators()
    assert sorted(mapped) == sorted(indicator.id for indicator in catalog.indicators)
    assert len(mapped) == len(set(mapped))


def test_the_page_names_each_indicators_seeds(catalog: Catalog) -> None:
    section = PAGE.read_text().split("## Seed figures and their indicators", 1)[1]
    seeds_of = {
        row[3].strip(" `"): row[1].strip()
        for row in (line.split("|") for line in section.splitlines())
        if len(row) > 3
    }
    differ = {
        indicator.id: (seeds_of.get(indicator.id), match["numbers"])
        for indicator in catalog.indicators
        if (match := SOURCE.match(indicator.source)) and seeds_of.get(indicator.id) != match["numbers"]
    }
    assert differ == {}

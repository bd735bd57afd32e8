"""The reporter registry: units and groups in force on a day, and the successors of retired units."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from importlib import resources

import pytest

from dxpulse.domain.registry import (
    MINISTRIES_MERGED_ON,
    PROVINCES_MERGED_ON,
    Registry,
    ReporterKind,
)

END_2024 = date(2024, 12, 31)


def _reference(name: str) -> list[dict[str, str]]:
    text = resources.files("dxpulse.data").joinpath("registry", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_cutover_dates_are_the_published_ones() -> None:
    assert date(2025, 3, 1) == MINISTRIES_MERGED_ON
    assert date(2025, 7, 1) == PROVINCES_MERGED_ON


@pytest.mark.parametrize(
    ("group", "day", "size"),
    [
        ("provinces", END_2024, 63),
        ("provinces", date(2025, 6, 30), 63),
        ("provinces", date(2025, 7, 1), 34),
        ("provinces", date(2025, 12, 31), 34),
        ("ministries", END_2024, 22),
        ("ministries", date(2025, 2, 28), 22),
        ("ministries", date(2025, 3, 1), 17),
        ("ministries_with_procedures", END_2024, 21),
        ("ministries_with_procedures", date(2024, 6, 30), 21),
        ("ministries_with_procedures", date(2025, 3, 1), 16),
        ("national", END_2024, 2),
        ("national", date(2025, 3, 1), 2),
    ],
)
def test_group_size_on_day(registry: Registry, group: str, day: date, size: int) -> None:
    assert len(registry.members(group, day)) == size


def test_ministries_with_procedures_are_the_ministries_without_the_government_office(
    registry: Registry,
) -> None:
    assert registry.members("ministries", END_2024) - registry.members(
        "ministries_with_procedures", END_2024
    ) == {"ministry:GO"}


def test_national_bodies_change_with_the_ministry_merger(registry: Registry) -> None:
    assert registry.members("national", date(2025, 2, 28)) == {"national:MIC", "national:MPS"}
    assert registry.members("national", date(2025, 3, 1)) == {"national:MOST", "national:MPS"}
    assert registry.current_successor("national:MIC", date(2025, 3, 1)) == "national:MOST"


def test_khanh_hoa_succeeds_ninh_thuan_from_july_2025(registry: Registry) -> None:
    ninh_thuan = registry.get("province:58")
    assert ninh_thuan is not None
    assert ninh_thuan.active_on(date(2025, 6, 30))
    assert not ninh_thuan.active_on(date(2025, 7, 1))
    assert registry.current_successor("province:58", date(2025, 7, 1)) == "province:56"
    khanh_hoa = registry.get("province:56")
    assert khanh_hoa is not None
    assert khanh_hoa.name == "Khanh Hoa"
    assert "province:58" in khanh_hoa.merged_from


@pytest.mark.parametrize(
    ("retired", "group", "day", "successor"),
    [
        ("province:02", "provinces", PROVINCES_MERGED_ON, "province:08"),
        ("province:58", "provinces", PROVINCES_MERGED_ON, "province:56"),
        ("province:74", "provinces", PROVINCES_MERGED_ON, "province:79"),
        ("ministry:MIC", "ministries", MINISTRIES_MERGED_ON, "ministry:MOST"),
        ("ministry:MOLISA", "ministries", MINISTRIES_MERGED_ON, "ministry:MOHA"),
        ("ministry:CEMA", "ministries", MINISTRIES_MERGED_ON, "ministry:MEMR"),
    ],
)
def test_retired_unit_has_current_successor(
    registry: Registry, retired: str, group: str, day: date, successor: str
) -> None:
    assert registry.current_successor(retired, day) == successor
    assert retired not in registry.members(group, day)
    assert retired in registry.members(group, day - timedelta(days=1))
    assert successor in registry.members(group, day)


def test_current_successor_of_an_active_unit_is_itself(registry: Registry) -> None:
    assert registry.current_successor("province:58", END_2024) == "province:58"
    assert registry.current_successor("province:01", date(2025, 7, 1)) == "province:01"


def test_current_successor_of_an_unknown_unit_is_none(registry: Registry) -> None:
    assert registry.current_successor("province:99", END_2024) is None


@pytest.mark.parametrize(
    ("reporter", "group"),
    [("province:01", "provinces"), ("province:79", "provinces"), ("ministry:MOH", "ministries")],
)
def test_continuing_unit_is_active_on_both_sides_of_the_merger(
    registry: Registry, reporter: str, group: str
) -> None:
    for day in (END_2024, date(2025, 2, 28), date(2025, 3, 1), date(2025, 7, 1), date(2026, 1, 1)):
        assert reporter in registry.members(group, day), day


def test_new_2025_unit_is_not_active_before_the_merger(registry: Registry) -> None:
    assert "ministry:MAE" not in registry.members("ministries", date(2025, 2, 28))
    assert "ministry:MAE" in registry.members("ministries", date(2025, 3, 1))


@pytest.mark.parametrize(
    ("kind", "group", "before", "after", "cutover"),
    [
        ("province", "provinces", "provinces_2024.csv", "provinces_2025.csv", PROVINCES_MERGED_ON),
        ("ministry", "ministries", "ministries_2024.csv", "ministries_2025.csv", MINISTRIES_MERGED_ON),
    ],
)
def test_every_retiring_2024_unit_has_a_successor_in_the_2025_list(
    registry: Registry, kind: ReporterKind, group: str, before: str, after: str, cutover: date
) -> None:
    old_rows = _reference(before)
    new_rows = _reference(after)
    new_ids = {f"{kind}:{row['code']}" for row in new_rows}
    merged_from = {
        f"{kind}:{row['code']}": {f"{kind}:{c}" for c in row["merged_from"].split(";") if c}
        for row in new_rows
    }
    eve = cutover - timedelta(days=1)
    retiring = [row for row in old_rows if f"{kind}:{row['code']}" not in new_ids]
    assert retiring, "the reference lists should retire some units"
    for row in old_rows:
        unit = f"{kind}:{row['code']}"
        named = f"{kind}:{row['successor_2025']}"
        assert named in new_ids, unit
        assert unit in merged_from[named], unit
        assert registry.current_successor(unit, cutover) == named, unit
        assert registry.current_successor(unit, eve) == unit, unit
    for row in retiring:
        reporter = registry.get(f"{kind}:{row['code']}")
        assert reporter is not None
        assert reporter.valid_to == eve
        assert not reporter.active_on(cutover)
        assert reporter.successor == f"{kind}:{row['successor_2025']}"
    assert registry.members(group, eve) == {f"{kind}:{row['code']}" for row in old_rows}
    assert registry.members(group, cutover) == new_ids


def test_expected_is_the_union_of_the_groups(registry: Registry) -> None:
    ministries = registry.members("ministries_with_procedures", END_2024)
    provinces = registry.members("provinces", END_2024)
    expected = registry.expected(["ministries_with_procedures", "provinces"], END_2024)
    assert expected == ministries | provinces
    assert len(expected) == 84


def test_expected_counts_overlapping_groups_once(registry: Registry) -> None:
    assert len(registry.expected(["ministries", "ministries_with_procedures"], END_2024)) == 22
    assert len(registry.expected(["ministries", "provinces"], END_2024)) == 85
    assert registry.expected([], END_2024) == frozenset()


def test_expected_after_both_mergers_is_16_plus_34(registry: Registry) -> None:
    expected = registry.expected(["ministries_with_procedures", "provinces"], date(2025, 12, 31))
    assert len(expected) == 50

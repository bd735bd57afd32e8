"""A third, made-up list of provinces: units, successors, validation and rollups follow it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Registry, load_registry
from dxpulse.domain.rollup import compute_rollups
from dxpulse.domain.validation import Accepted, Problem, validate_report
from tests.unit.conftest import make_report, ratio
from tests.unit.domain.data_files import MERGED_2027, add_2027_provinces, packaged_registry_copy

NOW = datetime(2027, 8, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry_2027(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    folder = packaged_registry_copy(tmp_path_factory.mktemp("data") / "registry")
    add_2027_provinces(folder)
    return load_registry(folder)


def test_the_third_list_changes_the_provinces_from_its_day(registry_2027: Registry) -> None:
    assert len(registry_2027.members("provinces", date(2024, 12, 31))) == 63
    assert len(registry_2027.members("provinces", date(2026, 12, 31))) == 34
    assert len(registry_2027.members("provinces", MERGED_2027)) == 33
    assert "province:08" in registry_2027.members("provinces", date(2026, 12, 31))
    assert "province:08" not in registry_2027.members("provinces", MERGED_2027)


def test_units_span_the_lists_they_are_on(registry_2027: Registry) -> None:
    tuyen_quang = registry_2027.get("province:08")
    assert tuyen_quang is not None
    assert (tuyen_quang.valid_from, tuyen_quang.valid_to) == (None, date(2026, 12, 31))
    assert tuyen_quang.successor == "province:04"
    assert tuyen_quang.merged_from == ("province:02", "province:08")
    cao_bang = registry_2027.get("province:04")
    assert cao_bang is not None
    assert (cao_bang.valid_from, cao_bang.valid_to, cao_bang.successor) == (None, None, None)
    assert cao_bang.merged_from == ("province:04", "province:08")


def test_successors_are_followed_across_both_mergers(registry_2027: Registry) -> None:
    assert registry_2027.current_successor("province:02", date(2025, 6, 30)) == "province:02"
    assert registry_2027.current_successor("province:02", date(2026, 12, 31)) == "province:08"
    assert registry_2027.current_successor("province:02", MERGED_2027) == "province:04"
    assert registry_2027.current_successor("province:08", MERGED_2027) == "province:04"
    assert registry_2027.current_successor("province:58", MERGED_2027) == "province:56"


def test_the_earlier_lists_load_as_the_packaged_ones(registry_2027: Registry, registry: Registry) -> None:
    for day in (date(2024, 12, 31), date(2025, 3, 1), date(2025, 7, 1), date(2026, 12, 31)):
        for group in registry.groups:
            assert registry_2027.members(group, day) == registry.members(group, day), (group, day)


def test_reports_and_rollups_follow_the_list_in_force_at_the_period_end(registry_2027: Registry) -> None:
    catalog = default_catalog()
    indicator = catalog["low_signal_villages_broadband"]  # provinces only
    before = parse_period("2026-H2", indicator.period_type)
    after = parse_period("2027-H1", indicator.period_type)
    late = make_report("province:08", ratio(1, 2), indicator=indicator.id, period="2026-H2", observed_at=NOW)
    assert isinstance(validate_report(late, catalog, registry_2027, NOW), Accepted)
    retired = make_report(
        "province:08", ratio(1, 2), indicator=indicator.id, period="2027-H1", observed_at=NOW
    )
    refused = validate_report(retired, catalog, registry_2027, NOW)
    assert isinstance(refused, Problem)
    assert refused.type == "retired-reporter"
    assert "report as province:04" in refused.detail
    expected = {
        period.label: {
            r.scope: r.reporters_expected for r in compute_rollups(indicator, period, {}, registry_2027, NOW)
        }
        for period in (before, after)
    }
    assert expected == {
        "2026-H2": {"provinces": 34, "national": 34},
        "2027-H1": {"provinces": 33, "national": 33},
    }

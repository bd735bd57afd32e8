"""The indicator catalog: the packaged file loads with the seed indicators; bad catalogs are refused."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dxpulse.domain.catalog import Catalog, IndicatorKind, load_catalog, milestone_in_force
from dxpulse.domain.periods import PeriodType
from dxpulse.domain.registry import Registry

SEED_INDICATORS: dict[str, tuple[IndicatorKind, PeriodType]] = {
    "emc_connection": ("flag", "half"),
    "gov_reporting_connection": ("flag", "half"),
    "online_records_rate": ("ratio", "half"),
    "low_signal_villages_broadband": ("ratio", "half"),
    "digital_tech_enterprises": ("count", "half"),
    "essential_public_services": ("catalog", "half"),
    "records_digitisation_rate": ("ratio", "half"),
    "edw_connection": ("flag", "half"),
    "vneid_accounts": ("count", "year"),
    "households_fibre_rate": ("ratio", "year"),
    "adults_online_public_services": ("ratio", "year"),
}


def test_packaged_catalog_loads_and_matches_default(catalog: Catalog) -> None:
    assert load_catalog() == catalog
    assert len(catalog.indicators) >= len(SEED_INDICATORS)


@pytest.mark.parametrize(("indicator_id", "kind_and_period"), sorted(SEED_INDICATORS.items()))
def test_seed_indicator_is_in_catalog_with_kind_and_period_type(
    catalog: Catalog, indicator_id: str, kind_and_period: tuple[IndicatorKind, PeriodType]
) -> None:
    indicator = catalog.get(indicator_id)
    assert indicator is not None
    assert (indicator.kind, indicator.period_type) == kind_and_period
    assert catalog[indicator_id] is indicator


def test_essential_public_services_lists_53_distinct_items(catalog: Catalog) -> None:
    items = catalog["essential_public_services"].items
    assert len(items) == 53
    assert len(set(items)) == 53


@pytest.mark.parametrize(
    ("indicator_id", "value", "deadline"),
    [
        ("vneid_accounts", 40_000_000, date(2024, 12, 31)),
        ("households_fibre_rate", 0.8, date(2025, 12, 31)),
        ("adults_online_public_services", 0.4, date(2024, 12, 31)),
        ("adults_online_public_services", 0.5, date(2025, 12, 31)),
        ("security_platform_in_use", 1.0, date(2024, 12, 31)),
        ("industrial_park_firms_on_digital_platforms", 0.6, date(2024, 12, 31)),
        ("full_process_online_services_rate", 1.0, date(2025, 12, 31)),
        ("records_with_personal_id_rate", 1.0, date(2025, 12, 31)),
        ("procedure_satisfaction_rate", 0.9, date(2025, 12, 31)),
        ("population_data_procedures_reduced", 0.5, date(2025, 12, 31)),
        ("digital_tech_enterprises", 48_000, date(2024, 12, 31)),
        ("emc_connection", 1.0, date(2024, 12, 31)),
        ("gov_reporting_connection", 1.0, date(2024, 12, 31)),
    ],
)
def test_seed_target_value_and_deadline(
    catalog: Catalog, indicator_id: str, value: float, deadline: date
) -> None:
    target = milestone_in_force(catalog[indicator_id], str(deadline.year))
    assert target is not None
    assert (target.value, target.deadline) == (value, deadline)


def test_online_records_rate_baseline_is_17_percent_at_end_2023(catalog: Catalog) -> None:
    target = catalog["online_records_rate"].target
    assert target is not None
    assert target.baseline is not None
    assert (target.baseline.value, target.baseline.date) == (0.17, date(2023, 12, 31))


def test_emc_spans_ministries_with_procedures_and_provinces(catalog: Catalog) -> None:
    assert catalog["emc_connection"].groups == ("ministries_with_procedures", "provinces")
    assert catalog["gov_reporting_connection"].groups == ("ministries", "provinces")


def test_every_group_named_by_an_indicator_exists_in_registry(catalog: Catalog, registry: Registry) -> None:
    missing = {
        (indicator.id, group)
        for indicator in catalog.indicators
        for group in indicator.groups
        if group not in registry.groups
    }
    assert missing == set()


def test_unknown_indicator_is_none_with_get_and_keyerror_with_index(catalog: Catalog) -> None:
    assert catalog.get("no_such_indicator") is None
    with pytest.raises(KeyError):
        catalog["no_such_indicator"]


# --- invalid catalogs, written to tmp_path and loaded from there -------------------------------

_FLAG: dict[str, Any] = {
    "id": "some_flag",
    "name": "Some flag",
    "unit": "share of units",
    "kind": "flag",
    "period_type": "half",
    "groups": ["provinces"],
    "target": {"value": 1.0, "deadline": "2024-12-31"},
}
_CATALOG: dict[str, Any] = {
    "id": "some_catalog",
    "name": "Some catalog",
    "unit": "services",
    "kind": "catalog",
    "period_type": "year",
    "groups": ["national"],
    "items": ["a", "b", "c"],
}


def _write(tmp_path: Path, indicators: list[dict[str, Any]], **top: Any) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({**top, "indicators": indicators}), encoding="utf-8")
    return path


def test_valid_catalog_file_in_tmp_path_loads(tmp_path: Path) -> None:
    catalog = load_catalog(_write(tmp_path, [_FLAG, _CATALOG]))
    assert [i.id for i in catalog.indicators] == ["some_flag", "some_catalog"]
    assert catalog["some_catalog"].items == ("a", "b", "c")
    target = catalog["some_flag"].target
    assert target is not None
    assert target.deadline == date(2024, 12, 31)


def test_catalog_with_duplicate_ids_is_refused(tmp_path: Path) -> None:
    twin = {**_FLAG, "name": "Another name"}
    with pytest.raises(ValidationError, match="listed twice: some_flag"):
        load_catalog(_write(tmp_path, [_FLAG, _CATALOG, twin]))


def test_catalog_kind_without_items_is_refused(tmp_path: Path) -> None:
    entry = {k: v for k, v in _CATALOG.items() if k != "items"}
    with pytest.raises(ValidationError, match="needs its list of items"):
        load_catalog(_write(tmp_path, [entry]))


@pytest.mark.parametrize("kind", ["flag", "ratio", "count"])
def test_items_on_a_non_catalog_indicator_are_refused(tmp_path: Path, kind: str) -> None:
    entry = {**_FLAG, "kind": kind, "items": ["a"]}
    with pytest.raises(ValidationError, match="only catalogs have items"):
        load_catalog(_write(tmp_path, [entry]))


def test_catalog_item_listed_twice_is_refused(tmp_path: Path) -> None:
    entry = {**_CATALOG, "items": ["a", "b", "a"]}
    with pytest.raises(ValidationError, match="lists an item twice"):
        load_catalog(_write(tmp_path, [entry]))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "average"),
        ("period_type", "week"),
        ("groups", []),
        ("id", "Bad-Id"),
        ("unexpected", "field"),
        ("target", {"value": 0, "deadline": "2024-12-31"}),
        ("target", {"value": 1.0}),
    ],
)
def test_malformed_indicator_entry_is_refused(tmp_path: Path, field: str, value: Any) -> None:
    entry = copy.deepcopy(_FLAG)
    entry[field] = value
    with pytest.raises(ValidationError):
        load_catalog(_write(tmp_path, [entry]))


def test_catalog_without_indicators_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("something_else: []\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        load_catalog(path)


def test_first_period_must_be_of_the_indicators_period_type(tmp_path: Path) -> None:
    assert load_catalog(_write(tmp_path, [{**_FLAG, "first_period": "2024-H2"}]))["some_flag"].first_period
    with pytest.raises(ValidationError, match="first_period: period '2024' is a year"):
        load_catalog(_write(tmp_path, [{**_FLAG, "first_period": "2024"}]))


def test_earliest_period_start_defaults_to_2020_and_bounds_first_periods(tmp_path: Path) -> None:
    assert load_catalog(_write(tmp_path, [_FLAG])).earliest_period_start == date(2020, 1, 1)
    earlier = load_catalog(_write(tmp_path, [_FLAG], earliest_period_start="2015-01-01"))
    assert earlier.earliest_period_start == date(2015, 1, 1)
    with pytest.raises(ValidationError, match=r"never reportable: some_flag \(2024-H1\)"):
        load_catalog(
            _write(tmp_path, [{**_FLAG, "first_period": "2024-H1"}], earliest_period_start="2024-02-01")
        )

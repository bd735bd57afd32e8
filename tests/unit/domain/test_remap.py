"""2024 figures on the 2025 map: predecessors per unit, and figures regrouped without loss."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from dxpulse.domain.catalog import Catalog, default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Registry, default_registry
from dxpulse.domain.remap import levels_of, on_map_of, predecessors_on
from dxpulse.domain.scenario import sample_reports
from tests.unit.conftest import COMPUTED_AT, feed, flag, make_report, ratio

NEW_MAP = date(2025, 7, 1)
H1_2024 = parse_period("2024-H1")


def test_new_khanh_hoa_continues_old_56_and_58(registry: Registry) -> None:
    mapping = predecessors_on(registry, ("provinces",), H1_2024.end, NEW_MAP)
    assert mapping["province:56"] == {"province:56", "province:58"}
    assert mapping["province:01"] == {"province:01"}


def test_the_63_provinces_fall_into_the_34_exactly_once(registry: Registry) -> None:
    mapping = predecessors_on(registry, ("provinces",), H1_2024.end, NEW_MAP)
    assert len(mapping) == 34
    olds = [old for group in mapping.values() for old in group]
    assert len(olds) == len(set(olds)) == 63


def test_on_the_old_map_every_unit_is_its_own_predecessor(registry: Registry) -> None:
    mapping = predecessors_on(registry, ("provinces",), H1_2024.end, H1_2024.end)
    assert len(mapping) == 63
    assert all(olds == {unit} for unit, olds in mapping.items())


def test_ministries_map_22_onto_17(registry: Registry) -> None:
    mapping = predecessors_on(registry, ("ministries",), H1_2024.end, date(2025, 3, 1))
    assert len(mapping) == 17
    assert sum(len(olds) for olds in mapping.values()) == 22


def test_khanh_hoa_flag_counts_each_predecessor(catalog: Catalog, registry: Registry) -> None:
    reports = [make_report("province:56", flag(True)), make_report("province:58", flag(False))]
    state, _ = feed(reports, "emc_connection", "2024-H1")
    figures = {
        f.unit: f
        for f in on_map_of(catalog["emc_connection"], H1_2024, state.latest, registry, NEW_MAP, COMPUTED_AT)
    }
    khanh_hoa = figures["province:56"]
    assert khanh_hoa.name == "Khanh Hoa"
    assert khanh_hoa.predecessors == ("province:56", "province:58")
    assert (khanh_hoa.rollup.numerator, khanh_hoa.rollup.denominator) == (1, 2)
    assert khanh_hoa.rollup.lagging == ["province:58"]
    assert khanh_hoa.rollup.scope == "province:56"


def test_khanh_hoa_ratio_sums_numerators_and_denominators(catalog: Catalog, registry: Registry) -> None:
    reports = [
        make_report("province:56", ratio(30, 100), indicator="online_records_rate"),
        make_report("province:58", ratio(10, 300), indicator="online_records_rate"),
    ]
    state, _ = feed(reports, "online_records_rate", "2024-H1")
    indicator = catalog["online_records_rate"]
    figures = {f.unit: f for f in on_map_of(indicator, H1_2024, state.latest, registry, NEW_MAP, COMPUTED_AT)}
    rollup = figures["province:56"].rollup
    assert (rollup.numerator, rollup.denominator, rollup.value) == (40, 400, 0.1)
    assert rollup.not_reported == []


def test_sample_scenario_totals_are_the_same_on_either_map(catalog: Catalog, registry: Registry) -> None:
    for indicator_id, connected, expected in (
        ("emc_connection", 82, 84),
        ("online_records_rate", None, None),
    ):
        reports = [r for r in sample_reports() if r.indicator == indicator_id]
        state, _ = feed(reports, indicator_id, "2024-H1")
        indicator = catalog[indicator_id]
        figures = on_map_of(indicator, H1_2024, state.latest, registry, NEW_MAP, COMPUTED_AT)
        numerator = sum(f.rollup.numerator for f in figures)
        denominator = sum(f.rollup.denominator or 0 for f in figures)
        if connected is not None:
            assert (numerator, denominator) == (connected, expected)
        else:
            assert round(numerator / denominator, 2) == 0.42
        assert sum(f.rollup.reporters_expected for f in figures) == len(
            registry.expected(indicator.groups, H1_2024.end)
        )


@given(
    values=st.dictionaries(
        st.integers(min_value=0, max_value=62),
        st.tuples(st.integers(0, 1000), st.integers(1, 1000)).map(lambda nd: (min(nd), max(nd))),
        max_size=63,
    ),
    map_day=st.sampled_from([H1_2024.end, date(2025, 6, 30), NEW_MAP, date(2030, 1, 1)]),
)
@settings(max_examples=40, deadline=None)
def test_every_level_adds_up_on_any_map(values: dict[int, tuple[int, int]], map_day: date) -> None:
    """Whatever the provinces reported and whichever map: each unit's figure is its predecessors'
    sums, and the units of the group add up to the group's figure, which the national one is."""
    registry, catalog = default_registry(), default_catalog()
    provinces = sorted(registry.members("provinces", H1_2024.end))
    reports = [
        make_report(provinces[i], ratio(n, d), indicator="low_signal_villages_broadband")
        for i, (n, d) in values.items()
    ]
    state, _ = feed(reports, "low_signal_villages_broadband", "2024-H1")
    indicator = catalog["low_signal_villages_broadband"]
    levels = levels_of(indicator, H1_2024, state.latest, registry, map_day, COMPUTED_AT)
    reported = {provinces[i]: nd for i, nd in values.items()}
    (group,) = levels.groups
    assert (group.scope, levels.national.numerator) == ("provinces", group.numerator)
    assert len(levels.units) == (63 if map_day < date(2025, 7, 1) else 34)
    for unit in levels.units:
        olds = [p for p in unit.predecessors if p in reported]
        assert unit.rollup.numerator == sum(reported[p][0] for p in olds), unit.unit
        assert unit.rollup.denominator == sum(reported[p][1] for p in olds), unit.unit
        assert unit.rollup.reporters_reported == len(olds)
    assert sum(u.rollup.numerator or 0 for u in levels.units) == group.numerator
    assert sum(u.rollup.denominator or 0 for u in levels.units) == group.denominator
    assert sum(u.rollup.reporters_expected for u in levels.units) == group.reporters_expected == 63

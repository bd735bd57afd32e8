"""Rollups from reports, with the real registry and catalog: figures, scopes and snapshot semantics."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Group, Registry, Reporter
from dxpulse.domain.rollup import NATIONAL_SCOPE, PeriodState, Snapshot, apply, compute_rollups, scopes_of
from schemas import FlagValue, Report, Rollup
from schemas.events import ROLLUP_NAMES_LIMIT
from tests.unit.conftest import (
    COMPUTED_AT,
    OBSERVED,
    count,
    done,
    feed,
    flag,
    last_per_scope,
    make_report,
    ratio,
)

H1_2024_END = date(2024, 6, 30)
FALSE_MINISTRIES = ("ministry:MOD", "ministry:SBV")


def _rollups(
    reports: list[Report], indicator_id: str, period: str, catalog: Catalog, registry: Registry
) -> dict[str, Rollup]:
    state, _ = feed(reports, indicator_id, period)
    indicator = catalog[indicator_id]
    computed = compute_rollups(indicator, parse_period(period), state.latest, registry, COMPUTED_AT)
    return {r.scope: r for r in computed}


def _emc_seed_reports(registry: Registry, *, skip: frozenset[str] = frozenset()) -> list[Report]:
    """Seed 004: 19 of 21 ministries and 63 of 63 provinces connected to EMC in 2024-H1."""
    ministries = sorted(registry.members("ministries_with_procedures", H1_2024_END))
    provinces = sorted(registry.members("provinces", H1_2024_END))
    reports = [make_report(m, flag(m not in FALSE_MINISTRIES)) for m in ministries]
    reports += [make_report(p, flag(True), minutes=i) for i, p in enumerate(provinces)]
    return [r for r in reports if r.reporter not in skip]


# --- flags ---------------------------------------------------------------------------------------


def test_emc_seed_figures_per_scope(catalog: Catalog, registry: Registry) -> None:
    rollups = _rollups(_emc_seed_reports(registry), "emc_connection", "2024-H1", catalog, registry)
    assert set(rollups) == {"ministries_with_procedures", "provinces", NATIONAL_SCOPE}
    figures = {s: (r.numerator, r.denominator) for s, r in rollups.items()}
    assert figures == {
        "ministries_with_procedures": (19, 21),
        "provinces": (63, 63),
        NATIONAL_SCOPE: (82, 84),
    }
    national = rollups[NATIONAL_SCOPE]
    assert national.value is not None
    assert national.attainment is not None
    assert round(national.value, 3) == 0.976
    assert round(national.attainment, 3) == 0.976
    assert national.lagging == list(FALSE_MINISTRIES)
    assert rollups["ministries_with_procedures"].lagging == list(FALSE_MINISTRIES)
    assert rollups["provinces"].lagging == []
    assert rollups["provinces"].value == 1.0
    assert (national.reporters_reported, national.reporters_expected, national.completeness) == (
        84,
        84,
        1.0,
    )
    assert national.report_count == 84
    assert national.not_reported == []
    assert national.kind == "flag"
    assert national.target is not None
    assert (national.target.value, national.target.deadline) == (1.0, date(2024, 12, 31))
    assert national.latest_observed_at == OBSERVED + timedelta(minutes=62)


def test_gov_reporting_seed_figures_count_all_22_ministries(catalog: Catalog, registry: Registry) -> None:
    ministries = sorted(registry.members("ministries", H1_2024_END))
    provinces = sorted(registry.members("provinces", H1_2024_END))
    reports = [
        make_report(m, flag(i < 15), indicator="gov_reporting_connection") for i, m in enumerate(ministries)
    ]
    reports += [make_report(p, flag(True), indicator="gov_reporting_connection") for p in provinces]
    rollups = _rollups(reports, "gov_reporting_connection", "2024-H1", catalog, registry)
    national = rollups[NATIONAL_SCOPE]
    assert (rollups["ministries"].numerator, rollups["ministries"].denominator) == (15, 22)
    assert (national.numerator, national.denominator) == (78, 85)
    assert national.value is not None
    assert round(national.value, 3) == 0.918
    assert national.lagging == ministries[15:]


def test_reporter_that_never_reported_counts_in_denominator_not_reported_and_lagging(
    catalog: Catalog, registry: Registry
) -> None:
    reports = _emc_seed_reports(registry, skip=frozenset({"province:01"}))
    rollups = _rollups(reports, "emc_connection", "2024-H1", catalog, registry)
    provinces = rollups["provinces"]
    national = rollups[NATIONAL_SCOPE]
    assert (provinces.numerator, provinces.denominator) == (62, 63)
    assert (national.numerator, national.denominator) == (81, 84)
    assert provinces.not_reported == ["province:01"]
    assert national.not_reported == ["province:01"]
    assert provinces.lagging == ["province:01"]
    assert national.lagging == sorted([*FALSE_MINISTRIES, "province:01"])
    assert (provinces.reporters_reported, provinces.reporters_expected) == (62, 63)
    assert provinces.completeness == pytest.approx(62 / 63)
    assert rollups["ministries_with_procedures"].not_reported == []


def test_flag_rollup_with_no_reports_is_zero_with_everyone_lagging(
    catalog: Catalog, registry: Registry
) -> None:
    indicator = catalog["emc_connection"]
    rollups = {
        r.scope: r for r in compute_rollups(indicator, parse_period("2024-H1"), {}, registry, COMPUTED_AT)
    }
    national = rollups[NATIONAL_SCOPE]
    assert (national.value, national.numerator, national.denominator) == (0.0, 0.0, 84.0)
    assert len(national.lagging) == 84
    assert national.completeness == 0.0
    assert national.latest_observed_at is None


def _district_registry(districts: int) -> Registry:
    """More expected reporters than a rollup names: district-level localities."""
    reporters = {
        f"province:D{n:04d}": Reporter(f"province:D{n:04d}", "province", f"D{n:04d}", f"District {n}")
        for n in range(1, districts + 1)
    }
    return Registry(reporters=reporters, groups={"provinces": Group("provinces", ("province",))})


def test_reporter_lists_name_the_first_by_id_and_count_everyone(catalog: Catalog) -> None:
    registry = _district_registry(250)
    indicator = catalog["edw_connection"].model_copy(update={"groups": ("provinces",)})
    reported = {f"province:D{n:04d}" for n in range(1, 251) if n % 5 == 0}  # 50 report, 10 of them false
    latest = {
        r: Snapshot(COMPUTED_AT, f"e-{r}", FlagValue(value=not r.endswith("00"))) for r in sorted(reported)
    }
    (provinces, _) = compute_rollups(indicator, parse_period("2024-H1"), latest, registry, COMPUTED_AT)
    assert provinces.scope == "provinces"
    not_reported = sorted(set(registry.reporters) - reported)
    assert provinces.not_reported == not_reported[:ROLLUP_NAMES_LIMIT]
    assert provinces.not_reported_count == 200
    lagging = sorted([*not_reported, *(r for r in reported if r.endswith("00"))])
    assert provinces.lagging == lagging[:ROLLUP_NAMES_LIMIT]
    assert provinces.lagging_count == 202
    assert provinces.names_cut
    assert (provinces.numerator, provinces.denominator, provinces.reporters_reported) == (48, 250, 50)
    # The counts are part of the figure: another reporter missing is another revision.
    del latest["province:D0250"]
    (fewer, _) = compute_rollups(indicator, parse_period("2024-H1"), latest, registry, COMPUTED_AT)
    assert fewer.not_reported == provinces.not_reported
    assert fewer.not_reported_count == 201
    assert fewer.revision != provinces.revision


def test_national_lists_are_never_cut(catalog: Catalog, registry: Registry) -> None:
    indicator = catalog["emc_connection"]
    rollups = compute_rollups(indicator, parse_period("2024-H1"), {}, registry, COMPUTED_AT)
    assert all(not r.names_cut for r in rollups)
    assert max(r.not_reported_count for r in rollups) == 84 < ROLLUP_NAMES_LIMIT


def test_rollups_published_before_the_counts_read_them_from_their_lists(
    catalog: Catalog, registry: Registry
) -> None:
    indicator = catalog["emc_connection"]
    national = compute_rollups(indicator, parse_period("2024-H1"), {}, registry, COMPUTED_AT)[-1]
    older = national.model_dump(mode="json")
    del older["lagging_count"], older["not_reported_count"]
    parsed = Rollup.model_validate_json(json.dumps(older))
    assert (parsed.lagging_count, parsed.not_reported_count) == (84, 84)
    assert parsed == national


# --- ratios, counts, catalogs --------------------------------------------------------------------


def test_ratio_is_weighted_by_denominators_not_a_mean_of_rates(catalog: Catalog, registry: Registry) -> None:
    reports = [
        make_report("ministry:MOH", ratio(1, 10), indicator="online_records_rate"),
        make_report("province:01", ratio(90, 100), indicator="online_records_rate"),
    ]
    rollups = _rollups(reports, "online_records_rate", "2024-H1", catalog, registry)
    national = rollups[NATIONAL_SCOPE]
    assert (national.numerator, national.denominator) == (91, 110)
    assert national.value == pytest.approx(91 / 110)
    assert national.value != pytest.approx(0.5)
    assert rollups["ministries_with_procedures"].value == pytest.approx(0.1)
    assert rollups["provinces"].value == pytest.approx(0.9)
    assert national.attainment == pytest.approx((91 / 110) / 0.5)
    assert national.lagging == []
    assert len(national.not_reported) == 82


def test_ratio_with_nothing_reported_has_no_value(catalog: Catalog, registry: Registry) -> None:
    rollups = _rollups(
        [make_report("province:01", ratio(5, 10), indicator="online_records_rate")],
        "online_records_rate",
        "2024-H1",
        catalog,
        registry,
    )
    ministries = rollups["ministries_with_procedures"]
    assert ministries.value is None
    assert ministries.attainment is None
    assert ministries.reporters_reported == 0


def test_count_sums_values_and_compares_with_target(catalog: Catalog, registry: Registry) -> None:
    reports = [
        make_report("province:01", count(30_000), indicator="digital_tech_enterprises"),
        make_report("province:79", count(20_000), indicator="digital_tech_enterprises"),
        make_report("province:48", count(350), indicator="digital_tech_enterprises"),
    ]
    rollups = _rollups(reports, "digital_tech_enterprises", "2024-H1", catalog, registry)
    national = rollups[NATIONAL_SCOPE]
    assert national.value == 50_350
    assert national.denominator is None
    assert national.attainment is not None
    assert round(national.attainment, 3) == 1.049
    assert rollups["provinces"].value == 50_350
    assert national.reporters_reported == 3


def test_catalog_counts_union_of_done_items_over_list_size(catalog: Catalog, registry: Registry) -> None:
    first = [f"eps-{i:02d}" for i in range(1, 31)]
    second = [f"eps-{i:02d}" for i in range(21, 44)]
    reports = [
        make_report("national:MIC", done(*first), indicator="essential_public_services"),
        make_report("national:MPS", done(*second), indicator="essential_public_services"),
    ]
    rollups = _rollups(reports, "essential_public_services", "2024-H1", catalog, registry)
    national = rollups[NATIONAL_SCOPE]
    assert (national.numerator, national.denominator) == (43, 53)
    assert national.value is not None
    assert round(national.value, 3) == 0.811
    assert set(rollups) == {"national"}


def test_catalog_ignores_items_reported_twice_by_one_reporter(catalog: Catalog, registry: Registry) -> None:
    reports = [
        make_report("national:MPS", done("eps-01", "eps-01", "eps-02"), indicator="essential_public_services")
    ]
    rollups = _rollups(reports, "essential_public_services", "2024-H1", catalog, registry)
    assert rollups[NATIONAL_SCOPE].numerator == 2


# --- snapshot semantics --------------------------------------------------------------------------


def test_same_report_twice_changes_nothing_and_publishes_nothing() -> None:
    report = make_report("province:01", flag(True))
    once = apply({}, report)
    assert once is not None
    assert apply(once, report) is None
    state, published = feed([report, report], "emc_connection", "2024-H1")
    assert len(published[0]) == 3
    assert published[1] == []
    assert set(state.latest) == {"province:01"}


def test_resend_with_same_event_id_and_time_is_a_duplicate_even_with_other_value() -> None:
    event_id = uuid4()
    first = make_report("province:01", flag(True), event_id=event_id)
    resent = make_report("province:01", flag(False), event_id=event_id)
    state, published = feed([first, resent], "emc_connection", "2024-H1")
    assert published[1] == []
    assert state.latest["province:01"].value == flag(True)


def test_older_observation_arriving_late_changes_nothing() -> None:
    newer = make_report("province:01", flag(True), minutes=10)
    older = make_report("province:01", flag(False), minutes=0)
    latest = apply({}, newer)
    assert latest is not None
    assert apply(latest, older) is None
    state, published = feed([newer, older], "emc_connection", "2024-H1")
    assert published[1] == []
    assert state.latest["province:01"] == Snapshot.of(newer)


def test_restatement_with_newer_observation_replaces_value() -> None:
    first = make_report("province:01", flag(True), minutes=0)
    restated = make_report("province:01", flag(False), minutes=10)
    state, published = feed([first, restated], "emc_connection", "2024-H1")
    assert state.latest["province:01"].value == flag(False)
    assert state.latest["province:01"].event_id == str(restated.event_id)
    latest = last_per_scope(published)
    assert latest["provinces"].numerator == 0
    assert latest["provinces"].lagging[0] == "province:01"


def test_equal_observation_times_are_broken_by_event_id_whatever_the_order() -> None:
    low = make_report("province:01", flag(True))
    high = make_report("province:01", flag(False))
    if str(low.event_id) > str(high.event_id):
        low, high = high, low
    forward, _ = feed([low, high], "emc_connection", "2024-H1")
    backward, _ = feed([high, low], "emc_connection", "2024-H1")
    assert forward.latest == backward.latest
    assert forward.latest["province:01"].event_id == str(high.event_id)


def test_province_only_change_republishes_provinces_and_national_not_ministries(
    registry: Registry,
) -> None:
    state, _ = feed(_emc_seed_reports(registry), "emc_connection", "2024-H1")
    restated = make_report("province:79", flag(False), minutes=500)
    after, published = feed([restated], "emc_connection", "2024-H1", state)
    scopes = {r.scope for r in published[0]}
    assert scopes == {"provinces", NATIONAL_SCOPE}
    figures = {r.scope: (r.numerator, r.denominator) for r in published[0]}
    assert figures == {"provinces": (62, 63), NATIONAL_SCOPE: (81, 84)}
    assert after.published["ministries_with_procedures"] == state.published["ministries_with_procedures"]
    assert after.published["provinces"] != state.published["provinces"]


def test_newer_report_that_changes_no_figure_publishes_nothing() -> None:
    early = make_report("province:01", flag(True), minutes=0)
    newest = make_report("province:79", flag(True), minutes=60)
    state, _ = feed([early, newest], "emc_connection", "2024-H1")
    # province:01 restates the same value, observed before the newest contributing report.
    same = make_report("province:01", flag(True), minutes=30)
    after, published = feed([same], "emc_connection", "2024-H1", state)
    assert published == [[]]
    assert after.latest["province:01"].event_id == str(same.event_id)
    assert after.published == state.published


def test_report_from_outside_the_expected_reporters_publishes_nothing() -> None:
    state, _ = feed([make_report("province:01", flag(True))], "emc_connection", "2024-H1")
    outsider = make_report("ministry:GO", flag(True), minutes=5)
    _, published = feed([outsider], "emc_connection", "2024-H1", state)
    assert published == [[]]


def test_first_report_publishes_every_scope() -> None:
    _, published = feed([make_report("ministry:MOH", flag(True))], "emc_connection", "2024-H1")
    assert [r.scope for r in published[0]] == ["ministries_with_procedures", "provinces", "national"]
    assert all(r.computed_at == COMPUTED_AT for r in published[0])


def test_2025_h2_report_counts_against_34_provinces_and_16_ministries(
    catalog: Catalog, registry: Registry
) -> None:
    reports = [make_report("province:01", flag(True), period="2025-H2")]
    rollups = _rollups(reports, "emc_connection", "2025-H2", catalog, registry)
    assert (rollups["provinces"].numerator, rollups["provinces"].denominator) == (1, 34)
    assert rollups["ministries_with_procedures"].denominator == 16
    assert rollups[NATIONAL_SCOPE].denominator == 50
    assert "province:58" not in rollups["provinces"].not_reported
    assert "province:56" in rollups["provinces"].not_reported


def test_2024_h2_rollup_counts_against_63_provinces(catalog: Catalog, registry: Registry) -> None:
    reports = [make_report("province:58", flag(True), period="2024-H2")]
    rollups = _rollups(reports, "emc_connection", "2024-H2", catalog, registry)
    assert (rollups["provinces"].numerator, rollups["provinces"].denominator) == (1, 63)


def test_scopes_are_the_groups_then_national(catalog: Catalog) -> None:
    assert scopes_of(catalog["emc_connection"]) == (
        "ministries_with_procedures",
        "provinces",
        NATIONAL_SCOPE,
    )


def test_revision_is_independent_of_computed_at(catalog: Catalog, registry: Registry) -> None:
    state, _ = feed(_emc_seed_reports(registry), "emc_connection", "2024-H1")
    indicator = catalog["emc_connection"]
    period = parse_period("2024-H1")
    a = compute_rollups(indicator, period, state.latest, registry, COMPUTED_AT)
    b = compute_rollups(indicator, period, state.latest, registry, COMPUTED_AT + timedelta(days=1))
    assert [r.revision for r in a] == [r.revision for r in b]
    assert len({r.revision for r in a}) == 3


# --- state serialisation -------------------------------------------------------------------------


def _mixed_state() -> PeriodState:
    plus7 = timezone(timedelta(hours=7))
    reports = [
        make_report("province:01", flag(True), observed_at=datetime(2024, 6, 1, 8, 30, 15, 123456, plus7)),
        make_report("province:79", ratio(12_345, 30_000.5), indicator="online_records_rate"),
        make_report("province:48", count(350), indicator="digital_tech_enterprises"),
        make_report("national:MPS", done("eps-01", "eps-07"), indicator="essential_public_services"),
    ]
    latest: dict[str, Snapshot] = {}
    for report in reports:
        updated = apply(latest, report)
        assert updated is not None
        latest = updated
    return PeriodState(
        latest=latest,
        published={"provinces": "0123456789abcdef", NATIONAL_SCOPE: "fedcba9876543210"},
        last_offset=41,
    )


def test_period_state_round_trips_through_to_json_and_from_json() -> None:
    state = _mixed_state()
    assert PeriodState.from_json(state.to_json()) == state


def test_period_state_round_trips_through_json_text() -> None:
    state = _mixed_state()
    text = json.dumps(state.to_json())
    restored = PeriodState.from_json(json.loads(text))
    assert restored == state
    assert restored.latest["province:01"].observed_at.utcoffset() == timedelta(hours=7)
    assert json.dumps(restored.to_json()) == text


def test_restored_state_still_ignores_duplicates_and_publishes_only_changes(
    registry: Registry,
) -> None:
    reports = _emc_seed_reports(registry)
    state, _ = feed(reports, "emc_connection", "2024-H1")
    restored = PeriodState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    _, duplicate = feed([reports[0], reports[-1]], "emc_connection", "2024-H1", restored)
    assert duplicate == [[], []]
    restated = make_report("province:01", flag(False), minutes=1_000)
    _, changed = feed([restated], "emc_connection", "2024-H1", restored)
    assert {r.scope for r in changed[0]} == {"provinces", NATIONAL_SCOPE}


@pytest.mark.parametrize("empty", [None, {}])
def test_empty_state_json_is_the_empty_state(empty: dict[str, object] | None) -> None:
    assert PeriodState.from_json(empty) == PeriodState()
    assert PeriodState().to_json() == {"latest": {}, "published": {}, "last_offset": None}


def test_state_written_before_version_with_offsets_restores_without_one() -> None:
    assert PeriodState.from_json({"latest": {}, "published": {"national": "ab"}}).last_offset is None


# --- redelivery after a crash --------------------------------------------------------------------


def test_report_redelivered_at_its_offset_after_a_crash_resends_current_rollups(registry: Registry) -> None:
    reports = _emc_seed_reports(registry)
    state, _ = feed(reports, "emc_connection", "2024-H1", offsets=range(len(reports)))
    assert state.last_offset == len(reports) - 1
    # The worker wrote its changelog, then died before its rollups reached the topic: after
    # recovery the last report comes again at the same offset and must publish the figures.
    again, resent = feed(reports[-1:], "emc_connection", "2024-H1", state, offsets=[len(reports) - 1])
    assert again is state
    figures = {r.scope: (r.numerator, r.denominator, r.revision) for r in resent[0]}
    assert figures == {
        "ministries_with_procedures": (19, 21, state.published["ministries_with_procedures"]),
        "provinces": (63, 63, state.published["provinces"]),
        NATIONAL_SCOPE: (82, 84, state.published[NATIONAL_SCOPE]),
    }


def test_duplicate_at_a_new_offset_or_an_older_offset_publishes_nothing(registry: Registry) -> None:
    reports = _emc_seed_reports(registry)
    state, _ = feed(reports, "emc_connection", "2024-H1", offsets=range(len(reports)))
    _, duplicates = feed(
        [reports[-1], reports[0], reports[-1]], "emc_connection", "2024-H1", state, offsets=[500, 0, None]
    )
    assert duplicates == [[], [], []]


def test_report_changing_nothing_keeps_the_offset_of_the_last_change() -> None:
    first = make_report("province:01", flag(True))
    state, _ = feed([first, first], "emc_connection", "2024-H1", offsets=[7, 9])
    assert state.last_offset == 7

"""Validation of schema-valid reports against the catalog and the registry in force for the period."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.registry import Registry
from dxpulse.domain.validation import CLOCK_SKEW, Accepted, Problem, validate_report
from schemas import Report, ReportValue
from tests.unit.conftest import NOW, count, done, flag, make_report, ratio


def _problem(report: Report, catalog: Catalog, registry: Registry) -> Problem:
    result = validate_report(report, catalog, registry, NOW)
    assert isinstance(result, Problem), result
    return result


def _accepted(report: Report, catalog: Catalog, registry: Registry) -> Accepted:
    result = validate_report(report, catalog, registry, NOW)
    assert isinstance(result, Accepted), result
    return result


def test_valid_report_is_accepted_with_its_parsed_period(catalog: Catalog, registry: Registry) -> None:
    report = make_report("province:01", flag(True), period="2024-H2")
    accepted = _accepted(report, catalog, registry)
    assert accepted.report is report
    assert (accepted.period.start, accepted.period.end) == (date(2024, 7, 1), date(2024, 12, 31))


@pytest.mark.parametrize(
    ("reporter", "indicator", "period", "value"),
    [
        ("ministry:MOH", "online_records_rate", "2024-H1", ratio(10, 10)),
        ("province:79", "digital_tech_enterprises", "2024-H1", count(0)),
        ("national:MPS", "essential_public_services", "2024-H1", done("eps-01", "eps-53")),
        ("national:MPS", "vneid_accounts", "2024", count(55_250_000)),
        ("ministry:GO", "gov_reporting_connection", "2024-H1", flag(False)),
        ("province:58", "emc_connection", "2025-H1", flag(True)),
        ("ministry:MOST", "emc_connection", "2025-H1", flag(True)),
        ("province:56", "emc_connection", "2025-H2", flag(True)),
    ],
)
def test_report_of_each_kind_is_accepted(
    catalog: Catalog, registry: Registry, reporter: str, indicator: str, period: str, value: ReportValue
) -> None:
    report = make_report(reporter, value, indicator=indicator, period=period)
    assert _accepted(report, catalog, registry).period.label == period


def test_unknown_indicator_is_refused(catalog: Catalog, registry: Registry) -> None:
    problem = _problem(make_report("province:01", flag(True), indicator="nope"), catalog, registry)
    assert (problem.type, problem.field) == ("unknown-indicator", "indicator")
    assert "'nope'" in problem.detail


def test_period_of_the_wrong_type_is_refused_naming_the_expected_type(
    catalog: Catalog, registry: Registry
) -> None:
    problem = _problem(make_report("province:01", flag(True), period="2024-Q1"), catalog, registry)
    assert (problem.type, problem.field) == ("invalid-period", "period")
    assert "half" in problem.detail
    assert "2024-H1" in problem.detail


@pytest.mark.parametrize("period", ["2024-H7", "2024-H1\n", "24-H1", "2024-13"])
def test_period_that_is_no_period_is_refused_by_the_schema(period: str) -> None:
    # The schema's pattern refuses it before validation, so JSON Schema users get the rule too.
    with pytest.raises(ValidationError, match="period"):
        make_report("province:01", flag(True), period=period)


def test_year_zero_period_is_an_invalid_period_problem(catalog: Catalog, registry: Registry) -> None:
    problem = _problem(make_report("province:01", flag(True), period="0000-H1"), catalog, registry)
    assert problem.type == "invalid-period"


def test_period_ending_after_year_9999_is_a_problem_not_a_crash(catalog: Catalog, registry: Registry) -> None:
    problem = _problem(make_report("province:01", flag(True), period="9999-H2"), catalog, registry)
    assert problem.type in {"invalid-period", "future-period"}


@pytest.mark.parametrize("period", ["0001-H1", "1999-H2", "2019-H2"])
def test_a_period_before_the_catalogs_first_is_refused(
    period: str, catalog: Catalog, registry: Registry
) -> None:
    # One reporter could otherwise make a figure, its state and its alerts for every period since year 1.
    problem = _problem(make_report("province:01", flag(True), period=period), catalog, registry)
    assert (problem.type, problem.field) == ("period-too-old", "period")
    assert str(catalog.earliest_period_start) in problem.detail


def test_the_catalogs_first_period_is_accepted(catalog: Catalog, registry: Registry) -> None:
    assert catalog.earliest_period_start == date(2020, 1, 1)
    _accepted(make_report("province:01", flag(True), period="2020-H1"), catalog, registry)


@pytest.mark.parametrize(
    "observed_at",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(minutes=1))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59))),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1970, 1, 1, 6, tzinfo=timezone(timedelta(hours=7))),
    ],
)
def test_an_observation_before_1970_is_refused(
    observed_at: datetime, catalog: Catalog, registry: Registry
) -> None:
    # Year 1 with a positive UTC offset has no UTC instant: PostgreSQL's driver cannot write it.
    report = make_report("province:01", flag(True), observed_at=observed_at)
    problem = _problem(report, catalog, registry)
    assert (problem.type, problem.field) == ("observation-too-old", "observed_at")


def test_an_observation_at_the_earliest_instant_is_accepted(catalog: Catalog, registry: Registry) -> None:
    _accepted(
        make_report(
            "province:01",
            flag(True),
            observed_at=datetime(1970, 1, 1, 7, tzinfo=timezone(timedelta(hours=7))),
        ),
        catalog,
        registry,
    )


def test_period_not_yet_started_is_refused(catalog: Catalog, registry: Registry) -> None:
    problem = _problem(make_report("province:01", flag(True), period="2026-H1"), catalog, registry)
    assert (problem.type, problem.field) == ("future-period", "period")
    assert "2026-01-01" in problem.detail


def test_current_period_is_accepted(catalog: Catalog, registry: Registry) -> None:
    assert NOW.date() >= date(2025, 7, 1)
    _accepted(make_report("province:01", flag(True), period="2025-H2"), catalog, registry)


def test_observation_beyond_clock_skew_is_refused(catalog: Catalog, registry: Registry) -> None:
    late = NOW + CLOCK_SKEW + timedelta(seconds=1)
    report = make_report("province:01", flag(True), period="2025-H2", observed_at=late)
    problem = _problem(report, catalog, registry)
    assert (problem.type, problem.field) == ("future-observation", "observed_at")


def test_observation_within_clock_skew_is_accepted(catalog: Catalog, registry: Registry) -> None:
    assert timedelta(minutes=5) == CLOCK_SKEW
    soon = NOW + CLOCK_SKEW
    _accepted(make_report("province:01", flag(True), period="2025-H2", observed_at=soon), catalog, registry)


def test_unknown_reporter_is_refused(catalog: Catalog, registry: Registry) -> None:
    problem = _problem(make_report("province:99", flag(True)), catalog, registry)
    assert (problem.type, problem.field) == ("unknown-reporter", "reporter")
    assert "'province:99'" in problem.detail


@pytest.mark.parametrize(
    ("reporter", "period", "successor"),
    [
        ("province:58", "2025-H2", "province:56"),
        ("province:02", "2025-H2", "province:08"),
        ("ministry:MIC", "2025-H1", "ministry:MOST"),
        ("ministry:MOLISA", "2025-H1", "ministry:MOHA"),
    ],
)
def test_retired_reporter_is_refused_naming_its_successor(
    catalog: Catalog, registry: Registry, reporter: str, period: str, successor: str
) -> None:
    problem = _problem(make_report(reporter, flag(True), period=period), catalog, registry)
    assert (problem.type, problem.field) == ("retired-reporter", "reporter")
    assert f"report as {successor}" in problem.detail
    assert reporter in problem.detail


def test_retired_national_body_names_its_successor(catalog: Catalog, registry: Registry) -> None:
    report = make_report("national:MIC", count(1), indicator="vneid_accounts", period="2025")
    problem = _problem(report, catalog, registry)
    assert problem.type == "retired-reporter"
    assert "national:MOST" in problem.detail


def test_unit_created_in_2025_reporting_for_2024_is_not_said_to_have_ceased_on_none(
    catalog: Catalog, registry: Registry
) -> None:
    # ministry:MAE starts on 2025-03-01; it never "ceased".
    problem = _problem(make_report("ministry:MAE", flag(True), period="2024-H2"), catalog, registry)
    assert "None" not in problem.detail
    assert "2025-03-01" in problem.detail


@pytest.mark.parametrize(
    ("reporter", "indicator", "value"),
    [
        ("ministry:GO", "emc_connection", flag(True)),
        ("national:MPS", "emc_connection", flag(True)),
        ("province:01", "essential_public_services", done("eps-01")),
        ("ministry:MOH", "digital_tech_enterprises", count(1)),
    ],
)
def test_reporter_outside_the_indicator_groups_is_refused(
    catalog: Catalog, registry: Registry, reporter: str, indicator: str, value: ReportValue
) -> None:
    problem = _problem(make_report(reporter, value, indicator=indicator), catalog, registry)
    assert (problem.type, problem.field) == ("reporter-not-expected", "reporter")
    assert reporter in problem.detail


def test_value_of_the_wrong_kind_is_refused(catalog: Catalog, registry: Registry) -> None:
    problem = _problem(make_report("province:01", ratio(1, 2)), catalog, registry)
    assert (problem.type, problem.field) == ("wrong-value-kind", "value.kind")
    assert '"kind": "flag"' in problem.detail


def test_ratio_with_numerator_above_denominator_is_refused(catalog: Catalog, registry: Registry) -> None:
    report = make_report("province:01", ratio(11, 10), indicator="online_records_rate")
    problem = _problem(report, catalog, registry)
    assert (problem.type, problem.field) == ("numerator-exceeds-denominator", "value.numerator")
    assert "11" in problem.detail


def test_unknown_catalog_item_is_refused_naming_it(catalog: Catalog, registry: Registry) -> None:
    report = make_report("national:MPS", done("eps-01", "eps-54", "x"), indicator="essential_public_services")
    problem = _problem(report, catalog, registry)
    assert (problem.type, problem.field) == ("unknown-catalog-item", "value.done")
    assert "eps-54" in problem.detail
    assert "x" in problem.detail
    assert "eps-01" not in problem.detail.split("; items are")[0]


def test_first_problem_wins_unknown_indicator_before_unknown_reporter(
    catalog: Catalog, registry: Registry
) -> None:
    problem = _problem(make_report("province:99", flag(True), indicator="nope"), catalog, registry)
    assert problem.type == "unknown-indicator"

"""``ReportJudge`` judges every report exactly as ``validate_report`` does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.registry import default_registry
from dxpulse.domain.validation import (
    CLOCK_SKEW,
    EARLIEST_OBSERVATION,
    Accepted,
    Problem,
    ReportJudge,
    parse_report,
    validate_report,
)
from schemas import Report

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
CATALOG = default_catalog()
REGISTRY = default_registry()

INDICATORS = [
    "dx_plan_issued",  # yearly, ministries and provinces
    "sector_databases",
    "emc_connection",  # half-yearly, ministries with procedures and provinces
    "online_records_rate",
    "low_signal_villages_broadband",  # provinces only
    "population_data_procedures_reduced",  # yearly, ministries with procedures only
    "essential_public_services",  # national
    "vneid_accounts",
]
"""Indicators whose groups differ for periods ending on the same day (2024 and 2024-H2)."""
REPORTERS = ["province:79", "province:02", "ministry:GO", "ministry:MOH", "national:MPS", "province:00"]
"""A few reporters, so that each is judged for many indicators and periods: of every kind, one retired
in 2025 (province:02), one not in the registry; ministries with and without procedures."""

VALID = {
    "schema_version": 1,
    "event_id": "0b6f3c2e-93f5-4c4b-8a53-5b0e0c7f4a10",
    "reporter": "province:79",
    "indicator": "records_digitisation_rate",
    "period": "2024-H2",
    "observed_at": "2024-12-31T10:00:00Z",
    "value": {"kind": "ratio", "numerator": 3, "denominator": 4},
}


def _any_report(draw: st.DrawFn) -> Report:
    """A schema-valid report that may fail any check of ``validate_report``."""
    indicator = CATALOG[draw(st.sampled_from(INDICATORS))]
    kind = draw(st.sampled_from([indicator.kind] * 4 + ["flag", "ratio", "count", "catalog"]))
    value: dict[str, Any]
    if kind == "flag":
        value = {"kind": "flag", "value": draw(st.booleans())}
    elif kind == "ratio":
        value = {
            "kind": "ratio",
            "numerator": draw(st.integers(0, 10)),
            "denominator": draw(st.integers(0, 10)),
        }
    elif kind == "count":
        value = {"kind": "count", "value": draw(st.integers(0, 10))}
    else:
        items = list(indicator.items) or ["x"]
        value = {"kind": "catalog", "done": draw(st.lists(st.sampled_from([*items, "nope"]), max_size=3))}
    label = draw(
        st.sampled_from(
            ["2019", "2024", "2024-H2", "2025", "2025-H1", "2025-Q3", "2026-H2", "2027", "2024-07"]
        )
    )
    return Report.model_validate(
        {
            "event_id": str(draw(st.uuids())),
            "reporter": draw(st.sampled_from(REPORTERS)),
            "indicator": indicator.id,
            "period": label,
            "observed_at": NOW + timedelta(minutes=draw(st.integers(-10_000, 10))),
            "value": value,
        }
    )


@given(st.lists(st.composite(_any_report)(), min_size=1, max_size=60))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_judge_judges_as_validate_report(reports: list[Report]) -> None:
    judge = ReportJudge(CATALOG, REGISTRY)
    for report in reports * 2:  # the second time round, from what the judge remembers
        assert judge(report, NOW) == validate_report(report, CATALOG, REGISTRY, NOW)


def test_the_judge_still_refuses_what_it_accepted_for_another_instant() -> None:
    report = parse_report(json.dumps(VALID))
    assert isinstance(report, Report)
    judge = ReportJudge(CATALOG, REGISTRY)
    assert isinstance(judge(report, NOW), Accepted)
    assert isinstance(judge(report, NOW), Accepted)  # from what it remembers
    early = datetime(2024, 12, 31, 9, 50, tzinfo=UTC)  # observed 10 minutes later than this "now"
    assert judge(report, early) == validate_report(report, CATALOG, REGISTRY, early)
    assert isinstance(judge(report, early), Problem)
    before_period = datetime(2024, 6, 1, tzinfo=UTC)
    assert judge(report, before_period) == validate_report(report, CATALOG, REGISTRY, before_period)
    assert isinstance(judge(report, NOW), Accepted)


def _report(reporter: str, indicator: str, period: str) -> Report:
    return Report.model_validate(
        {
            **VALID,
            "reporter": reporter,
            "indicator": indicator,
            "period": period,
            "value": {"kind": "flag", "value": True},
        }
    )


def test_a_reporter_accepted_for_one_indicator_is_judged_again_for_another() -> None:
    """ministry:GO reports dx_plan_issued (ministries) but not emc_connection (ministries with
    procedures), both for periods ending on 2024-12-31."""
    judge = ReportJudge(CATALOG, REGISTRY)
    assert isinstance(judge(_report("ministry:GO", "dx_plan_issued", "2024"), NOW), Accepted)
    assert isinstance(judge(_report("ministry:MOH", "emc_connection", "2024-H2"), NOW), Accepted)
    refused = judge(_report("ministry:GO", "emc_connection", "2024-H2"), NOW)
    assert isinstance(refused, Problem)
    assert refused.type == "reporter-not-expected"


@given(
    offset=st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    seconds=st.integers(-3 * 86_400, 86_400),
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
)
@settings(max_examples=500, deadline=None)
def test_observations_near_the_clock_skew_are_judged_as_validate_report(
    offset: int, seconds: int, now: datetime
) -> None:
    """Whatever the observation's UTC offset, including offsets of almost a day either way."""
    zone = timezone(timedelta(minutes=offset))
    observed = (now + CLOCK_SKEW + timedelta(seconds=seconds)).astimezone(zone)
    report = Report.model_validate({**VALID, "observed_at": observed.isoformat()})
    judge = ReportJudge(CATALOG, REGISTRY)
    judge(Report.model_validate(VALID), now)
    judge(Report.model_validate(VALID), now)  # the bounds of ``now`` remembered
    assert judge(report, now) == validate_report(report, CATALOG, REGISTRY, now)


@given(
    offset=st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    seconds=st.integers(-3 * 86_400, 3 * 86_400),
)
@settings(max_examples=500, deadline=None)
def test_observations_near_the_earliest_day_are_judged_as_validate_report(offset: int, seconds: int) -> None:
    """An observation just before or after the earliest instant, whatever its UTC offset."""
    zone = timezone(timedelta(minutes=offset))
    first = EARLIEST_OBSERVATION
    observed = (first + timedelta(seconds=seconds)).astimezone(zone)
    report = Report.model_validate({**VALID, "observed_at": observed.isoformat()})
    judge = ReportJudge(CATALOG, REGISTRY)
    judge(Report.model_validate(VALID), NOW)  # the period and the reporter remembered
    verdict = judge(report, NOW)
    assert verdict == validate_report(report, CATALOG, REGISTRY, NOW)
    assert isinstance(verdict, Problem) == (observed < first)

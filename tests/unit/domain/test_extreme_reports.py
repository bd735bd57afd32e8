"""Any report at the edges of what the schema allows is refused with a problem or rolled up exactly."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.rollup import PeriodState, Snapshot, step_many
from dxpulse.domain.state_records import StoredRecords, writes_of
from dxpulse.domain.validation import Accepted, Problem, parse_report, validate_report
from schemas import Report, Rollup
from schemas.events import MAX_AMOUNT
from tests.hostile import raw_reports

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
CATALOG = default_catalog()
REGISTRY = default_registry()
REPORTERS = sorted(REGISTRY.reporters)
EXTREME_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _judged(raw: dict[str, Any]) -> Accepted | Problem:
    parsed = parse_report(json.dumps(raw))
    if isinstance(parsed, Problem):
        return parsed
    return validate_report(parsed, CATALOG, REGISTRY, NOW)


@given(raw_reports())
@EXTREME_SETTINGS
def test_every_report_is_judged_without_an_error(raw: dict[str, Any]) -> None:
    verdict = _judged(raw)
    assert isinstance(verdict, Accepted | Problem)
    # The batch path judges decoded JSON the same way as the bytes.
    again = parse_report(json.loads(json.dumps(raw)), is_json=False)
    assert isinstance(again, Problem) == isinstance(parse_report(json.dumps(raw)), Problem)


@given(st.lists(raw_reports(), min_size=1, max_size=40))
@EXTREME_SETTINGS
def test_accepted_extremes_roll_up_exactly(raws: list[dict[str, Any]]) -> None:
    by_key: dict[tuple[str, str], list[Accepted]] = {}
    for raw in raws:
        verdict = _judged(raw)
        if isinstance(verdict, Accepted):
            by_key.setdefault((verdict.report.indicator, verdict.period.label), []).append(verdict)
    for (indicator_id, _), accepted in by_key.items():
        indicator = CATALOG[indicator_id]
        reports = [a.report for a in accepted]
        state, rollups, _ = step_many(PeriodState(), reports, indicator, accepted[0].period, REGISTRY, NOW)
        # The table's records of that state encode as JSON and decode to the same snapshots.
        writes, _ = writes_of(PeriodState(), state, [r.reporter for r in reports], StoredRecords())
        for _, value in writes:
            if value is not None and not isinstance(value, bytes):
                json.dumps(value, allow_nan=False)
        for snapshot in state.latest.values():
            assert Snapshot.from_json(json.loads(json.dumps(snapshot.to_json()))) == snapshot
        latest = {r.reporter: r for r in reports if state.latest[r.reporter].event_id == str(r.event_id)}
        for rollup in rollups:
            assert Rollup.model_validate_json(rollup.model_dump_json()) == rollup
            _check_exact(rollup, indicator.kind, latest)


def _check_exact(rollup: Rollup, kind: str, latest: dict[str, Report]) -> None:
    """A ratio's or count's sums are the exact sums of the latest values, rounded once."""
    if kind not in ("ratio", "count"):
        return
    members = _scope_members(rollup)
    numerators: list[Fraction] = []
    denominators: list[Fraction] = []
    for reporter, report in latest.items():
        if reporter not in members:
            continue
        value = report.value
        if value.kind == "ratio":
            numerators.append(Fraction(value.numerator))
            denominators.append(Fraction(value.denominator))
        elif value.kind == "count":
            numerators.append(Fraction(value.value))
    assert math.isfinite(rollup.numerator)
    assert rollup.numerator == float(sum(numerators, Fraction(0)))
    if kind == "ratio":
        assert rollup.denominator == float(sum(denominators, Fraction(0)))


def _scope_members(rollup: Rollup) -> set[str]:
    indicator = CATALOG[rollup.indicator]
    period = parse_period(rollup.period, indicator.period_type)
    groups = indicator.groups if rollup.scope == "national" else (rollup.scope,)
    return set(REGISTRY.expected(groups, period.end))


@given(st.sampled_from(["ratio", "count"]), st.integers(min_value=1, max_value=len(REPORTERS)))
def test_the_largest_amounts_from_every_reporter_sum_without_overflow(kind: str, reporters: int) -> None:
    indicator = next(i for i in CATALOG.indicators if i.kind == kind)
    period = "2024" if indicator.period_type == "year" else "2024-H1"
    value: dict[str, Any] = (
        {"kind": "ratio", "numerator": MAX_AMOUNT, "denominator": MAX_AMOUNT}
        if kind == "ratio"
        else {"kind": "count", "value": MAX_AMOUNT}
    )
    reports = []
    for number, reporter in enumerate(REPORTERS[:reporters]):
        raw = {
            "event_id": f"00000000-0000-4000-8000-{number:012d}",
            "reporter": reporter,
            "indicator": indicator.id,
            "period": period,
            "observed_at": "2024-06-30T10:00:00Z",
            "value": value,
        }
        verdict = _judged(raw)
        if isinstance(verdict, Accepted):
            reports.append(verdict.report)
    if not reports:
        return
    parsed = parse_period(period, indicator.period_type)
    _, rollups, _ = step_many(PeriodState(), reports, indicator, parsed, REGISTRY, NOW)
    assert rollups
    for rollup in rollups:
        assert math.isfinite(rollup.numerator)
        assert rollup.numerator == MAX_AMOUNT * _count_in_scope(rollup, reports)


def _count_in_scope(rollup: Rollup, reports: list[Report]) -> int:
    members = _scope_members(rollup)
    return sum(report.reporter in members for report in reports)


def test_two_reports_of_1e308_neither_stop_the_rollup_nor_reach_it() -> None:
    reports = []
    for number, reporter in enumerate(("province:01", "province:79")):
        raw = {
            "event_id": f"00000000-0000-4000-8000-{number:012d}",
            "reporter": reporter,
            "indicator": "digital_tech_enterprises",
            "period": "2024-H1",
            "observed_at": "2024-06-30T10:00:00Z",
            "value": {"kind": "count", "value": 1e308},
        }
        verdict = _judged(raw)
        if isinstance(verdict, Accepted):
            reports.append(verdict.report)
    indicator = CATALOG["digital_tech_enterprises"]
    period = parse_period("2024-H1", indicator.period_type)
    _, rollups, _ = step_many(PeriodState(), reports, indicator, period, REGISTRY, NOW)
    assert all(math.isfinite(rollup.numerator) for rollup in rollups)
    assert reports == []


def test_a_value_over_the_bound_is_refused_with_a_precise_problem() -> None:
    raw = {
        "event_id": "00000000-0000-4000-8000-000000000001",
        "reporter": "province:79",
        "indicator": "digital_tech_enterprises",
        "period": "2024-H1",
        "observed_at": "2024-06-30T10:00:00Z",
        "value": {"kind": "count", "value": 1e308},
    }
    verdict = _judged(raw)
    assert isinstance(verdict, Problem)
    assert (verdict.type, verdict.field) == ("value-too-large", "value.value")
    assert "1000000000000000" in verdict.detail


def test_numbers_typed_as_text_or_booleans_are_refused_not_converted() -> None:
    base = {
        "event_id": "00000000-0000-4000-8000-000000000001",
        "reporter": "province:79",
        "indicator": "digital_tech_enterprises",
        "period": "2024-H1",
        "observed_at": "2024-06-30T10:00:00Z",
    }
    for value in ({"kind": "count", "value": "12"}, {"kind": "count", "value": True}):
        verdict = _judged({**base, "value": value})
        assert isinstance(verdict, Problem), value
        assert verdict.type == "invalid-report"
    flag = {**base, "indicator": "procedure_system_emc", "period": "2024-H1"}
    for odd in ("true", 1, None):
        verdict = _judged({**flag, "value": {"kind": "flag", "value": odd}})
        assert isinstance(verdict, Problem), odd
    for field, odd in (("schema_version", True), ("observed_at", 1719741600)):
        verdict = _judged({**base, field: odd})
        assert isinstance(verdict, Problem), (field, odd)

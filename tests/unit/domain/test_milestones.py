"""Targets as milestones: the one in force for a period, the next one ahead, and what the rules judge."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dxpulse.domain.catalog import (
    Baseline,
    Catalog,
    Indicator,
    Target,
    load_catalog,
    milestone_in_force,
    next_milestone,
    trajectory_start,
)
from dxpulse.domain.periods import PeriodType, parse_period, period_of, shifted
from dxpulse.domain.registry import Registry
from dxpulse.domain.rollup import NATIONAL_SCOPE, Snapshot, compute_rollups
from dxpulse.domain.rules import AlertState, evaluate
from schemas import AlertEvent, RatioValue, Rollup

PLAN_2024 = Target(value=0.4, deadline=date(2024, 12, 31), label="2024 action plan")
PLAN_2025 = Target(value=0.5, deadline=date(2025, 12, 31), label="2025 tasks")
VISION_2030 = Target(value=0.8, deadline=date(2030, 12, 31), label="2030 vision")
START = Baseline(value=0.2, date=date(2023, 12, 31))


def milestone_indicator(*targets: Target, period_type: PeriodType = "year") -> Indicator:
    return Indicator(
        id="online_adults",
        name="Adults using online public services",
        unit="share of adults",
        kind="ratio",
        period_type=period_type,
        groups=("provinces",),
        targets=targets,
    )


# --- the catalog's two forms ----------------------------------------------------------------------

_ENTRY: dict[str, Any] = {
    "id": "online_adults",
    "name": "Adults using online public services",
    "unit": "share of adults",
    "kind": "ratio",
    "period_type": "year",
    "groups": ["provinces"],
}


def _load(tmp_path: Path, **fields: Any) -> Catalog:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"indicators": [{**_ENTRY, **fields}]}), encoding="utf-8")
    return load_catalog(path)


def test_targets_load_as_milestones_by_deadline(tmp_path: Path) -> None:
    targets = [
        {"value": 0.4, "deadline": "2024-12-31", "label": "2024 action plan"},
        {"value": 0.5, "deadline": "2025-12-31", "baseline": {"value": 0.4, "date": "2024-12-31"}},
    ]
    indicator = _load(tmp_path, targets=targets)["online_adults"]
    assert indicator.target is None
    assert [(m.value, m.deadline, m.label) for m in indicator.milestones] == [
        (0.4, date(2024, 12, 31), "2024 action plan"),
        (0.5, date(2025, 12, 31), ""),
    ]


def test_the_single_target_form_is_one_milestone(tmp_path: Path) -> None:
    indicator = _load(tmp_path, target={"value": 0.4, "deadline": "2024-12-31"})["online_adults"]
    assert indicator.milestones == (indicator.target,)
    assert indicator.targets == ()
    assert milestone_indicator().milestones == ()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "target": {"value": 0.4, "deadline": "2024-12-31"},
                "targets": [{"value": 0.5, "deadline": "2025-12-31"}],
            },
            "either target or targets, not both",
        ),
        (
            {"targets": [{"value": 0.5, "deadline": "2025-12-31"}, {"value": 0.4, "deadline": "2024-12-31"}]},
            "list targets by deadline",
        ),
        (
            {"targets": [{"value": 0.4, "deadline": "2024-12-31"}, {"value": 0.5, "deadline": "2024-12-31"}]},
            "list targets by deadline",
        ),
        ({"targets": [{"value": 0, "deadline": "2024-12-31"}]}, "greater than 0"),
    ],
)
def test_malformed_milestones_are_refused(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _load(tmp_path, **fields)


# --- which milestone a period is judged against ---------------------------------------------------


def test_each_year_is_judged_against_the_milestone_of_its_plan() -> None:
    indicator = milestone_indicator(PLAN_2024, PLAN_2025, VISION_2030)
    assert milestone_in_force(indicator, "2023") == PLAN_2024
    assert milestone_in_force(indicator, "2024") == PLAN_2024
    assert milestone_in_force(indicator, "2025") == PLAN_2025
    # Years between two milestones are held to the next one; after the last, the last one.
    assert milestone_in_force(indicator, "2027") == VISION_2030
    assert milestone_in_force(indicator, "2031") == VISION_2030
    assert milestone_in_force(indicator, parse_period("2025")) == PLAN_2025


def test_a_deadline_inside_a_period_belongs_to_the_periods_ending_on_or_before_it() -> None:
    mid_2025 = Target(value=0.45, deadline=date(2025, 6, 30))
    indicator = milestone_indicator(PLAN_2024, mid_2025, PLAN_2025, period_type="half")
    assert milestone_in_force(indicator, "2025-H1") == mid_2025  # ends on the deadline
    assert milestone_in_force(indicator, "2025-H2") == PLAN_2025
    # A year ending after the mid-year deadline is held to the end-of-year milestone.
    assert milestone_in_force(indicator, "2025") == PLAN_2025


def test_the_packaged_adults_indicator_moves_from_the_2024_plan_to_2025(catalog: Catalog) -> None:
    adults = catalog["adults_online_public_services"]
    in_force = {label: milestone_in_force(adults, label) for label in ("2024", "2025", "2026")}
    assert {label: (m.value, m.deadline) for label, m in in_force.items() if m} == {
        "2024": (0.4, date(2024, 12, 31)),
        "2025": (0.5, date(2025, 12, 31)),
        "2026": (0.5, date(2025, 12, 31)),
    }


def test_the_next_milestone_is_the_first_deadline_not_yet_passed() -> None:
    indicator = milestone_indicator(PLAN_2024, PLAN_2025, VISION_2030)
    assert next_milestone(indicator, date(2024, 6, 30)) == PLAN_2024
    assert next_milestone(indicator, date(2024, 12, 31)) == PLAN_2024  # due today: still ahead
    assert next_milestone(indicator, date(2025, 1, 1)) == PLAN_2025
    assert next_milestone(indicator, date(2031, 1, 1)) is None
    assert next_milestone(milestone_indicator(), date(2024, 1, 1)) is None


def test_the_line_to_a_milestone_starts_at_its_baseline_or_the_milestone_before() -> None:
    own = PLAN_2025.model_copy(update={"baseline": Baseline(value=0.3, date=date(2024, 6, 30))})
    first = PLAN_2024.model_copy(update={"baseline": START})
    indicator = milestone_indicator(first, PLAN_2025, own.model_copy(update={"deadline": date(2026, 12, 31)}))
    assert trajectory_start(indicator, first) == START
    assert trajectory_start(indicator, PLAN_2025) == Baseline(value=0.4, date=date(2024, 12, 31))
    assert trajectory_start(indicator, indicator.milestones[2]) == own.baseline
    assert trajectory_start(milestone_indicator(PLAN_2024), PLAN_2024) is None


# --- properties -----------------------------------------------------------------------------------

PERIOD_TYPES: tuple[PeriodType, ...] = ("year", "half", "quarter", "month")
"""Every period type the catalog allows."""


@st.composite
def milestones(draw: st.DrawFn, period_type: PeriodType = "month") -> tuple[Target, ...]:
    """One to five milestones with distinct deadlines, by deadline, between 2020 and 2035; many of
    them due on the last day of a period of ``period_type``, where "on or after" is decided."""
    days = draw(st.lists(st.integers(0, 16 * 366), min_size=1, max_size=5, unique=True))
    deadlines = {date(2020, 1, 1) + timedelta(days=day) for day in days}
    if draw(st.booleans()):
        deadlines = {period_of(deadline, period_type).end for deadline in deadlines}
    return tuple(
        Target(value=draw(st.floats(0.01, 1e6)), deadline=deadline) for deadline in sorted(deadlines)
    )


@st.composite
def periods_of(draw: st.DrawFn, period_type: PeriodType) -> str:
    day = date(2018, 1, 1) + timedelta(days=draw(st.integers(0, 20 * 366)))
    return period_of(day, period_type).label


@st.composite
def judged_cases(draw: st.DrawFn) -> tuple[PeriodType, tuple[Target, ...], str]:
    """A period type, milestones, and a period: any, or one next to (or holding) a deadline."""
    period_type = draw(st.sampled_from(PERIOD_TYPES))
    targets = draw(milestones(period_type))
    if draw(st.booleans()):
        label = draw(periods_of(period_type))
    else:
        holding = period_of(draw(st.sampled_from(targets)).deadline, period_type)
        label = shifted(holding, draw(st.integers(-1, 1))).label
    return period_type, targets, label


@settings(max_examples=300, deadline=None)
@given(judged_cases())
def test_the_milestone_in_force_is_the_earliest_due_on_or_after_the_periods_end(
    case: tuple[PeriodType, tuple[Target, ...], str],
) -> None:
    period_type, targets, label = case
    indicator = milestone_indicator(*targets, period_type=period_type)
    end = parse_period(label).end
    chosen = milestone_in_force(indicator, label)
    assert chosen is not None
    assert chosen in targets
    if end > targets[-1].deadline:
        assert chosen == targets[-1]
    else:
        assert chosen.deadline >= end
        assert not [m for m in targets if end <= m.deadline < chosen.deadline]
    # The same milestone as the next one ahead on the period's last day, or the last one.
    assert chosen == (next_milestone(indicator, end) or targets[-1])
    # Later periods are never held to an earlier milestone.
    later = milestone_in_force(indicator, shifted(parse_period(label), 1))
    assert later is not None
    assert later.deadline >= chosen.deadline


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(PERIOD_TYPES).flatmap(lambda t: st.tuples(st.just(t), periods_of(t))))
def test_a_single_target_is_in_force_for_every_period(case: tuple[PeriodType, str]) -> None:
    period_type, label = case
    indicator = milestone_indicator(period_type=period_type).model_copy(
        update={"targets": (), "target": PLAN_2025}
    )
    assert milestone_in_force(indicator, label) is PLAN_2025
    assert milestone_in_force(milestone_indicator(period_type=period_type), label) is None


@settings(max_examples=200, deadline=None)
@given(milestones(), st.integers(0, 20 * 366))
def test_the_next_milestone_is_the_earliest_deadline_on_or_after_the_day(
    targets: tuple[Target, ...], offset: int
) -> None:
    indicator = milestone_indicator(*targets)
    on = date(2018, 1, 1) + timedelta(days=offset)
    ahead = [m for m in targets if m.deadline >= on]
    assert next_milestone(indicator, on) == (ahead[0] if ahead else None)


# --- rollups and rules judge the milestone in force ---------------------------------------------

ADULTS = milestone_indicator(PLAN_2024.model_copy(update={"baseline": START}), PLAN_2025)


def national(
    indicator: Indicator, label: str, share: float, registry: Registry, observed: datetime
) -> Rollup:
    period = parse_period(label)
    latest = {
        r: Snapshot(observed, f"e-{r}", RatioValue(numerator=share * 1000, denominator=1000))
        for r in registry.expected(indicator.groups, period.end)
    }
    return next(
        r for r in compute_rollups(indicator, period, latest, registry, observed) if r.scope == NATIONAL_SCOPE
    )


def judged(indicator: Indicator, rollup: Rollup, now: datetime) -> list[AlertEvent]:
    return evaluate(AlertState(), indicator, rollup, now)[1]


def test_each_periods_rollup_carries_the_milestone_in_force(registry: Registry) -> None:
    observed = datetime(2025, 12, 31, tzinfo=UTC)
    for label, milestone in (("2024", PLAN_2024), ("2025", PLAN_2025), ("2026", PLAN_2025)):
        rollup = national(ADULTS, label, 0.45, registry, observed)
        assert rollup.target is not None
        assert (rollup.target.value, rollup.target.deadline) == (milestone.value, milestone.deadline)
        assert rollup.attainment == pytest.approx(0.45 / milestone.value)


def test_below_target_judges_each_period_against_its_own_milestone(registry: Registry) -> None:
    now = datetime(2026, 2, 1, tzinfo=UTC)
    met_2024 = national(ADULTS, "2024", 0.45, registry, datetime(2024, 12, 31, tzinfo=UTC))
    assert judged(ADULTS, met_2024, now) == []
    short_2025 = national(ADULTS, "2025", 0.45, registry, datetime(2025, 12, 31, tzinfo=UTC))
    (alert,) = judged(ADULTS, short_2025, now)
    assert alert.rule == "below_target"
    assert alert.target == 0.5
    assert "below target 50.0% due 2025-12-31 (2025 tasks)" in alert.summary
    # On the deadline day the 2025 figure is not yet below target, only short of the line to it.
    on_deadline = datetime(2025, 12, 31, 12, tzinfo=UTC)
    assert [e.rule for e in judged(ADULTS, short_2025, on_deadline)] == ["off_trajectory"]


def test_off_trajectory_draws_the_line_from_the_milestone_before(registry: Registry) -> None:
    mid_2025 = datetime(2025, 7, 2, tzinfo=UTC)  # half way from 40% (end 2024) to 50% (end 2025)
    behind = national(ADULTS, "2025", 0.41, registry, mid_2025)
    (alert,) = judged(ADULTS, behind, mid_2025 + timedelta(days=1))
    assert alert.rule == "off_trajectory"
    assert "expected 45.0% by now on the line from 40.0% on 2024-12-31" in alert.summary
    assert alert.summary.endswith("target 50.0% due 2025-12-31 (2025 tasks)")
    on_line = national(ADULTS, "2025", 0.45, registry, mid_2025)
    assert judged(ADULTS, on_line, mid_2025 + timedelta(days=1)) == []
    # The first milestone's line starts at its own baseline: 20% at end 2023 to 40% at end 2024.
    early = national(ADULTS, "2024", 0.25, registry, datetime(2024, 7, 1, tzinfo=UTC))
    (first,) = judged(ADULTS, early, datetime(2024, 7, 2, tzinfo=UTC))
    assert "on the line from 20.0% on 2023-12-31" in first.summary

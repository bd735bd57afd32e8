"""Alert rules as pure functions: rollups in, alert transitions out, with the hold-down lifecycle."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from dxpulse.cli.presentation import distinct_transitions
from dxpulse.domain.catalog import AlertRules, BelowTargetRule, Catalog, default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Registry, default_registry
from dxpulse.domain.rollup import NATIONAL_SCOPE, Snapshot, compute_rollups
from dxpulse.domain.rules import (
    AlertState,
    count_by_kind,
    evaluate,
    fingerprint,
    firing_alerts,
    name_list,
    reporting_deadline,
)
from schemas import AlertEvent, FlagValue, RatioValue, ReportValue, Rollup

AFTER_DEADLINE = datetime(2025, 2, 1, tzinfo=UTC)
BEFORE_DEADLINE = datetime(2024, 8, 1, tzinfo=UTC)
HOLD = timedelta(minutes=2)


def emc_national(registry: Registry, catalog: Catalog, not_connected: set[str]) -> Rollup:
    """The national EMC rollup for 2024-H1 with every expected reporter connected but these."""
    indicator = catalog["emc_connection"]
    period = parse_period("2024-H1")
    expected = registry.expected(indicator.groups, period.end)
    latest = {
        r: Snapshot(datetime(2024, 6, 30, tzinfo=UTC), f"e-{r}", FlagValue(value=r not in not_connected))
        for r in expected
    }
    rollups = compute_rollups(indicator, period, latest, registry, AFTER_DEADLINE)
    return next(r for r in rollups if r.scope == "national")


def run(
    catalog: Catalog, steps: list[tuple[datetime, Rollup | None]], hold: timedelta = HOLD
) -> list[AlertEvent]:
    return run_with(catalog, steps, hold=hold)


def run_with(
    catalog: Catalog,
    steps: list[tuple[datetime, Rollup | None]],
    hold: timedelta = HOLD,
    resolve_hold: timedelta = timedelta(0),
) -> list[AlertEvent]:
    state = AlertState()
    events: list[AlertEvent] = []
    for now, rollup in steps:
        state, new = evaluate(state, catalog["emc_connection"], rollup, now, hold, resolve_hold)
        # The state must survive the table's JSON round trip at every step (a restart).
        state = AlertState.from_json(json.loads(json.dumps(state.to_json())))
        events += new
    return events


def test_below_target_fires_once_after_the_hold_down_with_the_current_figure(
    registry: Registry, catalog: Catalog
) -> None:
    filling = emc_national(registry, catalog, {"ministry:GI", "ministry:MOC", "province:01"})
    settled = emc_national(registry, catalog, {"ministry:GI", "ministry:MOC"})
    t0 = AFTER_DEADLINE
    events = run(
        catalog,
        [(t0, filling), (t0 + timedelta(seconds=30), settled), (t0 + HOLD, None), (t0 + 2 * HOLD, None)],
    )
    assert [(e.rule, e.status) for e in events] == [("below_target", "firing")]
    alert = events[0]
    assert alert.summary == (
        "Procedure systems connected to EMC 97.6% (82/84) below target 100.0% due 2024-12-31;"
        " not met: ministry:GI, ministry:MOC"
    )
    assert alert.reporters == ["ministry:GI", "ministry:MOC"]
    assert alert.fingerprint == fingerprint("below_target", "emc_connection", "2024-H1", "national")
    assert alert.starts_at == t0
    assert alert.changed_at == t0 + HOLD
    assert alert.severity == "critical"


def test_below_target_does_not_fire_before_the_deadline(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    assert run(catalog, [(BEFORE_DEADLINE, short), (BEFORE_DEADLINE + 2 * HOLD, None)]) == []


def test_deadline_passing_without_new_reports_fires_on_reevaluation(
    registry: Registry, catalog: Catalog
) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    events = run(catalog, [(BEFORE_DEADLINE, short), (AFTER_DEADLINE, None), (AFTER_DEADLINE + HOLD, None)])
    assert [(e.rule, e.status) for e in events] == [("below_target", "firing")]


def test_condition_that_clears_within_the_hold_down_never_fires(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    full = emc_national(registry, catalog, set())
    t0 = AFTER_DEADLINE
    steps = [(t0, short), (t0 + timedelta(seconds=10), full), (t0 + 2 * HOLD, None)]
    assert run(catalog, steps) == []


def test_firing_alert_resolves_once_when_target_is_met(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    full = emc_national(registry, catalog, set())
    t0 = AFTER_DEADLINE
    steps = [
        (t0, short),
        (t0 + HOLD, None),
        (t0 + 3 * HOLD, full),
        (t0 + 4 * HOLD, None),
        (t0 + 5 * HOLD, full),
    ]
    events = run(catalog, steps)
    assert [(e.rule, e.status) for e in events] == [("below_target", "firing"), ("below_target", "resolved")]
    assert events[1].ends_at == t0 + 3 * HOLD
    assert events[1].starts_at == t0


def test_regression_names_the_reporters_that_fell_back(registry: Registry, catalog: Catalog) -> None:
    full = emc_national(registry, catalog, set())
    fallen = emc_national(registry, catalog, {"province:79"})
    t0 = BEFORE_DEADLINE
    events = run(
        catalog, [(t0, full), (t0 + timedelta(seconds=1), fallen), (t0 + HOLD + timedelta(seconds=1), None)]
    )
    assert [(e.rule, e.status) for e in events] == [("regression", "firing")]
    assert events[0].reporters == ["province:79"]
    assert "fell from" in events[0].summary
    assert "83/84" in events[0].summary


def test_regression_resolves_when_the_figure_recovers(registry: Registry, catalog: Catalog) -> None:
    full = emc_national(registry, catalog, set())
    fallen = emc_national(registry, catalog, {"province:79"})
    t0 = BEFORE_DEADLINE
    steps = [(t0, full), (t0, fallen), (t0 + HOLD, None), (t0 + 2 * HOLD, full)]
    events = run(catalog, steps)
    assert [(e.rule, e.status) for e in events] == [("regression", "firing"), ("regression", "resolved")]


def test_zero_hold_down_fires_at_once(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    events = run(catalog, [(AFTER_DEADLINE, short)], hold=timedelta(0))
    assert [(e.rule, e.status) for e in events] == [("below_target", "firing")]


# --- helpers for the other families ----------------------------------------------------------


def rollup_of(
    indicator_id: str,
    period_label: str,
    value_of: Callable[[str], ReportValue | None],
    observed_at: datetime,
    scope: str = NATIONAL_SCOPE,
) -> Rollup:
    """One scope's rollup with each expected reporter's value from ``value_of`` (None: no report)."""
    catalog, registry = default_catalog(), default_registry()
    indicator = catalog[indicator_id]
    period = parse_period(period_label)
    latest = {}
    for r in sorted(registry.expected(indicator.groups, period.end)):
        value = value_of(r)
        if value is not None:
            latest[r] = Snapshot(observed_at, f"e-{r}-{observed_at.isoformat()}", value)
    rollups = compute_rollups(indicator, period, latest, registry, observed_at)
    return next(r for r in rollups if r.scope == scope)


def rate(share: float) -> Callable[[str], ReportValue | None]:
    """Every reporter files ``share`` of its records online."""
    return lambda _: RatioValue(numerator=share * 1000, denominator=1000)


def judge(
    indicator_id: str,
    steps: list[tuple[datetime, Rollup | None]],
    hold: timedelta = timedelta(0),
    resolve_hold: timedelta = timedelta(0),
) -> list[AlertEvent]:
    """Run ``evaluate`` over the steps, through the table's JSON at every step; all transitions."""
    indicator = default_catalog()[indicator_id]
    state = AlertState()
    events: list[AlertEvent] = []
    for now, rollup in steps:
        state, new = evaluate(state, indicator, rollup, now, hold, resolve_hold)
        state = AlertState.from_json(json.loads(json.dumps(state.to_json())))
        events += new
    return events


def transitions(events: list[AlertEvent], rule: str | None = None) -> list[tuple[str, str]]:
    return [(e.rule, e.status) for e in events if rule is None or e.rule == rule]


# --- off_trajectory --------------------------------------------------------------------------


def test_off_trajectory_fires_when_behind_the_line_from_baseline_to_target() -> None:
    # online_records_rate: 17% on 2023-12-31 to 50% by 2025-12-31, tolerance 3% of the target.
    end_2024 = datetime(2024, 12, 31, tzinfo=UTC)
    behind = rollup_of("online_records_rate", "2024-H2", rate(0.20), end_2024)
    events = judge("online_records_rate", [(end_2024 + timedelta(days=40), behind)])
    assert transitions(events, "off_trajectory") == [("off_trajectory", "firing")]
    alert = next(e for e in events if e.rule == "off_trajectory")
    assert alert.summary == (
        "Administrative procedure records filed online 20.0% (16,800/84,000) on 2024-12-31:"
        " limited progress; expected 33.5% by now on the line from 17.0% on 2023-12-31;"
        " target 50.0% due 2025-12-31"
    )
    assert alert.severity == "warning"


def test_off_trajectory_is_quiet_on_or_near_the_line() -> None:
    end_2024 = datetime(2024, 12, 31, tzinfo=UTC)
    for share in (0.34, 0.33):  # on the line (33.5%), and within the 1.5-point tolerance
        on_track = rollup_of("online_records_rate", "2024-H2", rate(share), end_2024)
        assert transitions(judge("online_records_rate", [(end_2024, on_track)]), "off_trajectory") == []


def test_off_trajectory_projects_the_recent_pace_to_the_deadline() -> None:
    # low_signal_villages_broadband has no baseline: only the projection can tell it slips.
    points = [(datetime(2024, 8, 1, tzinfo=UTC), 0.20), (datetime(2024, 10, 1, tzinfo=UTC), 0.22)]
    points.append((datetime(2024, 12, 1, tzinfo=UTC), 0.24))
    steps: list[tuple[datetime, Rollup | None]] = [
        (at, rollup_of("low_signal_villages_broadband", "2024-H2", rate(v), at)) for at, v in points
    ]
    events = judge("low_signal_villages_broadband", steps)
    assert transitions(events, "off_trajectory") == [("off_trajectory", "firing")]
    alert = next(e for e in events if e.rule == "off_trajectory")
    # 4 points in 4 months: 24% + 395 days at 0.033 points a day is about 37%, far from 100%.
    assert "limited progress; projected 37.0% by the deadline at the recent pace" in alert.summary
    # Two months of history are enough to project: it fires at the second figure.
    assert alert.changed_at == points[1][0]


def test_off_trajectory_calls_a_falling_pace_deteriorating() -> None:
    points = [(datetime(2024, 8, 1, tzinfo=UTC), 0.30), (datetime(2024, 10, 1, tzinfo=UTC), 0.25)]
    steps: list[tuple[datetime, Rollup | None]] = [
        (at, rollup_of("low_signal_villages_broadband", "2024-H2", rate(v), at)) for at, v in points
    ]
    (alert,) = [e for e in judge("low_signal_villages_broadband", steps) if e.rule == "off_trajectory"]
    assert ": deteriorating; projected" in alert.summary


def test_off_trajectory_needs_history_spanning_the_minimum_before_projecting() -> None:
    # Two figures ten days apart (a period filling in) are no pace to project from.
    points = [(datetime(2024, 8, 1, tzinfo=UTC), 0.20), (datetime(2024, 8, 11, tzinfo=UTC), 0.21)]
    steps: list[tuple[datetime, Rollup | None]] = [
        (at, rollup_of("low_signal_villages_broadband", "2024-H2", rate(v), at)) for at, v in points
    ]
    assert transitions(judge("low_signal_villages_broadband", steps), "off_trajectory") == []


def test_off_trajectory_resolves_once_the_deadline_passes_and_below_target_takes_over() -> None:
    end_2024 = datetime(2024, 12, 31, tzinfo=UTC)
    behind = rollup_of("online_records_rate", "2024-H2", rate(0.20), end_2024)
    events = judge("online_records_rate", [(end_2024, behind), (datetime(2026, 1, 2, tzinfo=UTC), None)])
    assert [t for t in transitions(events) if t[0] != "missing_reports"] == [
        ("off_trajectory", "firing"),
        ("below_target", "firing"),
        ("off_trajectory", "resolved"),
    ]


def test_off_trajectory_on_a_group_scope_is_informational() -> None:
    end_2024 = datetime(2024, 12, 31, tzinfo=UTC)
    behind = rollup_of("online_records_rate", "2024-H2", rate(0.20), end_2024, scope="provinces")
    (alert,) = judge("online_records_rate", [(end_2024, behind)])
    assert (alert.rule, alert.scope, alert.severity) == ("off_trajectory", "provinces", "info")


def test_history_is_bounded_and_ignores_older_figures() -> None:
    indicator = default_catalog()["low_signal_villages_broadband"]
    state = AlertState()
    start = datetime(2024, 7, 1, tzinfo=UTC)
    for day in range(20):
        at = start + timedelta(days=day)
        state, _ = evaluate(state, indicator, rollup_of(indicator.id, "2024-H2", rate(0.2), at), at)
    assert len(state.history) == indicator.alerts.off_trajectory.history
    assert state.history[-1][0] == start + timedelta(days=19)
    late = rollup_of(indicator.id, "2024-H2", rate(0.1), start)
    state2, _ = evaluate(state, indicator, late, start + timedelta(days=30))
    assert state2.history == state.history


# --- regression ------------------------------------------------------------------------------


def test_regression_flapping_within_the_hold_down_never_fires(registry: Registry, catalog: Catalog) -> None:
    full = emc_national(registry, catalog, set())
    fallen = emc_national(registry, catalog, {"province:79"})
    t0 = BEFORE_DEADLINE
    steps: list[tuple[datetime, Rollup | None]] = [
        (t0 + timedelta(seconds=30 * i), fallen if i % 2 else full) for i in range(12)
    ]
    assert run(catalog, steps) == []


def test_regression_of_a_ratio_says_a_reporter_restated() -> None:
    at = datetime(2024, 12, 31, tzinfo=UTC)
    high = rollup_of("online_records_rate", "2024-H2", rate(0.40), at)
    low = rollup_of("online_records_rate", "2024-H2", rate(0.39), at + timedelta(days=1))
    events = judge("online_records_rate", [(at, high), (at + timedelta(days=1), low)])
    (alert,) = [e for e in events if e.rule == "regression"]
    assert alert.summary.endswith(
        "fell from Administrative procedure records filed online 40.0%"
        " (33,600/84,000); a reporter restated a lower value"
    )
    assert alert.reporters == []


# --- lifecycle: resolve hold-down ------------------------------------------------------------


def test_flapping_around_the_target_fires_once_and_resolves_once(
    registry: Registry, catalog: Catalog
) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    full = emc_national(registry, catalog, set())
    t0 = AFTER_DEADLINE
    # Fires after the 2-minute hold-down, then flaps every 30 s for 10 minutes, then stays met.
    steps: list[tuple[datetime, Rollup | None]] = [(t0, short), (t0 + HOLD, None)]
    steps += [(t0 + HOLD + timedelta(seconds=30 * i), full if i % 2 else short) for i in range(1, 21)]
    settled = t0 + HOLD + timedelta(seconds=30 * 21)
    steps += [(settled, full), (settled + timedelta(minutes=1), None), (settled + HOLD, None)]
    steps += [(settled + 3 * HOLD, None)]
    events = run_with(catalog, steps, resolve_hold=HOLD)
    assert transitions(events) == [("below_target", "firing"), ("below_target", "resolved")]
    assert events[1].ends_at == settled
    assert events[1].changed_at == settled + HOLD


def test_without_resolve_hold_down_flapping_storms(registry: Registry, catalog: Catalog) -> None:
    """The reason for the resolve hold-down: the same flapping with none resolves and re-fires."""
    short = emc_national(registry, catalog, {"ministry:GI"})
    full = emc_national(registry, catalog, set())
    t0 = AFTER_DEADLINE
    steps: list[tuple[datetime, Rollup | None]] = [
        (t0 + timedelta(seconds=30 * i), full if i % 2 else short) for i in range(6)
    ]
    events = run_with(catalog, steps, hold=timedelta(0), resolve_hold=timedelta(0))
    assert len(transitions(events, "below_target")) == 6


def test_firing_alerts_lists_only_firing_ones(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    indicator = catalog["emc_connection"]
    state, _ = evaluate(AlertState(), indicator, short, AFTER_DEADLINE, HOLD)
    assert firing_alerts(state, AFTER_DEADLINE) == []  # pending
    state, (fired,) = evaluate(state, indicator, None, AFTER_DEADLINE + HOLD, HOLD)
    (current,) = firing_alerts(state, AFTER_DEADLINE + HOLD)
    assert current == fired


# --- missing_reports -------------------------------------------------------------------------


def _emc_without(missing: set[str]) -> Callable[[str], ReportValue | None]:
    return lambda r: None if r in missing else FlagValue(value=True)


def _some_missing() -> set[str]:
    registry, indicator = default_registry(), default_catalog()["emc_connection"]
    expected = sorted(registry.expected(indicator.groups, parse_period("2024-H1").end))
    ministries = [r for r in expected if r.startswith("ministry:")][:12]
    provinces = [r for r in expected if r.startswith("province:")][:20]
    return {*ministries, *provinces}


def test_missing_reports_fires_at_the_reporting_deadline_listing_who() -> None:
    missing = _some_missing()
    observed = datetime(2024, 6, 30, tzinfo=UTC)
    rollup = rollup_of("emc_connection", "2024-H1", _emc_without(missing), observed)
    due = datetime(2024, 7, 30, tzinfo=UTC)  # 2024-H1 ends 2024-06-30, plus 30 days of grace
    events = judge("emc_connection", [(observed, rollup), (due, None), (due + timedelta(days=1), None)])
    # 52/84 connected is also behind EMC's trajectory: that is off_trajectory's alert, not this one.
    assert transitions(events, "missing_reports") == [("missing_reports", "firing")]
    (alert,) = [e for e in events if e.rule == "missing_reports"]
    assert alert.changed_at == due + timedelta(days=1)
    assert alert.summary.startswith(
        "12 ministries and 20 localities have not reported Procedure systems connected to EMC"
        " for 2024-H1 (due 2024-07-30; 52/84 reported): "
    )
    assert alert.summary.endswith(" and 22 more")
    assert alert.reporters == sorted(missing)
    assert (alert.scope, alert.severity) == ("national", "warning")


def test_missing_reports_expects_nothing_before_the_first_period() -> None:
    # emc_connection is owed from 2024-H1: a backfilled 2023-H2 figure alerts nobody as missing.
    assert default_catalog()["emc_connection"].first_period == "2024-H1"
    late = datetime(2025, 9, 1, tzinfo=UTC)
    backfill = rollup_of("emc_connection", "2023-H2", _emc_without(_some_missing()), late)
    assert transitions(judge("emc_connection", [(late, backfill)]), "missing_reports") == []
    owed = rollup_of("emc_connection", "2024-H1", _emc_without(_some_missing()), late)
    assert transitions(judge("emc_connection", [(late, owed)]), "missing_reports") == [
        ("missing_reports", "firing")
    ]


def test_missing_reports_is_judged_on_the_national_scope_only() -> None:
    missing = _some_missing()
    late = datetime(2024, 9, 1, tzinfo=UTC)
    provinces = rollup_of("emc_connection", "2024-H1", _emc_without(missing), late, scope="provinces")
    assert transitions(judge("emc_connection", [(late, provinces)]), "missing_reports") == []


def test_missing_reports_resolves_when_the_last_report_arrives() -> None:
    late = datetime(2024, 9, 1, tzinfo=UTC)
    one = {"ministry:MIC"}
    some = rollup_of("emc_connection", "2024-H1", _emc_without(one), late)
    every = rollup_of("emc_connection", "2024-H1", _emc_without(set()), late + timedelta(days=2))
    events = judge("emc_connection", [(late, some), (late + timedelta(days=2), every)])
    assert transitions(events, "missing_reports") == [
        ("missing_reports", "firing"),
        ("missing_reports", "resolved"),
    ]
    assert events[0].summary.startswith("1 ministry has not reported")
    assert events[0].summary.endswith(": ministry:MIC")


def test_missing_reports_grace_is_configured_per_indicator() -> None:
    vneid = default_catalog()["vneid_accounts"]
    assert vneid.alerts.missing_reports.grace_days == 45
    assert reporting_deadline(vneid, "2024") == date(2025, 2, 14)
    assert reporting_deadline(default_catalog()["emc_connection"], "2024-H2") == date(2025, 1, 30)


def test_count_by_kind_words() -> None:
    assert count_by_kind(["ministry:A", "province:01", "province:02"]) == "1 ministry and 2 localities"
    assert count_by_kind(["national:MPS"]) == "1 national body"
    assert count_by_kind(["ministry:A", "ministry:B", "province:01", "national:X"]) == (
        "2 ministries, 1 locality and 1 national body"
    )
    assert name_list([f"r{i}" for i in range(12)], limit=10).endswith("r9 and 2 more")


def test_disabled_rule_never_fires_and_resolves_what_fired(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    on = catalog["emc_connection"]
    off = on.model_copy(update={"alerts": AlertRules(below_target=BelowTargetRule(enabled=False))})
    state, fired = evaluate(AlertState(), on, short, AFTER_DEADLINE)
    state, resolved = evaluate(state, off, None, AFTER_DEADLINE + HOLD)
    assert transitions(fired + resolved) == [("below_target", "firing"), ("below_target", "resolved")]
    assert evaluate(AlertState(), off, short, AFTER_DEADLINE)[1] == []


# --- transition ids ----------------------------------------------------------------------------


def test_transition_ids_number_the_episodes_of_an_alert(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    full = emc_national(registry, catalog, set())
    t0 = AFTER_DEADLINE
    steps = [(t0, short), (t0 + HOLD, None), (t0 + 2 * HOLD, full), (t0 + 3 * HOLD, short)]
    events = run(catalog, [*steps, (t0 + 4 * HOLD, None)])
    fp = fingerprint("below_target", "emc_connection", "2024-H1", "national")
    ids = [e.transition_id for e in events if e.rule == "below_target"]
    assert ids == [f"{fp}:1:firing", f"{fp}:1:resolved", f"{fp}:2:firing"]


def test_judging_the_same_state_again_later_gives_the_same_transition_id(
    registry: Registry, catalog: Catalog
) -> None:
    # A crash after publishing a transition but before saving the state it led to: the input is
    # redelivered and judged again from the saved state, later, and possibly with no hold-down
    # (so another starts_at). The id is the same, so consumers and history keep one.
    short = emc_national(registry, catalog, {"ministry:GI"})
    indicator = catalog["emc_connection"]
    saved = AlertState()
    _, first = evaluate(saved, indicator, short, AFTER_DEADLINE)
    _, again = evaluate(saved, indicator, short, AFTER_DEADLINE + timedelta(seconds=5))
    assert [e.transition_id for e in first] == [e.transition_id for e in again]
    assert first[0].starts_at != again[0].starts_at


def test_a_condition_that_never_fired_still_uses_up_its_episode(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    full = emc_national(registry, catalog, set())
    t0 = AFTER_DEADLINE
    steps = [(t0, short), (t0 + timedelta(seconds=10), full), (t0 + HOLD, short), (t0 + 2 * HOLD, None)]
    (fired,) = [e for e in run(catalog, steps) if e.rule == "below_target"]
    assert fired.transition_id == f"{fired.fingerprint}:2:firing"


def test_firing_alerts_carry_the_id_of_their_firing_transition(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    state, events = evaluate(AlertState(), catalog["emc_connection"], short, AFTER_DEADLINE)
    assert [a.transition_id for a in firing_alerts(state, AFTER_DEADLINE + HOLD)] == [events[0].transition_id]


def test_state_saved_before_episodes_were_counted_resolves_as_episode_zero(
    registry: Registry, catalog: Catalog
) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    full = emc_national(registry, catalog, set())
    indicator = catalog["emc_connection"]
    state, _ = evaluate(AlertState(), indicator, short, AFTER_DEADLINE)
    old = {k: v for k, v in state.to_json().items() if k != "episodes"}
    _, events = evaluate(AlertState.from_json(old), indicator, full, AFTER_DEADLINE + HOLD)
    assert [e.transition_id for e in events] == [
        f"{fingerprint('below_target', 'emc_connection', '2024-H1', 'national')}:0:resolved"
    ]


def test_distinct_transitions_keep_the_first_copy_of_each_id(registry: Registry, catalog: Catalog) -> None:
    short = emc_national(registry, catalog, {"ministry:GI"})
    indicator = catalog["emc_connection"]
    _, first = evaluate(AlertState(), indicator, short, AFTER_DEADLINE)
    _, again = evaluate(AlertState(), indicator, short, AFTER_DEADLINE + HOLD)
    legacy = first[0].model_copy(update={"transition_id": None})
    assert distinct_transitions([first[0], legacy, again[0], legacy]) == [first[0], legacy, legacy]


def _cut(rollup: Rollup, *, lagging: int = 0, not_reported: int = 0) -> Rollup:
    """``rollup`` as a district-level registry would publish it: its lists the first names of more."""
    return rollup.model_copy(
        update={
            "lagging_count": rollup.lagging_count + lagging,
            "not_reported_count": rollup.not_reported_count + not_reported,
        }
    )


def test_missing_reports_of_a_cut_list_counts_every_reporter() -> None:
    missing = _some_missing()
    late = datetime(2024, 9, 1, tzinfo=UTC)
    rollup = _cut(rollup_of("emc_connection", "2024-H1", _emc_without(missing), late), not_reported=900)
    assert rollup.names_cut
    (alert,) = judge("emc_connection", [(late, rollup)])[-1:]
    assert alert.rule == "missing_reports"
    assert alert.summary.startswith("932 reporters have not reported Procedure systems connected to EMC")
    assert alert.summary.endswith(" and 922 more")


def test_regression_with_cut_lists_names_nobody(registry: Registry, catalog: Catalog) -> None:
    # In a cut list a name may appear only because one before it by id reported: not a fall.
    full = _cut(emc_national(registry, catalog, set()), lagging=200, not_reported=200)
    fallen = _cut(emc_national(registry, catalog, {"province:79"}), lagging=200, not_reported=200)
    t0 = BEFORE_DEADLINE
    events = run(
        catalog, [(t0, full), (t0 + timedelta(seconds=1), fallen), (t0 + HOLD + timedelta(seconds=1), None)]
    )
    assert [(e.rule, e.status) for e in events] == [("regression", "firing")]
    assert events[0].reporters == []
    assert "fell back" not in events[0].summary


def test_name_list_counts_the_names_a_cut_list_left_out() -> None:
    assert name_list(["a", "b"], limit=10, total=50) == "a, b and 48 more"
    assert name_list([f"r{i}" for i in range(12)], limit=10, total=100).endswith("r9 and 90 more")
    assert name_list(["a", "b"], limit=10) == "a, b"

"""Alert rules as pure functions: rollups in, alert transitions out, with the hold-down lifecycle."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dxpulse.catalog import Catalog
from dxpulse.periods import parse_period
from dxpulse.registry import Registry
from dxpulse.rollup import Snapshot, compute_rollups
from dxpulse.rules import AlertState, evaluate, fingerprint
from schemas import AlertEvent, FlagValue, Rollup

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
    state = AlertState()
    events: list[AlertEvent] = []
    for now, rollup in steps:
        state, new = evaluate(state, catalog["emc_connection"], rollup, now, hold)
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

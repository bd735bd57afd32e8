"""Pure alert rules: a rollup, the alert state and ``now`` in; the new state and alert transitions out.

Lifecycle follows Alertmanager's semantics: an alert is identified by a stable fingerprint
(rule, indicator, period, scope), fires once when its condition has held for the hold-down and
resolves once when it has stopped holding for the resolve hold-down.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from dxpulse.domain.catalog import (
    Catalog,
    Indicator,
    Severity,
    Target,
    milestone_in_force,
    trajectory_start,
)
from dxpulse.domain.periods import Period, PeriodError, parse_period, period_of, shifted
from dxpulse.domain.registry import Registry
from dxpulse.domain.rollup import NATIONAL_SCOPE, compute_rollups
from schemas import AlertEvent, Rollup
from schemas.events import rollup_key

RuleName = Literal["below_target", "off_trajectory", "regression", "missing_reports"]
RULES: tuple[RuleName, ...] = ("below_target", "off_trajectory", "regression", "missing_reports")

NAMES_IN_SUMMARY = 10
"""Reporters named in a summary before "and N more"; the event's ``reporters`` lists them all."""


def fingerprint(rule: str, indicator: str, period: str, scope: str) -> str:
    """Stable id of one alert: the same condition on the same figure is always the same alert."""
    return hashlib.sha256(f"{rule}|{indicator}|{period}|{scope}".encode()).hexdigest()[:16]


def transition_id(fingerprint: str, episode: int, status: str) -> str:
    """Id of one transition: the alert, which of its episodes (1 for the first time its condition
    held, 2 for the next, ...), and firing or resolved. Judging the same state again gives the same
    id, so a transition published twice (a crash before its state was saved) can be told apart from
    a new one by consumers and history alike."""
    return f"{fingerprint}:{episode}:{status}"


@dataclass(frozen=True)
class ActiveAlert:
    """An alert whose condition holds: pending until it has held for the hold-down, then firing.

    A firing alert whose condition stopped holding keeps firing, with ``cleared_at`` set, until
    the resolve hold-down has passed, so a figure flapping around a threshold does not storm.
    """

    starts_at: datetime
    firing: bool = True
    reference: float | None = None
    """regression: the value before the fall; the alert resolves once the figure is back to it."""
    reporters: tuple[str, ...] = ()
    summary: str = ""
    severity: Severity = "warning"
    cleared_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "starts_at": self.starts_at.isoformat(),
            "firing": self.firing,
            "reference": self.reference,
            "reporters": list(self.reporters),
            "summary": self.summary,
            "severity": self.severity,
            "cleared_at": self.cleared_at.isoformat() if self.cleared_at else None,
        }

    @classmethod
    def from_json(cls, a: Mapping[str, Any]) -> ActiveAlert:
        cleared = a.get("cleared_at")
        return cls(
            starts_at=datetime.fromisoformat(a["starts_at"]),
            firing=a.get("firing", True),
            reference=a.get("reference"),
            reporters=tuple(a.get("reporters", ())),
            summary=a.get("summary", ""),
            severity=a.get("severity", "warning"),
            cleared_at=datetime.fromisoformat(cleared) if cleared else None,
        )


@dataclass(frozen=True)
class Condition:
    """A rule's verdict on a rollup: holding or not, with the words and names for the alert."""

    holds: bool
    summary: str = ""
    reporters: tuple[str, ...] = ()
    reference: float | None = None


Point = tuple[datetime, float]
"""A figure in the recent history: when it was true (newest observation) and its value."""


@dataclass(frozen=True)
class AlertState:
    """What the alerts service keeps per rollup key: the last rollup, recent values, active alerts."""

    last: Rollup | None = None
    active: dict[str, ActiveAlert] = field(default_factory=dict)
    history: tuple[Point, ...] = ()
    episodes: dict[str, int] = field(default_factory=dict)
    """Rule → number of its latest episode (its condition starting to hold), active or not: the middle
    part of transition ids. Counted when the condition starts, not when it fires: with a hold-down the
    number is saved well before the firing is published, so judging again after a crash cannot hand
    it to another episode."""

    def to_json(self) -> dict[str, Any]:
        return {
            "last": self.last.model_dump(mode="json") if self.last else None,
            "active": {rule: a.to_json() for rule, a in self.active.items()},
            "history": [[at.isoformat(), value] for at, value in self.history],
            "episodes": dict(self.episodes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AlertState:
        if not data:
            return cls()
        return cls(
            last=Rollup.model_validate(data["last"]) if data.get("last") else None,
            active={rule: ActiveAlert.from_json(a) for rule, a in data.get("active", {}).items()},
            history=tuple((datetime.fromisoformat(at), float(v)) for at, v in data.get("history", ())),
            # State saved before episodes were counted: its alerts are episode 0.
            episodes={rule: int(n) for rule, n in data.get("episodes", {}).items()},
        )


# --- wording ---------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def amount(indicator: Indicator, value: float) -> str:
    """A value in the indicator's terms: "50,350" for counts, "42.0%" for shares."""
    return f"{value:,.0f}" if indicator.kind == "count" else percent(value)


def describe(indicator: Indicator, rollup: Rollup) -> str:
    """A figure as people read it: "EMC connection 97.6% (82/84)" or "Enterprises 50,350"."""
    if rollup.kind == "count":
        return f"{indicator.name} {rollup.numerator:,.0f}"
    fraction = f"{rollup.numerator:,.0f}/{rollup.denominator:,.0f}" if rollup.denominator else "no data"
    return f"{indicator.name} {percent(rollup.value)} ({fraction})"


def _target_text(indicator: Indicator, target: Target) -> str:
    label = f" ({target.label})" if target.label else ""
    return f"target {amount(indicator, target.value)} due {target.deadline.isoformat()}{label}"


def judged_milestone(indicator: Indicator, rollup: Rollup) -> Target | None:
    """The target the rules hold a rollup to: the milestone in force for its period."""
    try:
        return milestone_in_force(indicator, rollup.period)
    except PeriodError:
        return None


def name_list(reporters: Sequence[str], limit: int = NAMES_IN_SUMMARY, total: int | None = None) -> str:
    """Reporters for a summary line: the first ``limit``, then how many more of ``total`` (by
    default, of ``reporters``; more when they are the first names of a rollup's cut list)."""
    shown = ", ".join(reporters[:limit])
    rest = max(len(reporters), total or 0) - min(limit, len(reporters))
    return f"{shown} and {rest} more" if rest > 0 else shown


_KIND_WORDS: dict[str, tuple[str, str]] = {
    "ministry": ("ministry", "ministries"),
    "province": ("locality", "localities"),
    "national": ("national body", "national bodies"),
}


def count_by_kind(reporters: Sequence[str]) -> str:
    """ "12 ministries and 20 localities", as national reviews count the units that have not acted."""
    counts: dict[str, int] = {}
    for reporter in reporters:
        kind = reporter.split(":", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    parts = []
    for kind, n in counts.items():
        one, many = _KIND_WORDS.get(kind, (f"{kind} unit", f"{kind} units"))
        parts.append(f"{n} {one if n == 1 else many}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --- the four rule families --------------------------------------------------------------------


def below_target(indicator: Indicator, rollup: Rollup, now: datetime) -> Condition:
    """After the deadline of the milestone in force for its period, the figure is short of it."""
    target = judged_milestone(indicator, rollup)
    if not indicator.alerts.below_target.enabled or target is None or rollup.attainment is None:
        return Condition(False)
    if now.date() <= target.deadline or rollup.attainment >= 1.0:
        return Condition(False)
    behind = tuple(rollup.lagging)
    names = f"; not met: {name_list(behind, total=rollup.lagging_count)}" if behind else ""
    text = f"{describe(indicator, rollup)} below {_target_text(indicator, target)}{names}"
    return Condition(True, text, behind)


def progress_category(progress: float) -> str:
    """Open SDG's progress wording for the share of the expected gain actually made."""
    if progress >= 0.5:
        return "needs acceleration"
    if progress >= 0:
        return "limited progress"
    return "deteriorating"


def straight_line(start: tuple[date, float], end: tuple[date, float], on: date) -> float:
    """The value on ``on`` of the straight line from ``start`` to ``end``."""
    (d0, v0), (d1, v1) = start, end
    return v0 + (v1 - v0) * (on - d0).days / (d1 - d0).days


def project(history: Sequence[Point], to: date, min_span: timedelta) -> float | None:
    """The value at ``to`` at the recent pace (least-squares slope, from the newest figure).

    None when the history spans less than ``min_span``: a figure still filling in within days says
    nothing about the pace.
    """
    if len(history) < 2 or history[-1][0] - history[0][0] < min_span:
        return None
    origin = history[0][0]
    xs = [(at - origin).total_seconds() / 86400 for at, _ in history]
    ys = [value for _, value in history]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    last_at, last_value = history[-1]
    return last_value + slope * (to - last_at.date()).days


def off_trajectory(
    indicator: Indicator, rollup: Rollup, history: Sequence[Point], now: datetime
) -> Condition:
    """Before the deadline of the milestone in force for its period: behind the line to it (from its
    baseline, or the milestone before it), or projected to miss it."""
    rule, target = indicator.alerts.off_trajectory, judged_milestone(indicator, rollup)
    if not rule.enabled or target is None or rollup.value is None or rollup.latest_observed_at is None:
        return Condition(False)
    as_of = rollup.latest_observed_at.date()
    if now.date() > target.deadline or as_of > target.deadline:
        return Condition(False)
    slack = rule.tolerance * target.value
    category = ""
    reasons = []
    baseline = trajectory_start(indicator, target)
    if baseline is not None and baseline.date < as_of:
        expected = straight_line((baseline.date, baseline.value), (target.deadline, target.value), as_of)
        if rollup.value < expected - slack:
            gain = expected - baseline.value
            category = progress_category((rollup.value - baseline.value) / gain if gain else -1.0)
            reasons.append(
                f"expected {amount(indicator, expected)} by now on the line from"
                f" {amount(indicator, baseline.value)} on {baseline.date.isoformat()}"
            )
    projected = project(history, target.deadline, timedelta(days=rule.min_history_days))
    if projected is not None and projected < target.value - slack:
        needed = target.value - rollup.value
        if not category:
            category = progress_category((projected - rollup.value) / needed if needed > 0 else -1.0)
        reasons.append(f"projected {amount(indicator, projected)} by the deadline at the recent pace")
    if not reasons:
        return Condition(False)
    return Condition(
        True,
        f"{describe(indicator, rollup)} on {as_of.isoformat()}: {category}; {'; '.join(reasons)};"
        f" {_target_text(indicator, target)}",
    )


def regression(
    indicator: Indicator, rollup: Rollup, previous: Rollup | None, active: ActiveAlert | None = None
) -> Condition:
    """The figure fell; it stays firing until it is back to the value before the fall.

    The reporters named are those that joined the lagging ones (flags: turned false or vanished);
    other kinds' rollups do not say which reporter restated, so the summary says so.
    """
    if not indicator.alerts.regression.enabled:
        return Condition(False)
    if active is not None and active.reference is not None:
        if rollup.value is not None and rollup.value >= active.reference:
            return Condition(False)
        return Condition(True, active.summary, active.reporters, active.reference)
    if previous is None or previous.value is None or rollup.value is None:
        return Condition(False)
    if rollup.value >= previous.value:
        return Condition(False)
    if rollup.kind == "ratio" and rollup.reporters_reported > previous.reporters_reported:
        # A reporter joining with a lower rate is not a fall; only restated values can regress.
        return Condition(False)
    if rollup.names_cut or previous.names_cut:
        # Only the first names by id: one missing from the earlier list may just have moved up.
        dropped: tuple[str, ...] = ()
    else:
        before = set(previous.lagging) | set(previous.not_reported)
        dropped = tuple(sorted((set(rollup.lagging) | set(rollup.not_reported)) - before))
    if dropped:
        names = f"; fell back: {name_list(dropped)}"
    elif rollup.kind != "flag":
        names = "; a reporter restated a lower value"
    else:
        names = ""
    return Condition(
        True,
        f"{describe(indicator, rollup)} fell from {describe(indicator, previous)}{names}",
        reporters=dropped,
        reference=previous.value,
    )


def reporting_deadline(indicator: Indicator, period: str) -> date | None:
    """The last day reports for ``period`` are due: the period's end plus the grace days."""
    try:
        end = parse_period(period).end
    except PeriodError:
        return None
    return end + timedelta(days=indicator.alerts.missing_reports.grace_days)


def owed(indicator: Indicator, period: Period | str) -> bool:
    """Whether reporters owe a report for ``period`` (or a label, "2024-H1"): none is owed before the
    indicator's ``first_period``, so an early report (a backfill) does not make the others missing."""
    owed_from = indicator.owed_from
    if owed_from is None:
        return True
    return (parse_period(period) if isinstance(period, str) else period).start >= owed_from


def due_periods(indicator: Indicator, now: datetime) -> list[Period]:
    """The periods whose reporting deadline has passed at ``now``, oldest first: the latest
    ``lookback_periods`` of them, none before the indicator's ``first_period``.

    These are judged by missing_reports even when nobody has reported for them; the lookback keeps a
    fresh deployment from raising every period since reporting began.
    """
    rule = indicator.alerts.missing_reports
    if not rule.enabled:
        return []
    # A deadline has passed once ``now`` is after it (as missing_reports judges): the latest period
    # due is the one ending on or before this day.
    last_day_due = now.date() - timedelta(days=rule.grace_days + 1)
    latest = period_of(last_day_due, indicator.period_type)
    if latest.end > last_day_due:
        latest = shifted(latest, -1)
    periods = (shifted(latest, -back) for back in reversed(range(rule.lookback_periods)))
    return [period for period in periods if owed(indicator, period)]


def due_keys(catalog: Catalog, now: datetime) -> list[str]:
    """The national rollup keys of every indicator's due periods: what the alerts service judges
    whether or not anyone has reported for them."""
    return [
        rollup_key(indicator.id, period.label, NATIONAL_SCOPE)
        for indicator in catalog.indicators
        for period in due_periods(indicator, now)
    ]


def unreported_figure(catalog: Catalog, registry: Registry, key: str, now: datetime) -> Rollup | None:
    """The national figure of a due period nobody has reported for, from its rollup key: every
    reporter the registry expects for that period is not reported (0/84). None when ``key`` is not
    the national scope of a period ``due_periods`` lists.
    """
    indicator_id, _, rest = key.partition("|")
    period_label, _, scope = rest.partition("|")
    indicator = catalog.get(indicator_id)
    if indicator is None or scope != NATIONAL_SCOPE:
        return None
    period = next((p for p in due_periods(indicator, now) if p.label == period_label), None)
    if period is None:
        return None
    rollups = compute_rollups(indicator, period, {}, registry, now)
    return next(r for r in rollups if r.scope == NATIONAL_SCOPE)


def missing_reports(indicator: Indicator, rollup: Rollup, now: datetime) -> Condition:
    """After the period's reporting deadline, expected reporters have still not reported."""
    if not indicator.alerts.missing_reports.enabled or rollup.scope != NATIONAL_SCOPE:
        return Condition(False)
    due = reporting_deadline(indicator, rollup.period)
    if due is None or now.date() <= due or not rollup.not_reported or not owed(indicator, rollup.period):
        return Condition(False)
    missing = tuple(rollup.not_reported)
    count = max(rollup.not_reported_count, len(missing))
    verb = "has" if count == 1 else "have"
    # A cut list names only the first by id, so counting its kinds would undercount.
    who = count_by_kind(missing) if count == len(missing) else f"{count} reporters"
    return Condition(
        True,
        f"{who} {verb} not reported {indicator.name} for {rollup.period}"
        f" (due {due.isoformat()}; {rollup.reporters_reported}/{rollup.reporters_expected} reported):"
        f" {name_list(missing, total=count)}",
        reporters=missing,
    )


def severity(indicator: Indicator, rule: RuleName, scope: str) -> Severity:
    """The configured severity: rules on one group's scope may be milder than on the national one."""
    rules = indicator.alerts
    national = scope == NATIONAL_SCOPE
    if rule == "below_target":
        return rules.below_target.severity if national else rules.below_target.group_severity
    if rule == "off_trajectory":
        return rules.off_trajectory.severity if national else rules.off_trajectory.group_severity
    if rule == "regression":
        return rules.regression.severity if national else rules.regression.group_severity
    return rules.missing_reports.severity


# --- the lifecycle ---------------------------------------------------------------------------


def remember(history: tuple[Point, ...], rollup: Rollup, keep: int) -> tuple[Point, ...]:
    """The recent history with ``rollup``'s figure added (one point per observation time)."""
    if rollup.value is None or rollup.latest_observed_at is None:
        return history
    at = rollup.latest_observed_at
    if history and at < history[-1][0]:
        return history  # older than the newest figure known: says nothing about the current pace
    kept = history[:-1] if history and history[-1][0] == at else history
    return (*kept, (at, rollup.value))[-keep:]


def evaluate(
    state: AlertState,
    indicator: Indicator,
    rollup: Rollup | None,
    now: datetime,
    hold_down: timedelta = timedelta(0),
    resolve_hold_down: timedelta = timedelta(0),
) -> tuple[AlertState, list[AlertEvent]]:
    """Judge a new rollup (or, with None, the last one again as time passes): state and transitions.

    A condition must hold for ``hold_down`` before its alert fires (as Prometheus's ``for:``), so a
    figure still filling in as reports arrive does not storm; the alert carries the figure as it
    is when it fires. A pending condition that stops holding vanishes silently. A firing one
    resolves once it has stopped holding for ``resolve_hold_down`` (as Prometheus's
    ``keep_firing_for:``), so a figure flapping around a threshold neither storms nor re-fires.
    """
    previous = state.last
    current = rollup or previous
    if current is None:
        return state, []
    history = state.history
    if rollup is not None:
        history = remember(history, rollup, indicator.alerts.off_trajectory.history)
    before = previous if rollup is not None else None
    no_figure = Condition(False)
    # A figure resting on no report at all (a due period nobody reported for) says nothing about
    # the target: "0/84 below target" would only repeat, wrongly, that nobody reported.
    figure = current.report_count > 0
    verdicts: dict[RuleName, Condition] = {
        "below_target": below_target(indicator, current, now) if figure else no_figure,
        "off_trajectory": off_trajectory(indicator, current, history, now) if figure else no_figure,
        "regression": (
            regression(indicator, current, before, state.active.get("regression")) if figure else no_figure
        ),
        "missing_reports": missing_reports(indicator, current, now),
    }
    active = dict(state.active)
    episodes = dict(state.episodes)
    events: list[AlertEvent] = []
    for rule, verdict in verdicts.items():
        known = active.get(rule)
        if verdict.holds:
            if known is None:
                episodes[rule] = episodes.get(rule, 0) + 1
                known = ActiveAlert(
                    now, False, verdict.reference, severity=severity(indicator, rule, current.scope)
                )
            # The words follow the figure while pending or firing; the start does not move.
            known = replace(known, reporters=verdict.reporters, summary=verdict.summary, cleared_at=None)
            if not known.firing and now - known.starts_at >= hold_down:
                known = replace(known, firing=True)
                events.append(_event(rule, current, "firing", known, now, episodes.get(rule, 0)))
            active[rule] = known
        elif known is not None and not known.firing:
            del active[rule]
        elif known is not None:
            cleared_at = known.cleared_at or now
            if now - cleared_at >= resolve_hold_down:
                del active[rule]
                summary = f"{describe(indicator, current)}: {rule.replace('_', ' ')} resolved"
                resolved = replace(known, summary=summary, reporters=verdict.reporters, cleared_at=cleared_at)
                events.append(_event(rule, current, "resolved", resolved, now, episodes.get(rule, 0)))
            else:
                active[rule] = replace(known, cleared_at=cleared_at)
    return AlertState(last=current, active=active, history=history, episodes=episodes), events


def judge_key(
    state: AlertState,
    key: str,
    rollup: Rollup | None,
    now: datetime,
    catalog: Catalog,
    registry: Registry,
    hold_down: timedelta = timedelta(0),
    resolve_hold_down: timedelta = timedelta(0),
) -> tuple[AlertState, list[AlertEvent]]:
    """What the alerts service does with one input for rollup key ``key``: a new rollup, or None for
    a timer tick. A tick for a key with no state is a due period nobody has reported for
    (``due_keys``), judged on its empty figure; any other key without state, or of an indicator the
    catalog no longer has, changes nothing."""
    if rollup is None and state.last is None:
        rollup = unreported_figure(catalog, registry, key, now)
    current = rollup or state.last
    indicator = catalog.get(current.indicator) if current is not None else None
    if indicator is None:
        return state, []
    return evaluate(state, indicator, rollup, now, hold_down, resolve_hold_down)


def firing_alerts(state: AlertState, now: datetime) -> list[AlertEvent]:
    """The alerts of ``state`` that are firing now, as events (what Alertmanager must keep seeing)."""
    if state.last is None:
        return []
    last = state.last
    return [
        _event(rule, last, "firing", alert, now, state.episodes.get(rule, 0))
        for rule in RULES
        if (alert := state.active.get(rule)) is not None and alert.firing
    ]


def _event(
    rule: RuleName,
    rollup: Rollup,
    status: Literal["firing", "resolved"],
    alert: ActiveAlert,
    now: datetime,
    episode: int,
) -> AlertEvent:
    alert_id = fingerprint(rule, rollup.indicator, rollup.period, rollup.scope)
    return AlertEvent(
        fingerprint=alert_id,
        transition_id=transition_id(alert_id, episode, status),
        rule=rule,
        indicator=rollup.indicator,
        period=rollup.period,
        scope=rollup.scope,
        status=status,
        severity=alert.severity,
        summary=alert.summary,
        # A figure nobody reported is unknown, not 0.
        value=rollup.value if rollup.report_count else None,
        target=rollup.target.value if rollup.target else None,
        reporters=list(alert.reporters),
        starts_at=alert.starts_at,
        # Alertmanager's endsAt: when the condition stopped holding, not when the hold-down ended.
        ends_at=alert.cleared_at if status == "resolved" else None,
        changed_at=now,
    )

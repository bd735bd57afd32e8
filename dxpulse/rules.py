"""Pure alert rules: a rollup and the alert state in, the new state and alert transitions out.

Lifecycle follows Alertmanager's semantics: an alert is identified by a stable fingerprint
(rule, indicator, period, scope), fires once when its condition starts and resolves once when it ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from dxpulse.catalog import Indicator
from dxpulse.rollup import NATIONAL_SCOPE
from schemas import AlertEvent, Rollup

RuleName = Literal["below_target", "off_trajectory", "regression", "missing_reports"]


def fingerprint(rule: str, indicator: str, period: str, scope: str) -> str:
    """Stable id of one alert: the same condition on the same figure is always the same alert."""
    return hashlib.sha256(f"{rule}|{indicator}|{period}|{scope}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ActiveAlert:
    """An alert whose condition holds: pending until it has held for the hold-down, then firing."""

    starts_at: datetime
    firing: bool = True
    reference: float | None = None
    """regression: the value before the fall; the alert resolves once the figure is back to it."""
    reporters: tuple[str, ...] = ()
    summary: str = ""


@dataclass(frozen=True)
class Condition:
    """A rule's verdict on a rollup: holding or not, with the words and names for the alert."""

    holds: bool
    summary: str = ""
    reporters: tuple[str, ...] = ()
    reference: float | None = None


@dataclass(frozen=True)
class AlertState:
    """What the alerts service keeps per rollup key: the last rollup and the firing alerts."""

    last: Rollup | None = None
    active: dict[str, ActiveAlert] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "last": self.last.model_dump(mode="json") if self.last else None,
            "active": {
                rule: {
                    "starts_at": a.starts_at.isoformat(),
                    "firing": a.firing,
                    "reference": a.reference,
                    "reporters": list(a.reporters),
                    "summary": a.summary,
                }
                for rule, a in self.active.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AlertState:
        if not data:
            return cls()
        return cls(
            last=Rollup.model_validate(data["last"]) if data.get("last") else None,
            active={
                rule: ActiveAlert(
                    starts_at=datetime.fromisoformat(a["starts_at"]),
                    firing=a.get("firing", True),
                    reference=a["reference"],
                    reporters=tuple(a["reporters"]),
                    summary=a.get("summary", ""),
                )
                for rule, a in data.get("active", {}).items()
            },
        )


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def describe(indicator: Indicator, rollup: Rollup) -> str:
    """A figure as people read it: "EMC connection 97.6% (82/84)" or "Enterprises 50,350"."""
    if rollup.kind == "count":
        return f"{indicator.name} {rollup.numerator:,.0f}"
    fraction = f"{rollup.numerator:,.0f}/{rollup.denominator:,.0f}" if rollup.denominator else "no data"
    return f"{indicator.name} {percent(rollup.value)} ({fraction})"


def _target_text(indicator: Indicator) -> str:
    assert indicator.target is not None
    target = indicator.target
    shown = f"{target.value:,.0f}" if indicator.kind == "count" else percent(target.value)
    return f"target {shown} due {target.deadline.isoformat()}"


def below_target(indicator: Indicator, rollup: Rollup, previous: Rollup | None, now: datetime) -> Condition:
    """After the deadline, the figure is short of its target."""
    target = indicator.target
    if target is None or rollup.attainment is None or now.date() <= target.deadline:
        return Condition(False)
    if rollup.attainment >= 1.0:
        return Condition(False)
    behind = tuple(rollup.lagging)
    names = f"; not met: {', '.join(behind)}" if behind else ""
    return Condition(
        True,
        f"{describe(indicator, rollup)} below {_target_text(indicator)}{names}",
        reporters=behind,
    )


def regression(
    indicator: Indicator,
    rollup: Rollup,
    previous: Rollup | None,
    now: datetime,
    active: ActiveAlert | None = None,
) -> Condition:
    """The figure fell; it stays firing until it is back to the value before the fall."""
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
    dropped = tuple(sorted(set(rollup.lagging) - set(previous.lagging)))
    names = f"; fell back: {', '.join(dropped)}" if dropped else ""
    return Condition(
        True,
        f"{describe(indicator, rollup)} fell from {describe(indicator, previous)}{names}",
        reporters=dropped,
        reference=previous.value,
    )


def _severity(rule: RuleName, scope: str) -> Literal["critical", "warning", "info"]:
    if rule == "below_target" and scope == NATIONAL_SCOPE:
        return "critical"
    return "warning"


def evaluate(
    state: AlertState,
    indicator: Indicator,
    rollup: Rollup | None,
    now: datetime,
    hold_down: timedelta = timedelta(0),
) -> tuple[AlertState, list[AlertEvent]]:
    """Judge a new rollup (or, with None, the last one again as time passes): state and transitions.

    A condition must hold for ``hold_down`` before its alert fires (as Prometheus's ``for:``), so
    a figure still filling in as reports arrive, or flapping around a threshold, does not storm;
    the alert then carries the figure as it is when it fires. A pending condition that stops
    holding vanishes silently; a firing one resolves once.
    """
    previous = state.last
    current = rollup or previous
    if current is None:
        return state, []
    before = previous if rollup is not None else None
    verdicts: dict[RuleName, Condition] = {
        "below_target": below_target(indicator, current, before, now),
        "regression": regression(indicator, current, before, now, state.active.get("regression")),
    }
    active = dict(state.active)
    events: list[AlertEvent] = []
    for rule, verdict in verdicts.items():
        known = active.get(rule)
        if verdict.holds and known is None:
            known = active[rule] = ActiveAlert(
                now, False, verdict.reference, verdict.reporters, verdict.summary
            )
        if verdict.holds and known is not None and not known.firing:
            if verdict.summary:
                known = active[rule] = replace(known, reporters=verdict.reporters, summary=verdict.summary)
            if now - known.starts_at >= hold_down:
                active[rule] = replace(known, firing=True)
                events.append(
                    _event(
                        rule,
                        indicator,
                        current,
                        "firing",
                        known.summary,
                        known.reporters,
                        known.starts_at,
                        now,
                    )
                )
        elif not verdict.holds and known is not None:
            del active[rule]
            if known.firing:
                summary = f"{describe(indicator, current)}: {rule.replace('_', ' ')} resolved"
                events.append(
                    _event(
                        rule, indicator, current, "resolved", summary, verdict.reporters, known.starts_at, now
                    )
                )
    return replace(state, last=current, active=active), events


def _event(
    rule: RuleName,
    indicator: Indicator,
    rollup: Rollup,
    status: Literal["firing", "resolved"],
    summary: str,
    reporters: tuple[str, ...],
    starts_at: datetime,
    now: datetime,
) -> AlertEvent:
    return AlertEvent(
        fingerprint=fingerprint(rule, rollup.indicator, rollup.period, rollup.scope),
        rule=rule,
        indicator=rollup.indicator,
        period=rollup.period,
        scope=rollup.scope,
        status=status,
        severity=_severity(rule, rollup.scope),
        summary=summary,
        value=rollup.value,
        target=indicator.target.value if indicator.target else None,
        reporters=list(reporters),
        starts_at=starts_at,
        ends_at=now if status == "resolved" else None,
        changed_at=now,
    )

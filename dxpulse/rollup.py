"""Pure aggregation: the latest snapshot per reporter, and the rollups computed from them.

Every rollup is a function of the latest value per reporter only, so replaying the log, a crash
or a duplicate delivery can never double-count. ``step`` is what the aggregator calls per report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import itemgetter
from typing import Any

from pydantic import TypeAdapter

from dxpulse.catalog import Indicator
from dxpulse.periods import Period
from dxpulse.registry import Registry
from schemas import Report, ReportValue, Rollup, RollupTarget

NATIONAL_SCOPE = "national"
"""The scope combining every group an indicator spans."""

_VALUE_ADAPTER: TypeAdapter[ReportValue] = TypeAdapter(ReportValue)


@dataclass(frozen=True)
class Snapshot:
    """A reporter's latest accepted value for one indicator and period."""

    observed_at: datetime
    event_id: str
    value: ReportValue

    @property
    def order(self) -> tuple[datetime, str]:
        """Newest observation wins; the event id breaks ties so the winner never depends on order."""
        return (self.observed_at, self.event_id)

    @classmethod
    def of(cls, report: Report) -> Snapshot:
        return cls(observed_at=report.observed_at, event_id=str(report.event_id), value=report.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "observed_at": self.observed_at.isoformat(),
            "event_id": self.event_id,
            "value": self.value.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class PeriodState:
    """Everything the aggregator keeps for one (indicator, period): one changelog record."""

    latest: dict[str, Snapshot] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    """Scope → revision of the rollup last published, so unchanged figures are not sent again."""
    last_offset: int | None = None
    """Log offset of the last report that changed this state (see ``step``)."""

    def to_json(self, unchanged_from: tuple[PeriodState, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """The changelog record. ``unchanged_from`` is an earlier state with its record: the entries
        of snapshots both share are reused, so a batch serializes the few reporters it changed,
        not all ~1,000 of a district-level indicator."""
        before, before_json = unchanged_from if unchanged_from is not None else (PeriodState(), {})
        entries: Mapping[str, Any] = before_json.get("latest", {})
        latest = {}
        for reporter, snap in self.latest.items():
            entry = entries.get(reporter)
            latest[reporter] = (
                entry if entry is not None and before.latest.get(reporter) is snap else snap.to_json()
            )
        return {"latest": latest, "published": dict(self.published), "last_offset": self.last_offset}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PeriodState:
        if not data:
            return cls()
        return cls(
            latest={
                reporter: Snapshot(
                    observed_at=datetime.fromisoformat(raw["observed_at"]),
                    event_id=raw["event_id"],
                    value=_VALUE_ADAPTER.validate_python(raw["value"]),
                )
                for reporter, raw in data.get("latest", {}).items()
            },
            published=dict(data.get("published", {})),
            last_offset=data.get("last_offset"),
        )


def apply(latest: Mapping[str, Snapshot], report: Report) -> dict[str, Snapshot] | None:
    """The latest-value map after ``report``, or None when the report changes nothing.

    Nothing changes for a duplicate or an older observation arriving late; a newer one replaces.
    """
    return apply_all(latest, [report])[0]


def apply_all(
    latest: Mapping[str, Snapshot], reports: Iterable[Report]
) -> tuple[dict[str, Snapshot] | None, list[int]]:
    """The latest-value map after every report in turn (None if none changes it), and the positions
    of the reports that did change it.

    The map is copied once per batch, not once per report: a district-level map holds ~1,000.
    """
    updated: dict[str, Snapshot] | None = None
    changing: list[int] = []
    for position, report in enumerate(reports):
        incoming = Snapshot.of(report)
        current = (latest if updated is None else updated).get(report.reporter)
        if current is not None and current.order >= incoming.order:
            continue
        if updated is None:
            updated = dict(latest)
        updated[report.reporter] = incoming
        changing.append(position)
    return updated, changing


def _ratio(numerator: float, denominator: float | None) -> float | None:
    return numerator / denominator if denominator else None


def rollup_for(
    indicator: Indicator,
    period: Period,
    scope: str,
    expected: frozenset[str],
    latest: Mapping[str, Snapshot],
    computed_at: datetime,
) -> Rollup:
    """One scope's figure from the latest snapshots of its expected reporters."""
    return _rollup_for(indicator, period, scope, expected, _by_reporter(latest), computed_at)


def _by_reporter(latest: Mapping[str, Snapshot]) -> list[tuple[str, Snapshot]]:
    return sorted(latest.items(), key=itemgetter(0))


def _rollup_for(
    indicator: Indicator,
    period: Period,
    scope: str,
    expected: frozenset[str],
    ordered: Sequence[tuple[str, Snapshot]],
    computed_at: datetime,
) -> Rollup:
    """One scope's figure from the latest snapshots, sorted by reporter, of its expected reporters."""
    # Sorted, so float sums (and so revisions) do not depend on set iteration order.
    snaps = {r: s for r, s in ordered if r in expected}
    numerator = 0.0
    denominator: float | None
    lagging: list[str] = []
    if indicator.kind == "flag":
        flags = {r: s.value.value for r, s in snaps.items() if s.value.kind == "flag"}
        numerator = float(sum(flags.values()))
        denominator = float(len(expected))
        lagging = sorted(r for r in expected if not flags.get(r, False))
    elif indicator.kind == "ratio":
        denominator = 0.0
        for s in snaps.values():
            if s.value.kind == "ratio":
                numerator += s.value.numerator
                denominator += s.value.denominator
    elif indicator.kind == "count":
        numerator = sum(s.value.value for s in snaps.values() if s.value.kind == "count")
        denominator = None
    else:
        done: set[str] = set()
        for s in snaps.values():
            if s.value.kind == "catalog":
                done.update(s.value.done)
        numerator = float(len(done & set(indicator.items)))
        denominator = float(len(indicator.items))
    value = numerator if indicator.kind == "count" else _ratio(numerator, denominator)
    target = indicator.target
    body: dict[str, Any] = {
        "indicator": indicator.id,
        "period": period.label,
        "scope": scope,
        "kind": indicator.kind,
        "value": value,
        "numerator": numerator,
        "denominator": denominator,
        "reporters_reported": len(snaps),
        "reporters_expected": len(expected),
        "completeness": len(snaps) / len(expected) if expected else 0.0,
        "target": RollupTarget(value=target.value, deadline=target.deadline) if target else None,
        "attainment": value / target.value if target and value is not None else None,
        "latest_observed_at": max((s.observed_at for s in snaps.values()), default=None),
        "report_count": len(snaps),
        "lagging": lagging,
        "not_reported": sorted(expected - snaps.keys()),
    }
    return Rollup(**body, revision=_revision(body), computed_at=computed_at)


def _revision(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def scopes_of(indicator: Indicator) -> tuple[str, ...]:
    """The groups an indicator spans, then the national scope combining them (once)."""
    return tuple(dict.fromkeys((*indicator.groups, NATIONAL_SCOPE)))


def compute_rollups(
    indicator: Indicator,
    period: Period,
    latest: Mapping[str, Snapshot],
    registry: Registry,
    computed_at: datetime,
) -> list[Rollup]:
    """Every scope's rollup, judged against the registry in force on the period's last day."""
    rollups = []
    # Sorted once for every scope: sorting each scope's ~1,000 expected reporters cost more.
    ordered = _by_reporter(latest)
    for scope in scopes_of(indicator):
        groups: Iterable[str] = indicator.groups if scope == NATIONAL_SCOPE else (scope,)
        expected = registry.expected(groups, period.end)
        rollups.append(_rollup_for(indicator, period, scope, expected, ordered, computed_at))
    return rollups


def step(
    state: PeriodState,
    report: Report,
    indicator: Indicator,
    period: Period,
    registry: Registry,
    computed_at: datetime,
    offset: int | None = None,
) -> tuple[PeriodState, list[Rollup]]:
    """Apply one report: the new state and the rollups whose figures changed (to publish).

    ``offset`` is the report's position in its partition. A worker that crashes after its
    changelog write but before its rollups reached the topic sees the same report again after
    recovery; the report then changes nothing, yet its rollups may never have been published.
    So the report that last changed the state, seen again at the same offset, re-sends every
    current rollup: same revisions, so subscribers and history take them as no-ops. Any other
    report that changes nothing publishes nothing.
    """
    new_state, rollups, _ = step_many(state, [report], indicator, period, registry, computed_at, [offset])
    return new_state, rollups


def step_many(
    state: PeriodState,
    reports: Sequence[Report],
    indicator: Indicator,
    period: Period,
    registry: Registry,
    computed_at: datetime,
    offsets: Sequence[int | None] | None = None,
) -> tuple[PeriodState, list[Rollup], int]:
    """Apply a batch of one (indicator, period)'s reports (``offsets``: their log positions, as for
    ``step``): the new state, the rollups to publish, and how many reports changed the latest values.

    Each changed scope is published once, with its figure after the whole batch. The figures in
    between are skipped; none is lost for good, since each figure depends only on the latest values.
    A batch holding the report that last changed the state, at its offset, re-sends every current
    rollup (see ``step``).
    """
    positions = list(offsets) if offsets is not None else [None] * len(reports)
    redelivered = state.last_offset is not None and state.last_offset in positions
    latest, changing = apply_all(state.latest, reports)
    if latest is None:
        if redelivered:
            return state, compute_rollups(indicator, period, state.latest, registry, computed_at), 0
        return state, [], 0
    changed = replace(state, latest=latest, last_offset=positions[changing[-1]])
    if not redelivered:
        new_state, rollups = changed_rollups(changed, indicator, period, registry, computed_at)
        return new_state, rollups, len(changing)
    rollups = compute_rollups(indicator, period, changed.latest, registry, computed_at)
    published = {**changed.published, **{r.scope: r.revision for r in rollups}}
    return replace(changed, published=published), rollups, len(changing)


def changed_rollups(
    state: PeriodState,
    indicator: Indicator,
    period: Period,
    registry: Registry,
    computed_at: datetime,
) -> tuple[PeriodState, list[Rollup]]:
    """The rollups whose revision differs from the one last published, and the state recording them."""
    fresh = [
        r
        for r in compute_rollups(indicator, period, state.latest, registry, computed_at)
        if state.published.get(r.scope) != r.revision
    ]
    if not fresh:
        return state, []
    published = {**state.published, **{r.scope: r.revision for r in fresh}}
    return replace(state, published=published), fresh

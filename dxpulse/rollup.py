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
    offset: int | None = field(default=None, compare=False)
    """Log offset of the report it came from (None outside a log): provenance, not part of the value."""

    @property
    def order(self) -> tuple[datetime, str]:
        """Newest observation wins; the event id breaks ties so the winner never depends on order."""
        return (self.observed_at, self.event_id)

    @classmethod
    def of(cls, report: Report, offset: int | None = None) -> Snapshot:
        return cls(
            observed_at=report.observed_at, event_id=str(report.event_id), value=report.value, offset=offset
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "observed_at": self.observed_at.isoformat(),
            "event_id": self.event_id,
            "value": self.value.model_dump(mode="json"),
        }
        if self.offset is not None:
            data["offset"] = self.offset
        return data

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Snapshot:
        return cls(
            observed_at=datetime.fromisoformat(raw["observed_at"]),
            event_id=raw["event_id"],
            value=_VALUE_ADAPTER.validate_python(raw["value"]),
            offset=raw.get("offset"),
        )


@dataclass(frozen=True)
class PeriodState:
    """Everything the aggregator keeps for one (indicator, period).

    In the changelog it is one small period record (``period_record``: revisions published and the
    last offset) plus one record per reporter (its snapshot), so a write costs what changed, not
    every reporter's snapshot (``records_of``). ``to_json`` is the whole state as one document: the
    record format before that split, still read (``from_records``) so existing changelogs recover.
    """

    latest: dict[str, Snapshot] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    """Scope → revision of the rollup last published, so unchanged figures are not sent again."""
    last_offset: int | None = None
    """Log offset of the last report that changed this state (see ``step``)."""

    def to_json(self) -> dict[str, Any]:
        """The whole state as one JSON document (the changelog record of earlier versions)."""
        return {
            "latest": {reporter: snap.to_json() for reporter, snap in self.latest.items()},
            **self.period_record(),
        }

    def period_record(self) -> dict[str, Any]:
        """The state without its snapshots: what the changelog keeps under the period's own key."""
        return {"published": dict(self.published), "last_offset": self.last_offset}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PeriodState:
        return cls.from_records(data, {})

    @classmethod
    def from_records(
        cls, period: Mapping[str, Any] | None, snapshots: Mapping[str, Mapping[str, Any]]
    ) -> PeriodState:
        """The state from its period record and its reporters' records (``Snapshot.to_json``).

        A period record holding snapshots itself (``holds_snapshots``) is merged with the reporter
        records, the newer snapshot of each reporter winning, as ``apply`` would.
        """
        latest = {reporter: Snapshot.from_json(raw) for reporter, raw in snapshots.items()}
        for reporter, raw in (period or {}).get("latest", {}).items():
            snap = Snapshot.from_json(raw)
            current = latest.get(reporter)
            if current is None or current.order < snap.order:
                latest[reporter] = snap
        return cls(
            latest=latest,
            published=dict((period or {}).get("published", {})),
            last_offset=(period or {}).get("last_offset"),
        )


def holds_snapshots(period: Mapping[str, Any] | None) -> bool:
    """Whether a period record carries snapshots itself (written before the per-reporter records)."""
    return bool(period and period.get("latest"))


def records_of(
    before: PeriodState, after: PeriodState, reporters: Iterable[str], *, whole: bool = False
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The changelog records that take a stored ``before`` to ``after``: the period record, and the
    record of each of ``reporters`` (those of the reports applied) whose snapshot changed.

    Write the period record first, then the reporter records, all to one changelog partition (which
    Kafka keeps in order): a crash then keeps a prefix. If the period record got through, its
    ``last_offset`` makes the redelivered batch re-apply the missing snapshots and re-send every
    rollup (``step_many``); if not, the reports change the state again and publish as the first time.

    ``whole``: ``before`` came from a period record holding snapshots. Every snapshot then gets its
    own record, and this period record still holds them all, so a crash halfway loses none.
    """
    period = after.to_json() if whole else after.period_record()
    names = after.latest if whole else dict.fromkeys(reporters)
    records = {
        reporter: after.latest[reporter].to_json()
        for reporter in names
        if reporter in after.latest and (whole or after.latest[reporter] is not before.latest.get(reporter))
    }
    return period, records


def apply(latest: Mapping[str, Snapshot], report: Report) -> dict[str, Snapshot] | None:
    """The latest-value map after ``report``, or None when the report changes nothing.

    Nothing changes for a duplicate or an older observation arriving late; a newer one replaces.
    """
    return apply_all(latest, [report])[0]


def apply_all(
    latest: Mapping[str, Snapshot],
    reports: Iterable[Report],
    offsets: Iterable[int | None] | None = None,
) -> tuple[dict[str, Snapshot] | None, list[int]]:
    """The latest-value map after every report in turn (None if none changes it), and the positions
    of the reports that did change it. ``offsets``: the reports' log offsets, kept in the snapshots.

    The map is copied once per batch, not once per report: a district-level map holds ~1,000.
    """
    updated: dict[str, Snapshot] | None = None
    changing: list[int] = []
    positions = iter(offsets) if offsets is not None else None
    for position, report in enumerate(reports):
        incoming = Snapshot.of(report, next(positions) if positions is not None else None)
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
    return _rollup_for(indicator, period, scope, tuple(sorted(expected)), latest, computed_at)


def _rollup_for(
    indicator: Indicator,
    period: Period,
    scope: str,
    expected: Sequence[str],
    latest: Mapping[str, Snapshot],
    computed_at: datetime,
) -> Rollup:
    """One scope's figure from the latest snapshots of its ``expected`` reporters, sorted.

    One pass over the expected reporters in order: float sums (and so revisions) must not depend on
    set iteration order, and at ~1,000 reporters sorting or filtering per call cost more than the sums.
    """
    kind = indicator.kind
    not_reported: list[str] = []
    lagging: list[str] = []  # flag indicators only: expected reporters without a true flag
    reported = 0
    newest: datetime | None = None
    flags = 0
    ratio_numerator = ratio_denominator = 0.0
    count_total: float = 0  # int 0 as sum() starts: a count of nothing is 0, not 0.0, in revisions
    done: set[str] = set()
    for reporter in expected:
        snap = latest.get(reporter)
        if snap is None:
            not_reported.append(reporter)
            if kind == "flag":
                lagging.append(reporter)
            continue
        reported += 1
        # The first of equal instants, as max() keeps: the same instant in another zone prints
        # differently, and so changes the revision.
        if newest is None or snap.observed_at > newest:
            newest = snap.observed_at
        value = snap.value
        if value.kind == "flag":
            if value.value:
                flags += 1
                continue
        elif value.kind == "ratio":
            ratio_numerator += value.numerator
            ratio_denominator += value.denominator
        elif value.kind == "count":
            count_total += value.value
        else:
            done.update(value.done)
        if kind == "flag":
            lagging.append(reporter)
    numerator: float
    denominator: float | None
    if kind == "flag":
        numerator, denominator = float(flags), float(len(expected))
    elif kind == "ratio":
        numerator, denominator = ratio_numerator, ratio_denominator
    elif kind == "count":
        numerator, denominator = count_total, None
    else:
        numerator = float(len(done & set(indicator.items)))
        denominator = float(len(indicator.items))
    figure = numerator if kind == "count" else _ratio(numerator, denominator)
    target = indicator.target
    body: dict[str, Any] = {
        "indicator": indicator.id,
        "period": period.label,
        "scope": scope,
        "kind": kind,
        "value": figure,
        "numerator": numerator,
        "denominator": denominator,
        "reporters_reported": reported,
        "reporters_expected": len(expected),
        "completeness": reported / len(expected) if expected else 0.0,
        "target": RollupTarget(value=target.value, deadline=target.deadline) if target else None,
        "attainment": figure / target.value if target and figure is not None else None,
        "latest_observed_at": newest,
        "report_count": reported,
        "lagging": lagging,
        "not_reported": not_reported,
    }
    return Rollup(**body, revision=_revision(body), computed_at=computed_at)


def _revision(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def scopes_of(indicator: Indicator) -> tuple[str, ...]:
    """The groups an indicator spans, then the national scope combining them (once)."""
    return tuple(dict.fromkeys((*indicator.groups, NATIONAL_SCOPE)))


def _scope_groups(indicator: Indicator, scope: str) -> tuple[str, ...]:
    return tuple(indicator.groups) if scope == NATIONAL_SCOPE else (scope,)


def compute_rollups(
    indicator: Indicator,
    period: Period,
    latest: Mapping[str, Snapshot],
    registry: Registry,
    computed_at: datetime,
) -> list[Rollup]:
    """Every scope's rollup, judged against the registry in force on the period's last day."""
    return [
        _rollup_for(
            indicator,
            period,
            scope,
            registry.expected_sorted(_scope_groups(indicator, scope), period.end),
            latest,
            computed_at,
        )
        for scope in scopes_of(indicator)
    ]


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
    latest, changing = apply_all(state.latest, reports, positions)
    if latest is None:
        if redelivered:
            return state, compute_rollups(indicator, period, state.latest, registry, computed_at), 0
        return state, [], 0
    changed = replace(state, latest=latest, last_offset=_later(state.last_offset, positions[changing[-1]]))
    if not redelivered:
        new_state, rollups = changed_rollups(changed, indicator, period, registry, computed_at)
        return new_state, rollups, len(changing)
    rollups = compute_rollups(indicator, period, changed.latest, registry, computed_at)
    published = {**changed.published, **{r.scope: r.revision for r in rollups}}
    return replace(changed, published=published), rollups, len(changing)


def _later(kept: int | None, offset: int | None) -> int | None:
    """The offset to keep as ``last_offset``: offsets only grow, except when a crash cut a batch's
    records short (see ``records_of``). The period record then already names the batch's last
    change, and an earlier report of the batch, redelivered and changing a snapshot that did not get
    through, must not take that mark away, or the report at the mark would re-send nothing."""
    if kept is None or offset is None:
        return offset if offset is not None else kept
    return max(kept, offset)


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

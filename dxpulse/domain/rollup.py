"""Pure aggregation: the latest snapshot per reporter, and the rollups computed from them.

Every rollup is a function of the latest value per reporter only, so replaying the log, a crash
or a duplicate delivery can never double-count. ``step`` is what the aggregator calls per report.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter

from dxpulse.domain.catalog import Indicator, milestone_in_force
from dxpulse.domain.periods import Period
from dxpulse.domain.registry import Registry
from schemas import Report, ReportValue, Rollup, RollupTarget
from schemas.events import ROLLUP_NAMES_LIMIT

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
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

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
        """Its changelog form (decoded ``encoded``)."""
        data: dict[str, Any] = {
            "observed_at": self.observed_at.isoformat(),
            "event_id": self.event_id,
            "value": self.value.model_dump(mode="json"),
        }
        if self.offset is not None:
            data["offset"] = self.offset
        return data

    def encoded(self) -> bytes:
        """``to_json`` as JSON, made once: a bucket record is rewritten whole whenever one of its
        reporters changes, so the same snapshot goes into many records (encoding them
        again each time was a third of a busy worker's batch)."""
        if self._encoded is None:
            # By hand around pydantic's own JSON of the value: half the cost of json.dumps(to_json()).
            offset = b"" if self.offset is None else b',"offset":%d' % self.offset
            encoded = b'{"observed_at":"%s","event_id":%s,"value":%s%s}' % (
                self.observed_at.isoformat().encode(),
                json.dumps(self.event_id).encode(),
                self.value.__pydantic_serializer__.to_json(self.value),
                offset,
            )
            object.__setattr__(self, "_encoded", encoded)
        assert self._encoded is not None
        return self._encoded

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Snapshot:
        return cls(
            observed_at=datetime.fromisoformat(raw["observed_at"]),
            event_id=raw["event_id"],
            value=_VALUE_ADAPTER.validate_python(raw["value"]),
            offset=raw.get("offset"),
        )


@dataclass(frozen=True)
class Tallies:
    """The scopes' tallies of one latest-value map: valid for a state whose ``latest`` is that map."""

    latest: Mapping[str, Snapshot]
    by_scope: dict[str, Tally]


@dataclass(frozen=True)
class PeriodState:
    """Everything the aggregator keeps for one (indicator, period).

    In the changelog it is one small period record (``period_record``: revisions published and the
    last offset) plus the reporters' snapshots in bucket and delta records, so a write costs about
    what changed, not every reporter's snapshot (``dxpulse.domain.state_records``). ``to_json`` is
    the whole state as one document: the record format before that split, still read
    (``from_records``) so existing changelogs recover.
    """

    latest: dict[str, Snapshot] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    """Scope → revision of the rollup last published, so unchanged figures are not sent again."""
    last_offset: int | None = None
    """Log offset of the last report that changed this state (see ``step``)."""
    tallies: Tallies | None = field(default=None, compare=False, repr=False)
    """Per scope, the running totals of ``latest`` (``step_many`` keeps them); never stored."""

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


_EXACT_BELOW = 2.0**53
"""Whole amounts below this are summed as ints, exactly; a float sum of them would be too."""


def _whole(amount: float) -> int | None:
    """``amount`` as an int if it is whole and small enough for an exact int sum to equal its float."""
    return int(amount) if amount.is_integer() and amount < _EXACT_BELOW else None


@dataclass
class Tally:
    """One scope's running totals over the latest snapshots of its expected reporters.

    A rollup is computed from these alone (``rollup_of``), and ``swap`` keeps them up to date for one
    changed reporter in O(1), so a report no longer costs a pass over every expected reporter (the
    aggregator's largest cost at district level). Sums are exact: whole amounts (records, units, as
    reported) are summed as ints; any other amount makes the figure use ``math.fsum``, which rounds
    the exact sum once. Either way a figure, and so its revision, never depends on report order.
    Mutable: ``copy`` first; a tally is never changed once a state holds it.
    """

    expected: tuple[str, ...]
    """The scope's expected reporters, sorted."""
    members: frozenset[str]
    missing: list[str]
    """Expected reporters without a snapshot, sorted (kept sorted: sorting per rollup cost more)."""
    not_true: list[str]
    """Expected reporters without a true flag (``lagging`` of a flag indicator), sorted."""
    reported: int = 0
    newest: datetime | None = None
    newest_reporter: str = ""
    flags: int = 0
    numerator: int = 0
    """Ratios: the whole numerators' sum. Counts: the whole values' sum."""
    denominator: int = 0
    values: int = 0
    """Count values summed (a count of nothing is 0, not 0.0, in revisions)."""
    inexact: int = 0
    """Reporters with an amount that is not whole: their sums are taken from the snapshots."""
    items: dict[str, int] = field(default_factory=dict)
    """Catalog items done → how many reporters have them done."""

    @classmethod
    def of(cls, expected: tuple[str, ...], latest: Mapping[str, Snapshot]) -> Tally:
        """The tally of ``latest`` over ``expected`` (sorted)."""
        tally = cls(expected, frozenset(expected), [], [])
        for reporter in expected:
            # Appended in order, each is the last item: taking it out again in swap costs nothing.
            tally.missing.append(reporter)
            tally.not_true.append(reporter)
            snap = latest.get(reporter)
            if snap is not None:
                tally.swap(reporter, None, snap)
        return tally

    def copy(self) -> Tally:
        # What dataclasses.replace does, without its pass over the fields (a copy per scope and batch).
        copied = object.__new__(Tally)
        copied.__dict__.update(self.__dict__)
        copied.missing, copied.not_true = list(self.missing), list(self.not_true)
        copied.items = dict(self.items)
        return copied

    def swap(self, reporter: str, old: Snapshot | None, new: Snapshot) -> None:
        """Take ``reporter``'s snapshot from ``old`` (None: it had none) to ``new``."""
        if reporter not in self.members:
            return
        if old is None:
            self.reported += 1
            _take_out(self.missing, reporter)
        else:
            self._count(reporter, old.value, -1)
        self._count(reporter, new.value, 1)
        # The first (by reporter) of equal instants, as a pass over the sorted reporters keeps: the
        # same instant in another zone prints differently, and so changes the revision.
        at = new.observed_at
        if (
            self.newest is None
            or at > self.newest
            or (at == self.newest and reporter <= self.newest_reporter)
        ):
            self.newest, self.newest_reporter = at, reporter

    def _count(self, reporter: str, value: ReportValue, sign: int) -> None:
        if value.kind == "flag":
            if value.value:
                self.flags += sign
                if sign > 0:
                    _take_out(self.not_true, reporter)
                else:
                    _put_in(self.not_true, reporter)
        elif value.kind == "ratio":
            numerator, denominator = _whole(value.numerator), _whole(value.denominator)
            if numerator is None or denominator is None:
                self.inexact += sign
            else:
                self.numerator += sign * numerator
                self.denominator += sign * denominator
        elif value.kind == "count":
            self.values += sign
            whole = _whole(value.value)
            if whole is None:
                self.inexact += sign
            else:
                self.numerator += sign * whole
        else:
            for item in set(value.done):
                held = self.items.get(item, 0) + sign
                if held:
                    self.items[item] = held
                else:
                    del self.items[item]


def _take_out(items: list[str], item: str) -> None:
    """Remove ``item`` from the sorted ``items`` if it is there."""
    at = bisect.bisect_left(items, item)
    if at < len(items) and items[at] == item:
        del items[at]


def _put_in(items: list[str], item: str) -> None:
    """Insert ``item`` into the sorted ``items`` unless it is there."""
    at = bisect.bisect_left(items, item)
    if at == len(items) or items[at] != item:
        items.insert(at, item)


def _exact_sums(tally: Tally, latest: Mapping[str, Snapshot]) -> tuple[float, float]:
    """The tally's two sums as floats: the ints it keeps, or with amounts that are not whole every
    snapshot's, by ``math.fsum`` (the exact sum rounded once, so the same as the ints when whole)."""
    if not tally.inexact:
        return float(tally.numerator), float(tally.denominator)
    firsts: list[float] = []
    seconds: list[float] = []
    for reporter in tally.expected:
        snap = latest.get(reporter)
        if snap is None:
            continue
        value = snap.value
        if value.kind == "ratio":
            firsts.append(value.numerator)
            seconds.append(value.denominator)
        elif value.kind == "count":
            firsts.append(value.value)
    return math.fsum(firsts), math.fsum(seconds)


def rollup_for(
    indicator: Indicator,
    period: Period,
    scope: str,
    expected: frozenset[str],
    latest: Mapping[str, Snapshot],
    computed_at: datetime,
) -> Rollup:
    """One scope's figure from the latest snapshots of its expected reporters."""
    tally = Tally.of(tuple(sorted(expected)), latest)
    return rollup_of(indicator, period, scope, tally, latest, computed_at)


def rollup_of(
    indicator: Indicator,
    period: Period,
    scope: str,
    tally: Tally,
    latest: Mapping[str, Snapshot],
    computed_at: datetime,
) -> Rollup:
    """One scope's figure from its tally (``latest``: the snapshots it was kept from)."""
    kind = indicator.kind
    expected = len(tally.expected)
    numerator: float
    denominator: float | None
    if kind == "flag":
        numerator, denominator = float(tally.flags), float(expected)
    elif kind == "ratio":
        numerator, denominator = _exact_sums(tally, latest)
    elif kind == "count":
        numerator = _exact_sums(tally, latest)[0] if tally.values else 0
        denominator = None
    else:
        numerator = float(len({item for item in indicator.items if tally.items.get(item, 0) > 0}))
        denominator = float(len(indicator.items))
    figure = numerator if kind == "count" else _ratio(numerator, denominator)
    target = milestone_in_force(indicator, period)
    body: dict[str, Any] = {
        "indicator": indicator.id,
        "period": period.label,
        "scope": scope,
        "kind": kind,
        "value": figure,
        "numerator": numerator,
        "denominator": denominator,
        "reporters_reported": tally.reported,
        "reporters_expected": expected,
        "completeness": tally.reported / expected if expected else 0.0,
        "target": _rollup_target(target.value, target.deadline) if target else None,
        "attainment": figure / target.value if target and figure is not None else None,
        "latest_observed_at": tally.newest,
        "report_count": tally.reported,
        # Sorted lists, so the names kept are the first by id, whatever the order of reports.
        "lagging": tally.not_true[:ROLLUP_NAMES_LIMIT] if kind == "flag" else [],
        "not_reported": tally.missing[:ROLLUP_NAMES_LIMIT],
        "lagging_count": len(tally.not_true) if kind == "flag" else 0,
        "not_reported_count": len(tally.missing),
    }
    return Rollup(**body, revision=_revision(body), computed_at=computed_at)


@functools.lru_cache(maxsize=1024)
def _rollup_target(value: float, deadline: date) -> RollupTarget:
    """An indicator's target as rollups carry it: one frozen instance per target, not one per rollup."""
    return RollupTarget(value=value, deadline=deadline)


def _revision(body: Mapping[str, Any]) -> str:
    """The first 16 hex digits of the SHA-256 of the body as canonical JSON (``canonical_json``)."""
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


_LISTS = ("lagging", "not_reported")
_ENCODER = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))
"""``json.dumps(..., sort_keys=True, default=str, separators=(",", ":"))``, made once (json.dumps
makes an encoder per call when given options)."""
_JSON_NATIVE = (str, int, float, type(None), list, tuple, dict)
"""What json.dumps writes without calling ``default`` (bool is an int)."""
_PLAIN = re.compile(r"[ !#-\[\]-~]*")
"""Printable ASCII but quote and backslash: what JSON writes as it is (reporter ids always are)."""


@functools.lru_cache(maxsize=1024)
def _model_text(model: BaseModel) -> str:
    # str() of a pydantic model goes through its repr machinery: ~10 µs, for every rollup's target.
    return str(model)


def _as_default_would(value: Any) -> Any:
    """A top-level value as json.dumps will write it: ``default=str`` applied ahead of time."""
    if isinstance(value, _JSON_NATIVE):
        return value
    if isinstance(value, BaseModel) and value.model_config.get("frozen"):
        return _model_text(value)
    return str(value)


def canonical_json(body: Mapping[str, Any]) -> str:
    """``json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))``, byte for byte.

    The reporter lists (up to a scope's every reporter) are joined directly when their names need no
    escaping, which json.dumps checks name by name: it was most of the cost of a rollup.
    """
    if any(not isinstance(body.get(key), list) for key in _LISTS):
        return _ENCODER.encode(body)
    head = {key: _as_default_would(value) for key, value in body.items()}
    head.update(dict.fromkeys(_LISTS, 0))
    text = _ENCODER.encode(head)
    for key in _LISTS:
        names: list[str] = body[key]
        try:
            plain = _PLAIN.fullmatch("".join(names)) is not None
        except TypeError:  # not all strings: json.dumps says what it makes of them
            plain = False
        if not names:
            encoded = "[]"
        elif plain:
            encoded = '["' + '","'.join(names) + '"]'
        else:
            encoded = json.dumps(names, separators=(",", ":"))
        # Inside a JSON string a quote is escaped, so this can only be the key itself.
        text = text.replace(f'"{key}":0', f'"{key}":{encoded}', 1)
    return text


def scopes_of(indicator: Indicator) -> tuple[str, ...]:
    """The groups an indicator spans, then the national scope combining them (once)."""
    return tuple(dict.fromkeys((*indicator.groups, NATIONAL_SCOPE)))


def _scope_groups(indicator: Indicator, scope: str) -> tuple[str, ...]:
    return tuple(indicator.groups) if scope == NATIONAL_SCOPE else (scope,)


def scope_tallies(
    indicator: Indicator, period: Period, latest: Mapping[str, Snapshot], registry: Registry
) -> dict[str, Tally]:
    """Every scope's tally of ``latest``, against the registry in force on the period's last day."""
    return {
        scope: Tally.of(registry.expected_sorted(_scope_groups(indicator, scope), period.end), latest)
        for scope in scopes_of(indicator)
    }


def compute_rollups(
    indicator: Indicator,
    period: Period,
    latest: Mapping[str, Snapshot],
    registry: Registry,
    computed_at: datetime,
) -> list[Rollup]:
    """Every scope's rollup, judged against the registry in force on the period's last day."""
    return [
        rollup_of(indicator, period, scope, tally, latest, computed_at)
        for scope, tally in scope_tallies(indicator, period, latest, registry).items()
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
            tallies = _tallies_of(state, indicator, period, registry)
            return state, _rollups(indicator, period, tallies, state.latest, computed_at), 0
        return state, [], 0
    recounted = not _kept(state)
    tallies = _tallies_of(state, indicator, period, registry)
    changed_reporters = {reports[position].reporter for position in changing}
    updated = dict(tallies)
    for scope, tally in tallies.items():
        if not tally.members.isdisjoint(changed_reporters):
            updated[scope] = tally = tally.copy()
            for reporter in changed_reporters:
                tally.swap(reporter, state.latest.get(reporter), latest[reporter])
    changed = replace(
        state,
        latest=latest,
        last_offset=_later(state.last_offset, positions[changing[-1]]),
        tallies=Tallies(latest, updated),
    )
    if redelivered:
        rollups = _rollups(indicator, period, updated, latest, computed_at)
    else:
        # Only a scope holding a changed reporter, or one never published, can have a new figure;
        # after a restart, any (the registry may have changed with the deploy).
        touched = {
            scope: tally
            for scope, tally in updated.items()
            if recounted or tally is not tallies[scope] or scope not in state.published
        }
        rollups = [
            r
            for r in _rollups(indicator, period, touched, latest, computed_at)
            if state.published.get(r.scope) != r.revision
        ]
    if not rollups:
        return changed, [], len(changing)
    published = {**changed.published, **{r.scope: r.revision for r in rollups}}
    return replace(changed, published=published), rollups, len(changing)


def _tallies_of(
    state: PeriodState, indicator: Indicator, period: Period, registry: Registry
) -> dict[str, Tally]:
    """The state's tallies: kept from its last step, or counted afresh (after a restart)."""
    if state.tallies is not None and _kept(state):
        return state.tallies.by_scope
    return scope_tallies(indicator, period, state.latest, registry)


def _kept(state: PeriodState) -> bool:
    """Whether the state carries tallies of its own latest values."""
    return state.tallies is not None and state.tallies.latest is state.latest


def _rollups(
    indicator: Indicator,
    period: Period,
    tallies: Mapping[str, Tally],
    latest: Mapping[str, Snapshot],
    computed_at: datetime,
) -> list[Rollup]:
    return [
        rollup_of(indicator, period, scope, tally, latest, computed_at) for scope, tally in tallies.items()
    ]


def _later(kept: int | None, offset: int | None) -> int | None:
    """The offset to keep as ``last_offset``: offsets only grow, except when a crash cut a batch's
    records short (see ``dxpulse.domain.state_records.writes_of``). The period record then already names
    the batch's last change, and an earlier report of the batch, redelivered and changing a snapshot
    that did not get through, must not take that mark away, or the report at the mark would
    re-send nothing."""
    if kept is None or offset is None:
        return offset if offset is not None else kept
    return max(kept, offset)

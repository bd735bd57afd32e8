"""The query API's response shapes and the pure functions behind them: pages, levels, the registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from dxpulse.domain.catalog import Catalog, Indicator
from dxpulse.domain.periods import Period
from dxpulse.domain.registry import Registry, Reporter, ReporterKind
from dxpulse.domain.remap import Levels
from dxpulse.domain.rollup import NATIONAL_SCOPE, Snapshot, scopes_of
from schemas import ReportValue, Rollup

Item = TypeVar("Item", bound=BaseModel)


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class Page(_Response, Generic[Item]):
    """One page of a list; ask again with ``offset=next_offset`` until it is null."""

    items: list[Item]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page.")


def page_of(rows: Sequence[Item], limit: int, offset: int) -> Page[Item]:
    """A page from rows fetched with ``LIMIT limit + 1``: the extra row only says another page exists."""
    more = len(rows) > limit
    return Page[Item](
        items=list(rows[:limit]), limit=limit, offset=offset, next_offset=offset + limit if more else None
    )


class RollupRevision(_Response):
    """One revision of a rollup: the ``seq``-th distinct figure it had (1 is the first)."""

    seq: int = Field(description="Position in the rollup's history: 1, 2, 3, ... without gaps.")
    rollup: Rollup
    indicator_name: str | None = Field(default=None, description="The indicator's name in the catalog.")
    scope_name: str | None = Field(default=None, description="National, or the group's name.")


class ReporterValue(_Response):
    """A reporter's latest accepted value for one indicator and period."""

    reporter: str
    indicator: str
    period: str
    observed_at: datetime
    event_id: UUID
    value: ReportValue
    name: str | None = Field(default=None, description="The reporter's name in the registry.")

    def snapshot(self) -> Snapshot:
        """The value as the rollups take it."""
        return Snapshot(observed_at=self.observed_at, event_id=str(self.event_id), value=self.value)


class ReporterRef(_Response):
    """A reporter the registry expects, by id and name."""

    reporter: str
    name: str


class ReportingStatus(_Response):
    """Who has reported an indicator for a period, and who is still missing, within one scope."""

    indicator: str
    period: str
    scope: str
    expected: int = Field(description="Reporters the registry expects in this scope for the period.")
    reported: list[ReporterValue] = Field(description="Expected reporters with a value, by reporter id.")
    missing: list[ReporterRef] = Field(description="Expected reporters with no value yet, by reporter id.")


def scope_groups(indicator: Indicator, scope: str) -> tuple[str, ...] | None:
    """The groups a scope of the indicator covers, or None when the indicator has no such scope."""
    if scope not in scopes_of(indicator):
        return None
    return indicator.groups if scope == NATIONAL_SCOPE else (scope,)


def reporting_status(
    indicator: Indicator,
    period: Period,
    scope: str,
    registry: Registry,
    latest: Mapping[str, ReporterValue],
) -> ReportingStatus:
    """Split the scope's expected reporters (registry in force on the period's last day) by ``latest``.

    ``latest`` maps reporter id to its value for this indicator and period; values from reporters
    outside the scope are not listed. ``scope`` must be one of the indicator's (scope_groups).
    """
    groups = scope_groups(indicator, scope)
    if groups is None:
        raise ValueError(f"{indicator.id} has no scope {scope!r}")
    expected = sorted(registry.expected(groups, period.end))
    reported = [named_value(latest[r], registry) for r in expected if r in latest]
    missing = [ReporterRef(reporter=r, name=_name(registry, r)) for r in expected if r not in latest]
    return ReportingStatus(
        indicator=indicator.id,
        period=period.label,
        scope=scope,
        expected=len(expected),
        reported=reported,
        missing=missing,
    )


def named_revision(revision: RollupRevision, catalog: Catalog) -> RollupRevision:
    """``revision`` with the names of its indicator and scope."""
    indicator = catalog.get(revision.rollup.indicator)
    return revision.model_copy(
        update={
            "indicator_name": indicator.name if indicator is not None else None,
            "scope_name": scope_name(revision.rollup.scope),
        }
    )


def named_value(value: ReporterValue, registry: Registry) -> ReporterValue:
    """``value`` with its reporter's name."""
    return value.model_copy(update={"name": _name(registry, value.reporter)})


def _name(registry: Registry, reporter_id: str) -> str:
    reporter = registry.get(reporter_id)
    return reporter.name if reporter is not None else reporter_id


NATIONAL_NAME = "National"


def scope_name(scope: str) -> str:
    """How a scope is shown: ``National``, or a group's id in words (``Ministries with procedures``)."""
    return NATIONAL_NAME if scope == NATIONAL_SCOPE else scope.replace("_", " ").capitalize()


class IndicatorList(_Response):
    """The catalog: every indicator the pipeline rolls up."""

    indicators: list[Indicator]


class RegistryReporter(_Response):
    """A reporting unit of the registry, with its validity, successor and groups."""

    id: str = Field(description="Stable id, e.g. province:79.")
    kind: ReporterKind
    code: str
    name: str
    valid_from: date | None = Field(description="First day in force; null: since always.")
    valid_to: date | None = Field(description="Last day in force; null: still in force.")
    successor: str | None = Field(description="The unit that took over when this one ended.")
    merged_from: list[str] = Field(description="The units of the previous list this one was formed from.")
    groups: list[str] = Field(description="The groups that count this unit while it is in force.")


class RegistryReporters(_Response):
    reporters: list[RegistryReporter]


class RegistryGroup(_Response):
    """A group of reporters and its members on one day."""

    group: str
    name: str
    kinds: list[ReporterKind]
    exclude: list[str] = Field(description="Codes of units of these kinds the group leaves out.")
    on: date = Field(description="The day the members are taken on.")
    members: list[ReporterRef]


class RegistryGroups(_Response):
    groups: list[RegistryGroup]


def registry_reporter(registry: Registry, reporter: Reporter) -> RegistryReporter:
    return RegistryReporter(
        id=reporter.id,
        kind=reporter.kind,
        code=reporter.code,
        name=reporter.name,
        valid_from=reporter.valid_from,
        valid_to=reporter.valid_to,
        successor=reporter.successor,
        merged_from=list(reporter.merged_from),
        groups=sorted(name for name, group in registry.groups.items() if group.admits(reporter)),
    )


def registry_groups(registry: Registry, day: date) -> RegistryGroups:
    groups = []
    for name, group in sorted(registry.groups.items()):
        members = sorted(registry.members(name, day))
        groups.append(
            RegistryGroup(
                group=name,
                name=scope_name(name),
                kinds=list(group.kinds),
                exclude=sorted(group.exclude),
                on=day,
                members=[ReporterRef(reporter=r, name=_name(registry, r)) for r in members],
            )
        )
    return RegistryGroups(groups=groups)


class ScopeFigure(_Response):
    """The figure of the national scope or of one group."""

    scope: str
    name: str
    rollup: Rollup


class UnitFigure(_Response):
    """A unit of the map and the figure of the units it was formed from (itself, on its own map)."""

    unit: str
    name: str
    groups: list[str] = Field(description="The indicator's groups the unit belongs to on the map's day.")
    predecessors: list[ReporterRef] = Field(description="The units whose reports make up its figure.")
    rollup: Rollup = Field(description="Its figure: the rollup of its predecessors' latest values.")


class FigureLevels(_Response):
    """One indicator and period at every level: national, then each group, then each unit of a map."""

    indicator: str
    name: str
    unit: str = Field(description="The indicator's unit of measure.")
    period: str
    map_date: date = Field(description="The day whose registry gives the units (the map).")
    national: ScopeFigure
    groups: list[ScopeFigure]
    units: list[UnitFigure]

    def rollups(self) -> list[Rollup]:
        return [self.national.rollup, *(g.rollup for g in self.groups), *(u.rollup for u in self.units)]


def figure_levels(
    indicator: Indicator, period: Period, map_day: date, levels: Levels, registry: Registry
) -> FigureLevels:
    """The API's form of ``levels``, names added from the catalog and registry."""
    groups_on_map = {g: registry.members(g, map_day) for g in indicator.groups}
    return FigureLevels(
        indicator=indicator.id,
        name=indicator.name,
        unit=indicator.unit,
        period=period.label,
        map_date=map_day,
        national=ScopeFigure(scope=NATIONAL_SCOPE, name=NATIONAL_NAME, rollup=levels.national),
        groups=[ScopeFigure(scope=r.scope, name=scope_name(r.scope), rollup=r) for r in levels.groups],
        units=[
            UnitFigure(
                unit=figure.unit,
                name=figure.name,
                groups=[g for g, members in groups_on_map.items() if figure.unit in members],
                predecessors=[ReporterRef(reporter=p, name=_name(registry, p)) for p in figure.predecessors],
                rollup=figure.rollup,
            )
            for figure in levels.units
        ],
    )


class Series(_Response):
    """One scope's current figure for each period, oldest period first."""

    indicator: str
    name: str
    unit: str
    scope: str
    scope_name: str
    points: list[RollupRevision]

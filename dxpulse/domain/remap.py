"""Figures of a past period viewed on a later map: 2024's 63 provinces summed into today's 34."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from dxpulse.domain.catalog import Indicator
from dxpulse.domain.periods import Period
from dxpulse.domain.registry import Registry
from dxpulse.domain.rollup import NATIONAL_SCOPE, Snapshot, apply_all, compute_rollups, rollup_for
from schemas import Report, Rollup


@dataclass(frozen=True)
class RemappedFigure:
    """One unit of the later map and the figure its predecessors reported for the earlier period."""

    unit: str
    name: str
    predecessors: tuple[str, ...]
    rollup: Rollup


def predecessors_on(
    registry: Registry, groups: tuple[str, ...], period_day: date, map_day: date
) -> dict[str, frozenset[str]]:
    """Every unit in force on ``map_day`` → the units of ``groups`` on ``period_day`` it continues.

    A unit that continued unchanged is its own predecessor; a merged unit has several; a unit
    with no successor on ``map_day`` (none in the reference data) is left out.
    """
    mapping: dict[str, set[str]] = {}
    for old in registry.expected(groups, period_day):
        successor = registry.current_successor(old, map_day)
        if successor is not None:
            mapping.setdefault(successor, set()).add(old)
    return {unit: frozenset(olds) for unit, olds in mapping.items()}


def on_map_of(
    indicator: Indicator,
    period: Period,
    latest: Mapping[str, Snapshot],
    registry: Registry,
    map_day: date,
    computed_at: datetime,
) -> list[RemappedFigure]:
    """``period``'s figures regrouped by the units in force on ``map_day``, one per unit.

    Each unit's figure is the rollup of its predecessors' latest reports, with the same rules as
    any rollup (flags count connected units; ratios sum numerators and denominators; counts sum),
    so the new Khánh Hòa's 2024 figure is old 56 and old 58 taken together.
    """
    mapping = predecessors_on(registry, indicator.groups, period.end, map_day)
    figures = []
    for unit in sorted(mapping):
        reporter = registry.get(unit)
        olds = mapping[unit]
        figures.append(
            RemappedFigure(
                unit=unit,
                name=reporter.name if reporter is not None else unit,
                predecessors=tuple(sorted(olds)),
                rollup=rollup_for(indicator, period, unit, olds, latest, computed_at),
            )
        )
    return figures


def latest_snapshots(reports: Iterable[Report]) -> dict[str, Snapshot]:
    """The latest snapshot per reporter among ``reports`` (of one indicator and period)."""
    latest, _ = apply_all({}, reports)
    return latest or {}


@dataclass(frozen=True)
class Levels:
    """One figure at every level: national, each group the indicator spans, each unit of a map."""

    national: Rollup
    groups: tuple[Rollup, ...]
    units: tuple[RemappedFigure, ...]


def levels_of(
    indicator: Indicator,
    period: Period,
    latest: Mapping[str, Snapshot],
    registry: Registry,
    map_day: date,
    computed_at: datetime,
) -> Levels:
    """``period``'s national and group figures (as the aggregator computes them, against the
    registry in force on the period's last day) and its unit figures on the map of ``map_day``.

    On the period's own map every unit is its own predecessor; on a later one a merged unit's
    figure sums its predecessors', so the units of a group still add up to the group's figure.
    """
    rollups = compute_rollups(indicator, period, latest, registry, computed_at)
    return Levels(
        national=next(r for r in rollups if r.scope == NATIONAL_SCOPE),
        groups=tuple(r for r in rollups if r.scope != NATIONAL_SCOPE),
        units=tuple(on_map_of(indicator, period, latest, registry, map_day, computed_at)),
    )


def as_of(latest: Mapping[str, Snapshot], fallback: datetime) -> datetime:
    """The newest observation among ``latest`` (``fallback`` when empty): a figure computed on
    request is stamped with it, so the same values always give the same answer."""
    return max((snap.observed_at for snap in latest.values()), default=fallback)

"""Figures of a past period viewed on a later map: 2024's 63 provinces summed into today's 34."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from dxpulse.domain.catalog import Indicator
from dxpulse.domain.periods import Period
from dxpulse.domain.registry import Registry
from dxpulse.domain.rollup import Snapshot, apply_all, rollup_for
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

"""How rollups and alerts read in a terminal: one row per indicator and period, a column per scope."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date
from typing import Any

from rich.table import Table

from dxpulse.domain.remap import RemappedFigure
from dxpulse.domain.rollup import NATIONAL_SCOPE
from schemas import AlertEvent, Rollup


def format_rollup(rollup: Rollup) -> str:
    """A figure as the national reviews write it: "19/21", "42.0%", "50,350 / 48,000 = 104.9%"."""
    if rollup.kind == "count":
        text = f"{rollup.numerator:,.0f}"
        if rollup.target is not None and rollup.attainment is not None:
            text += f" / {rollup.target.value:,.0f} = {rollup.attainment * 100:.1f}%"
        return text
    if rollup.value is None:
        return "no data"
    percent = f"{rollup.value * 100:.1f}%"
    if rollup.kind in ("flag", "catalog"):
        return f"{rollup.numerator:,.0f}/{rollup.denominator:,.0f} = {percent}"
    return percent


def rollup_table(rollups: Iterable[Rollup], title: str = "National rollups") -> Table:
    by_figure: dict[tuple[str, str], dict[str, Rollup]] = defaultdict(dict)
    for rollup in rollups:
        by_figure[(rollup.indicator, rollup.period)][rollup.scope] = rollup
    group_scopes = sorted({s for scopes in by_figure.values() for s in scopes if s != NATIONAL_SCOPE})
    table = Table(title=title)
    table.add_column("indicator")
    table.add_column("period")
    for scope in group_scopes:
        table.add_column(scope, justify="right")
    table.add_column("combined", justify="right")
    table.add_column("reported", justify="right")
    for (indicator, period), scopes in sorted(by_figure.items()):
        national = scopes.get(NATIONAL_SCOPE)
        cells = [format_rollup(scopes[s]) if s in scopes else "" for s in group_scopes]
        reported = f"{national.reporters_reported}/{national.reporters_expected}" if national else ""
        table.add_row(indicator, period, *cells, format_rollup(national) if national else "", reported)
    return table


def alert_table(alerts: Iterable[AlertEvent], title: str = "Alerts") -> Table:
    """One row per alert event: when it changed (UTC), its rule and figure (indicator, period,
    scope) stacked in one cell, so the table stays readable at 80 columns, and its summary."""
    table = Table(title=title)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule / indicator / period / scope", overflow="fold")
    table.add_column("summary", ratio=1)
    for alert in alerts:
        changed = alert.changed_at.astimezone(UTC)
        table.add_row(
            f"{changed:%Y-%m-%d}\n{changed:%H:%M:%S}",
            alert.status,
            alert.severity,
            "\n".join((alert.rule, alert.indicator, alert.period, alert.scope)),
            alert.summary,
        )
    return table


def distinct_transitions(alerts: Iterable[AlertEvent]) -> list[AlertEvent]:
    """Each transition once: the first event of each transition_id (a crash can publish one twice)."""
    seen: set[str] = set()
    distinct = []
    for alert in alerts:
        if alert.transition_id is not None:
            if alert.transition_id in seen:
                continue
            seen.add(alert.transition_id)
        distinct.append(alert)
    return distinct


def firing(alerts: Iterable[AlertEvent]) -> list[AlertEvent]:
    """The alerts whose latest transition is firing."""
    last: dict[str, AlertEvent] = {}
    for alert in alerts:
        last[alert.fingerprint] = alert
    return [a for a in last.values() if a.status == "firing"]


def remap_table(
    then: Iterable[RemappedFigure], now: Iterable[RemappedFigure], then_label: str, now_label: str, title: str
) -> Table:
    """One row per unit of the later map: its predecessors' figure for one period, and its own later
    one when ``now_label`` is given."""
    later = {figure.unit: figure for figure in now}
    table = Table(title=title)
    for column in ("unit", "name", "formed from", then_label, *([now_label] if now_label else [])):
        table.add_column(column)
    for figure in then:
        own = later.get(figure.unit)
        cells = [
            figure.unit,
            figure.name,
            ", ".join(p.split(":", 1)[1] for p in figure.predecessors),
            _reported(figure),
        ]
        if now_label:
            cells.append(_reported(own) if own is not None else "not reported")
        table.add_row(*cells)
    return table


def _reported(figure: RemappedFigure) -> str:
    """A unit's figure with its numerator and denominator, ratios too: a merged unit's figure is
    its predecessors' sums, which the percentage alone would hide."""
    rollup = figure.rollup
    if not rollup.reporters_reported:
        return "not reported"
    if rollup.kind == "ratio" and rollup.value is not None:
        return f"{rollup.numerator:,.0f}/{rollup.denominator or 0:,.0f} = {rollup.value * 100:.1f}%"
    return format_rollup(rollup)


def remap_json(
    then: Iterable[RemappedFigure], now: Iterable[RemappedFigure], map_day: date
) -> list[dict[str, Any]]:
    """``remap --json``: per unit of the map, its predecessors' rollup and, with a later period, its own."""
    later = {figure.unit: figure for figure in now}
    return [
        {
            "unit": figure.unit,
            "name": figure.name,
            "map_date": map_day.isoformat(),
            "formed_from": list(figure.predecessors),
            "rollup": figure.rollup.model_dump(mode="json"),
            "compare": later[figure.unit].rollup.model_dump(mode="json") if figure.unit in later else None,
        }
        for figure in then
    ]

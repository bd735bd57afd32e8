"""The ``--indicator``, ``--period``, ``--rule`` and ``--severity`` filters of the read commands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from dxpulse.domain.catalog import Catalog, Indicator
from dxpulse.domain.periods import PeriodError, parse_period
from schemas import AlertEvent

Rule = Literal["below_target", "off_trajectory", "regression", "missing_reports"]
Severity = Literal["critical", "warning", "info"]

IndicatorFilter = Annotated[
    str | None, typer.Option(metavar="INDICATOR", help="Only this indicator, e.g. emc_connection.")
]
PeriodFilter = Annotated[str | None, typer.Option(metavar="PERIOD", help="Only this period, e.g. 2024-H1.")]
RuleFilter = Annotated[
    Rule | None,
    typer.Option(
        metavar="RULE",
        help="Only alerts of this rule: below_target, off_trajectory, regression or missing_reports.",
    ),
]
SeverityFilter = Annotated[
    Severity | None,
    typer.Option(metavar="SEVERITY", help="Only alerts of this severity: critical, warning or info."),
]

USAGE_EXIT = 2
"""The exit code of a command given an indicator, period or file it cannot use."""


def usage_error(message: str) -> typer.Exit:
    """Print ``error: message`` as one line on stderr; returns the exit (2) to raise."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(USAGE_EXIT)


def checked_indicator(catalog: Catalog, indicator: str) -> Indicator:
    """The catalog's indicator ``indicator``; an unknown one ends the command (exit 2)."""
    chosen = catalog.get(indicator)
    if chosen is None:
        known = ", ".join(i.id for i in catalog.indicators)
        raise usage_error(f"unknown indicator {indicator!r}; known: {known}")
    return chosen


def checked_filters(catalog: Catalog, indicator: str | None, period: str | None) -> None:
    """End the command (exit 2) when ``indicator`` is not in the catalog, or ``period`` is not a
    period (of the indicator's period type, when one is given)."""
    chosen = checked_indicator(catalog, indicator) if indicator is not None else None
    if period is None:
        return
    try:
        parse_period(period, chosen.period_type if chosen is not None else None)
    except PeriodError as error:
        raise usage_error(str(error)) from None


def matching_alerts(
    alerts: Iterable[AlertEvent],
    *,
    indicator: str | None = None,
    period: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
) -> list[AlertEvent]:
    """The alerts that pass every filter given (None lets all through)."""
    wanted = {"indicator": indicator, "period": period, "rule": rule, "severity": severity}
    return [a for a in alerts if all(v is None or getattr(a, k) == v for k, v in wanted.items())]

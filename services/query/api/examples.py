"""Examples in the OpenAPI document, computed from the packaged scenario so they are real answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import cache
from typing import Any

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.remap import as_of, latest_snapshots, levels_of
from dxpulse.domain.scenario import sample_reports
from services.query.api.representation import CSV
from services.query.core import FigureLevels, figure_levels
from services.query.tables import csv_text

EXAMPLE_INDICATOR, EXAMPLE_PERIOD, EXAMPLE_MAP = "low_signal_villages_broadband", "2024-H1", date(2025, 7, 1)
EXAMPLE_UNITS = ("province:01", "province:56")
"""Ha Noi, which went on unchanged, and Khanh Hoa, formed from old 56 and 58 on 2025-07-01."""


@cache
def figures_example() -> FigureLevels:
    """The scenario's 2024-H1 low-signal villages on the 34-province map, two units kept."""
    catalog, registry = default_catalog(), default_registry()
    indicator = catalog[EXAMPLE_INDICATOR]
    period = parse_period(EXAMPLE_PERIOD, indicator.period_type)
    latest = latest_snapshots(r for r in sample_reports(catalog, registry) if r.indicator == indicator.id)
    computed_at = as_of(latest, datetime.combine(period.end, time(), UTC))
    levels = levels_of(indicator, period, latest, registry, EXAMPLE_MAP, computed_at)
    body = figure_levels(indicator, period, EXAMPLE_MAP, levels, registry)
    return body.model_copy(update={"units": [u for u in body.units if u.unit in EXAMPLE_UNITS]})


def figure_rows(body: FigureLevels) -> list[dict[str, Any]]:
    """``/v1/figures`` as CSV rows: one per level and unit, numerator and denominator included."""
    rows: list[dict[str, Any]] = [
        {"level": "national", "scope": body.national.scope, "name": body.national.name}
        | figure_columns(body.national.rollup.model_dump(mode="json"))
    ]
    rows += [
        {"level": "group", "scope": g.scope, "name": g.name}
        | figure_columns(g.rollup.model_dump(mode="json"))
        for g in body.groups
    ]
    rows += [
        {
            "level": "unit",
            "scope": u.unit,
            "name": u.name,
            "groups": u.groups,
            "predecessors": [p.reporter for p in u.predecessors],
        }
        | figure_columns(u.rollup.model_dump(mode="json"))
        for u in body.units
    ]
    return rows


FIGURE_COLUMNS = (
    "value",
    "numerator",
    "denominator",
    "reporters_reported",
    "reporters_expected",
    "attainment",
    "revision",
)


def figure_columns(rollup: dict[str, Any]) -> dict[str, Any]:
    """A rollup's figure (its JSON form) as CSV columns."""
    return {column: rollup[column] for column in FIGURE_COLUMNS}


def figures_responses() -> dict[int | str, dict[str, Any]]:
    """The 200 entry of /v1/figures with its JSON and CSV examples."""
    example = figures_example()
    return {
        200: {
            "content": {
                "application/json": {"example": example.model_dump(mode="json")},
                CSV: {"schema": {"type": "string"}, "example": csv_text(figure_rows(example))},
            }
        }
    }

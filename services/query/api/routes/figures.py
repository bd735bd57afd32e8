"""Figures at every level (national, groups, units) on any registry version, and series across periods."""

# No `from __future__ import annotations`: FastAPI reads the handlers' parameter types at run time.
from datetime import UTC, datetime, time

from fastapi import APIRouter, Request, Response

from dxpulse.domain.remap import as_of, levels_of
from services.query.api.deps import (
    FirstPeriod,
    IndicatorPath,
    LastPeriod,
    LookupDep,
    MapDate,
    PeriodPath,
    ScopePath,
    StoreDep,
)
from services.query.api.examples import figure_columns, figure_rows, figures_responses
from services.query.api.problems import PATH_RESPONSES
from services.query.api.representation import CSV_RESPONSE, answer, merged
from services.query.core import FigureLevels, Series, figure_levels, named_revision, scope_name

SERIES_LIMIT = 1000
"""Periods a series holds at most: 83 years of months."""

router = APIRouter(tags=["figures"])


@router.get(
    "/v1/figures/{indicator}/{period}",
    response_model=FigureLevels,
    responses={**PATH_RESPONSES, **merged(CSV_RESPONSE, figures_responses())},
)
async def figures(
    request: Request,
    store: StoreDep,
    lookup: LookupDep,
    indicator: IndicatorPath,
    period: PeriodPath,
    map_date: MapDate = None,
) -> Response:
    """An indicator's figure for a period at every level: national, each group, each unit of a map.

    Computed from every reporter's latest value in PostgreSQL, so any period can be shown on any
    registry version: `?map=2025-07-01` shows 2024 on the 34-province map, each new province's
    figure summing the old provinces it was formed from. The national and group figures are the
    ones the pipeline publishes. CSV: one row per level and unit, with numerator and denominator.
    """
    entry, parsed = lookup.figure(indicator, period, "national")
    map_day = map_date or parsed.end
    latest = await store.snapshots_for_figure(indicator, parsed.label)
    computed_at = as_of(latest, datetime.combine(parsed.end, time(), UTC))
    levels = levels_of(entry, parsed, latest, lookup.registry, map_day, computed_at)
    body = figure_levels(entry, parsed, map_day, levels, lookup.registry)
    rows = figure_rows(body)
    return answer(request, body, versions=[r.revision for r in body.rollups()], rows=rows)


@router.get(
    "/v1/series/{indicator}/{scope}",
    response_model=Series,
    responses={**PATH_RESPONSES, **CSV_RESPONSE},
)
async def series(
    request: Request,
    store: StoreDep,
    lookup: LookupDep,
    indicator: IndicatorPath,
    scope: ScopePath,
    first: FirstPeriod = None,
    last: LastPeriod = None,
) -> Response:
    """One scope's current figure for every period with one, oldest first, optionally from one
    period to another (both included). CSV: one row per period."""
    entry = lookup.scope(indicator, scope)
    for bound in (first, last):
        if bound is not None:
            lookup.period(entry, bound)
    points = [
        named_revision(p, lookup.catalog)
        for p in await store.series(indicator, scope, first, last, SERIES_LIMIT)
    ]
    body = Series(
        indicator=entry.id,
        name=entry.name,
        unit=entry.unit,
        scope=scope,
        scope_name=scope_name(scope),
        points=points,
    )
    rows = [{"period": p.rollup.period} | figure_columns(p.rollup.model_dump(mode="json")) for p in points]
    return answer(request, body, versions=[p.rollup.revision for p in points], rows=rows)

"""Reporters: one reporter's latest value per indicator and period."""

# No `from __future__ import annotations`: FastAPI reads the handler's parameter types at run time,
# and ``Limit`` is local to ``router``.
from typing import Annotated

from fastapi import APIRouter

from services.query.api.deps import (
    IndicatorFilter,
    LookupDep,
    Offset,
    Paging,
    PeriodFilter,
    ReporterPath,
    StoreDep,
)
from services.query.api.problems import PATH_RESPONSES
from services.query.core import Page, ReporterValue


def router(paging: Paging) -> APIRouter:
    """The reporter routes, their ``limit`` bounded by ``paging``."""
    routes = APIRouter()
    Limit = Annotated[int, paging.limit()]

    @routes.get(
        "/v1/reporters/{reporter}/values", response_model=Page[ReporterValue], responses=PATH_RESPONSES
    )
    async def reporter_values(
        store: StoreDep,
        lookup: LookupDep,
        reporter: ReporterPath,
        indicator: IndicatorFilter = None,
        period: PeriodFilter = None,
        limit: Limit = paging.default,
        offset: Offset = 0,
    ) -> Page[ReporterValue]:
        """One reporter's latest value per indicator and period, ordered by indicator and period."""
        lookup.reporter(reporter)
        return await store.latest_of_reporter(reporter, indicator, period, limit, offset)

    return routes

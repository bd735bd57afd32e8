"""Rollups: the current figure of every rollup, and every figure one rollup has had."""

# No `from __future__ import annotations`: FastAPI reads the handlers' parameter types at run time,
# and ``Limit`` is local to ``router``.
from typing import Annotated

from fastapi import APIRouter

from services.query.api.deps import (
    IndicatorFilter,
    IndicatorPath,
    LookupDep,
    Offset,
    Paging,
    PeriodFilter,
    PeriodPath,
    ScopeFilter,
    ScopePath,
    StoreDep,
)
from services.query.api.problems import LIST_RESPONSES, PATH_RESPONSES
from services.query.core import Page, RollupRevision


def router(paging: Paging) -> APIRouter:
    """The rollup routes, their ``limit`` bounded by ``paging``."""
    routes = APIRouter()
    Limit = Annotated[int, paging.limit()]

    @routes.get("/v1/rollups", response_model=Page[RollupRevision], responses=LIST_RESPONSES)
    async def current_rollups(
        store: StoreDep,
        indicator: IndicatorFilter = None,
        period: PeriodFilter = None,
        scope: ScopeFilter = None,
        limit: Limit = paging.default,
        offset: Offset = 0,
    ) -> Page[RollupRevision]:
        """The current figure of every rollup, ordered by indicator, period and scope."""
        return await store.current_rollups(indicator, period, scope, limit, offset)

    @routes.get(
        "/v1/rollups/{indicator}/{period}/{scope}/history",
        response_model=Page[RollupRevision],
        responses=PATH_RESPONSES,
    )
    async def rollup_history(
        store: StoreDep,
        lookup: LookupDep,
        indicator: IndicatorPath,
        period: PeriodPath,
        scope: ScopePath,
        limit: Limit = paging.default,
        offset: Offset = 0,
    ) -> Page[RollupRevision]:
        """Every distinct figure one rollup has had, oldest first (seq 1, 2, 3, ...)."""
        _, parsed = lookup.figure(indicator, period, scope)
        return await store.rollup_history(indicator, parsed.label, scope, limit, offset)

    return routes

"""Rollups: the current figure of every rollup, and every figure one rollup has had."""

# No `from __future__ import annotations`: FastAPI reads the handlers' parameter types at run time,
# and ``Limit`` is local to ``router``.
from typing import Annotated

from fastapi import APIRouter, Request, Response

from dxpulse.domain.catalog import Catalog
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
from services.query.api.representation import CSV_RESPONSE, answer
from services.query.core import Page, RollupRevision, named_revision


def revisions_answer(request: Request, page: Page[RollupRevision], catalog: Catalog) -> Response:
    """A page of rollups with their names, its ETag from their revisions; one CSV row per rollup."""
    page = page.model_copy(update={"items": [named_revision(i, catalog) for i in page.items]})
    return answer(
        request,
        page,
        versions=[item.rollup.revision for item in page.items],
        rows=(item.model_dump(mode="json") for item in page.items),
    )


def router(paging: Paging) -> APIRouter:
    """The rollup routes, their ``limit`` bounded by ``paging``."""
    routes = APIRouter(tags=["rollups"])
    Limit = Annotated[int, paging.limit()]

    @routes.get(
        "/v1/rollups", response_model=Page[RollupRevision], responses={**LIST_RESPONSES, **CSV_RESPONSE}
    )
    async def current_rollups(
        request: Request,
        store: StoreDep,
        lookup: LookupDep,
        indicator: IndicatorFilter = None,
        period: PeriodFilter = None,
        scope: ScopeFilter = None,
        limit: Limit = paging.default,
        offset: Offset = 0,
    ) -> Response:
        """The current figure of every rollup, ordered by indicator, period and scope."""
        page = await store.current_rollups(indicator, period, scope, limit, offset)
        return revisions_answer(request, page, lookup.catalog)

    @routes.get(
        "/v1/rollups/{indicator}/{period}/{scope}/history",
        response_model=Page[RollupRevision],
        responses={**PATH_RESPONSES, **CSV_RESPONSE},
    )
    async def rollup_history(
        request: Request,
        store: StoreDep,
        lookup: LookupDep,
        indicator: IndicatorPath,
        period: PeriodPath,
        scope: ScopePath,
        limit: Limit = paging.default,
        offset: Offset = 0,
    ) -> Response:
        """Every distinct figure one rollup has had, oldest first (seq 1, 2, 3, ...)."""
        _, parsed = lookup.figure(indicator, period, scope)
        page = await store.rollup_history(indicator, parsed.label, scope, limit, offset)
        return revisions_answer(request, page, lookup.catalog)

    return routes

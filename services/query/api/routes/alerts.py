"""Alert history: every transition the alerts service published, as the history writer stored it."""

# No `from __future__ import annotations`: FastAPI reads the handler's parameter types at run time,
# and ``Limit`` is local to ``router``.
from typing import Annotated

from fastapi import APIRouter, Request, Response

from schemas import AlertEvent
from services.query.api.deps import (
    IndicatorFilter,
    Offset,
    Paging,
    PeriodFilter,
    RuleFilter,
    ScopeFilter,
    StatusFilter,
    StoreDep,
)
from services.query.api.problems import LIST_RESPONSES
from services.query.api.representation import CSV_RESPONSE, answer
from services.query.core import Page


def router(paging: Paging) -> APIRouter:
    """The alert routes, their ``limit`` bounded by ``paging``."""
    routes = APIRouter(tags=["alerts"])
    Limit = Annotated[int, paging.limit()]

    @routes.get("/v1/alerts", response_model=Page[AlertEvent], responses={**LIST_RESPONSES, **CSV_RESPONSE})
    async def alert_history(
        request: Request,
        store: StoreDep,
        indicator: IndicatorFilter = None,
        period: PeriodFilter = None,
        scope: ScopeFilter = None,
        rule: RuleFilter = None,
        status: StatusFilter = None,
        limit: Limit = paging.default,
        offset: Offset = 0,
    ) -> Response:
        """Every alert transition (firing, resolved), oldest first; filter by indicator, period,
        scope, rule or status. CSV: one row per transition."""
        page = await store.alert_history(indicator, period, scope, rule, status, limit, offset)
        versions = [a.transition_id or f"{a.fingerprint}:{a.status}:{a.changed_at}" for a in page.items]
        return answer(request, page, versions=versions, rows=(a.model_dump(mode="json") for a in page.items))

    return routes

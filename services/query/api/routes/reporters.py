"""Reporters: one reporter's latest value per indicator and period."""

# No `from __future__ import annotations`: FastAPI reads the handler's parameter types at run time,
# and ``Limit`` is local to ``router``.
from typing import Annotated

from fastapi import APIRouter, Request, Response

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
from services.query.api.representation import CSV_RESPONSE, answer
from services.query.core import Page, ReporterValue, named_value


def router(paging: Paging) -> APIRouter:
    """The reporter routes, their ``limit`` bounded by ``paging``."""
    routes = APIRouter(tags=["reporters' values"])
    Limit = Annotated[int, paging.limit()]

    @routes.get(
        "/v1/reporters/{reporter}/values",
        response_model=Page[ReporterValue],
        responses={**PATH_RESPONSES, **CSV_RESPONSE},
    )
    async def reporter_values(
        request: Request,
        store: StoreDep,
        lookup: LookupDep,
        reporter: ReporterPath,
        indicator: IndicatorFilter = None,
        period: PeriodFilter = None,
        limit: Limit = paging.default,
        offset: Offset = 0,
    ) -> Response:
        """One reporter's latest value per indicator and period, ordered by indicator and period."""
        lookup.reporter(reporter)
        page = await store.latest_of_reporter(reporter, indicator, period, limit, offset)
        page = page.model_copy(update={"items": [named_value(v, lookup.registry) for v in page.items]})
        return answer(
            request,
            page,
            versions=[str(v.event_id) for v in page.items],
            rows=(v.model_dump(mode="json") for v in page.items),
            raw=True,
        )

    return routes

"""Every route of the query API, in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from services.query.api.access import guard
from services.query.api.deps import Paging
from services.query.api.routes import (
    alerts,
    catalog,
    contracts,
    figures,
    health,
    reporters,
    reporting,
    rollups,
)


def api_router(paging: Paging, *, public: bool) -> APIRouter:
    """All the routes, the paged ones bounded by ``paging``. Reporters' own values need a read token;
    the scoreboard (catalog, registry, rollups, figures, series, alerts) too unless ``public``."""
    router = APIRouter()
    scoreboard, scoreboard_refusals = guard(needs_token=not public)
    raw, raw_refusals = guard(needs_token=True)
    for board in (catalog.router, rollups.router(paging), figures.router, alerts.router(paging)):
        router.include_router(board, dependencies=scoreboard, responses=scoreboard_refusals)
    for values in (reporting.router, reporters.router(paging)):
        router.include_router(values, dependencies=raw, responses=raw_refusals)
    router.include_router(contracts.router)  # public: the same documents are in the repository
    router.include_router(health.router)
    return router

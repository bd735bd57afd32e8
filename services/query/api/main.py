"""Every route of the query API, in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from services.query.api.deps import Paging
from services.query.api.routes import health, reporters, reporting, rollups


def api_router(paging: Paging) -> APIRouter:
    """All the routes, the paged ones bounded by ``paging``."""
    router = APIRouter()
    router.include_router(rollups.router(paging))
    router.include_router(reporting.router)
    router.include_router(reporters.router(paging))
    router.include_router(health.router)
    return router

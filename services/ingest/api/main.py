"""Every route of the ingest API: one router per resource, in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

from services.ingest.api.routes import batches, health, indicators, reports

ROUTERS: tuple[APIRouter, ...] = (reports.router, batches.router, indicators.router, health.router)
SERVED_AHEAD: tuple[BaseRoute, ...] = (reports.served,)
"""Plain routes matched before the routers' routes, which still document them (reports.py says why)."""


def add_routes(app: FastAPI) -> None:
    """Add every router's routes to ``app`` itself, as ``@app.post`` would. ``app.include_router``
    keeps each router a level FastAPI matches every request through: 5% of a single report's
    instructions (cachegrind). The routes do not see ``app.dependency_overrides``: the unit tests
    hand in-memory fakes to ``create_app`` instead."""
    app.router.routes.extend(SERVED_AHEAD)
    for router in ROUTERS:
        app.router.routes.extend(router.routes)

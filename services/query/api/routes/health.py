"""Health and metrics: whether PostgreSQL answers, and the Prometheus exposition."""

# No `from __future__ import annotations`: FastAPI reads the handlers' parameter types at run time.
from fastapi import APIRouter, Response

from services.query.api.deps import MetricsDep, StoreDep
from services.query.api.problems import UNAVAILABLE

router = APIRouter()


@router.get("/healthz", responses={503: UNAVAILABLE})
async def health(store: StoreDep) -> dict[str, str]:
    """200 when PostgreSQL answers (503 otherwise)."""
    await store.ping()
    return {"status": "ok"}


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

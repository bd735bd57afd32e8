"""Liveness, readiness and the Prometheus metrics of the ingest."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from services.ingest.api.deps import IngestDep
from services.ingest.api.openapi import NOT_READY_EXAMPLE, NOT_READY_SCHEMA
from services.ingest.api.refusals import retry_after

router = APIRouter()


@router.get("/healthz")
async def health() -> dict[str, str]:
    """Liveness: the process answers (Kafka may still be down)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "not connected to Kafka, or some partitions of the report topic fail",
            "content": {"application/json": {"schema": NOT_READY_SCHEMA, "example": NOT_READY_EXAMPLE}},
        }
    },
)
async def ready(ingest: IngestDep) -> JSONResponse:
    """Readiness: Kafka answers and acknowledges reports on every partition of the report topic."""
    reason = ingest.kafka.not_ready()
    if reason is not None:
        return JSONResponse(reason, status_code=503, headers=retry_after(ingest))
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(ingest: IngestDep) -> Response:
    return Response(ingest.metrics.exposition(), media_type=ingest.metrics.CONTENT_TYPE)

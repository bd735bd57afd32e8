"""``GET /v1/indicators``: the indicator catalog reports are judged against."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.ingest.api.deps import IngestDep

router = APIRouter()


@router.get("/v1/indicators")
async def list_indicators(ingest: IngestDep) -> list[dict[str, Any]]:
    """The indicator catalog: ids, kinds, period types, groups and targets."""
    return [i.model_dump(mode="json") for i in ingest.catalog.indicators]

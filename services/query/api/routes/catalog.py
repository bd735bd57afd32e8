"""The catalog and the registry: indicators, reporters with their validity and successors, groups."""

# No `from __future__ import annotations`: FastAPI reads the handlers' parameter types at run time.
import hashlib
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from dxpulse.domain.catalog import Indicator
from services.query.api.deps import DayQuery, IndicatorPath, KindFilter, LookupDep, ReporterPath
from services.query.api.problems import LIST_RESPONSES, PATH_RESPONSES
from services.query.api.representation import CSV_RESPONSE, answer
from services.query.core import (
    IndicatorList,
    RegistryGroups,
    RegistryReporter,
    RegistryReporters,
    registry_groups,
    registry_reporter,
)

router = APIRouter(tags=["catalog and registry"])


def _reference_answer(request: Request, body: BaseModel, rows: list[dict[str, object]]) -> Response:
    """The ETag of reference data (no rollups in it) is a hash of the data itself."""
    version = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    return answer(request, body, versions=[version], rows=rows)


@router.get("/v1/indicators", response_model=IndicatorList, responses={**LIST_RESPONSES, **CSV_RESPONSE})
async def indicators(request: Request, lookup: LookupDep) -> Response:
    """Every indicator of the catalog: kind, period type, groups, target and alert rules."""
    body = IndicatorList(indicators=list(lookup.catalog.indicators))
    return _reference_answer(request, body, [i.model_dump(mode="json") for i in body.indicators])


@router.get(
    "/v1/indicators/{indicator}", response_model=Indicator, responses={**PATH_RESPONSES, **CSV_RESPONSE}
)
async def indicator(request: Request, lookup: LookupDep, indicator: IndicatorPath) -> Response:
    """One indicator of the catalog."""
    entry = lookup.indicator(indicator)
    return _reference_answer(request, entry, [entry.model_dump(mode="json")])


@router.get(
    "/v1/registry/reporters",
    response_model=RegistryReporters,
    responses={**LIST_RESPONSES, **CSV_RESPONSE},
)
async def registry_reporters(
    request: Request, lookup: LookupDep, kind: KindFilter = None, on: DayQuery = None
) -> Response:
    """Every reporting unit that ever existed (or those in force ``on`` a day), ordered by id."""
    registry = lookup.registry
    chosen = [
        registry_reporter(registry, r)
        for r in sorted(registry.reporters.values(), key=lambda r: r.id)
        if (kind is None or r.kind == kind) and (on is None or r.active_on(on))
    ]
    body = RegistryReporters(reporters=chosen)
    return _reference_answer(request, body, [r.model_dump(mode="json") for r in chosen])


@router.get(
    "/v1/registry/reporters/{reporter}",
    response_model=RegistryReporter,
    responses={**PATH_RESPONSES, **CSV_RESPONSE},
)
async def registry_reporter_by_id(request: Request, lookup: LookupDep, reporter: ReporterPath) -> Response:
    """One reporting unit: its name, kind, validity, successor, the units it was formed from."""
    lookup.reporter(reporter)
    found = registry_reporter(lookup.registry, lookup.registry.reporters[reporter])
    return _reference_answer(request, found, [found.model_dump(mode="json")])


@router.get(
    "/v1/registry/groups", response_model=RegistryGroups, responses={**LIST_RESPONSES, **CSV_RESPONSE}
)
async def groups(request: Request, lookup: LookupDep, on: DayQuery = None) -> Response:
    """Every group with its members (id and name) on a day. CSV: one row per group and member."""
    day = on or datetime.now(UTC).date()
    body = registry_groups(lookup.registry, day)
    rows: list[dict[str, object]] = [
        {
            "group": g.group,
            "name": g.name,
            "on": day.isoformat(),
            "reporter": m.reporter,
            "reporter_name": m.name,
        }
        for g in body.groups
        for m in g.members
    ]
    return _reference_answer(request, body, rows)

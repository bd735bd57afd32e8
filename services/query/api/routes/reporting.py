"""Reporting: which expected reporters have a value for a figure, and which are missing."""

# No `from __future__ import annotations`: FastAPI reads the handler's parameter types at run time.
from fastapi import APIRouter, Request, Response

from services.query.api.deps import IndicatorPath, LookupDep, PeriodPath, ScopeQuery, StoreDep
from services.query.api.problems import PATH_RESPONSES
from services.query.api.representation import CSV_RESPONSE, answer
from services.query.core import ReportingStatus, reporting_status

router = APIRouter(tags=["reporters' values"])


@router.get(
    "/v1/reporting/{indicator}/{period}",
    response_model=ReportingStatus,
    responses={**PATH_RESPONSES, **CSV_RESPONSE},
)
async def reporting(
    request: Request,
    store: StoreDep,
    lookup: LookupDep,
    indicator: IndicatorPath,
    period: PeriodPath,
    scope: ScopeQuery = "national",
) -> Response:
    """Which expected reporters have a value for the indicator and period, and which are missing.

    Expected reporters are the scope's groups in the registry in force on the period's last day.
    Not paginated: both lists are bounded by the registry (under 100 reporters per indicator).
    CSV: one row per expected reporter, with its value or an empty one.
    """
    entry, parsed = lookup.figure(indicator, period, scope)
    latest = await store.latest_for_figure(indicator, parsed.label)
    status = reporting_status(entry, parsed, scope, lookup.registry, latest)
    rows = [{"status": "reported", **v.model_dump(mode="json")} for v in status.reported]
    rows += [{"status": "missing", **m.model_dump(mode="json")} for m in status.missing]
    versions = [str(v.event_id) for v in status.reported] + [m.reporter for m in status.missing]
    return answer(request, status, versions=versions, rows=rows, raw=True)

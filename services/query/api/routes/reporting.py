"""Reporting: which expected reporters have a value for a figure, and which are missing."""

# No `from __future__ import annotations`: FastAPI reads the handler's parameter types at run time.
from fastapi import APIRouter

from services.query.api.deps import IndicatorPath, LookupDep, PeriodPath, ScopeQuery, StoreDep
from services.query.api.problems import PATH_RESPONSES
from services.query.core import ReportingStatus, reporting_status

router = APIRouter()


@router.get("/v1/reporting/{indicator}/{period}", response_model=ReportingStatus, responses=PATH_RESPONSES)
async def reporting(
    store: StoreDep,
    lookup: LookupDep,
    indicator: IndicatorPath,
    period: PeriodPath,
    scope: ScopeQuery = "national",
) -> ReportingStatus:
    """Which expected reporters have a value for the indicator and period, and which are missing.

    Expected reporters are the scope's groups in the registry in force on the period's last day.
    Not paginated: both lists are bounded by the registry (under 100 reporters per indicator).
    """
    entry, parsed = lookup.figure(indicator, period, scope)
    latest = await store.latest_for_figure(indicator, parsed.label)
    return reporting_status(entry, parsed, scope, lookup.registry, latest)

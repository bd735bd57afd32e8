"""What the query routes share: the pool, the history store, the catalog and registry, their parameters."""

# No `from __future__ import annotations`: FastAPI reads the parameter types below at run time.
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import Depends, Path, Query, Request
from pydantic import BeforeValidator

from dxpulse.domain.catalog import Catalog, Indicator
from dxpulse.domain.periods import Period, PeriodError, parse_period
from dxpulse.domain.registry import Registry, ReporterKind
from schemas import Report
from schemas.events import REPORTER_PATTERN, AlertStatus
from services.query.api.problems import BadPeriod, NotFound
from services.query.core import scope_groups
from services.query.metrics import QueryMetrics
from services.query.settings import QuerySettings
from services.query.store import HistoryStore

MAX_OFFSET = 1_000_000_000
"""The largest offset a request may give: far beyond any history (tens of thousands of rows a year)
and far inside PostgreSQL's bigint, so offset + limit + 1 can never overflow."""

INDICATOR_PATTERN = Indicator.model_json_schema()["properties"]["id"]["pattern"]
SCOPE_PATTERN = INDICATOR_PATTERN
"""Group names and ``national`` are spelled as indicator ids are."""
PERIOD_PATTERN = Report.model_json_schema()["properties"]["period"]["pattern"]
AlertRule = Literal["below_target", "off_trajectory", "regression", "missing_reports"]


class Lookup:
    """The catalog and registry a request's names are looked up in: an unknown one is a NotFound,
    a period of another type than the indicator's a BadPeriod."""

    def __init__(self, catalog: Catalog, registry: Registry) -> None:
        self.catalog = catalog
        self.registry = registry

    def indicator(self, indicator_id: str) -> Indicator:
        indicator = self.catalog.get(indicator_id)
        if indicator is None:
            raise NotFound("indicator", f"no indicator {indicator_id!r}; GET /v1/indicators lists them")
        return indicator

    def figure(self, indicator_id: str, period: str, scope: str) -> tuple[Indicator, Period]:
        """The indicator and period of a figure in ``scope``; checked in turn: indicator, scope, period."""
        indicator = self.scope(indicator_id, scope)
        return indicator, self.period(indicator, period)

    def scope(self, indicator_id: str, scope: str) -> Indicator:
        """The indicator, checked to have ``scope``."""
        indicator = self.indicator(indicator_id)
        if scope_groups(indicator, scope) is None:
            scopes = ", ".join((*indicator.groups, "national"))
            raise NotFound("scope", f"{indicator.id} has no scope {scope!r}; its scopes are {scopes}")
        return indicator

    def period(self, indicator: Indicator, period: str) -> Period:
        """``period`` parsed as one of the indicator's type (BadPeriod otherwise)."""
        try:
            return parse_period(period, indicator.period_type)
        except PeriodError as error:
            raise BadPeriod(str(error)) from None

    def reporter(self, reporter_id: str) -> None:
        """Raises NotFound unless the registry has the reporter."""
        if self.registry.get(reporter_id) is None:
            raise NotFound(
                "reporter", f"no reporter {reporter_id!r} in the registry; ids look like province:79"
            )


@dataclass(frozen=True)
class Paging:
    """How long a page may be: ``limit`` is at most ``max_page``, ``default`` when a request gives none.

    Both come from the settings and show in the OpenAPI document, so the routes that page take
    their ``limit`` type from here when the app is built (``routes.rollups.router``).
    """

    max_page: int
    default: int

    @classmethod
    def of(cls, settings: QuerySettings) -> "Paging":
        max_page = settings.query_max_page_size
        return cls(max_page, min(settings.query_page_size, max_page))

    def limit(self) -> Any:
        """The ``limit`` query parameter (FastAPI's Query)."""
        return Query(ge=1, le=self.max_page, description=f"Items per page, at most {self.max_page}.")


async def get_pool(request: Request) -> asyncpg.Pool:
    """The pool the app's lifespan opened (``app.state.pool``)."""
    pool: asyncpg.Pool = request.app.state.pool
    return pool


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]


async def get_store(pool: PoolDep) -> HistoryStore:
    return HistoryStore(pool)


async def get_lookup(request: Request) -> Lookup:
    lookup: Lookup = request.app.state.lookup
    return lookup


async def get_metrics(request: Request) -> QueryMetrics:
    metrics: QueryMetrics = request.app.state.metrics
    return metrics


StoreDep = Annotated[HistoryStore, Depends(get_store)]
LookupDep = Annotated[Lookup, Depends(get_lookup)]
MetricsDep = Annotated[QueryMetrics, Depends(get_metrics)]

Offset = Annotated[
    int,
    Query(
        ge=0,
        le=MAX_OFFSET,
        description=f"Items to skip, at most {MAX_OFFSET:,}; use the previous page's next_offset.",
    ),
]
IndicatorPath = Annotated[
    str,
    Path(
        pattern=INDICATOR_PATTERN,
        description="Catalog indicator id, e.g. emc_connection.",
        examples=["low_signal_villages_broadband"],
    ),
]
PeriodPath = Annotated[
    str,
    Path(
        pattern=PERIOD_PATTERN,
        description="Period of the indicator's type, e.g. 2024-H1.",
        examples=["2024-H1"],
    ),
]
ScopePath = Annotated[
    str,
    Path(
        pattern=SCOPE_PATTERN, description="A group the indicator spans, or national.", examples=["national"]
    ),
]
ReporterPath = Annotated[
    str,
    Path(
        pattern=REPORTER_PATTERN,
        description="Reporter id, e.g. province:79 or ministry:MIC.",
        examples=["province:58"],
    ),
]
IndicatorFilter = Annotated[str | None, Query(pattern=INDICATOR_PATTERN, description="Only this indicator.")]
PeriodFilter = Annotated[
    str | None, Query(pattern=PERIOD_PATTERN, description="Only this period, e.g. 2024-H1.")
]
ScopeFilter = Annotated[
    str | None, Query(pattern=SCOPE_PATTERN, description="Only this scope: a group, or national.")
]
ScopeQuery = Annotated[
    str, Query(pattern=SCOPE_PATTERN, description="A group the indicator spans, or national.")
]
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: object) -> object:
    """Only YYYY-MM-DD: pydantic would take a number for a Unix time (``on=1.5`` as 1970-01-01)."""
    if isinstance(value, str) and not ISO_DAY.fullmatch(value):
        raise ValueError("write the day as YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]
DayQuery = Annotated[
    Day | None, Query(description="The day to take the registry on (YYYY-MM-DD); default: today.")
]
MapDate = Annotated[
    Day | None,
    Query(
        alias="map",
        description=(
            "The day whose registry gives the units (YYYY-MM-DD), e.g. 2025-07-01 for the 34"
            " provinces; default: the period's last day, its own map."
        ),
        examples=["2025-07-01"],
    ),
]
KindFilter = Annotated[ReporterKind | None, Query(description="Only reporters of this kind.")]
FirstPeriod = Annotated[
    str | None,
    Query(alias="from", pattern=PERIOD_PATTERN, description="The first period, e.g. 2024-H1."),
]
LastPeriod = Annotated[
    str | None, Query(alias="to", pattern=PERIOD_PATTERN, description="The last period, e.g. 2025-H2.")
]
RuleFilter = Annotated[AlertRule | None, Query(description="Only this alert rule.")]
StatusFilter = Annotated[AlertStatus | None, Query(description="Only transitions to this status.")]

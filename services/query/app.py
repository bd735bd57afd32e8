"""The query API: current rollups, a rollup's revisions and who has reported, read from PostgreSQL.

Read-only by construction: every connection opens with default_transaction_read_only, and the
service holds no Kafka state, so it scales and fails independently of ingest and the aggregator.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the handlers' annotations, and
# the page limit types are built inside create_app from the settings.
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dxpulse.domain.catalog import Catalog, Indicator, default_catalog
from dxpulse.domain.periods import Period, PeriodError, parse_period
from dxpulse.domain.registry import Registry, default_registry
from dxpulse.http.handlers import install_problem_handlers
from dxpulse.http.problems import problem, problem_doc
from schemas import Report, ReportValue, Rollup
from schemas.events import REPORTER_PATTERN
from services.query.core import (
    Page,
    ReporterValue,
    ReportingStatus,
    RollupRevision,
    page_of,
    reporting_status,
    scope_groups,
)
from services.query.settings import QuerySettings

log = logging.getLogger(__name__)

_VALUE: TypeAdapter[ReportValue] = TypeAdapter(ReportValue)
DATABASE_UNAVAILABLE = (
    OSError,  # refused, reset, unreachable, unknown host
    TimeoutError,  # no connection in time
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and a connection lost mid-query
    asyncpg.OperatorInterventionError,  # class 57: starting up, shutting down, statement timeout
    asyncpg.InsufficientResourcesError,  # class 53: too many connections, disk full, out of memory
    asyncpg.UndefinedTableError,  # the history tables are not created yet
)
"""What a request can meet when PostgreSQL is down, overloaded, slow or not migrated yet: answered
503 with Retry-After. Any other database error (a DataError, say) is a bug: 500, with its traceback."""

MAX_OFFSET = 1_000_000_000
"""The largest offset a request may give: far beyond any history (tens of thousands of rows a year)
and far inside PostgreSQL's bigint, so offset + limit + 1 can never overflow."""

INDICATOR_PATTERN = Indicator.model_json_schema()["properties"]["id"]["pattern"]
SCOPE_PATTERN = INDICATOR_PATTERN
"""Group names and ``national`` are spelled as indicator ids are."""
PERIOD_PATTERN = Report.model_json_schema()["properties"]["period"]["pattern"]


class QueryMetrics:
    """The query API's Prometheus metrics, in a registry of its own (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dxpulse_query_requests",
            "Requests answered, by route template and HTTP status",
            ["endpoint", "status"],
            registry=self.registry,
        )


class NotFound(Exception):
    """A path names an indicator, scope or reporter that does not exist: answered with 404."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


class BadPeriod(Exception):
    """A period is not one of the indicator's type: answered with 422."""


class CountRequests:
    """Counts every answer by route template and status, the unmatched and the failed too."""

    def __init__(self, app: ASGIApp, metrics: QueryMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            # The route template, not the path: one label value per endpoint, whatever the ids.
            # The router sets it on this same scope.
            endpoint = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()


NOT_FOUND = problem_doc(
    "not-found: no such indicator, scope or reporter (`field` says which), or no such path"
)
INVALID = problem_doc("invalid-request: a parameter is invalid; `field` names it")
INVALID_IN_PATH = problem_doc(
    "invalid-request: a parameter is invalid (`field` names it); invalid-period: the period is not"
    " of the indicator's type"
)
UNAVAILABLE = problem_doc(
    "database-unavailable: PostgreSQL is unreachable or busy; try again after Retry-After seconds",
    headers=("Retry-After",),
)


CURRENT_ROLLUPS = """
SELECT seq, body FROM rollup_current
WHERE ($1::text IS NULL OR indicator = $1) AND ($2::text IS NULL OR period = $2)
  AND ($3::text IS NULL OR scope = $3)
ORDER BY indicator, period, scope
LIMIT $4 OFFSET $5
"""
ROLLUP_HISTORY = """
SELECT seq, body FROM rollup_history
WHERE indicator = $1 AND period = $2 AND scope = $3
ORDER BY seq
LIMIT $4 OFFSET $5
"""
LATEST_FOR_FIGURE = """
SELECT reporter, indicator, period, observed_at, event_id, value FROM reporter_latest
WHERE indicator = $1 AND period = $2
"""
LATEST_OF_REPORTER = """
SELECT reporter, indicator, period, observed_at, event_id, value FROM reporter_latest
WHERE reporter = $1 AND ($2::text IS NULL OR indicator = $2) AND ($3::text IS NULL OR period = $3)
ORDER BY indicator, period
LIMIT $4 OFFSET $5
"""


def _revision(row: asyncpg.Record) -> RollupRevision:
    return RollupRevision(seq=row["seq"], rollup=Rollup.model_validate_json(row["body"]))


def _reporter_value(row: asyncpg.Record) -> ReporterValue:
    return ReporterValue(
        reporter=row["reporter"],
        indicator=row["indicator"],
        period=row["period"],
        observed_at=row["observed_at"],
        event_id=row["event_id"],
        value=_VALUE.validate_json(row["value"]),
    )


def create_app(
    settings: QuerySettings, *, catalog: Catalog | None = None, registry: Registry | None = None
) -> FastAPI:
    """Build the query API; the PostgreSQL pool opens and closes with the app's lifespan."""
    catalog = catalog or default_catalog()
    registry = registry or default_registry()
    metrics = QueryMetrics()
    max_page = settings.query_max_page_size

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # min_size=0: the API starts (and answers 503) while PostgreSQL is still coming up.
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=0,
            max_size=settings.query_pool_size,
            server_settings={
                "default_transaction_read_only": "on",
                "statement_timeout": str(settings.query_statement_timeout_ms),
                "application_name": "dxpulse-query",
            },
        )
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="dxpulse query",
        version="1",
        summary="Read-only queries over the rollup history and the latest value of every reporter.",
        description=(
            "Served by the `query` service from PostgreSQL, which the history writer fills. Lists are"
            f" paginated with `limit` (default {settings.query_page_size}, at most {max_page}) and"
            f" `offset` (at most {MAX_OFFSET:,}); follow `next_offset` until it is null. Errors are"
            " RFC 9457 problem documents (application/problem+json)."
        ),
        lifespan=lifespan,
    )

    app.add_middleware(CountRequests, metrics=metrics)
    install_problem_handlers(app, body_read_timeout_s=settings.query_body_read_timeout_s)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> JSONResponse:
        return problem(404, "not-found", "Not found", str(error), field=error.field)

    @app.exception_handler(BadPeriod)
    async def bad_period(request: Request, error: BadPeriod) -> JSONResponse:
        return problem(422, "invalid-period", "Invalid period", str(error), field="period")

    for error_type in DATABASE_UNAVAILABLE:

        @app.exception_handler(error_type)
        async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
            log.warning("query failed on the database: %r", error)
            return problem(
                503,
                "database-unavailable",
                "History database unavailable",
                "PostgreSQL did not answer in time, is overloaded or has no history tables yet (the"
                " history writer creates them); try again after Retry-After seconds",
                headers={"Retry-After": "5"},
            )

    def pool(request: Request) -> asyncpg.Pool:
        return request.app.state.pool

    def indicator_of(indicator_id: str) -> Indicator:
        indicator = catalog.get(indicator_id)
        if indicator is None:
            raise NotFound(
                "indicator", f"no indicator {indicator_id!r}; GET /v1/indicators on ingest lists them"
            )
        return indicator

    def period_of(indicator: Indicator, text: str) -> Period:
        try:
            return parse_period(text, indicator.period_type)
        except PeriodError as error:
            raise BadPeriod(str(error)) from None

    def groups_of(indicator: Indicator, scope: str) -> tuple[str, ...]:
        groups = scope_groups(indicator, scope)
        if groups is None:
            scopes = ", ".join((*indicator.groups, "national"))
            raise NotFound("scope", f"{indicator.id} has no scope {scope!r}; its scopes are {scopes}")
        return groups

    Limit = Annotated[int, Query(ge=1, le=max_page, description=f"Items per page, at most {max_page}.")]
    Offset = Annotated[
        int,
        Query(
            ge=0,
            le=MAX_OFFSET,
            description=f"Items to skip, at most {MAX_OFFSET:,}; use the previous page's next_offset.",
        ),
    ]
    IndicatorPath = Annotated[
        str, Path(pattern=INDICATOR_PATTERN, description="Catalog indicator id, e.g. emc_connection.")
    ]
    PeriodPath = Annotated[
        str, Path(pattern=PERIOD_PATTERN, description="Period of the indicator's type, e.g. 2024-H1.")
    ]
    ScopePath = Annotated[
        str, Path(pattern=SCOPE_PATTERN, description="A group the indicator spans, or national.")
    ]
    IndicatorFilter = Annotated[
        str | None, Query(pattern=INDICATOR_PATTERN, description="Only this indicator.")
    ]
    PeriodFilter = Annotated[
        str | None, Query(pattern=PERIOD_PATTERN, description="Only this period, e.g. 2024-H1.")
    ]
    default_limit = min(settings.query_page_size, max_page)
    # Routes with path parameters also answer 404 for a path no route matches (an id with a slash).
    paths_responses: dict[int | str, dict[str, Any]] = {
        404: NOT_FOUND,
        422: INVALID_IN_PATH,
        503: UNAVAILABLE,
    }

    @app.get(
        "/v1/rollups",
        response_model=Page[RollupRevision],
        responses={422: INVALID, 503: UNAVAILABLE},
    )
    async def current_rollups(
        request: Request,
        indicator: IndicatorFilter = None,
        period: PeriodFilter = None,
        scope: Annotated[
            str | None, Query(pattern=SCOPE_PATTERN, description="Only this scope: a group, or national.")
        ] = None,
        limit: Limit = default_limit,
        offset: Offset = 0,
    ) -> Page[RollupRevision]:
        """The current figure of every rollup, ordered by indicator, period and scope."""
        rows = await pool(request).fetch(CURRENT_ROLLUPS, indicator, period, scope, limit + 1, offset)
        return page_of([_revision(r) for r in rows], limit, offset)

    @app.get(
        "/v1/rollups/{indicator}/{period}/{scope}/history",
        response_model=Page[RollupRevision],
        responses=paths_responses,
    )
    async def rollup_history(
        request: Request,
        indicator: IndicatorPath,
        period: PeriodPath,
        scope: ScopePath,
        limit: Limit = default_limit,
        offset: Offset = 0,
    ) -> Page[RollupRevision]:
        """Every distinct figure one rollup has had, oldest first (seq 1, 2, 3, ...)."""
        entry = indicator_of(indicator)
        groups_of(entry, scope)
        label = period_of(entry, period).label
        rows = await pool(request).fetch(ROLLUP_HISTORY, indicator, label, scope, limit + 1, offset)
        return page_of([_revision(r) for r in rows], limit, offset)

    @app.get("/v1/reporting/{indicator}/{period}", response_model=ReportingStatus, responses=paths_responses)
    async def reporting(
        request: Request,
        indicator: IndicatorPath,
        period: PeriodPath,
        scope: Annotated[
            str, Query(pattern=SCOPE_PATTERN, description="A group the indicator spans, or national.")
        ] = "national",
    ) -> ReportingStatus:
        """Which expected reporters have a value for the indicator and period, and which are missing.

        Expected reporters are the scope's groups in the registry in force on the period's last day.
        Not paginated: both lists are bounded by the registry (under 100 reporters per indicator).
        """
        entry = indicator_of(indicator)
        groups_of(entry, scope)
        parsed = period_of(entry, period)
        rows = await pool(request).fetch(LATEST_FOR_FIGURE, indicator, parsed.label)
        latest = {r["reporter"]: _reporter_value(r) for r in rows}
        return reporting_status(entry, parsed, scope, registry, latest)

    @app.get("/v1/reporters/{reporter}/values", response_model=Page[ReporterValue], responses=paths_responses)
    async def reporter_values(
        request: Request,
        reporter: Annotated[
            str, Path(pattern=REPORTER_PATTERN, description="Reporter id, e.g. province:79 or ministry:MIC.")
        ],
        indicator: IndicatorFilter = None,
        period: PeriodFilter = None,
        limit: Limit = default_limit,
        offset: Offset = 0,
    ) -> Page[ReporterValue]:
        """One reporter's latest value per indicator and period, ordered by indicator and period."""
        if registry.get(reporter) is None:
            raise NotFound("reporter", f"no reporter {reporter!r} in the registry; ids look like province:79")
        rows = await pool(request).fetch(LATEST_OF_REPORTER, reporter, indicator, period, limit + 1, offset)
        return page_of([_reporter_value(r) for r in rows], limit, offset)

    @app.get("/healthz", responses={503: UNAVAILABLE})
    async def health(request: Request) -> dict[str, str]:
        """200 when PostgreSQL answers (503 otherwise)."""
        await pool(request).fetchval("SELECT 1")
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app

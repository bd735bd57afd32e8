"""The query API: current rollups, a rollup's revisions and who has reported, read from PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dxpulse.business_data import business_data
from dxpulse.domain.catalog import Catalog
from dxpulse.domain.registry import Registry
from dxpulse.http.docs import install_offline_docs
from dxpulse.http.handlers import install_problem_handlers
from services.query.api.deps import MAX_OFFSET, Lookup, Paging
from services.query.api.main import api_router
from services.query.api.problems import install_query_problems
from services.query.api.representation import Caching, CsvSuffix
from services.query.metrics import CountRequests, QueryMetrics
from services.query.scoreboard.routes import install_scoreboard
from services.query.settings import QuerySettings
from services.query.store import read_only_pool

__all__ = ["MAX_OFFSET", "create_app", "lifespan"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app's pool (``app.state.pool``), open while the app runs."""
    pool = await read_only_pool(app.state.settings)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


def create_app(
    settings: QuerySettings, *, catalog: Catalog | None = None, registry: Registry | None = None
) -> FastAPI:
    """Build the query API; the PostgreSQL pool opens and closes with the app's lifespan.

    Read-only by construction: every connection opens with default_transaction_read_only, and the
    service holds no Kafka state, so it scales and fails independently of ingest and the aggregator.
    """
    paging = Paging.of(settings)
    app = FastAPI(
        title="dxpulse query",
        version="1",
        summary="Read-only queries over the rollup history and the latest value of every reporter.",
        description=(
            "Served by the `query` service from PostgreSQL, which the history writer fills. Lists are"
            f" paginated with `limit` (default {settings.query_page_size}, at most {paging.max_page})"
            f" and `offset` (at most {MAX_OFFSET:,}); follow `next_offset` until it is null. Errors"
            " are RFC 9457 problem documents (application/problem+json). Every data route answers"
            " CSV too, with `Accept: text/csv` or `.csv` after its path (`/v1/rollups.csv`), and an"
            " `ETag` from the rollup revisions it holds: send it back as `If-None-Match` to get 304"
            " while nothing changed. Authenticate with `Authorization: Bearer <read token>`"
            f"{'; the scoreboard routes are public here' if settings.query_public else ''}."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    metrics = QueryMetrics()
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.lookup = Lookup(*business_data(settings, catalog, registry))
    app.state.caching = Caching(settings.query_cache_max_age_s, public=settings.query_public)
    app.add_middleware(CountRequests, metrics=metrics)
    app.add_middleware(CsvSuffix)
    install_problem_handlers(app, body_read_timeout_s=settings.query_body_read_timeout_s)
    install_query_problems(app)
    app.include_router(api_router(paging, public=settings.query_public))
    install_offline_docs(app)
    install_scoreboard(app, public=settings.query_public)
    return app

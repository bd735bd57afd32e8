"""The query API's reads of the history tables: its read-only pool, its SQL, and rows turned into answers."""

from __future__ import annotations

import asyncpg
from pydantic import TypeAdapter

from dxpulse.domain.rollup import Snapshot
from schemas import AlertEvent, ReportValue, Rollup
from services.query.core import Page, ReporterValue, RollupRevision, page_of
from services.query.settings import QuerySettings

_VALUE: TypeAdapter[ReportValue] = TypeAdapter(ReportValue)

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

SERIES = """
SELECT seq, body FROM rollup_current
WHERE indicator = $1 AND scope = $2 AND ($3::text IS NULL OR period >= $3)
  AND ($4::text IS NULL OR period <= $4)
ORDER BY period
LIMIT $5
"""
ALERT_HISTORY = """
SELECT body FROM alert_history
WHERE ($1::text IS NULL OR indicator = $1) AND ($2::text IS NULL OR period = $2)
  AND ($3::text IS NULL OR scope = $3) AND ($4::text IS NULL OR rule = $4)
  AND ($5::text IS NULL OR status = $5)
ORDER BY changed_at, fingerprint, status
LIMIT $6 OFFSET $7
"""


async def read_only_pool(settings: QuerySettings) -> asyncpg.Pool:
    """The API's pool: every connection read-only, each statement bounded in time."""
    # min_size=0: the API starts (and answers 503) while PostgreSQL is still coming up.
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=0,
        max_size=settings.query_pool_size,
        server_settings={
            "default_transaction_read_only": "on",
            "statement_timeout": str(settings.query_statement_timeout_ms),
            "application_name": "dxpulse-query",
        },
    )


def _revision(row: asyncpg.Record) -> RollupRevision:
    return RollupRevision(seq=row["seq"], rollup=Rollup.model_validate_json(row["body"]))


def reporter_value(row: asyncpg.Record) -> ReporterValue:
    """A ``reporter_latest`` row as the API answers it."""
    return ReporterValue(
        reporter=row["reporter"],
        indicator=row["indicator"],
        period=row["period"],
        observed_at=row["observed_at"],
        event_id=row["event_id"],
        value=_VALUE.validate_json(row["value"]),
    )


class HistoryStore:
    """The history tables as the routes read them; a page is fetched with ``limit + 1`` rows, the
    extra one only saying that another page follows (``page_of``)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def current_rollups(
        self, indicator: str | None, period: str | None, scope: str | None, limit: int, offset: int
    ) -> Page[RollupRevision]:
        rows = await self.pool.fetch(CURRENT_ROLLUPS, indicator, period, scope, limit + 1, offset)
        return page_of([_revision(r) for r in rows], limit, offset)

    async def rollup_history(
        self, indicator: str, period: str, scope: str, limit: int, offset: int
    ) -> Page[RollupRevision]:
        rows = await self.pool.fetch(ROLLUP_HISTORY, indicator, period, scope, limit + 1, offset)
        return page_of([_revision(r) for r in rows], limit, offset)

    async def latest_for_figure(self, indicator: str, period: str) -> dict[str, ReporterValue]:
        """Every reporter's latest value for the indicator and period, by reporter id."""
        rows = await self.pool.fetch(LATEST_FOR_FIGURE, indicator, period)
        return {r["reporter"]: reporter_value(r) for r in rows}

    async def latest_of_reporter(
        self, reporter: str, indicator: str | None, period: str | None, limit: int, offset: int
    ) -> Page[ReporterValue]:
        rows = await self.pool.fetch(LATEST_OF_REPORTER, reporter, indicator, period, limit + 1, offset)
        return page_of([reporter_value(r) for r in rows], limit, offset)

    async def snapshots_for_figure(self, indicator: str, period: str) -> dict[str, Snapshot]:
        """Every reporter's latest value for the indicator and period as the rollups take it, by
        reporter id: what a figure on any registry version is computed from (``levels_of``)."""
        values = await self.latest_for_figure(indicator, period)
        return {reporter: value.snapshot() for reporter, value in values.items()}

    async def series(
        self, indicator: str, scope: str, first: str | None, last: str | None, limit: int
    ) -> list[RollupRevision]:
        """The current rollup of the indicator and scope per period from ``first`` to ``last``
        (either open), oldest period first, at most ``limit``. Labels of one period type sort as
        the periods do (2024-H2 < 2025-H1)."""
        rows = await self.pool.fetch(SERIES, indicator, scope, first, last, limit)
        return [_revision(r) for r in rows]

    async def alert_history(
        self,
        indicator: str | None,
        period: str | None,
        scope: str | None,
        rule: str | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> Page[AlertEvent]:
        """Alert transitions, oldest first, optionally of one indicator, period, scope, rule, status."""
        rows = await self.pool.fetch(ALERT_HISTORY, indicator, period, scope, rule, status, limit + 1, offset)
        return page_of([AlertEvent.model_validate_json(r["body"]) for r in rows], limit, offset)

    async def ping(self) -> None:
        """Returns once PostgreSQL answers; raises what the pool raises otherwise."""
        await self.pool.fetchval("SELECT 1")

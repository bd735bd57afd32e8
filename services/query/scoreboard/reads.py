"""The scoreboard's reads of the history tables, over the query API's read-only pool."""

from __future__ import annotations

import asyncpg

from schemas import AlertEvent, Rollup
from services.query.core import ReporterValue
from services.query.store import HistoryStore, reporter_value

NATIONAL_FIGURES = """
SELECT body FROM rollup_current WHERE scope = 'national' ORDER BY indicator, period
"""
FIGURES_OF_PERIODS = """
SELECT body FROM rollup_current WHERE period = ANY($1::text[]) ORDER BY indicator, period, scope
"""
LATEST_OF_REPORTER = """
SELECT reporter, indicator, period, observed_at, event_id, value FROM reporter_latest
WHERE reporter = ANY($1::text[]) AND period = ANY($2::text[])
"""
FIRING_ALERTS = """
SELECT body FROM (
    SELECT DISTINCT ON (fingerprint) status, body FROM alert_history
    WHERE indicator = $1 ORDER BY fingerprint, changed_at DESC
) AS latest
WHERE status = 'firing'
"""
CHANGE_MARKER = """
SELECT (SELECT coalesce(sum(seq), 0) FROM rollup_current)::text || '-'
    || (SELECT count(*) FROM rollup_current)::text || '-'
    || (SELECT count(*) FROM alert_history)::text
"""
"""Grows whenever a rollup gets a revision or appears (seq only grows) and whenever an alert changes."""


class ScoreboardReads:
    """Whole sets, not pages: every list is bounded by the catalog and the registry (indicators x
    periods x scopes, or the units of one figure)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.history = HistoryStore(pool)

    async def national_figures(self) -> list[Rollup]:
        """The current national figure of every indicator and period."""
        rows = await self.pool.fetch(NATIONAL_FIGURES)
        return [Rollup.model_validate_json(r["body"]) for r in rows]

    async def figures_of_periods(self, periods: list[str]) -> list[Rollup]:
        """The current figure of every indicator and scope for these periods."""
        rows = await self.pool.fetch(FIGURES_OF_PERIODS, periods)
        return [Rollup.model_validate_json(r["body"]) for r in rows]

    async def unit_values(self, indicator: str, period: str) -> dict[str, ReporterValue]:
        """Every reporter's latest value for the figure, by reporter id."""
        return await self.history.latest_for_figure(indicator, period)

    async def values_of_reporters(self, reporters: list[str], periods: list[str]) -> list[ReporterValue]:
        """The latest value of these reporters for every indicator in these periods."""
        rows = await self.pool.fetch(LATEST_OF_REPORTER, reporters, periods)
        return [reporter_value(r) for r in rows]

    async def firing_alerts(self, indicator: str) -> list[AlertEvent]:
        """The alerts of the indicator whose latest transition is firing."""
        rows = await self.pool.fetch(FIRING_ALERTS, indicator)
        return [AlertEvent.model_validate_json(r["body"]) for r in rows]

    async def change_marker(self) -> str:
        """A text that changes whenever a figure or an alert does."""
        marker: str = await self.pool.fetchval(CHANGE_MARKER)
        return marker

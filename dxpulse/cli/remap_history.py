"""``dxpulse remap``'s figures: every reporter's latest value read from the PostgreSQL history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

import asyncpg

from dxpulse.domain.catalog import Indicator
from dxpulse.domain.periods import Period
from dxpulse.domain.registry import Registry
from dxpulse.domain.remap import RemappedFigure, as_of, on_map_of


async def figures_on_map(
    dsn: str, indicator: Indicator, periods: Sequence[Period], registry: Registry, map_day: date
) -> list[list[RemappedFigure]]:
    """Each period's figures on the map of ``map_day``, from reporter_latest: the same values the
    query API's /v1/figures computes from, kept for as long as the history is (the report topic
    expires)."""
    from services.query.store import HistoryStore

    conn = await asyncpg.connect(dsn, server_settings={"default_transaction_read_only": "on"})
    try:
        store = HistoryStore(conn)
        figures = []
        for period in periods:
            latest = await store.snapshots_for_figure(indicator.id, period.label)
            computed_at = as_of(latest, datetime.combine(period.end, time(), UTC))
            figures.append(on_map_of(indicator, period, latest, registry, map_day, computed_at))
        return figures
    finally:
        await conn.close()

"""The scoreboard's reads over the sample scenario in memory, as the history writer would store it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Registry
from dxpulse.domain.remap import latest_snapshots
from dxpulse.domain.rollup import compute_rollups
from dxpulse.domain.tokens import READER, hash_token
from schemas import AlertEvent, Report, Rollup
from services.query.core import ReporterValue

COMPUTED_AT = datetime(2024, 7, 1, tzinfo=UTC)
READ_TOKEN, REPORTER_TOKEN = "dxp_read_secret", "dxp_79_secret"


class TokenPool:
    """Stands in for the pool where the access check looks tokens up: one read and one reporter's token."""

    def __init__(self) -> None:
        self.lookups = 0

    async def fetchval(self, query: str, *args: Any) -> Any:
        assert "FROM api_tokens" in query
        self.lookups += 1
        return {hash_token(READ_TOKEN): READER, hash_token(REPORTER_TOKEN): "province:79"}.get(args[0])


class MemoryReads:
    """ScoreboardReads' answers from reports: every figure as compute_rollups makes it."""

    def __init__(
        self,
        catalog: Catalog,
        registry: Registry,
        reports: Sequence[Report],
        alerts: Sequence[AlertEvent] = (),
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.reports = list(reports)
        self.alerts = list(alerts)
        self.marker = "1"

    def _rollups(self) -> list[Rollup]:
        figures = sorted({(r.indicator, r.period) for r in self.reports})
        rollups = []
        for indicator_id, label in figures:
            indicator = self.catalog[indicator_id]
            latest = latest_snapshots(
                r for r in self.reports if (r.indicator, r.period) == (indicator_id, label)
            )
            rollups += compute_rollups(indicator, parse_period(label), latest, self.registry, COMPUTED_AT)
        return rollups

    async def national_figures(self) -> list[Rollup]:
        return [r for r in self._rollups() if r.scope == "national"]

    async def figures_of_periods(self, periods: list[str]) -> list[Rollup]:
        return [r for r in self._rollups() if r.period in periods]

    async def unit_values(self, indicator: str, period: str) -> dict[str, ReporterValue]:
        return {v.reporter: v for v in self._values() if (v.indicator, v.period) == (indicator, period)}

    async def values_of_reporters(self, reporters: list[str], periods: list[str]) -> list[ReporterValue]:
        return [v for v in self._values() if v.reporter in reporters and v.period in periods]

    async def firing_alerts(self, indicator: str) -> list[AlertEvent]:
        return [a for a in self.alerts if a.indicator == indicator]

    async def change_marker(self) -> str:
        return self.marker

    def _values(self) -> list[ReporterValue]:
        newest: dict[tuple[str, str, str], Report] = {}
        for report in self.reports:
            key = (report.reporter, report.indicator, report.period)
            if key not in newest or (report.observed_at, str(report.event_id)) > (
                newest[key].observed_at,
                str(newest[key].event_id),
            ):
                newest[key] = report
        return [
            ReporterValue(
                reporter=r.reporter,
                indicator=r.indicator,
                period=r.period,
                observed_at=r.observed_at,
                event_id=r.event_id,
                value=r.value,
            )
            for r in newest.values()
        ]

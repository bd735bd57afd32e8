"""The query API's response shapes and the pure functions behind them: pages and who has reported."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from dxpulse.domain.catalog import Indicator
from dxpulse.domain.periods import Period
from dxpulse.domain.registry import Registry
from dxpulse.domain.rollup import NATIONAL_SCOPE, scopes_of
from schemas import ReportValue, Rollup

Item = TypeVar("Item", bound=BaseModel)


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class Page(_Response, Generic[Item]):
    """One page of a list; ask again with ``offset=next_offset`` until it is null."""

    items: list[Item]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page.")


def page_of(rows: Sequence[Item], limit: int, offset: int) -> Page[Item]:
    """A page from rows fetched with ``LIMIT limit + 1``: the extra row only says another page exists."""
    more = len(rows) > limit
    return Page[Item](
        items=list(rows[:limit]), limit=limit, offset=offset, next_offset=offset + limit if more else None
    )


class RollupRevision(_Response):
    """One revision of a rollup: the ``seq``-th distinct figure it had (1 is the first)."""

    seq: int = Field(description="Position in the rollup's history: 1, 2, 3, ... without gaps.")
    rollup: Rollup


class ReporterValue(_Response):
    """A reporter's latest accepted value for one indicator and period."""

    reporter: str
    indicator: str
    period: str
    observed_at: datetime
    event_id: UUID
    value: ReportValue


class ReporterRef(_Response):
    """A reporter the registry expects, by id and name."""

    reporter: str
    name: str


class ReportingStatus(_Response):
    """Who has reported an indicator for a period, and who is still missing, within one scope."""

    indicator: str
    period: str
    scope: str
    expected: int = Field(description="Reporters the registry expects in this scope for the period.")
    reported: list[ReporterValue] = Field(description="Expected reporters with a value, by reporter id.")
    missing: list[ReporterRef] = Field(description="Expected reporters with no value yet, by reporter id.")


def scope_groups(indicator: Indicator, scope: str) -> tuple[str, ...] | None:
    """The groups a scope of the indicator covers, or None when the indicator has no such scope."""
    if scope not in scopes_of(indicator):
        return None
    return indicator.groups if scope == NATIONAL_SCOPE else (scope,)


def reporting_status(
    indicator: Indicator,
    period: Period,
    scope: str,
    registry: Registry,
    latest: Mapping[str, ReporterValue],
) -> ReportingStatus:
    """Split the scope's expected reporters (registry in force on the period's last day) by ``latest``.

    ``latest`` maps reporter id to its value for this indicator and period; values from reporters
    outside the scope are not listed. ``scope`` must be one of the indicator's (scope_groups).
    """
    groups = scope_groups(indicator, scope)
    if groups is None:
        raise ValueError(f"{indicator.id} has no scope {scope!r}")
    expected = sorted(registry.expected(groups, period.end))
    reported = [latest[r] for r in expected if r in latest]
    missing = [ReporterRef(reporter=r, name=_name(registry, r)) for r in expected if r not in latest]
    return ReportingStatus(
        indicator=indicator.id,
        period=period.label,
        scope=scope,
        expected=len(expected),
        reported=reported,
        missing=missing,
    )


def _name(registry: Registry, reporter_id: str) -> str:
    reporter = registry.get(reporter_id)
    return reporter.name if reporter is not None else reporter_id

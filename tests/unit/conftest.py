"""Shared builders for the unit tests: the pure domain core's, and a faust app that never starts."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import faust
import pytest

from dxpulse.domain.catalog import Catalog, default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Registry, default_registry
from dxpulse.domain.rollup import PeriodState, step
from dxpulse.faust_engine.support import discard_unstarted, new_faust_app
from dxpulse.settings import WorkerSettings
from schemas import CatalogValue, CountValue, FlagValue, RatioValue, Report, ReportValue, Rollup

OBSERVED = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
"""A default observation time inside 2024-H1."""
NOW = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
"""The fixed "now" of validation tests: 2025-H2 has started, 2026 has not."""
COMPUTED_AT = datetime(2025, 9, 1, 12, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_dxpulse_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from their defaults: one run of the whole suite has the integration tests' stack
    variables (e.g. DXPULSE_QUERY_PUBLIC) in its environment while the unit tests run."""
    for name in [name for name in os.environ if name.startswith("DXPULSE_")]:
        monkeypatch.delenv(name)


def flag(value: bool) -> FlagValue:
    return FlagValue(value=value)


def ratio(numerator: float, denominator: float) -> RatioValue:
    return RatioValue(numerator=numerator, denominator=denominator)


def count(value: float) -> CountValue:
    return CountValue(value=value)


def done(*items: str) -> CatalogValue:
    return CatalogValue(done=list(items))


def make_report(
    reporter: str,
    value: ReportValue,
    *,
    indicator: str = "emc_connection",
    period: str = "2024-H1",
    observed_at: datetime = OBSERVED,
    minutes: int = 0,
    event_id: UUID | None = None,
) -> Report:
    """A schema-valid report; ``minutes`` shifts ``observed_at`` so tests can order observations."""
    return Report(
        event_id=event_id if event_id is not None else uuid4(),
        reporter=reporter,
        indicator=indicator,
        period=period,
        observed_at=observed_at + timedelta(minutes=minutes),
        value=value,
    )


def feed(
    reports: Iterable[Report],
    indicator_id: str,
    period_label: str,
    state: PeriodState | None = None,
    offsets: Iterable[int | None] | None = None,
) -> tuple[PeriodState, list[list[Rollup]]]:
    """Run reports one by one through ``step``; the final state and what each step published.

    ``offsets`` are the reports' log offsets (none by default, as for reports outside a log).
    """
    indicator = default_catalog()[indicator_id]
    period = parse_period(period_label, indicator.period_type)
    current = state if state is not None else PeriodState()
    published: list[list[Rollup]] = []
    reports = list(reports)
    positions = list(offsets) if offsets is not None else [None] * len(reports)
    for report, offset in zip(reports, positions, strict=True):
        current, fresh = step(current, report, indicator, period, default_registry(), COMPUTED_AT, offset)
        published.append(fresh)
    return current, published


def last_per_scope(published: Iterable[Iterable[Rollup]]) -> dict[str, Rollup]:
    """The last rollup published for each scope."""
    last: dict[str, Rollup] = {}
    for batch in published:
        for rollup in batch:
            last[rollup.scope] = rollup
    return last


@pytest.fixture(scope="session")
def registry() -> Registry:
    return default_registry()


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[faust.App]:
    """A dxpulse worker's faust app that never starts (nothing here talks to Kafka), made on the
    test's event loop: the app waits on the loop it was made on."""
    settings = WorkerSettings(kafka_bootstrap="localhost:1", state_dir=tmp_path)
    made = new_faust_app("unit-worker", settings, web_port=6066)  # never bound
    try:
        yield made
    finally:
        discard_unstarted(made)

"""The sample scenario: first-half-2024 reports from every province and ministry (seed 004's figures).

Which units are behind is not in the sources (only how many), so those choices here are sample data.
Event ids are derived from (reporter, indicator, period), so sending the scenario twice is idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from dxpulse.domain.catalog import Catalog, default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Registry, default_registry
from schemas import CatalogValue, CountValue, FlagValue, RatioValue, Report, ReportValue

PERIOD = "2024-H1"
OBSERVED_AT = datetime(2024, 6, 30, 10, 0, tzinfo=UTC)
_NAMESPACE = uuid.UUID("6f1d2c1e-4c1b-4f7e-9d61-0a8f8f2b6d11")

EXPECTED_FIGURES: dict[str, str] = {
    "emc_connection": "19/21 ministries, 63/63 provinces, 82/84 = 97.6%",
    "gov_reporting_connection": "15/22 ministries, 63/63 provinces, 78/85 = 91.8%",
    "online_records_rate": "61% ministries, 17% provinces, 42% combined",
    "low_signal_villages_broadband": "256/896 = 28.6%",
    "digital_tech_enterprises": "50,350 against 48,000 = 104.9%",
    "essential_public_services": "43/53 = 81.1%",
}
"""What seed 004 says; printed beside the figures read back from the rollup topic."""


def event_id(reporter: str, indicator: str, period: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{reporter}|{indicator}|{period}")


def split(total: int, weights: Sequence[int]) -> list[int]:
    """Split an integer total in proportion to weights, exactly (largest remainders get the rest)."""
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in remainders[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _weights(count: int) -> list[int]:
    """Deterministic, uneven weights so reporters do not all look alike."""
    return [5 + (i * 7919) % 23 for i in range(count)]


def _report(reporter: str, indicator: str, value: ReportValue) -> Report:
    return Report(
        event_id=event_id(reporter, indicator, PERIOD),
        reporter=reporter,
        indicator=indicator,
        period=PERIOD,
        observed_at=OBSERVED_AT,
        value=value,
    )


def _flags(indicator: str, members: list[str], connected: int) -> Iterator[Report]:
    for i, reporter in enumerate(members):
        yield _report(reporter, indicator, FlagValue(value=i < connected))


def _ratios(indicator: str, members: list[str], numerator: int, denominator: int) -> Iterator[Report]:
    dens = split(denominator, _weights(len(members)))
    # Numerators in proportion to denominators keep every unit's ratio within [0, 1].
    nums = split(numerator, dens)
    for reporter, num, den in zip(members, nums, dens, strict=True):
        yield _report(reporter, indicator, RatioValue(numerator=num, denominator=den))


def sample_reports(catalog: Catalog | None = None, registry: Registry | None = None) -> list[Report]:
    """Every report of the scenario, in the order a run sends them."""
    catalog = catalog or default_catalog()
    registry = registry or default_registry()
    day = parse_period(PERIOD).end
    provinces = sorted(registry.members("provinces", day))
    ministries = sorted(registry.members("ministries", day))
    with_procedures = sorted(registry.members("ministries_with_procedures", day))
    reports: list[Report] = []
    reports += _flags("emc_connection", with_procedures, 19)
    reports += _flags("emc_connection", provinces, 63)
    reports += _flags("gov_reporting_connection", ministries, 15)
    reports += _flags("gov_reporting_connection", provinces, 63)
    # 61% of 2.5M ministry records and 17% of 1.9M local records make 42% nationwide, by weight.
    reports += _ratios("online_records_rate", with_procedures, 1_525_000, 2_500_000)
    reports += _ratios("online_records_rate", provinces, 323_000, 1_900_000)
    reports += _ratios("low_signal_villages_broadband", provinces, 256, 896)
    for reporter, count in zip(provinces, split(50_350, _weights(len(provinces))), strict=True):
        reports.append(_report(reporter, "digital_tech_enterprises", CountValue(value=count)))
    services = catalog["essential_public_services"].items
    reports.append(
        _report("national:MPS", "essential_public_services", CatalogValue(done=list(services[:43])))
    )
    return reports

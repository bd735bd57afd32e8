"""A synthetic catalog, district-level registry and deterministic report streams sized for benchmarks."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

from dxpulse.domain.catalog import Catalog, Indicator, IndicatorKind, Target
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Group, Registry, Reporter
from dxpulse.domain.rollup import Snapshot, compute_rollups
from schemas import CatalogValue, CountValue, FlagValue, RatioValue, Report, ReportValue
from schemas.events import report_key

KINDS: tuple[IndicatorKind, ...] = ("flag", "ratio", "count", "catalog", "ratio")
"""Indicator kinds in rotation; ratios twice, as on the real scoreboard."""
PERIODS: tuple[str, ...] = ("2024-H1", "2024-H2", "2025-H1", "2025-H2")
CATALOG_ITEMS = 20
OBSERVED_BASE = datetime(2024, 1, 1, tzinfo=UTC)
"""Report i is observed at this plus i milliseconds, so a later report always wins."""


@dataclass(frozen=True)
class Size:
    """How big every scenario is at one size."""

    name: str
    indicators: int
    periods: int
    districts: int
    ministries: int
    passes: int
    """Reports per reporter-key in the aggregator scenario: the first fills the state, later ones update."""
    ingest_reports: int
    """Single-report requests in the ingest scenario."""
    ingest_batch_reports: int
    """Reports sent in batches of 500 in the ingest scenario (enough batches for a steady rate)."""
    latency_rate: int
    """Reports per second offered in the latency scenario."""
    latency_seconds: float
    replay_reports: int
    """Reports in the log that a new aggregator, and each peer, rebuilds every rollup from."""

    @property
    def reporter_keys(self) -> int:
        """(indicator, period, reporter) triples: the state the aggregator holds when all reported."""
        return len(Workload(self).triples)

    @property
    def throughput_reports(self) -> int:
        return self.reporter_keys * self.passes


SIZES: dict[str, Size] = {
    "tiny": Size("tiny", 4, 1, 30, 3, 4, 400, 500, 200, 3.0, 2_000),
    "small": Size("small", 20, 2, 250, 10, 2, 5_000, 20_000, 2_000, 10.0, 100_000),
    "full": Size("full", 50, 2, 1_000, 20, 1, 10_000, 100_000, 2_000, 30.0, 1_000_000),
}


def synthetic_registry(size: Size) -> Registry:
    """District-level reporters (kind province, codes D0001...) plus ministries, valid throughout."""
    districts = [
        Reporter(id=f"province:D{n:04d}", kind="province", code=f"D{n:04d}", name=f"District {n}")
        for n in range(1, size.districts + 1)
    ]
    ministries = [
        Reporter(id=f"ministry:M{n:03d}", kind="ministry", code=f"M{n:03d}", name=f"Ministry {n}")
        for n in range(1, size.ministries + 1)
    ]
    groups = {
        "provinces": Group("provinces", ("province",)),
        "ministries": Group("ministries", ("ministry",)),
    }
    return Registry(reporters={r.id: r for r in (*districts, *ministries)}, groups=groups)


def synthetic_catalog(size: Size) -> Catalog:
    """``size.indicators`` half-yearly indicators of mixed kinds; every fifth spans ministries too."""
    indicators = []
    for n in range(size.indicators):
        kind = KINDS[n % len(KINDS)]
        groups = ("ministries", "provinces") if n % 5 == 0 else ("provinces",)
        target = Target(value=1000.0 if kind == "count" else 0.9, deadline=date(2025, 12, 31))
        items = tuple(f"item-{i:02d}" for i in range(CATALOG_ITEMS)) if kind == "catalog" else ()
        indicators.append(
            Indicator(
                id=f"bench_{kind}_{n:03d}",
                name=f"Benchmark {kind} indicator {n}",
                unit="units",
                kind=kind,
                period_type="half",
                groups=groups,
                target=target,
                items=items,
            )
        )
    return Catalog(indicators=tuple(indicators))


def value_for(indicator: Indicator, seq: int) -> ReportValue:
    """A value that differs from one sequence number to the next, so each report changes a figure."""
    if indicator.kind == "flag":
        return FlagValue(value=seq % 2 == 0)
    if indicator.kind == "ratio":
        return RatioValue(numerator=float(seq % 997), denominator=1000.0)
    if indicator.kind == "count":
        return CountValue(value=float(seq % 100_003))
    return CatalogValue(done=list(indicator.items[: seq % (len(indicator.items) + 1)]))


@dataclass(frozen=True)
class Workload:
    """The catalog, registry and report stream of one size; report ``seq`` is a pure function of seq."""

    size: Size
    seed: int = 7

    @cached_property
    def catalog(self) -> Catalog:
        return synthetic_catalog(self.size)

    @cached_property
    def registry(self) -> Registry:
        return synthetic_registry(self.size)

    @cached_property
    def triples(self) -> list[tuple[Indicator, str, str]]:
        """Every (indicator, period, reporter) the registry expects, in a seeded random order."""
        result = []
        for indicator in self.catalog.indicators:
            for label in PERIODS[: self.size.periods]:
                period = parse_period(label, indicator.period_type)
                for reporter in sorted(self.registry.expected(indicator.groups, period.end)):
                    result.append((indicator, label, reporter))
        random.Random(self.seed).shuffle(result)
        return result

    @cached_property
    def reporters(self) -> dict[str, list[tuple[Indicator, str, str]]]:
        """Each reporter's triples: what one reporter (one token) may send."""
        mine: dict[str, list[tuple[Indicator, str, str]]] = {}
        for triple in self.triples:
            mine.setdefault(triple[2], []).append(triple)
        return mine

    def report(self, seq: int) -> Report:
        """Report number ``seq``: the triples in turn, each newer than every report before it."""
        return self._report(self.triples[seq % len(self.triples)], seq)

    def reporter_report(self, reporter: str, seq: int) -> Report:
        """Report ``seq`` of one reporter: its own triples in turn (for batches, one reporter each)."""
        mine = self.reporters[reporter]
        return self._report(mine[seq % len(mine)], seq)

    def _report(self, triple: tuple[Indicator, str, str], seq: int) -> Report:
        indicator, period, reporter = triple
        return Report(
            event_id=uuid.UUID(int=(self.seed << 64) | seq),
            reporter=reporter,
            indicator=indicator.id,
            period=period,
            observed_at=OBSERVED_BASE + timedelta(milliseconds=seq),
            value=value_for(indicator, seq),
        )

    def messages(self, start: int, count: int) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) bytes of reports ``start`` .. ``start + count - 1`` as Kafka carries them."""
        for seq in range(start, start + count):
            report = self.report(seq)
            yield report_key(report.indicator, report.period).encode(), report.model_dump_json().encode()

    def expected_revisions(self, start: int, count: int) -> dict[str, str]:
        """Rollup key → revision a fresh aggregator must publish last after reports ``start`` ..."""
        return self.revisions_after(self.report(seq) for seq in range(start, start + count))

    def revisions_after(self, reports: Iterable[Report]) -> dict[str, str]:
        """Rollup key → revision a fresh aggregator must publish last after ``reports`` (each newer
        than the ones before it)."""
        latest: dict[tuple[str, str], dict[str, Snapshot]] = {}
        for report in reports:
            latest.setdefault((report.indicator, report.period), {})[report.reporter] = Snapshot.of(report)
        computed_at = datetime.now(UTC)
        revisions = {}
        for (indicator_id, label), snaps in latest.items():
            indicator = self.catalog[indicator_id]
            period = parse_period(label, indicator.period_type)
            for rollup in compute_rollups(indicator, period, snaps, self.registry, computed_at):
                revisions[rollup.key] = rollup.revision
        return revisions

"""The metric helpers: consumer lag arithmetic, the bounded rollup gauges and their ownership."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry, generate_latest

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.periods import period_of, shifted
from dxpulse.domain.rollup import scopes_of
from dxpulse.kafka.topics import partition_of
from dxpulse.monitoring import (
    ROLLUP_GAUGES,
    ConsumerLagCollector,
    IndicatorInfo,
    PartitionLag,
    RollupGauges,
    consumer_lag,
    gauge_samples,
    merge_rollups,
    newest_periods,
)
from schemas import Rollup
from schemas.events import report_key
from services.aggregate.settings import AggregateSettings

OPERATORS_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "operators.md"

T0 = datetime(2024, 7, 1, tzinfo=UTC)


def rollup(
    indicator: str = "emc_connection",
    period: str = "2024-H1",
    scope: str = "national",
    value: float | None = 0.5,
    attainment: float | None = 0.5,
    at: datetime = T0,
) -> Rollup:
    return Rollup(
        indicator=indicator,
        period=period,
        scope=scope,
        kind="ratio",
        value=value,
        numerator=1,
        denominator=2,
        reporters_reported=3,
        reporters_expected=4,
        completeness=0.75,
        target=None,
        attainment=attainment,
        latest_observed_at=None,
        report_count=3,
        lagging=[],
        not_reported=[],
        revision=f"r{value}",
        computed_at=at,
    )


def test_lag_is_highwater_minus_committed_per_assigned_partition() -> None:
    assigned = [("reports", 0), ("reports", 1), ("reports", 2), ("reports", 3)]
    highwaters = {("reports", 0): 10, ("reports", 1): 7, ("reports", 2): 5, ("reports", 3): None}
    committed = {("reports", 0): 4, ("reports", 1): 9, ("reports", 2): None}
    assert consumer_lag(assigned, highwaters, committed) == [
        PartitionLag("reports", 0, 6),
        # A commit past the highwater just read is no negative lag.
        PartitionLag("reports", 1, 0),
        # Never committed: counted from offset 0. Unknown highwater (partition 3): left out.
        PartitionLag("reports", 2, 5),
    ]


def test_lag_collector_labels_each_partition_with_the_app() -> None:
    registry = CollectorRegistry()
    registry.register(ConsumerLagCollector("dxpulse-aggregate", lambda: [PartitionLag("t", 3, 12)]))
    text = generate_latest(registry).decode()
    assert 'dxpulse_consumer_lag{app="dxpulse-aggregate",partition="3",topic="t"} 12.0' in text


def test_newest_periods_keeps_the_latest_n_periods_of_each_indicator() -> None:
    rollups = [
        rollup(period=p, scope=s)
        for p in ("2023-H2", "2024-H2", "2024-H1")
        for s in ("national", "provinces")
    ] + [rollup(indicator="digital_tech_enterprises", period="2023")]
    kept = newest_periods(rollups, 2)
    assert {(r.indicator, r.period) for r in kept} == {
        ("emc_connection", "2024-H2"),
        ("emc_connection", "2024-H1"),
        ("digital_tech_enterprises", "2023"),
    }
    assert len(kept) == 5


def test_merge_keeps_the_newer_computation_of_a_key() -> None:
    old, new = rollup(value=0.1, at=T0), rollup(value=0.9, at=T0 + timedelta(seconds=5))
    assert merge_rollups({new.key: new}, [old])[new.key] == new
    assert merge_rollups({old.key: old}, [new])[old.key] == new


def test_gauge_samples_skip_figures_a_rollup_does_not_have() -> None:
    samples = gauge_samples([rollup(value=None, attainment=None), rollup(scope="provinces")])
    assert samples["dxpulse_rollup_value"] == [(("emc_connection", "2024-H1", "provinces"), 0.5)]
    assert samples["dxpulse_rollup_attainment"] == [(("emc_connection", "2024-H1", "provinces"), 0.5)]
    assert len(samples["dxpulse_rollup_completeness"]) == 2


def test_partition_of_matches_the_producers_default_partitioner() -> None:
    for key in ("emc_connection|2024-H1", "online_records_rate|2025-Q3", "x"):
        assert partition_of(key.encode(), 6) == DefaultPartitioner()(key.encode(), list(range(6)), None)


def test_gauges_export_only_the_owned_partitions_and_the_bounded_periods() -> None:
    owned: set[int] | None = set()
    gauges = RollupGauges(periods_per_indicator=1, partitions=6, owned=lambda: owned)
    a = rollup(period="2024-H1")
    gauges.observe([a])
    assert gauges.exported() == []
    owned = {partition_of(report_key("emc_connection", "2024-H1").encode(), 6)}
    assert gauges.exported() == [a]
    # The partition a report actually came from beats the murmur2 guess.
    gauges.observe([a], partition=99)
    assert gauges.exported() == []
    owned = None  # no consumer yet: everything known is exported
    assert gauges.exported() == [a]
    # A newer period pushes the older one out (one period per indicator).
    b = rollup(period="2024-H2")
    gauges.observe([b])
    assert gauges.exported() == [b]


def test_gauges_collect_the_three_business_gauges() -> None:
    registry = CollectorRegistry()
    gauges = RollupGauges(periods_per_indicator=2, partitions=6, owned=lambda: None)
    registry.register(gauges)
    gauges.observe([rollup(value=0.976, attainment=0.976)])
    text = generate_latest(registry).decode()
    labels = 'indicator="emc_connection",period="2024-H1",scope="national"'
    assert f"dxpulse_rollup_value{{{labels}}} 0.976" in text
    assert f"dxpulse_rollup_attainment{{{labels}}} 0.976" in text
    assert f"dxpulse_rollup_completeness{{{labels}}} 0.75" in text


def test_gauge_series_stay_within_the_bound_the_readme_states(catalog: Catalog) -> None:
    periods = AggregateSettings.model_fields["rollup_gauge_periods"].default
    gauges = RollupGauges(periods_per_indicator=periods, partitions=6, owned=lambda: None)
    # Years of figures: every scope of every catalog indicator, period after period.
    for step in range(12):
        for indicator in catalog.indicators:
            label = shifted(period_of(date(2020, 1, 1), indicator.period_type), step).label
            gauges.observe([rollup(indicator.id, label, scope) for scope in scopes_of(indicator)])
    bound = sum(len(scopes_of(i)) for i in catalog.indicators) * periods
    exported = gauge_samples(gauges.exported())
    assert {name: len(exported[name]) for name in ROLLUP_GAUGES} == dict.fromkeys(ROLLUP_GAUGES, bound)
    assert re.search(rf"\b{bound} series per gauge and aggregator worker", OPERATORS_GUIDE.read_text())


def test_indicator_info_names_every_catalog_indicator_with_its_targets(catalog: Catalog) -> None:
    registry = CollectorRegistry()
    registry.register(IndicatorInfo(catalog))
    text = generate_latest(registry).decode()
    assert text.count("dxpulse_indicator_info{") == len(catalog.indicators)
    emc = catalog["emc_connection"]
    assert (
        f'dxpulse_indicator_info{{indicator="emc_connection",name="{emc.name}",'
        f'target="100.0% by 2024-12-31",unit="{emc.unit}"}} 1.0'
    ) in text
    for indicator in catalog.indicators:
        if not indicator.milestones:
            assert f'indicator="{indicator.id}",name="{indicator.name}"' in text
            assert re.search(rf'indicator="{indicator.id}",[^}}]*target="none"', text)

"""The aggregator's Prometheus metrics (names fixed by the contract in dxpulse.monitoring)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from dxpulse.domain.catalog import Catalog
from dxpulse.monitoring import IndicatorInfo, RollupGauges, ServiceMetrics
from schemas import Rollup
from services.aggregate.processing import ReportMessage

# Reports queue behind outages and rebalances, so the tail reaches well past a minute.
END_TO_END_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)

# The re-read is paced, so a large uncompacted rollup topic takes minutes.
REREAD_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class AggregateMetrics(ServiceMetrics):
    """Reports processed by outcome, rollups published, end-to-end latency, the rollup gauges and
    the catalog's indicator names and targets."""

    def __init__(self, gauges: RollupGauges, catalog: Catalog) -> None:
        super().__init__()
        self.processed = Counter(
            "dxpulse_aggregate_reports_processed",
            "Reports consumed, by outcome (changed, unchanged, dead_letter)",
            ["outcome"],
            registry=self.registry,
        )
        self.published = Counter(
            "dxpulse_aggregate_rollups_published", "Rollups published", registry=self.registry
        )
        self.end_to_end = Histogram(
            "dxpulse_end_to_end_seconds",
            "From the report's Kafka timestamp (set at ingest) until Kafka acknowledged its rollups",
            buckets=END_TO_END_BUCKETS,
            registry=self.registry,
        )
        self.gauges_reread = Histogram(
            "dxpulse_rollup_gauges_reread_seconds",
            "How long re-reading the rollup topic for the business gauges took after an assignment"
            " (paced: at most GAUGE_REREAD_SHARE of the worker's time); growing means a topic that"
            " is not compacting",
            buckets=REREAD_BUCKETS,
            registry=self.registry,
        )
        self.gauges = gauges
        self.registry.register(gauges)
        self.registry.register(IndicatorInfo(catalog))

    def dead_lettered(self, reason: str) -> None:
        """Count a report sent to the dead-letter topic (by reason in ``dxpulse_dead_letters_total``)."""
        self.processed.labels(outcome="dead_letter").inc()

    def batch_done(
        self, messages: Sequence[ReportMessage], rollups: list[Rollup], now: float, *, changed: int
    ) -> None:
        """Count one (indicator, period)'s reports of a batch (``changed`` of them changed its state);
        time each against the rollups they waited for, and keep those for the business gauges."""
        self.published.inc(len(rollups))
        self.processed.labels(outcome="changed").inc(changed)
        self.processed.labels(outcome="unchanged").inc(len(messages) - changed)
        if not rollups:
            return
        for message in messages:
            if message.timestamp is not None:
                self.end_to_end.observe(max(0.0, now - message.timestamp))
        self.gauges.observe(rollups, messages[-1].partition)

"""The ingest's Prometheus metrics (names fixed by the contract in dxpulse.monitoring)."""

from __future__ import annotations

import collections
from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from dxpulse.domain.tokens import reporter_group
from dxpulse.monitoring import ServiceMetrics
from services.ingest.items import Item
from services.ingest.problems import KAFKA_UNAVAILABLE


class IngestMetrics(ServiceMetrics):
    """Reports answered by outcome, reason and reporter group; time to acks=all; batch sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.reports = Counter(
            "dxpulse_ingest_reports_total",
            "Reports answered, by outcome, problem slug (reason) and reporter group",
            ["outcome", "reason", "group"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "dxpulse_ingest_produce_seconds",
            "Time from handing a report to the Kafka producer until acks=all",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "dxpulse_ingest_batch_size",
            "Reports per batch request",
            buckets=(1, 10, 50, 100, 250, 500),
            registry=self.registry,
        )

    def count(self, outcome: str, group: str, reason: str = "", n: int = 1) -> None:
        self.reports.labels(outcome=outcome, reason=reason, group=group).inc(n)

    def acknowledged(self, seconds: float, reports: int) -> None:
        """Kafka acknowledged ``reports`` reports ``seconds`` after they were handed to the producer."""
        for _ in range(reports):
            self.produce_seconds.observe(seconds)

    def tally(self, subject: str, items: Sequence[Item]) -> None:
        """Count a request's judged and published reports, one increment per (outcome, group, reason)."""
        counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        for item in items:
            group = reporter_group(item.report.reporter if item.report is not None else subject)
            if item.problem is not None:
                counts["rejected", group, item.problem.type] += 1
            elif item.status == "unavailable":
                counts["rejected", group, KAFKA_UNAVAILABLE.type] += 1
            else:
                counts[item.status, group, ""] += 1
        for (outcome, group, reason), n in counts.items():
            self.count(outcome, group, reason, n)
